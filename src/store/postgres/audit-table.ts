import { toAudit } from "../rows.js";
import type { AuditTable, StoredAuditEvent, StoredCheckpoint } from "../store.js";
import { lockParams } from "./advisory-locks.js";
import type { PgQuery, PgRunner } from "./pg-runner.js";

/**
 * The audit hash chain's events and checkpoints (the store's `audit`) on PostgreSQL: one chain
 * for every replica. An append takes the chain's advisory lock for its transaction, reads the
 * head there, and inserts what continues it; unique seq and prev_hash refuse a fork even from a
 * writer that skipped the lock.
 */
export class PgAuditTable implements AuditTable {
  constructor(private readonly db: PgRunner) {}

  async appendAudit(events: StoredAuditEvent[]): Promise<void> {
    await this.db.atomic((q) => insertEvents(q, events));
  }

  async appendChained(link: (head: StoredAuditEvent | undefined) => StoredAuditEvent[]): Promise<StoredAuditEvent[]> {
    return this.db.atomic(async (q) => {
      await q.run("SELECT pg_advisory_xact_lock($1, $2)", lockParams("auditChain"));
      const [head] = await q.rows("SELECT * FROM audit_events ORDER BY seq DESC LIMIT 1");
      const rows = link(head ? toAudit(head) : undefined);
      await insertEvents(q, rows);
      return rows;
    });
  }

  async lastAudit(): Promise<StoredAuditEvent | undefined> {
    const [row] = await this.db.rows("SELECT * FROM audit_events ORDER BY seq DESC LIMIT 1");
    return row ? toAudit(row) : undefined;
  }

  async readAudit(afterSeq: number, limit: number): Promise<StoredAuditEvent[]> {
    return (await this.db.rows("SELECT * FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2", [afterSeq, limit])).map(toAudit);
  }

  async countAudit(maxSeq: number): Promise<number> {
    const [row] = await this.db.rows("SELECT COUNT(*) AS n FROM audit_events WHERE seq <= $1", [maxSeq]);
    return row?.n as number;
  }

  async appendCheckpoint(c: StoredCheckpoint): Promise<void> {
    await this.db.run("INSERT INTO audit_checkpoints (seq, hash, at, key_fingerprint, signature) VALUES ($1, $2, $3, $4, $5)", [
      c.seq,
      c.hash,
      c.at,
      c.keyFingerprint,
      c.signature,
    ]);
  }

  async listCheckpoints(): Promise<StoredCheckpoint[]> {
    const rows = await this.db.rows("SELECT * FROM audit_checkpoints ORDER BY at, seq");
    return rows.map((r) => ({
      seq: r.seq as number,
      hash: r.hash as string,
      at: r.at as string,
      keyFingerprint: r.key_fingerprint as string,
      signature: r.signature as string,
    }));
  }
}

/** One INSERT for the whole batch (arrays unnested server-side: four parameters whatever its size). */
async function insertEvents(q: PgQuery, events: readonly StoredAuditEvent[]): Promise<void> {
  if (events.length === 0) return;
  await q.run("INSERT INTO audit_events (seq, body, prev_hash, hash) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[])", [
    events.map((e) => e.seq),
    events.map((e) => e.body),
    events.map((e) => e.prevHash),
    events.map((e) => e.hash),
  ]);
}
