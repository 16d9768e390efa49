import type { GovernanceRecord, OfficerRecord, PasskeyRecord, ProposalRecord, ProposalState, VoteRecord } from "../governance/model.js";
import type { ExchangePermissionVerdict, KeyRecord, KeyVersionRecord, KeyWithVersions } from "../keys/model.js";
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

/** Keys, their versions and their policies. */
export interface KeyTable {
  listKeys(): Promise<KeyWithVersions[]>;
  getKey(id: string): Promise<KeyWithVersions | undefined>;
  /** Creates a key and its first version; KEY_EXISTS if the id is taken. */
  createKey(key: KeyRecord, first: KeyVersionRecord): Promise<void>;
  /** Adds `next` as the active version; the version active until now becomes `retiring` until `retireAt`. */
  rotateKey(keyId: string, next: KeyVersionRecord, retireAt: string): Promise<void>;
  /** Adds `next` (state `pending`: it does not sign) beside the active version. */
  addPendingVersion(next: KeyVersionRecord): Promise<void>;
  /**
   * The pending `version` becomes active with its exchange API key id; the version active until
   * now becomes `retiring` until `retireAt`. PRECONDITION_FAILED if there is no such pending version.
   */
  activatePendingVersion(keyId: string, version: number, apiKeyId: string, at: string, retireAt: string): Promise<void>;
  updateVersionState(keyId: string, version: number, state: KeyVersionRecord["state"], activatedAt?: string): Promise<void>;
  /** KEY_NOT_FOUND if there is no such key. */
  setKeyFrozen(keyId: string, freeze: Freeze): Promise<void>;
  /** The last exchange-side permission check's verdict, shared by every replica; KEY_NOT_FOUND if there is no such key. */
  setExchangePermissions(keyId: string, verdict: ExchangePermissionVerdict): Promise<void>;
  /** The exchange API key id of the key and of its active version; KEY_NOT_FOUND if there is no such key. */
  setApiKeyId(keyId: string, apiKeyId: string): Promise<void>;
  setPolicy(keyId: string, policyJson: string, at: string): Promise<void>;
  getPolicy(keyId: string): Promise<string | undefined>;
}

/** Trading clients (and bootstrap administrators) and their grants. */
export interface ClientTable {
  listClients(): Promise<ClientRecord[]>;
  getClient(identity: string): Promise<ClientRecord | undefined>;
  /** Adds a client, or updates name/role/CIDRs/can-freeze of an existing one. */
  upsertClient(client: ClientRecord): Promise<void>;
  addGrant(identity: string, keyId: string): Promise<void>;
  /** Creates or updates a client and replaces its grants. */
  setClientAccess(client: ClientRecord, keyIds: readonly string[]): Promise<void>;
  /** UNKNOWN_CLIENT if there is no such client. */
  setClientFrozen(identity: string, freeze: Freeze): Promise<void>;
  /** identity → key ids it may sign with. */
  listGrants(): Promise<Map<string, Set<string>>>;
}

/** The partial update `GovernanceTable.updateProposal` applies. */
export interface ProposalPatch {
  state?: ProposalState;
  step?: string;
  failure?: string;
  executedAt?: string;
}

/** The threshold, officers and their passkeys, proposals and votes. */
export interface GovernanceTable {
  getGovernance(): Promise<GovernanceRecord | undefined>;
  /** The first officer set and threshold; GOVERNANCE_EXISTS if already initialised. */
  initGovernance(threshold: number, officers: readonly OfficerRecord[], at: string): Promise<void>;
  setThreshold(threshold: number): Promise<void>;
  listOfficers(): Promise<OfficerRecord[]>;
  /** PRECONDITION_FAILED if the id or the certificate identity is taken. */
  addOfficer(officer: OfficerRecord): Promise<void>;
  setOfficerStatus(id: string, status: OfficerRecord["status"]): Promise<void>;

  /** An officer's passkeys (all officers' when `officerId` is omitted). */
  listPasskeys(officerId?: string): Promise<PasskeyRecord[]>;
  getPasskey(credentialId: string): Promise<PasskeyRecord | undefined>;
  /** Registers a passkey; PRECONDITION_FAILED if the id is taken. */
  addPasskey(passkey: PasskeyRecord): Promise<void>;
  /**
   * Records a verified use: the counter only moves forward. Returns false (nothing written) if
   * the stored counter is already at or past `counter` and either is non-zero (a cloned
   * authenticator or a replay raced this one).
   */
  recordPasskeyUse(credentialId: string, counter: number, at: string): Promise<boolean>;
  /** Deletes a passkey; PRECONDITION_FAILED if absent. */
  removePasskey(credentialId: string): Promise<void>;

