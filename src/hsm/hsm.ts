import type { SigningAlgorithm } from "./algorithms.js";
import type { ImportEnvelope } from "./envelope.js";

/** The token's RSA wrapping key, published so officers can encrypt import envelopes. */
export interface WrappingKeyInfo {
  spkiPem: string;
  /** "sha256:" + hex SHA-256 of the DER SPKI. */
  fingerprint: string;
  /** OAEP hash the HSM accepts for the envelope's RSA layer ("sha1" on SoftHSM2 2.6). */
  oaepHash: "sha1" | "sha256";
}

/** Where a secret lives in the HSM: CKA_ID (the version id) and CKA_LABEL. */
export interface SecretObjectRef {
  objectId: string;
  label: string;
}

export interface HsmStatus {
  ready: boolean;
  /** Why not ready (e.g. "recovering: CKR_SESSION_HANDLE_INVALID"). */
  reason?: string;
  dispatch: "sync" | "async" | "worker";
  sessions: number;
  sessionsInUse: number;
  waiters: number;
}

/**
 * Everything custos asks of a hardware security module. Nothing outside src/hsm knows
 * which backend it talks to; no method ever returns secret material.
 */
export interface Hsm {
  /** HMAC `data` with the secret object `objectId`. */
  sign(objectId: string, algorithm: SigningAlgorithm, data: Uint8Array): Promise<Buffer>;
  /** Opens an import envelope inside the HSM into a sign-only, sensitive, non-extractable
   *  token object. Throws ENVELOPE_INVALID (and leaves nothing behind) if it does not open,
   *  and KEY_EXISTS if an object with this CKA_ID exists (so a caller's rollback can only
   *  destroy what its own call created). */
  unwrapSecret(envelope: ImportEnvelope, target: SecretObjectRef): Promise<void>;
  /** True if a secret object with this CKA_ID exists on the token. */
  hasSecret(objectId: string): Promise<boolean>;
  /** CKA_IDs of every secret object on the token (start-up reconciliation). */
  listSecretIds(): Promise<string[]>;
  /** C_DestroyObject on every object with this CKA_ID; idempotent. */
  destroySecret(objectId: string): Promise<void>;
  /** The wrapping key; throws if `custos hsm init` has not created it. */
  wrappingKey(): WrappingKeyInfo;
  status(): HsmStatus;
  /** Cheap liveness probe (no key use): starts recovery if the sessions or login are gone. */
  check(): void;
  close(): Promise<void>;
}
