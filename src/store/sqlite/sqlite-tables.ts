import type Database from "better-sqlite3";
import { CustosError } from "../../errors.js";

/** A row as better-sqlite3 returns it. */
export type Row = Record<string, unknown>;

/**
 * The base of SqliteStore's per-aggregate table classes. They share one connection; each
 * write is its own transaction, or a savepoint inside the one `SqliteStore.transaction()` holds.
 */
export abstract class SqliteTables {
  constructor(protected readonly db: Database.Database) {}

  /**
   * Runs `fn` in a transaction; database failures become STORE_ERROR, typed errors pass through.
   * IMMEDIATE: the write lock is taken (waiting up to busy_timeout) before `fn` reads. A deferred
   * transaction that reads first fails at once with SQLITE_BUSY_SNAPSHOT when the audit writer's
   * connection commits in between (busy_timeout does not apply to that upgrade).
   */
  protected write(fn: () => void): void {
    try {
      this.db.transaction(fn).immediate();
    } catch (e) {
      if (e instanceof CustosError) throw e;
      throw new CustosError("STORE_ERROR", "database write failed", { cause: e, retryable: true });
    }
  }
}
