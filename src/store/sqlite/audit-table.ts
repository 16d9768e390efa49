import type Database from "better-sqlite3";
import type { AuditTable, StoredAuditEvent, StoredCheckpoint } from "../store.js";
import { SqliteTables, type Row } from "./sqlite-tables.js";
import { toAudit } from "../rows.js";

/** The audit hash chain's events (the store's `audit`). */
export class SqliteAuditTable extends SqliteTables implements AuditTable {
  private readonly insertAudit: Database.Statement;
  /** Prepared once: every audit write reads the head (preparing it each time cost about as much as the insert). */
  private readonly selectHead: Database.Statement;

  constructor(db: Database.Database) {
    super(db);
    this.insertAudit = this.db.prepare("INSERT INTO audit_events (seq, body, prev_hash, hash) VALUES (?, ?, ?, ?)");
    this.selectHead = this.db.prepare("SELECT * FROM audit_events ORDER BY seq DESC LIMIT 1");
  }

  async appendAudit(events: StoredAuditEvent[]): Promise<void> {
    this.write(() => {
      for (const e of events) this.insertAudit.run(e.seq, e.body, e.prevHash, e.hash);
    });
  }

  async appendChained(link: (head: StoredAuditEvent | undefined) => StoredAuditEvent[]): Promise<StoredAuditEvent[]> {
    let rows: StoredAuditEvent[] = [];
    // SQLite has one writer at a time: the transaction alone keeps the head from moving under `link`.
    this.write(() => {
      const head = this.selectHead.get() as Row | undefined;
      rows = link(head ? toAudit(head) : undefined);
      for (const e of rows) this.insertAudit.run(e.seq, e.body, e.prevHash, e.hash);
    });
    return rows;
  }

  async lastAudit(): Promise<StoredAuditEvent | undefined> {
    const row = this.selectHead.get() as Row | undefined;
    return row ? toAudit(row) : undefined;
  }

  async readAudit(afterSeq: number, limit: number): Promise<StoredAuditEvent[]> {
    return (this.db.prepare("SELECT * FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?").all(afterSeq, limit) as Row[]).map(toAudit);
  }

  async countAudit(maxSeq: number): Promise<number> {
    return (this.db.prepare("SELECT COUNT(*) AS n FROM audit_events WHERE seq <= ?").get(maxSeq) as { n: number }).n;
  }

  async appendCheckpoint(c: StoredCheckpoint): Promise<void> {
    this.write(() => {
      this.db
        .prepare("INSERT INTO audit_checkpoints (seq, hash, at, key_fingerprint, signature) VALUES (?, ?, ?, ?, ?)")
        .run(c.seq, c.hash, c.at, c.keyFingerprint, c.signature);
    });
  }

  async listCheckpoints(): Promise<StoredCheckpoint[]> {
    // A read-only open (`custos audit verify`) does not migrate: a database from before checkpoints has none.
    if (!this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_checkpoints'").get()) return [];
    const rows = this.db.prepare("SELECT * FROM audit_checkpoints ORDER BY at, seq").all() as Row[];
    return rows.map((r) => ({
      seq: r.seq as number,
      hash: r.hash as string,
      at: r.at as string,
      keyFingerprint: r.key_fingerprint as string,
      signature: r.signature as string,
    }));
  }
}
