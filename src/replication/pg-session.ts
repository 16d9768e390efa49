/**
 * Small helpers shared by the replication modules: a dedicated PostgreSQL session (one
 * `pg.Client`, not a pool, because LISTEN and session advisory locks belong to a session),
 * and the schema lock that makes concurrent first starts of several replicas safe.
 */
import pg from "pg";

/** Anything that runs a query: a `pg.Client`, a `pg.PoolClient` inside a transaction, or a `pg.Pool`. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/** Opens a dedicated session named `applicationName` (visible in pg_stat_activity, which is how operators and tests find it). */
export async function openSession(url: string, applicationName: string, onBroken: (e: Error) => void): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: applicationName, keepAlive: true, connectionTimeoutMillis: 5_000 });
  // Registered before connect: an error event without a listener would crash the process.
  client.on("error", onBroken);
  client.on("end", () => onBroken(new Error("the PostgreSQL session ended")));
  try {
    await client.connect();
  } catch (e) {
    client.removeAllListeners();
    client.on("error", () => undefined);
    throw e;
  }
  return client;
}

/** Ends a session without waiting for a server that may be gone. */
export function closeSession(client: pg.Client | undefined): void {
  if (!client) return;
  client.removeAllListeners();
  client.on("error", () => undefined);
  client.end().catch(() => undefined);
}

/**
 * Runs `ddl` in one transaction under a transaction-level advisory lock: replicas that start
 * together would otherwise race on `CREATE … IF NOT EXISTS` (a unique violation in the catalog).
 */
export async function withSchemaLock(url: string, ddl: (q: Queryable) => Promise<void>): Promise<void> {
  const client = new pg.Client({ connectionString: url, application_name: "custos-schema" });
  await client.connect();
  try {
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock(hashtextextended('custos.replication.schema', 0))");
    await ddl(client);
    await client.query("COMMIT");
  } catch (e) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw e;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A SQL identifier quoted for PostgreSQL; refuses anything but plain lower-case table names. */
export function tableIdentifier(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`not a plain table name: ${JSON.stringify(name)}`);
  return `"${name}"`;
}
