import { CustosError } from "../../errors.js";
import type { GovernanceRecord, OfficerRecord, PasskeyRecord, ProposalRecord, ProposalState, VoteRecord } from "../../governance/model.js";
import { toOfficer, toPasskey, toProposal, toVote } from "../rows.js";
import type { GovernanceTable, ProposalPatch } from "../store.js";
import { uniqueViolation, type PgQuery, type PgRunner } from "./pg-runner.js";

/**
 * The threshold, officers and their passkeys, proposals and votes (the store's `governance`) on
 * PostgreSQL. Where SQLite's single writer made check-then-insert safe, the unique constraints
 * decide here (two replicas adding the same officer or passkey at once), and proposal state
 * changes are compare-and-set in one UPDATE … WHERE state = $from.
 */
export class PgGovernanceTables implements GovernanceTable {
  constructor(private readonly db: PgRunner) {}

  async getGovernance(): Promise<GovernanceRecord | undefined> {
    const [row] = await this.db.rows("SELECT * FROM governance WHERE id = 1");
    return row ? { threshold: row.threshold as number, initialisedAt: row.initialised_at as string } : undefined;
  }

  async initGovernance(threshold: number, officers: readonly OfficerRecord[], at: string): Promise<void> {
    try {
      await this.db.atomic(async (q) => {
        // The governance row first: of two replicas initialising at once, the second stops here.
        await q.run("INSERT INTO governance (id, threshold, initialised_at) VALUES (1, $1, $2)", [threshold, at]);
        for (const o of officers) await insertOfficer(q, o);
      });
    } catch (e) {
      if (uniqueViolation(e, "governance_pkey")) throw new CustosError("GOVERNANCE_EXISTS", "governance is already initialised");
      throw e;
    }
  }

  async setThreshold(threshold: number): Promise<void> {
    await this.db.run("UPDATE governance SET threshold = $1 WHERE id = 1", [threshold]);
  }

  async listOfficers(): Promise<OfficerRecord[]> {
    return (await this.db.rows("SELECT * FROM officers ORDER BY id")).map(toOfficer);
  }

  async addOfficer(officer: OfficerRecord): Promise<void> {
    await this.db.atomic((q) => insertOfficer(q, officer));
  }

  async setOfficerStatus(id: string, status: OfficerRecord["status"]): Promise<void> {
    await this.db.run("UPDATE officers SET status = $1 WHERE id = $2", [status, id]);
  }

  async listPasskeys(officerId?: string): Promise<PasskeyRecord[]> {
    const rows = officerId
      ? await this.db.rows("SELECT * FROM officer_passkeys WHERE officer_id = $1 ORDER BY created_at, credential_id", [officerId])
      : await this.db.rows("SELECT * FROM officer_passkeys ORDER BY officer_id, created_at, credential_id");
    return rows.map(toPasskey);
  }

  async getPasskey(credentialId: string): Promise<PasskeyRecord | undefined> {
    const [row] = await this.db.rows("SELECT * FROM officer_passkeys WHERE credential_id = $1", [credentialId]);
    return row ? toPasskey(row) : undefined;
  }