  createProposal(p: ProposalRecord): Promise<void>;
  getProposal(id: string): Promise<ProposalRecord | undefined>;
  listProposals(state?: ProposalState): Promise<ProposalRecord[]>;
  /**
   * Moves a proposal on. Leaving `pending`/`executing` for a final state other than executed
   * deletes its envelope too. Returns false if the proposal was not in `from` (a concurrent
   * change won).
   */
  updateProposal(id: string, from: ProposalState, patch: ProposalPatch): Promise<boolean>;
  /**
   * An executing proposal becomes executed at `at` (step "done", envelope deleted). Called in the
   * transaction that records the proposal's change, so neither commits without the other;
   * PRECONDITION_FAILED (the transaction rolls back) if it is not executing any more.
   */
  markExecuted(id: string, at: string): Promise<void>;
  /** Inserts a vote; an identical officer + decision is kept as first cast (idempotent). */
  addVote(vote: VoteRecord): Promise<void>;
  listVotes(proposalId: string): Promise<VoteRecord[]>;
}

/** The officer console's state: sessions, outstanding WebAuthn challenges, spent single-use tokens. */
export interface ConsoleTable {
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
}

/** The audit hash chain's events and its signed checkpoints. */
export interface AuditTable {
  /** Stores rows as they are (their seq and hashes already computed): a migration's copy, a test's chain. */
  appendAudit(events: StoredAuditEvent[]): Promise<void>;
  /**
   * Continues the chain from its stored head: in one transaction, takes the chain's lock, reads
   * the head (undefined while the chain is empty), has `link` turn what waits into the rows that
   * follow it, and inserts them. Every writer — each replica's, on PostgreSQL — appends this
   * way, so all of them extend one chain; unique seq and prev_hash refuse a fork even so.
   * Returns the rows written (`link`'s).
   */
  appendChained(link: (head: StoredAuditEvent | undefined) => StoredAuditEvent[]): Promise<StoredAuditEvent[]>;
  lastAudit(): Promise<StoredAuditEvent | undefined>;
  /** Events with seq > afterSeq, in order, at most `limit`. */
  readAudit(afterSeq: number, limit: number): Promise<StoredAuditEvent[]>;
  /** How many events have seq ≤ `maxSeq` (a gap-free chain has exactly `maxSeq`). */
  countAudit(maxSeq: number): Promise<number>;
  appendCheckpoint(checkpoint: StoredCheckpoint): Promise<void>;
  /** Every stored checkpoint, oldest first (by signing time). */
  listCheckpoints(): Promise<StoredCheckpoint[]>;
}

/** The aggregates, as a transaction sees them and as the store hands them out between transactions. */
export interface StoreTables {
  readonly keys: KeyTable;
  readonly clients: ClientTable;
  readonly governance: GovernanceTable;
  readonly console: ConsoleTable;
  readonly audit: AuditTable;
}

/** The part of the store a consumer uses, e.g. `StoreSlice<"audit">`: a whole Store fits every slice. */
export type StoreSlice<K extends keyof StoreTables> = Pick<StoreTables, K>;

/**
 * Persistent state: per-aggregate tables plus `transaction()`. The domain never sees SQL, and
 * every method is async so a PostgreSQL implementation fits the same interface (and passes the
 * same contract suite, test/unit/store-contract.test.ts). Each single method call is atomic
 * on its own; several calls that must commit together go in one `transaction()`.
 */
export interface Store extends StoreTables {
  /**
   * Runs `fn` with transaction-scoped tables: everything they write commits when `fn`'s promise
   * resolves and rolls back when it rejects (the rejection is rethrown). Nothing outside the
   * transaction interleaves with it. `fn` must use only `tx` (calling the store itself from
   * inside would wait for the transaction to end) and must not wait on anything slow — no HSM,
   * no audit record: do those before or after.
   */
  transaction<T>(fn: (tx: StoreTables) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
