import pg from "pg";
import { CustosError } from "../../errors.js";
import type { AuditTable, ClientTable, ConsoleTable, GovernanceTable, KeyTable, Store, StoreTables } from "../store.js";
import { lockParams } from "./advisory-locks.js";
import { PgAuditTable } from "./audit-table.js";
import { PgClientTables } from "./client-tables.js";
import { PgConsoleTables } from "./console-tables.js";
import { PgGovernanceTables } from "./governance-tables.js";
import { PgKeyTables } from "./key-tables.js";
import { migrate } from "./migrations.js";
import { PoolRunner, inTransaction, transactionRunner, type PgRunner } from "./pg-runner.js";
import { redactPostgresUrl } from "./pg-url.js";

/** How a PgStore connects. */
export interface PgStoreOptions {
  /** Pooled connections at most (default 10). */
  maxConnections?: number;
  /** Run the migrations at open (default true); the audit writer thread leaves them to the service. */
  migrate?: boolean;
  /** Shown in pg_stat_activity (default "custos"). */
  applicationName?: string;
  /** Where the URL came from, named in the error when PostgreSQL cannot be reached (default "store.postgres"). */
  setting?: string;
}

/** BIGINT (int8) as a JS number: seq, counters and COUNT(*) stay far below 2^53, so the records are SQLite's. */
const INT8_OID = 20;
const types = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format ?? "text")) as typeof pg.types.getTypeParser,
};

/** A pool on `url` whose rows are what PgStore's tables read (BIGINT as numbers). */
export function postgresPool(url: string, opts: Pick<PgStoreOptions, "maxConnections" | "applicationName"> = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.maxConnections ?? 10,
    application_name: opts.applicationName ?? "custos",
    connectionTimeoutMillis: 10_000,
    types,
  });
  // An idle connection that breaks (a PostgreSQL restart) is dropped from the pool; the next call reconnects.
  pool.on("error", () => undefined);
  return pool;
}

/**
 * The replicated store: every table on PostgreSQL through one `pg.Pool`, so several custos
 * processes (replicas) share one state. Single calls are atomic on their own (one statement, or
 * their own transaction); `transaction()` holds one pooled connection in BEGIN…COMMIT and takes
 * a deployment-wide advisory lock first, so transactions run one at a time across replicas as
 * they do on SQLite's single writer. Opened with `PgStore.open`, which checks the connection
 * and migrates.
 */
export class PgStore implements Store {
  readonly keys: KeyTable;
  readonly clients: ClientTable;
  readonly governance: GovernanceTable;
  readonly console: ConsoleTable;
  readonly audit: AuditTable;
  /** This process's transactions, one after the other (they would queue on the advisory lock anyway, each holding a connection). */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(private readonly pool: pg.Pool) {
    const tables = tablesOn(new PoolRunner(pool));
    this.keys = tables.keys;
    this.clients = tables.clients;
    this.governance = tables.governance;
    this.console = tables.console;
    this.audit = tables.audit;
  }

  /**
   * Connects to `url` and migrates the schema. STORE_ERROR naming the setting (and the URL
   * without its password) when PostgreSQL cannot be reached: custos does not start without it.
   */
  static async open(url: string, opts: PgStoreOptions = {}): Promise<PgStore> {
    const pool = postgresPool(url, opts);
    try {
      await pool.query("SELECT 1");
      if (opts.migrate ?? true) await migrate(pool);
    } catch (e) {
      await pool.end().catch(() => undefined);
      const cause = e instanceof CustosError && e.cause !== undefined ? e.cause : e;
      const why = cause instanceof Error ? cause.message : String(cause);
      throw new CustosError("STORE_ERROR", `cannot open the PostgreSQL store ${redactPostgresUrl(url)} (${opts.setting ?? "store.postgres"}): ${why}`, {
        cause,
        retryable: true,
      });
    }
    return new PgStore(pool);
  }

  transaction<T>(fn: (tx: StoreTables) => Promise<T>): Promise<T> {
    const run = this.queue.then(() =>
      inTransaction(this.pool, async (client) => {
        await transactionRunner(client, () => true).run("SELECT pg_advisory_xact_lock($1, $2)", lockParams("transactions"));
        let open = true;
        try {
          return await fn(tablesOn(transactionRunner(client, () => open)));
        } finally {
          open = false;
        }
      }),
    );
    this.queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    // After any transaction in flight.
    await this.queue;
    await this.pool.end();
  }
}

/** The five aggregates, their statements run by `db`. */
function tablesOn(db: PgRunner): StoreTables {
  return {
    keys: new PgKeyTables(db),
    clients: new PgClientTables(db),
    governance: new PgGovernanceTables(db),
    console: new PgConsoleTables(db),
    audit: new PgAuditTable(db),
  };
}
