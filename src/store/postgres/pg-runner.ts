import type pg from "pg";
import { CustosError } from "../../errors.js";
import type { Row } from "../rows.js";

/** Statements on PostgreSQL: rows back, or how many rows a write touched. Failures are STORE_ERROR (typed errors pass through). */
export interface PgQuery {
  rows(sql: string, params?: readonly unknown[]): Promise<Row[]>;
  run(sql: string, params?: readonly unknown[]): Promise<number>;
}

/** Where a table's statements run: the pool (between transactions) or one transaction's connection. */
export interface PgRunner extends PgQuery {
  /**
   * Runs `fn`'s statements atomically: its own BEGIN…COMMIT on a pooled connection, or a
   * savepoint inside an open transaction (so a typed error thrown halfway undoes only this call,
   * as SQLite's nested transactions do). Rolls back and rethrows when `fn` throws.
   */
  atomic<T>(fn: (q: PgQuery) => Promise<T>): Promise<T>;
}

/** `e` as custos reports it: typed errors as they are, anything from the driver as a retryable STORE_ERROR. */
export function storeError(e: unknown): CustosError {
  if (e instanceof CustosError) return e;
  // The driver's message names the statement's problem or the socket's, never the URL's password.
  return new CustosError("STORE_ERROR", "database operation failed", { cause: e, retryable: true });
}

/** Whether `e` (or the error it wraps) is a unique-constraint violation, optionally of `constraint`. */
export function uniqueViolation(e: unknown, constraint?: string): boolean {
  const raw = (e instanceof CustosError ? e.cause : e) as { code?: unknown; constraint?: unknown } | undefined;
  return raw?.code === "23505" && (constraint === undefined || raw.constraint === constraint);
}

/** Statements on one connection, refused once `open()` turns false (a transaction's tables used after it ended). */
class ConnectionQuery implements PgQuery {
  constructor(
    protected readonly client: pg.ClientBase,
    private readonly open: () => boolean = () => true,
  ) {}

  async rows(sql: string, params: readonly unknown[] = []): Promise<Row[]> {
    return (await this.exec(sql, params)).rows as Row[];
  }

  async run(sql: string, params: readonly unknown[] = []): Promise<number> {
    return (await this.exec(sql, params)).rowCount ?? 0;
  }

  protected async exec(sql: string, params: readonly unknown[]): Promise<pg.QueryResult> {
    if (!this.open()) throw new CustosError("INTERNAL", "a transaction's tables were used after it ended (this is a bug)");
    try {
      return await this.client.query(sql, params as unknown[]);
    } catch (e) {
      throw storeError(e);
    }
  }
}

/** Between transactions: each statement on whichever pooled connection is free; atomic work in its own transaction. */
export class PoolRunner implements PgRunner {
  constructor(private readonly pool: pg.Pool) {}

  async rows(sql: string, params: readonly unknown[] = []): Promise<Row[]> {
    try {
      return (await this.pool.query(sql, params as unknown[])).rows as Row[];
    } catch (e) {
      throw storeError(e);
    }
  }

  async run(sql: string, params: readonly unknown[] = []): Promise<number> {
    try {
      return (await this.pool.query(sql, params as unknown[])).rowCount ?? 0;
    } catch (e) {
      throw storeError(e);
    }
  }

  async atomic<T>(fn: (q: PgQuery) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, (client) => fn(new ConnectionQuery(client)));
  }
}

/** Inside `PgStore.transaction()`: every statement on its connection; atomic work in a savepoint. */
export class TransactionRunner extends ConnectionQuery implements PgRunner {
  private savepoints = 0;

  async atomic<T>(fn: (q: PgQuery) => Promise<T>): Promise<T> {
    const name = `custos_${++this.savepoints}`;
    await this.run(`SAVEPOINT ${name}`);
    try {
      const result = await fn(this);
      await this.run(`RELEASE SAVEPOINT ${name}`);
      return result;
    } catch (e) {
      await this.client.query(`ROLLBACK TO SAVEPOINT ${name}`).catch(() => undefined);
      throw storeError(e);
    }
  }
}

/**
 * BEGIN, `fn` on one pooled connection, COMMIT; ROLLBACK and rethrow (as it was) when `fn`
 * throws. A connection whose ROLLBACK failed is discarded, not returned to the pool.
 */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (e) {
    throw storeError(e);
  }
  let broken: Error | undefined;
  try {
    try {
      await client.query("BEGIN");
    } catch (e) {
      broken = e as Error;
      throw storeError(e);
    }
    const result = await fn(client);
    try {
      await client.query("COMMIT");
    } catch (e) {
      broken = e as Error;
      throw storeError(e);
    }
    return result;
  } catch (e) {
    if (!broken) {
      await client.query("ROLLBACK").catch((rollbackFailed: unknown) => {
        broken = rollbackFailed as Error;
      });
    }
    throw e;
  } finally {
    client.release(broken);
  }
}

/** A connection for `PgStore.transaction()`: its statements, refused after `open()` turns false. */
export function transactionRunner(client: pg.ClientBase, open: () => boolean): TransactionRunner {
  return new TransactionRunner(client, open);
}
