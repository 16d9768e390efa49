import type { Decision } from "./proposal.js";

export type OfficerStatus = "active" | "removed";

/** A key officer: who may propose and approve changes. The private key never leaves the officer. */
export interface OfficerRecord {
  id: string;
  displayName: string;
  /** Identity of the officer's mTLS certificate (URI SAN), e.g. spiffe://custos/officer/alice. */
  identity: string;
  /** Ed25519 public key, SPKI PEM. */
  publicKeyPem: string;
  fingerprint: string;
  status: OfficerStatus;
  createdAt: string;
}

export interface GovernanceRecord {
  threshold: number;
  initialisedAt: string;
}

/**
 * pending → executing → executed, or pending → rejected | expired, or executing → failed.
 * `executing` is persisted before the first side effect, so a restart resumes it.
 */
export type ProposalState = "pending" | "executing" | "executed" | "rejected" | "expired" | "failed";

export interface ProposalRecord {
  id: string;
  kind: string;
  target: string;
  /** RFC 8785 canonical JSON of the proposal content; `digest` is its SHA-256. */
  canonical: string;
  digest: string;
  proposer: string;
  state: ProposalState;
  /** The last execution step that completed (crash recovery resumes after it). */
  step: string | null;
  /** The wrapped envelope (JSON, base64 fields) of an import or rotation, until the proposal ends. */
  envelope: string | null;
  createdAt: string;
  expiresAt: string;
  executedAt: string | null;
  failure: string | null;
}

/** How an officer signed a vote: the CLI's Ed25519 key, or a WebAuthn passkey in the console. */
export type CredentialKind = "ed25519" | "passkey";

export interface VoteRecord {
  proposalId: string;
  officerId: string;
  decision: Decision;
  digest: string;
  /**
   * Ed25519: the signature, base64. Passkey: base64 of the JSON evidence (credential id,
   * nonce, authenticator data, client data, signature) that re-verifies offline.
   */
  signature: string;
  at: string;
  /** Defaults to "ed25519" (votes cast before passkeys existed). */
  credentialKind?: CredentialKind;
  /** The passkey's credential id (base64url), for passkey votes. */
  credentialId?: string;
}

/**
 * An officer's WebAuthn passkey, usable once an `add_credential` proposal executed. Only the
 * public key is held; the private key stays in the officer's authenticator.
 */
export interface PasskeyRecord {
  /** Credential id, base64url. */
  id: string;
  officerId: string;
  /** COSE public key, base64url. */
  publicKey: string;
  /** Last signature counter seen; a later assertion must exceed it (unless both are 0). */
  counter: number;
  transports: string[];
  aaguid: string;
  label: string;
  createdAt: string;
  lastUsedAt: string | null;
}
