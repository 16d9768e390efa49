import type { GovernanceRecord, OfficerRecord, PasskeyRecord, ProposalRecord, ProposalState, VoteRecord } from "../governance/model.js";
import type { KeyRecord, KeyVersionRecord, KeyWithVersions } from "../keys/model.js";
import type { ClientRecord } from "../signing/clients.js";

/** One stored audit event: its canonical JSON body and its place in the hash chain. */
export interface StoredAuditEvent {
  seq: number;
  body: string;
  prevHash: string;
  hash: string;
}

/** A signed checkpoint of the audit chain's head, as stored. */
export interface StoredCheckpoint {
  seq: number;
  hash: string;
  at: string;
  /** "sha256:" + hex SHA-256 of the checkpoint key's DER SPKI. */
  keyFingerprint: string;
  /** Base64 ECDSA P-256 signature (r‖s). */
  signature: string;
}

/**
 * Marks a proposal executed (its envelope deleted) in the same transaction as the change it
 * made: a change is never applied twice, nor a proposal marked done without its change.
 */
export interface ProposalDone {
  proposalId: string;
  at: string;
}

/** At most `max` outstanding challenges whose key starts with `prefix`. */
export interface ChallengeLimit {
  prefix: string;
  max: number;
}

/** An officer console session as stored: keyed by the SHA-256 of its id, never the id. */
export interface StoredConsoleSession {
  idHash: string;
  officerId: string;
  scope: "officer" | "enroll";
  /** The CSRF token bound to the session. */
  csrf: string;
  credentialId: string | null;
  createdAt: string;
  expiresAt: string;
}

/** A freeze (who froze is in the audit log), or null to thaw. */
export type Freeze = { at: string; reason: string } | null;

/**
 * Persistent state. Narrow on purpose: a PostgreSQL implementation follows, and the
 * domain never sees SQL. Every method is synchronous-looking async so both fit.
 */
export interface Store {
  listKeys(): Promise<KeyWithVersions[]>;
  getKey(id: string): Promise<KeyWithVersions | undefined>;
  /**
   * Creates a key, its first version and its grants in one transaction; KEY_EXISTS if the id
   * is taken.
   */
  createKey(key: KeyRecord, first: KeyVersionRecord, grants?: readonly string[], done?: ProposalDone): Promise<void>;
  /**
   * Adds `next` as the active version; the version active until now becomes `retiring` until
   * `retireAt`. One transaction.
   */
  rotateKey(keyId: string, next: KeyVersionRecord, retireAt: string, done?: ProposalDone): Promise<void>;
  /** Adds `next` (state `pending`: it does not sign) beside the active version. */
  addPendingVersion(next: KeyVersionRecord, done?: ProposalDone): Promise<void>;
  /**
   * The pending `version` becomes active with its exchange API key id; the version active until
   * now becomes `retiring` until `retireAt`. One transaction.
   */
  activatePendingVersion(keyId: string, version: number, apiKeyId: string, at: string, retireAt: string, done?: ProposalDone): Promise<void>;
  updateVersionState(keyId: string, version: number, state: KeyVersionRecord["state"], activatedAt?: string, done?: ProposalDone): Promise<void>;
  setKeyFrozen(keyId: string, freeze: Freeze, done?: ProposalDone): Promise<void>;
  /** The exchange API key id of the key and of its active version. */
  setApiKeyId(keyId: string, apiKeyId: string, done?: ProposalDone): Promise<void>;
  setPolicy(keyId: string, policyJson: string, at: string, done?: ProposalDone): Promise<void>;
  getPolicy(keyId: string): Promise<string | undefined>;

  listClients(): Promise<ClientRecord[]>;
  getClient(identity: string): Promise<ClientRecord | undefined>;
  /** Adds a client, or updates name/role/CIDRs/can-freeze of an existing one. */
  upsertClient(client: ClientRecord): Promise<void>;
  addGrant(identity: string, keyId: string): Promise<void>;
  /** Creates or updates a client and replaces its grants, in one transaction. */
  setClientAccess(client: ClientRecord, keyIds: readonly string[], done?: ProposalDone): Promise<void>;
  setClientFrozen(identity: string, freeze: Freeze, done?: ProposalDone): Promise<void>;
  /** identity → key ids it may sign with. */
  listGrants(): Promise<Map<string, Set<string>>>;

