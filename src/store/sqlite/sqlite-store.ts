import Database from "better-sqlite3";
import { CustosError } from "../../errors.js";
import type { GovernanceRecord, OfficerRecord, PasskeyRecord, ProposalRecord, ProposalState, VoteRecord } from "../../governance/model.js";
import type { KeyRecord, KeyVersionRecord, KeyWithVersions } from "../../keys/model.js";
import type { ClientRecord } from "../../signing/clients.js";
import type { ChallengeLimit, Freeze, ProposalDone, Store, StoredAuditEvent, StoredCheckpoint, StoredConsoleSession } from "../store.js";
import { SqliteAuditTable } from "./audit-table.js";
import { SqliteClientTables } from "./client-tables.js";
import { SqliteConsoleTables } from "./console-tables.js";
import { SqliteGovernanceTables } from "./governance-tables.js";
import { SqliteKeyTables } from "./key-tables.js";
import { MIGRATIONS } from "./migrations.js";
import { ensurePrivateFile, restrictExisting } from "../../private-file.js";

/**
 * The embedded default store: one SQLite file in WAL mode. Opens and migrates the database,
 * then hands each aggregate to its table class; all of them share this one connection, so
 * each write is one transaction with its proposal's "executed" mark.
 */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly keys: SqliteKeyTables;
  private readonly clients: SqliteClientTables;
  private readonly governance: SqliteGovernanceTables;
  private readonly audit: SqliteAuditTable;
  private readonly console: SqliteConsoleTables;

  constructor(path: string, opts: { readonly?: boolean } = {}) {
    if (!opts.readonly && path !== ":memory:" && path !== "") {
      // Owner-only before SQLite writes a byte: SQLite gives the -wal and -shm files it creates
      // the database file's mode, and files an older release left readable are narrowed here.
      try {
        ensurePrivateFile(path);
        restrictExisting([`${path}-wal`, `${path}-shm`, `${path}-journal`]);
      } catch (e) {
        throw new CustosError("STORE_ERROR", `cannot create database ${path} owner-only`, { cause: e });
      }
    }
    try {
      this.db = new Database(path, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
    } catch (e) {
      throw new CustosError("STORE_ERROR", `cannot open database ${path}`, { cause: e });
    }
    if (!opts.readonly) {
      this.db.pragma("journal_mode = WAL");
      this.db.pragma("synchronous = NORMAL");
      this.db.pragma("foreign_keys = ON");
      this.migrate();
    }
    this.db.pragma("busy_timeout = 5000");
    this.keys = new SqliteKeyTables(this.db);
    this.clients = new SqliteClientTables(this.db);
    this.governance = new SqliteGovernanceTables(this.db);
    this.audit = new SqliteAuditTable(this.db);
    this.console = new SqliteConsoleTables(this.db);
  }

  /** Applies every migration newer than the schema's user_version, each in a transaction. */
  private migrate(): void {
    const current = this.db.pragma("user_version", { simple: true }) as number;
    for (let v = current; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  // ---- keys, versions, policies ----------------------------------------------------------

  listKeys(): Promise<KeyWithVersions[]> {
    return this.keys.listKeys();
  }

  getKey(id: string): Promise<KeyWithVersions | undefined> {
    return this.keys.getKey(id);
  }

  createKey(key: KeyRecord, first: KeyVersionRecord, grants?: readonly string[], done?: ProposalDone): Promise<void> {
    return this.keys.createKey(key, first, grants, done);
  }

  rotateKey(keyId: string, next: KeyVersionRecord, retireAt: string, done?: ProposalDone): Promise<void> {
    return this.keys.rotateKey(keyId, next, retireAt, done);
  }

  addPendingVersion(next: KeyVersionRecord, done?: ProposalDone): Promise<void> {
    return this.keys.addPendingVersion(next, done);
  }

  activatePendingVersion(keyId: string, version: number, apiKeyId: string, at: string, retireAt: string, done?: ProposalDone): Promise<void> {
    return this.keys.activatePendingVersion(keyId, version, apiKeyId, at, retireAt, done);
  }

  updateVersionState(keyId: string, version: number, state: KeyVersionRecord["state"], activatedAt?: string, done?: ProposalDone): Promise<void> {
    return this.keys.updateVersionState(keyId, version, state, activatedAt, done);
  }

  setKeyFrozen(keyId: string, freeze: Freeze, done?: ProposalDone): Promise<void> {
    return this.keys.setKeyFrozen(keyId, freeze, done);
  }

  setApiKeyId(keyId: string, apiKeyId: string, done?: ProposalDone): Promise<void> {
    return this.keys.setApiKeyId(keyId, apiKeyId, done);
  }

  setPolicy(keyId: string, policyJson: string, at: string, done?: ProposalDone): Promise<void> {
    return this.keys.setPolicy(keyId, policyJson, at, done);
  }

  getPolicy(keyId: string): Promise<string | undefined> {
    return this.keys.getPolicy(keyId);
  }

  // ---- clients and grants ----------------------------------------------------------------

  listClients(): Promise<ClientRecord[]> {
    return this.clients.listClients();
  }

  getClient(identity: string): Promise<ClientRecord | undefined> {
    return this.clients.getClient(identity);
  }

  upsertClient(c: ClientRecord): Promise<void> {
    return this.clients.upsertClient(c);
  }

  addGrant(identity: string, keyId: string): Promise<void> {
    return this.clients.addGrant(identity, keyId);
  }

  setClientAccess(client: ClientRecord, keyIds: readonly string[], done?: ProposalDone): Promise<void> {
    return this.clients.setClientAccess(client, keyIds, done);
  }

  setClientFrozen(identity: string, freeze: Freeze, done?: ProposalDone): Promise<void> {
    return this.clients.setClientFrozen(identity, freeze, done);
  }

  listGrants(): Promise<Map<string, Set<string>>> {
    return this.clients.listGrants();
  }

  // ---- governance: threshold, officers, passkeys, proposals, votes -----------------------

  getGovernance(): Promise<GovernanceRecord | undefined> {
    return this.governance.getGovernance();
  }

  initGovernance(threshold: number, officers: readonly OfficerRecord[], at: string): Promise<void> {
    return this.governance.initGovernance(threshold, officers, at);
  }

  setThreshold(threshold: number, done?: ProposalDone): Promise<void> {
    return this.governance.setThreshold(threshold, done);
  }

  listOfficers(): Promise<OfficerRecord[]> {
    return this.governance.listOfficers();
  }

  addOfficer(officer: OfficerRecord, done?: ProposalDone): Promise<void> {
    return this.governance.addOfficer(officer, done);
  }

  setOfficerStatus(id: string, status: OfficerRecord["status"], done?: ProposalDone): Promise<void> {
    return this.governance.setOfficerStatus(id, status, done);
  }

  listPasskeys(officerId?: string): Promise<PasskeyRecord[]> {
    return this.governance.listPasskeys(officerId);
  }

  getPasskey(credentialId: string): Promise<PasskeyRecord | undefined> {
    return this.governance.getPasskey(credentialId);
  }

  addPasskey(k: PasskeyRecord, done?: ProposalDone): Promise<void> {
    return this.governance.addPasskey(k, done);
  }

  removePasskey(credentialId: string, done?: ProposalDone): Promise<void> {
    return this.governance.removePasskey(credentialId, done);
  }

  recordPasskeyUse(credentialId: string, counter: number, at: string): Promise<boolean> {
    return this.governance.recordPasskeyUse(credentialId, counter, at);
  }

  createProposal(p: ProposalRecord): Promise<void> {
    return this.governance.createProposal(p);
  }

  getProposal(id: string): Promise<ProposalRecord | undefined> {
    return this.governance.getProposal(id);
  }

  listProposals(state?: ProposalState): Promise<ProposalRecord[]> {
    return this.governance.listProposals(state);
  }

  updateProposal(id: string, from: ProposalState, patch: { state?: ProposalState; step?: string; failure?: string; executedAt?: string }): Promise<boolean> {
    return this.governance.updateProposal(id, from, patch);
  }

  addVote(v: VoteRecord): Promise<void> {
    return this.governance.addVote(v);
  }

  listVotes(proposalId: string): Promise<VoteRecord[]> {
    return this.governance.listVotes(proposalId);
  }

  // ---- officer console state -------------------------------------------------------------

  spendToken(token: string, expiresAt: string, now: string): Promise<boolean> {
    return this.console.spendToken(token, expiresAt, now);
  }

  putConsoleSession(session: StoredConsoleSession, maxLive: number, now: string): Promise<boolean> {
    return this.console.putConsoleSession(session, maxLive, now);
  }

  putChallenge(challenge: string, value: string, expiresAt: string, limits: readonly ChallengeLimit[], now: string): Promise<boolean> {
    return this.console.putChallenge(challenge, value, expiresAt, limits, now);
  }

  takeChallenge(challenge: string, now: string): Promise<string | undefined> {
    return this.console.takeChallenge(challenge, now);
  }

  getConsoleSession(idHash: string): Promise<StoredConsoleSession | undefined> {
    return this.console.getConsoleSession(idHash);
  }

  deleteConsoleSession(idHash: string): Promise<void> {
    return this.console.deleteConsoleSession(idHash);
  }

  // ---- audit events ----------------------------------------------------------------------

  appendAudit(events: StoredAuditEvent[]): Promise<void> {
    return this.audit.appendAudit(events);
  }

  lastAudit(): Promise<StoredAuditEvent | undefined> {
    return this.audit.lastAudit();
  }

  readAudit(afterSeq: number, limit: number): Promise<StoredAuditEvent[]> {
    return this.audit.readAudit(afterSeq, limit);
  }

  countAudit(maxSeq: number): Promise<number> {
    return this.audit.countAudit(maxSeq);
  }

  appendCheckpoint(checkpoint: StoredCheckpoint): Promise<void> {
    return this.audit.appendCheckpoint(checkpoint);
  }

  listCheckpoints(): Promise<StoredCheckpoint[]> {
    return this.audit.listCheckpoints();
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
