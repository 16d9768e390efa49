import type { SigningAlgorithm } from "../hsm/algorithms.js";

export type Environment = "mainnet" | "testnet";
export type KeyVersionState = "pending" | "active" | "retiring" | "destroyed";
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
}

/** One secret of a key. Each version is its own HSM object, CKA_ID = `objectId`. */
export interface KeyVersionRecord {
  keyId: string;
  version: number;
  objectId: string;
  state: KeyVersionState;
  createdAt: string;
  activatedAt: string | null;
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
