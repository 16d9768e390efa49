import { CustosError } from "../../errors.js";
import type { GovernanceRecord, OfficerRecord, PasskeyRecord, ProposalRecord, ProposalState, VoteRecord } from "../../governance/model.js";
import type { GovernanceTable, ProposalPatch } from "../store.js";
import { SqliteTables, type Row } from "./sqlite-tables.js";
import { toOfficer, toPasskey, toProposal, toVote } from "../rows.js";

/** The threshold, officers and their passkeys, proposals and votes (the store's `governance`). */
export class SqliteGovernanceTables extends SqliteTables implements GovernanceTable {
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

  async setThreshold(threshold: number): Promise<void> {
    this.write(() => {
      this.db.prepare("UPDATE governance SET threshold = ? WHERE id = 1").run(threshold);
    });
  }

  async listOfficers(): Promise<OfficerRecord[]> {
    return (this.db.prepare("SELECT * FROM officers ORDER BY id").all() as Row[]).map(toOfficer);
  }

  async addOfficer(officer: OfficerRecord): Promise<void> {
    this.write(() => {
      this.insertOfficer(officer);
    });
  }

  async setOfficerStatus(id: string, status: OfficerRecord["status"]): Promise<void> {
    this.write(() => {
      this.db.prepare("UPDATE officers SET status = ? WHERE id = ?").run(status, id);
    });
  }

  private insertOfficer(o: OfficerRecord): void {
    if (this.db.prepare("SELECT 1 FROM officers WHERE id = ? OR identity = ?").get(o.id, o.identity)) {
      throw new CustosError("PRECONDITION_FAILED", `an officer ${o.id} or with identity ${o.identity} exists`);
    }
    this.db
      .prepare("INSERT INTO officers (id, display_name, identity, public_key, fingerprint, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
      .run(o.id, o.displayName, o.identity, o.publicKeyPem, o.fingerprint, o.status, o.createdAt);
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

  async addPasskey(k: PasskeyRecord): Promise<void> {
    this.write(() => {
      if (this.db.prepare("SELECT 1 FROM officer_passkeys WHERE credential_id = ?").get(k.id))
        throw new CustosError("PRECONDITION_FAILED", "this passkey is already registered");
      this.db
        .prepare(
          "INSERT INTO officer_passkeys (credential_id, officer_id, public_key, counter, transports, aaguid, label, created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .run(k.id, k.officerId, k.publicKey, k.counter, JSON.stringify(k.transports), k.aaguid, k.label, k.createdAt, k.lastUsedAt);
    });
  }

  async removePasskey(credentialId: string): Promise<void> {
    this.write(() => {
      const r = this.db.prepare("DELETE FROM officer_passkeys WHERE credential_id = ?").run(credentialId);
      if (r.changes === 0) throw new CustosError("PRECONDITION_FAILED", "no such passkey");
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

  async updateProposal(id: string, from: ProposalState, patch: ProposalPatch): Promise<boolean> {
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

  async markExecuted(id: string, at: string): Promise<void> {
    this.write(() => {
      const r = this.db
        .prepare("UPDATE proposals SET state = 'executed', executed_at = ?, envelope = NULL, step = 'done' WHERE id = ? AND state = 'executing'")
        .run(at, id);
      // Not executing any more (executed by a concurrent path): the caller's transaction rolls the change back.
      if (r.changes !== 1) throw new CustosError("PRECONDITION_FAILED", `proposal ${id} is not executing`);
    });
  }

  async addVote(v: VoteRecord): Promise<void> {
    this.write(() => {
      this.db
        .prepare(
          "INSERT INTO votes (proposal_id, officer_id, decision, digest, signature, at, credential_kind, credential_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .run(v.proposalId, v.officerId, v.decision, v.digest, v.signature, v.at, v.credentialKind ?? "ed25519", v.credentialId ?? null);
    });
  }

  async listVotes(proposalId: string): Promise<VoteRecord[]> {
    return (this.db.prepare("SELECT * FROM votes WHERE proposal_id = ? ORDER BY at, officer_id").all(proposalId) as Row[]).map(toVote);
  }
}
