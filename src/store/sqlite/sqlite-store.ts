import Database from "better-sqlite3";
import { CustosError } from "../../errors.js";
import type { GovernanceRecord, OfficerRecord, PasskeyRecord, ProposalRecord, ProposalState, VoteRecord } from "../../governance/model.js";
import type { KeyRecord, KeyVersionRecord, KeyWithVersions } from "../../keys/model.js";
import type { ClientRecord } from "../../signing/clients.js";
import type { Freeze, ProposalDone, Store, StoredAuditEvent } from "../store.js";
import { MIGRATIONS } from "./migrations.js";

type Row = Record<string, unknown>;

/** The embedded default store: one SQLite file in WAL mode. */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly insertAudit: Database.Statement;

  constructor(path: string, opts: { readonly?: boolean } = {}) {
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
    this.insertAudit = this.db.prepare("INSERT INTO audit_events (seq, body, prev_hash, hash) VALUES (?, ?, ?, ?)");
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

  async listKeys(): Promise<KeyWithVersions[]> {
    const keys = this.db.prepare("SELECT * FROM keys ORDER BY id").all() as Row[];
    const versions = this.db.prepare("SELECT * FROM key_versions ORDER BY key_id, version").all() as Row[];
    return keys.map((k) => ({ ...toKey(k), versions: versions.filter((v) => v.key_id === k.id).map(toVersion) }));
  }

  async getKey(id: string): Promise<KeyWithVersions | undefined> {
    const k = this.db.prepare("SELECT * FROM keys WHERE id = ?").get(id) as Row | undefined;
    if (!k) return undefined;
    const versions = this.db.prepare("SELECT * FROM key_versions WHERE key_id = ? ORDER BY version").all(id) as Row[];
    return { ...toKey(k), versions: versions.map(toVersion) };
  }

  async createKey(key: KeyRecord, first: KeyVersionRecord, grants: readonly string[] = [], done?: ProposalDone): Promise<void> {
    this.write(() => {
      if (this.db.prepare("SELECT 1 FROM keys WHERE id = ?").get(key.id)) {
        throw new CustosError("KEY_EXISTS", `key ${key.id} already exists`);
      }
      this.db
        .prepare(
          "INSERT INTO keys (id, exchange, environment, label, api_key_id, algorithm, max_age_days, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .run(key.id, key.exchange, key.environment, key.label, key.apiKeyId, key.algorithm, key.maxAgeDays, key.createdAt);
      this.insertVersion(first);
      for (const identity of grants) this.db.prepare("INSERT INTO grants (identity, key_id) VALUES (?, ?) ON CONFLICT DO NOTHING").run(identity, key.id);
      this.markDone(done);
    });
  }

  async rotateKey(keyId: string, next: KeyVersionRecord, retireAt: string, done?: ProposalDone): Promise<void> {
    this.write(() => {
      this.db.prepare("UPDATE key_versions SET state = 'retiring', retire_at = ? WHERE key_id = ? AND state = 'active'").run(retireAt, keyId);
      this.insertVersion(next);
      this.markDone(done);
    });
  }

  async addPendingVersion(next: KeyVersionRecord, done?: ProposalDone): Promise<void> {
    if (next.state !== "pending") throw new CustosError("INTERNAL", "addPendingVersion takes a pending version (this is a bug)");
    this.write(() => {
      this.insertVersion(next);
      this.markDone(done);
    });
  }

  async activatePendingVersion(keyId: string, version: number, apiKeyId: string, at: string, retireAt: string, done?: ProposalDone): Promise<void> {
    this.write(() => {
      const pending = this.db.prepare("SELECT 1 FROM key_versions WHERE key_id = ? AND version = ? AND state = 'pending'").get(keyId, version);
      if (!pending) throw new CustosError("PRECONDITION_FAILED", `key ${keyId} has no pending version ${version}`);
      this.db.prepare("UPDATE key_versions SET state = 'retiring', retire_at = ? WHERE key_id = ? AND state = 'active'").run(retireAt, keyId);
      this.db.prepare("UPDATE key_versions SET state = 'active', activated_at = ?, api_key_id = ? WHERE key_id = ? AND version = ?").run(at, apiKeyId, keyId, version);
      this.markDone(done);
    });
  }

  async updateVersionState(keyId: string, version: number, state: KeyVersionRecord["state"], activatedAt?: string, done?: ProposalDone): Promise<void> {
    this.write(() => {
      this.db
        .prepare("UPDATE key_versions SET state = ?, activated_at = COALESCE(?, activated_at) WHERE key_id = ? AND version = ?")
        .run(state, activatedAt ?? null, keyId, version);
      this.markDone(done);
    });
  }

  async setKeyFrozen(keyId: string, freeze: Freeze, done?: ProposalDone): Promise<void> {
    this.write(() => {
      const r = this.db.prepare("UPDATE keys SET frozen_at = ?, frozen_reason = ? WHERE id = ?").run(freeze?.at ?? null, freeze?.reason ?? null, keyId);
      if (r.changes === 0) throw new CustosError("KEY_NOT_FOUND", `no key ${keyId}`);
      this.markDone(done);
    });
  }

  async setApiKeyId(keyId: string, apiKeyId: string, done?: ProposalDone): Promise<void> {
    this.write(() => {
      const r = this.db.prepare("UPDATE keys SET api_key_id = ? WHERE id = ?").run(apiKeyId, keyId);
      if (r.changes === 0) throw new CustosError("KEY_NOT_FOUND", `no key ${keyId}`);
      this.db.prepare("UPDATE key_versions SET api_key_id = ? WHERE key_id = ? AND state = 'active'").run(apiKeyId, keyId);
      this.markDone(done);
    });
  }

  async setPolicy(keyId: string, policyJson: string, at: string, done?: ProposalDone): Promise<void> {
    this.write(() => {
      this.db
        .prepare("INSERT INTO key_policies (key_id, policy, updated_at) VALUES (?, ?, ?) ON CONFLICT (key_id) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at")
        .run(keyId, policyJson, at);
      this.markDone(done);
    });
  }

  async getPolicy(keyId: string): Promise<string | undefined> {
    const row = this.db.prepare("SELECT policy FROM key_policies WHERE key_id = ?").get(keyId) as Row | undefined;
    return row ? (row.policy as string) : undefined;
  }

  async listClients(): Promise<ClientRecord[]> {
    return (this.db.prepare("SELECT * FROM clients ORDER BY identity").all() as Row[]).map(toClient);
  }

  async getClient(identity: string): Promise<ClientRecord | undefined> {
    const row = this.db.prepare("SELECT * FROM clients WHERE identity = ?").get(identity) as Row | undefined;
    return row ? toClient(row) : undefined;
  }

  async upsertClient(c: ClientRecord): Promise<void> {
    this.write(() => this.upsertClientRow(c));
  }

  async addGrant(identity: string, keyId: string): Promise<void> {
    this.write(() => {
      this.db.prepare("INSERT INTO grants (identity, key_id) VALUES (?, ?) ON CONFLICT DO NOTHING").run(identity, keyId);
    });
  }

  async setClientAccess(client: ClientRecord, keyIds: readonly string[], done?: ProposalDone): Promise<void> {
    this.write(() => {
      this.upsertClientRow(client);
      this.db.prepare("DELETE FROM grants WHERE identity = ?").run(client.identity);
      for (const keyId of keyIds) this.db.prepare("INSERT INTO grants (identity, key_id) VALUES (?, ?)").run(client.identity, keyId);
      this.markDone(done);
    });
  }

  async setClientFrozen(identity: string, freeze: Freeze, done?: ProposalDone): Promise<void> {
    this.write(() => {
      const r = this.db.prepare("UPDATE clients SET frozen_at = ?, frozen_reason = ? WHERE identity = ?").run(freeze?.at ?? null, freeze?.reason ?? null, identity);
      if (r.changes === 0) throw new CustosError("UNKNOWN_CLIENT", `no client ${identity}`);
      this.markDone(done);
    });
  }

  async listGrants(): Promise<Map<string, Set<string>>> {
    const out = new Map<string, Set<string>>();
    for (const r of this.db.prepare("SELECT identity, key_id FROM grants").all() as Row[]) {
      const set = out.get(r.identity as string) ?? new Set<string>();
      set.add(r.key_id as string);
      out.set(r.identity as string, set);
    }
    return out;
  }

  async appendAudit(events: StoredAuditEvent[]): Promise<void> {
    this.write(() => {
      for (const e of events) this.insertAudit.run(e.seq, e.body, e.prevHash, e.hash);
    });
  }

  async lastAudit(): Promise<StoredAuditEvent | undefined> {
    const row = this.db.prepare("SELECT * FROM audit_events ORDER BY seq DESC LIMIT 1").get() as Row | undefined;
    return row ? toAudit(row) : undefined;
  }

  async readAudit(afterSeq: number, limit: number): Promise<StoredAuditEvent[]> {
    return (this.db.prepare("SELECT * FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?").all(afterSeq, limit) as Row[]).map(toAudit);
  }

  async getGovernance(): Promise<GovernanceRecord | undefined> {
    const row = this.db.prepare("SELECT * FROM governance WHERE id = 1").get() as Row | undefined;
    return row ? { threshold: row.threshold as number, initialisedAt: row.initialised_at as string } : undefined;
  }

  async initGovernance(threshold: number, officers: readonly OfficerRecord[], at: string): Promise<void> {
    this.write(() => {
      if (this.db.prepare("SELECT 1 FROM governance WHERE id = 1").get()) throw new CustosError("GOVERNANCE_EXISTS", "governance is already initialised");
      for (const o of officers) this.insertOfficer(o);
      this.db.prepare("INSERT INTO governance (id, threshold, initialised_at) VALUES (1, ?, ?)").run(threshold, at);
    });
  }

  async setThreshold(threshold: number, done?: ProposalDone): Promise<void> {
    this.write(() => {
      this.db.prepare("UPDATE governance SET threshold = ? WHERE id = 1").run(threshold);
      this.markDone(done);
    });
  }

  async listOfficers(): Promise<OfficerRecord[]> {
    return (this.db.prepare("SELECT * FROM officers ORDER BY id").all() as Row[]).map(toOfficer);
  }

  async addOfficer(officer: OfficerRecord, done?: ProposalDone): Promise<void> {
    this.write(() => {
      this.insertOfficer(officer);
      this.markDone(done);
    });
  }

  async setOfficerStatus(id: string, status: OfficerRecord["status"], done?: ProposalDone): Promise<void> {
    this.write(() => {
      this.db.prepare("UPDATE officers SET status = ? WHERE id = ?").run(status, id);
      this.markDone(done);
    });
  }

  async createProposal(p: ProposalRecord): Promise<void> {
    this.write(() => {
      this.db
        .prepare(
          `INSERT INTO proposals (id, kind, target, canonical, digest, proposer, state, step, envelope, created_at, expires_at, executed_at, failure)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(p.id, p.kind, p.target, p.canonical, p.digest, p.proposer, p.state, p.step, p.envelope, p.createdAt, p.expiresAt, p.executedAt, p.failure);
    });
  }

  async getProposal(id: string): Promise<ProposalRecord | undefined> {
    const row = this.db.prepare("SELECT * FROM proposals WHERE id = ?").get(id) as Row | undefined;
    return row ? toProposal(row) : undefined;
  }

  async listProposals(state?: ProposalState): Promise<ProposalRecord[]> {
    const rows = state
      ? (this.db.prepare("SELECT * FROM proposals WHERE state = ? ORDER BY created_at, id").all(state) as Row[])
      : (this.db.prepare("SELECT * FROM proposals ORDER BY created_at, id").all() as Row[]);
    return rows.map(toProposal);
  }

  async updateProposal(id: string, from: ProposalState, patch: { state?: ProposalState; step?: string; failure?: string; executedAt?: string }): Promise<boolean> {
    let changed = false;
    this.write(() => {
      const final = patch.state !== undefined && patch.state !== "pending" && patch.state !== "executing";
      const r = this.db
        .prepare(
          `UPDATE proposals SET state = COALESCE(?, state), step = COALESCE(?, step), failure = COALESCE(?, failure),
             executed_at = COALESCE(?, executed_at), envelope = CASE WHEN ? THEN NULL ELSE envelope END
           WHERE id = ? AND state = ?`,
        )
        .run(patch.state ?? null, patch.step ?? null, patch.failure ?? null, patch.executedAt ?? null, final ? 1 : 0, id, from);
      changed = r.changes === 1;
    });
    return changed;
  }

  async addVote(v: VoteRecord): Promise<void> {
    this.write(() => {
      this.db
        .prepare("INSERT INTO votes (proposal_id, officer_id, decision, digest, signature, at, credential_kind, credential_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")
        .run(v.proposalId, v.officerId, v.decision, v.digest, v.signature, v.at, v.credentialKind ?? "ed25519", v.credentialId ?? null);
    });
  }

  async listPasskeys(officerId?: string): Promise<PasskeyRecord[]> {
    const rows = officerId
      ? (this.db.prepare("SELECT * FROM officer_passkeys WHERE officer_id = ? ORDER BY created_at, credential_id").all(officerId) as Row[])
      : (this.db.prepare("SELECT * FROM officer_passkeys ORDER BY officer_id, created_at, credential_id").all() as Row[]);
    return rows.map(toPasskey);
  }

  async getPasskey(credentialId: string): Promise<PasskeyRecord | undefined> {
    const row = this.db.prepare("SELECT * FROM officer_passkeys WHERE credential_id = ?").get(credentialId) as Row | undefined;
    return row ? toPasskey(row) : undefined;
  }

  async addPasskey(k: PasskeyRecord, done?: ProposalDone): Promise<void> {
    this.write(() => {
      if (this.db.prepare("SELECT 1 FROM officer_passkeys WHERE credential_id = ?").get(k.id)) throw new CustosError("PRECONDITION_FAILED", "this passkey is already registered");
      this.db
        .prepare("INSERT INTO officer_passkeys (credential_id, officer_id, public_key, counter, transports, aaguid, label, created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
        .run(k.id, k.officerId, k.publicKey, k.counter, JSON.stringify(k.transports), k.aaguid, k.label, k.createdAt, k.lastUsedAt);
      this.markDone(done);
    });
  }

  async removePasskey(credentialId: string, done?: ProposalDone): Promise<void> {
    this.write(() => {
      const r = this.db.prepare("DELETE FROM officer_passkeys WHERE credential_id = ?").run(credentialId);
      if (r.changes === 0) throw new CustosError("PRECONDITION_FAILED", "no such passkey");
      this.markDone(done);
    });
  }

  async recordPasskeyUse(credentialId: string, counter: number, at: string): Promise<boolean> {
    let changed = false;
    this.write(() => {
      const r = this.db
        .prepare("UPDATE officer_passkeys SET counter = ?, last_used_at = ? WHERE credential_id = ? AND (counter < ? OR (counter = 0 AND ? = 0))")
        .run(counter, at, credentialId, counter, counter);
      changed = r.changes === 1;
    });
    return changed;
  }

  async listVotes(proposalId: string): Promise<VoteRecord[]> {
    return (this.db.prepare("SELECT * FROM votes WHERE proposal_id = ? ORDER BY at, officer_id").all(proposalId) as Row[]).map((r) => ({
      proposalId: r.proposal_id as string,
      officerId: r.officer_id as string,
      decision: r.decision as VoteRecord["decision"],
      digest: r.digest as string,
      signature: r.signature as string,
      at: r.at as string,
      credentialKind: (r.credential_kind as VoteRecord["credentialKind"]) ?? "ed25519",
      ...(r.credential_id ? { credentialId: r.credential_id as string } : {}),
    }));
  }

  private insertVersion(v: KeyVersionRecord): void {
    this.db
      .prepare("INSERT INTO key_versions (key_id, version, object_id, state, created_at, activated_at, api_key_id, retire_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
      .run(v.keyId, v.version, v.objectId, v.state, v.createdAt, v.activatedAt, v.apiKeyId ?? null, v.retireAt ?? null);
  }

  private upsertClientRow(c: ClientRecord): void {
    this.db
      .prepare(
        `INSERT INTO clients (identity, name, role, cidrs, created_at, can_freeze) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (identity) DO UPDATE SET name = excluded.name, role = excluded.role, cidrs = excluded.cidrs, can_freeze = excluded.can_freeze`,
      )
      .run(c.identity, c.name, c.role, JSON.stringify(c.cidrs), c.createdAt, c.canFreeze ? 1 : 0);
  }

  private insertOfficer(o: OfficerRecord): void {
    if (this.db.prepare("SELECT 1 FROM officers WHERE id = ? OR identity = ?").get(o.id, o.identity)) {
      throw new CustosError("PRECONDITION_FAILED", `an officer ${o.id} or with identity ${o.identity} exists`);
    }
    this.db
      .prepare("INSERT INTO officers (id, display_name, identity, public_key, fingerprint, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
      .run(o.id, o.displayName, o.identity, o.publicKeyPem, o.fingerprint, o.status, o.createdAt);
  }

  /** Inside a write transaction: the proposal that made this change is executed, its envelope gone. */
  private markDone(done: ProposalDone | undefined): void {
    if (!done) return;
    const r = this.db
      .prepare("UPDATE proposals SET state = 'executed', executed_at = ?, envelope = NULL, step = 'done' WHERE id = ? AND state = 'executing'")
      .run(done.at, done.proposalId);
    // A proposal not executing any more (executed by a concurrent path) rolls the change back.
    if (r.changes !== 1) throw new CustosError("PRECONDITION_FAILED", `proposal ${done.proposalId} is not executing`);
  }

  async close(): Promise<void> {
    this.db.close();
  }

  /** Runs `fn` in a transaction; database failures become STORE_ERROR, typed errors pass through. */
  private write(fn: () => void): void {
    try {
      this.db.transaction(fn)();
    } catch (e) {
      if (e instanceof CustosError) throw e;
      throw new CustosError("STORE_ERROR", "database write failed", { cause: e, retryable: true });
    }
  }
}

function toKey(r: Row): KeyRecord {
  return {
    id: r.id as string,
    exchange: r.exchange as string,
    environment: r.environment as KeyRecord["environment"],
    label: r.label as string,
    apiKeyId: r.api_key_id as string,
    algorithm: r.algorithm as KeyRecord["algorithm"],
    maxAgeDays: r.max_age_days as number,
    createdAt: r.created_at as string,
    frozenAt: (r.frozen_at as string | null) ?? null,
    frozenReason: (r.frozen_reason as string | null) ?? null,
  };
}

function toVersion(r: Row): KeyVersionRecord {
  return {
    keyId: r.key_id as string,
    version: r.version as number,
    objectId: r.object_id as string,
    state: r.state as KeyVersionRecord["state"],
    createdAt: r.created_at as string,
    activatedAt: (r.activated_at as string | null) ?? null,
    apiKeyId: (r.api_key_id as string | null) ?? null,
    retireAt: (r.retire_at as string | null) ?? null,
  };
}

function toClient(r: Row): ClientRecord {
  return {
    identity: r.identity as string,
    name: r.name as string,
    role: r.role as ClientRecord["role"],
    cidrs: JSON.parse(r.cidrs as string) as string[],
    createdAt: r.created_at as string,
    canFreeze: r.can_freeze === 1,
    frozenAt: (r.frozen_at as string | null) ?? null,
    frozenReason: (r.frozen_reason as string | null) ?? null,
  };
}

function toOfficer(r: Row): OfficerRecord {
  return {
    id: r.id as string,
    displayName: r.display_name as string,
    identity: r.identity as string,
    publicKeyPem: r.public_key as string,
    fingerprint: r.fingerprint as string,
    status: r.status as OfficerRecord["status"],
    createdAt: r.created_at as string,
  };
}

function toPasskey(r: Row): PasskeyRecord {
  return {
    id: r.credential_id as string,
    officerId: r.officer_id as string,
    publicKey: r.public_key as string,
    counter: r.counter as number,
    transports: JSON.parse(r.transports as string) as string[],
    aaguid: r.aaguid as string,
    label: r.label as string,
    createdAt: r.created_at as string,
    lastUsedAt: (r.last_used_at as string | null) ?? null,
  };
}

function toProposal(r: Row): ProposalRecord {
  return {
    id: r.id as string,
    kind: r.kind as string,
    target: r.target as string,
    canonical: r.canonical as string,
    digest: r.digest as string,
    proposer: r.proposer as string,
    state: r.state as ProposalState,
    step: (r.step as string | null) ?? null,
    envelope: (r.envelope as string | null) ?? null,
    createdAt: r.created_at as string,
    expiresAt: r.expires_at as string,
    executedAt: (r.executed_at as string | null) ?? null,
    failure: (r.failure as string | null) ?? null,
  };
}

function toAudit(r: Row): StoredAuditEvent {
  return { seq: r.seq as number, body: r.body as string, prevHash: r.prev_hash as string, hash: r.hash as string };
}
