import type Database from "better-sqlite3";
import { CustosError } from "../../errors.js";
import type { ProposalDone } from "../store.js";

/** A row as better-sqlite3 returns it. */
export type Row = Record<string, unknown>;

/**
 * The base of SqliteStore's per-aggregate table classes: they share one Database, so a
 * change and its proposal's "executed" mark (markDone) commit in one transaction.
 */
export abstract class SqliteTables {
  constructor(protected readonly db: Database.Database) {}

  /** Runs `fn` in a transaction; database failures become STORE_ERROR, typed errors pass through. */
  protected write(fn: () => void): void {
    try {
      this.db.transaction(fn)();
    } catch (e) {
      if (e instanceof CustosError) throw e;
      throw new CustosError("STORE_ERROR", "database write failed", { cause: e, retryable: true });
    }
  }

  /** Inside a write transaction: the proposal that made this change is executed, its envelope gone. */
  protected markDone(done: ProposalDone | undefined): void {
    if (!done) return;
    const r = this.db
      .prepare("UPDATE proposals SET state = 'executed', executed_at = ?, envelope = NULL, step = 'done' WHERE id = ? AND state = 'executing'")
      .run(done.at, done.proposalId);
    // A proposal not executing any more (executed by a concurrent path) rolls the change back.
    if (r.changes !== 1) throw new CustosError("PRECONDITION_FAILED", `proposal ${done.proposalId} is not executing`);
  }
}
