import type { EddsaAlgorithm, SigningAlgorithm } from "./algorithms.js";
import type { CheckpointHead } from "./checkpoint-statement.js";
import type { ImportEnvelope } from "./envelope.js";

/** The token's RSA wrapping key, published so officers can encrypt import envelopes. */
export interface WrappingKeyInfo {
  spkiPem: string;
  /** "sha256:" + hex SHA-256 of the DER SPKI. */
  fingerprint: string;
  /** OAEP hash the HSM accepts for the envelope's RSA layer ("sha1" on SoftHSM2 2.6). */
  oaepHash: "sha1" | "sha256";
}

/** Where a secret (or a key pair) lives in the HSM: CKA_ID (the version id) and CKA_LABEL. */
export interface SecretObjectRef {
  objectId: string;
  label: string;
}

export interface HsmStatus {
  ready: boolean;
  /** Why not ready (e.g. "recovering: CKR_SESSION_HANDLE_INVALID"). */
  reason?: string | undefined;
  dispatch: "sync" | "async" | "worker";
  sessions: number;
  sessionsInUse: number;
  waiters: number;
}

/**
 * What the sign path asks of the HSM: one signature with a key version. No method returns
 * secret material.
 */
export interface Signer {
  /** Signs `data` with the version `objectId`: an HMAC with its secret object, or an EdDSA
   *  signature (64 bytes for Ed25519) with its private key. */
  sign(objectId: string, algorithm: SigningAlgorithm, data: Uint8Array): Promise<Buffer>;
}

/**
 * What key custody (governance's executed proposals and start-up reconciliation) asks of the
 * HSM: create, adopt, inspect and destroy key-version objects by CKA_ID. Secret material goes
 * in only inside an envelope and never comes out.
 */
export interface KeyCustody {
  /** Opens an import envelope inside the HSM into a sign-only, sensitive, non-extractable
   *  token object. Throws ENVELOPE_INVALID (and leaves nothing behind) if it does not open,
   *  and KEY_EXISTS if an object with this CKA_ID exists (so a caller's rollback can only
   *  destroy what its own call created). */
  unwrapSecret(envelope: ImportEnvelope, target: SecretObjectRef): Promise<void>;
  /**
   * Opens an envelope holding a PKCS#8 private key (Ed25519, for migrating an existing exchange
   * key) inside the HSM into a sign-only, sensitive, non-extractable private key, creates its
   * public key object from `publicKeySpki` (what the officers approved), and checks in the HSM
   * that the two are a pair. ENVELOPE_INVALID if the envelope does not open or the keys do not
   * match, HSM_UNSUPPORTED if the HSM cannot unwrap such a key; nothing is left behind then.
   */
  unwrapPrivateKey(algorithm: EddsaAlgorithm, envelope: ImportEnvelope, target: SecretObjectRef, publicKeySpki: Buffer): Promise<void>;
  /** Generates a key pair inside the HSM: the private half becomes a sign-only, sensitive,
   *  non-extractable token object that never leaves it, the public half a token object beside
   *  it (same CKA_ID and CKA_LABEL). Returns the public key as DER SubjectPublicKeyInfo.
   *  Throws KEY_EXISTS if any object with this CKA_ID exists (as unwrapSecret). */
  generateKeyPair(algorithm: EddsaAlgorithm, target: SecretObjectRef): Promise<{ spkiDer: Buffer }>;
  /** The DER SPKI of the public key with this CKA_ID; undefined if there is none (HMAC
   *  versions have none). */
  publicKey(objectId: string): Promise<Buffer | undefined>;
  /** True if a secret object or a private key with this CKA_ID exists on the token. */
  hasSecret(objectId: string): Promise<boolean>;
  /** CKA_IDs of every secret object and private key on the token, each once (start-up
   *  reconciliation). */
  listSecretIds(): Promise<string[]>;
  /** C_DestroyObject on every secret, private and public key object with this CKA_ID
   *  (session copies included); idempotent. */
  destroySecret(objectId: string): Promise<void>;
  /** The wrapping key; throws if `custos hsm init` has not created it. */
  wrappingKey(): WrappingKeyInfo;
}

/** What health probes and metrics ask of the HSM: its state, and a cheap liveness check. */
export interface HsmHealth {
  status(): HsmStatus;
  /** Cheap liveness probe (no key use): starts recovery if the sessions or login are gone. */
  check(): void;
}

/**
 * A whole HSM backend, as the service opens and closes it. Each consumer takes only its slice
 * (Signer, KeyCustody, HsmHealth, AuditCheckpointSigner); nothing outside src/hsm knows which
 * backend it talks to.
 */
export interface Hsm extends Signer, KeyCustody, HsmHealth {
  close(): Promise<void>;
}

/**
 * The audit checkpoint key: an HSM key pair that signs checkpoint statements of the audit
 * chain's head and nothing else (the statement is built here, never taken from a caller).
 */
export interface AuditCheckpointSigner {
  /** DER SPKI of the checkpoint public key; HSM_ERROR if the token has none. */
  checkpointPublicKey(): Promise<Buffer>;
  /** ECDSA P-256 signature (r‖s, 64 bytes) of the checkpoint statement of `head`. */
  signCheckpoint(head: CheckpointHead): Promise<Buffer>;
}