  getGovernance(): Promise<GovernanceRecord | undefined>;
  /** The first officer set and threshold; GOVERNANCE_EXISTS if already initialised. */
  initGovernance(threshold: number, officers: readonly OfficerRecord[], at: string): Promise<void>;
  setThreshold(threshold: number, done?: ProposalDone): Promise<void>;
  listOfficers(): Promise<OfficerRecord[]>;
  addOfficer(officer: OfficerRecord, done?: ProposalDone): Promise<void>;
  setOfficerStatus(id: string, status: OfficerRecord["status"], done?: ProposalDone): Promise<void>;

  /** An officer's passkeys (all officers' when `officerId` is omitted). */
  listPasskeys(officerId?: string): Promise<PasskeyRecord[]>;
  getPasskey(credentialId: string): Promise<PasskeyRecord | undefined>;
  /** Registers a passkey (the executed add_credential proposal); PRECONDITION_FAILED if the id is taken. */
  addPasskey(passkey: PasskeyRecord, done?: ProposalDone): Promise<void>;
  /**
   * Records a verified use: the counter only moves forward. Returns false (nothing written) if
   * the stored counter is already at or past `counter` and either is non-zero (a cloned
   * authenticator or a replay raced this one).
   */
  recordPasskeyUse(credentialId: string, counter: number, at: string): Promise<boolean>;
  /** Deletes a passkey (the executed remove_credential proposal); PRECONDITION_FAILED if absent. */
  removePasskey(credentialId: string, done?: ProposalDone): Promise<void>;

  createProposal(p: ProposalRecord): Promise<void>;
  getProposal(id: string): Promise<ProposalRecord | undefined>;
  listProposals(state?: ProposalState): Promise<ProposalRecord[]>;
  /**
   * Moves a proposal on. Leaving `pending`/`executing` for a final state other than executed
   * deletes its envelope too. Returns false if the proposal was not in `from` (a concurrent
   * change won).
   */
  updateProposal(id: string, from: ProposalState, patch: { state?: ProposalState; step?: string; failure?: string; executedAt?: string }): Promise<boolean>;
  /** Inserts a vote; an identical officer + decision is kept as first cast (idempotent). */
  addVote(vote: VoteRecord): Promise<void>;
  listVotes(proposalId: string): Promise<VoteRecord[]>;

  /**
   * Spends a single-use token (an enrollment token's nonce) until `expiresAt`: true the first
   * time, false if it was already spent. Forgets tokens that expired before `now`.
   */
  spendToken(token: string, expiresAt: string, now: string): Promise<boolean>;
  /**
   * Stores a console session unless `maxLive` unexpired ones exist (false then); forgets the
   * ones expired before `now`.
   */
  putConsoleSession(session: StoredConsoleSession, maxLive: number, now: string): Promise<boolean>;
  /**
   * Stores an outstanding WebAuthn challenge (or approval nonce) and what it is bound to,
   * unless, for one of `limits`, `max` unexpired ones whose key starts with its `prefix`
   * exist already (false then): one pool per kind, and per source for anonymous ones.
   */
  putChallenge(challenge: string, value: string, expiresAt: string, limits: readonly ChallengeLimit[], now: string): Promise<boolean>;
  /** Removes a challenge and returns its value, or undefined if absent or expired (single use). */
  takeChallenge(challenge: string, now: string): Promise<string | undefined>;
  getConsoleSession(idHash: string): Promise<StoredConsoleSession | undefined>;
  deleteConsoleSession(idHash: string): Promise<void>;

  appendAudit(events: StoredAuditEvent[]): Promise<void>;
  lastAudit(): Promise<StoredAuditEvent | undefined>;
  /** Events with seq > afterSeq, in order, at most `limit`. */
  readAudit(afterSeq: number, limit: number): Promise<StoredAuditEvent[]>;
  /** How many events have seq ≤ `maxSeq` (a gap-free chain has exactly `maxSeq`). */
  countAudit(maxSeq: number): Promise<number>;
  appendCheckpoint(checkpoint: StoredCheckpoint): Promise<void>;
  /** Every stored checkpoint, oldest first (by signing time). */
  listCheckpoints(): Promise<StoredCheckpoint[]>;

  close(): Promise<void>;
}
