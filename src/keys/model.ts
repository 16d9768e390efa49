import type { SigningAlgorithm } from "../hsm/algorithms.js";

export type Environment = "mainnet" | "testnet";
/** destroying: the HSM object is being destroyed (a restart finishes it). */
export type KeyVersionState = "pending" | "active" | "retiring" | "destroying" | "destroyed";
export const DEFAULT_MAX_AGE_DAYS = 45;

/** An exchange API key held in custody. The secret itself lives only in the HSM. */
export interface KeyRecord {
  id: string;
  exchange: string;
  environment: Environment;
  label: string;
  /** The public half the exchange knows the key by; returned with every signature. */
  apiKeyId: string;
  algorithm: SigningAlgorithm;
  maxAgeDays: number;
  createdAt: string;
  /** Set while frozen: no sign with this key until a quorum thaws it. */
  frozenAt?: string | null;
  frozenReason?: string | null;
  /**
   * The last exchange-side permission check of this key, by any replica ("safe", "unsafe: …",
   * "not verified: …", "check failed: …"; src/exchange-permissions/checker.ts), and when it ran.
   */
  exchangePermissions?: ExchangePermissionVerdict | null;
}

/** What the last exchange-side permission check concluded, in words, and when (ISO 8601). */
export interface ExchangePermissionVerdict {
  verdict: string;
  checkedAt: string;
}

/** One secret of a key. Each version is its own HSM object, CKA_ID = `objectId`. */
export interface KeyVersionRecord {
  keyId: string;
  version: number;
  objectId: string;
  state: KeyVersionState;
  createdAt: string;
  activatedAt: string | null;
  /** The exchange API key id of this version's secret, when it differs from the key's first. */
  apiKeyId?: string | null;
  /** End of the grace period of a retiring version; its HSM object is destroyed then. */
  retireAt?: string | null;
  /**
   * KuCoin Futures: base64(HMAC-SHA256(secret, API passphrase)) of this version's secret, set by
   * the import or rotation the quorum approved. Not a secret: it is the value sent in the clear
   * KC-API-PASSPHRASE header of every request (and returned to every engine); neither the
   * passphrase nor the secret can be recovered from it. Null for every other exchange.
   */
  signedPassphrase?: string | null;
}

export interface KeyWithVersions extends KeyRecord {
  versions: KeyVersionRecord[];
}

/** HSM object id of a version: stable, unique per key and version, no secret in it. */
export function versionObjectId(keyId: string, version: number): string {
  return `custos:${keyId}:v${version}`;
}

/** Active version, or undefined. */
export function activeVersion(key: KeyWithVersions): KeyVersionRecord | undefined {
  return key.versions.find((v) => v.state === "active");
}

/** When the active version is due for rotation (activation + max age). */
export function dueAt(key: KeyWithVersions): Date | undefined {
  const active = activeVersion(key);
  if (!active?.activatedAt) return undefined;
  return new Date(Date.parse(active.activatedAt) + key.maxAgeDays * 86_400_000);
}

/** The exchange API key id to send with a signature made by `v`. */
export function apiKeyIdOf(key: KeyRecord, v: KeyVersionRecord): string {
  return v.apiKeyId || key.apiKeyId;
}

/** Whole days since the active version was activated. */
export function ageDays(key: KeyWithVersions, now = Date.now()): number | undefined {
  const active = activeVersion(key);
  if (!active?.activatedAt) return undefined;
  return Math.floor((now - Date.parse(active.activatedAt)) / 86_400_000);
}