  async addPasskey(k: PasskeyRecord): Promise<void> {
    try {
      await this.db.run(
        `INSERT INTO officer_passkeys (credential_id, officer_id, public_key, counter, transports, aaguid, label, created_at, last_used_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [k.id, k.officerId, k.publicKey, k.counter, JSON.stringify(k.transports), k.aaguid, k.label, k.createdAt, k.lastUsedAt],
      );
    } catch (e) {
      if (uniqueViolation(e, "officer_passkeys_pkey")) throw new CustosError("PRECONDITION_FAILED", "this passkey is already registered");
      throw e;
    }
  }

  async removePasskey(credentialId: string): Promise<void> {
    if ((await this.db.run("DELETE FROM officer_passkeys WHERE credential_id = $1", [credentialId])) === 0) {
      throw new CustosError("PRECONDITION_FAILED", "no such passkey");
    }
  }

  async recordPasskeyUse(credentialId: string, counter: number, at: string): Promise<boolean> {
    // One UPDATE: the row lock makes two replicas' uses of one counter value race to a single winner.
    const changed = await this.db.run(
      "UPDATE officer_passkeys SET counter = $1, last_used_at = $2 WHERE credential_id = $3 AND (counter < $1 OR (counter = 0 AND $1 = 0))",
      [counter, at, credentialId],
    );
    return changed === 1;
  }

  async createProposal(p: ProposalRecord): Promise<void> {
    await this.db.run(
      `INSERT INTO proposals (id, kind, target, canonical, digest, proposer, state, step, envelope, created_at, expires_at, executed_at, failure)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
      [p.id, p.kind, p.target, p.canonical, p.digest, p.proposer, p.state, p.step, p.envelope, p.createdAt, p.expiresAt, p.executedAt, p.failure],
    );
  }

  async getProposal(id: string): Promise<ProposalRecord | undefined> {
    const [row] = await this.db.rows("SELECT * FROM proposals WHERE id = $1", [id]);
    return row ? toProposal(row) : undefined;
  }

  async listProposals(state?: ProposalState): Promise<ProposalRecord[]> {
    const rows = state
      ? await this.db.rows("SELECT * FROM proposals WHERE state = $1 ORDER BY created_at, id", [state])
      : await this.db.rows("SELECT * FROM proposals ORDER BY created_at, id");
    return rows.map(toProposal);
  }

  async updateProposal(id: string, from: ProposalState, patch: ProposalPatch): Promise<boolean> {
    const final = patch.state !== undefined && patch.state !== "pending" && patch.state !== "executing";
    // Compare-and-set in one statement: of two replicas moving the same proposal, one sees 0 rows.
    const changed = await this.db.run(
      `UPDATE proposals SET state = COALESCE($1, state), step = COALESCE($2, step), failure = COALESCE($3, failure),
         executed_at = COALESCE($4, executed_at), envelope = CASE WHEN $5 THEN NULL ELSE envelope END
       WHERE id = $6 AND state = $7`,
      [patch.state ?? null, patch.step ?? null, patch.failure ?? null, patch.executedAt ?? null, final, id, from],
    );
    return changed === 1;
  }

  async markExecuted(id: string, at: string): Promise<void> {
    const changed = await this.db.run(
      "UPDATE proposals SET state = 'executed', executed_at = $1, envelope = NULL, step = 'done' WHERE id = $2 AND state = 'executing'",
      [at, id],
    );
    // Not executing any more (executed by a concurrent path): the caller's transaction rolls the change back.
    if (changed !== 1) throw new CustosError("PRECONDITION_FAILED", `proposal ${id} is not executing`);
  }

  async addVote(v: VoteRecord): Promise<void> {
    await this.db.run(
      `INSERT INTO votes (proposal_id, officer_id, decision, digest, signature, at, credential_kind, credential_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
      [v.proposalId, v.officerId, v.decision, v.digest, v.signature, v.at, v.credentialKind ?? "ed25519", v.credentialId ?? null],
    );
  }

  async listVotes(proposalId: string): Promise<VoteRecord[]> {
    return (await this.db.rows("SELECT * FROM votes WHERE proposal_id = $1 ORDER BY at, officer_id", [proposalId])).map(toVote);
  }
}

/** PRECONDITION_FAILED if the id or the certificate identity is taken (checked, and then decided by the unique constraints). */
async function insertOfficer(q: PgQuery, o: OfficerRecord): Promise<void> {
  const taken = () => new CustosError("PRECONDITION_FAILED", `an officer ${o.id} or with identity ${o.identity} exists`);
  if ((await q.rows("SELECT 1 FROM officers WHERE id = $1 OR identity = $2", [o.id, o.identity])).length > 0) throw taken();
  try {
    await q.run("INSERT INTO officers (id, display_name, identity, public_key, fingerprint, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)", [
      o.id,
      o.displayName,
      o.identity,
      o.publicKeyPem,
      o.fingerprint,
      o.status,
      o.createdAt,
    ]);
  } catch (e) {
    if (uniqueViolation(e)) throw taken();
    throw e;
  }
}
