import type Database from "better-sqlite3";
import type { StoredAuditEvent } from "../store.js";
import { SqliteTables, type Row } from "./sqlite-tables.js";

/** The audit hash chain's events (the audit part of SqliteStore). */
export class SqliteAuditTable extends SqliteTables {
  private readonly insertAudit: Database.Statement;

  constructor(db: Database.Database) {
    super(db);
    this.insertAudit = this.db.prepare("INSERT INTO audit_events (seq, body, prev_hash, hash) VALUES (?, ?, ?, ?)");
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
}

function toAudit(r: Row): StoredAuditEvent {
  return { seq: r.seq as number, body: r.body as string, prevHash: r.prev_hash as string, hash: r.hash as string };
}
