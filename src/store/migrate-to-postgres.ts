import Database from "better-sqlite3";
import type pg from "pg";
import { CustosError } from "../errors.js";
import { inTransaction } from "./postgres/pg-runner.js";
import { PgStore, postgresPool } from "./postgres/pg-store.js";
import { SqliteStore } from "./sqlite/sqlite-store.js";

/**
 * Every table of the store, parents before children (foreign keys): what a move from SQLite to
 * PostgreSQL copies, row for row and column for column (the two schemas share their names).
 */
export const STORE_TABLES = [
  "keys",
  "key_versions",
  "key_policies",
  "clients",
  "grants",
  "officers",
  "governance",
  "proposals",
  "votes",
  "officer_passkeys",
  "spent_tokens",
  "console_sessions",
  "webauthn_challenges",
  "audit_events",
  "audit_checkpoints",
] as const;

/** One of the store's tables. */
export type StoreTableName = (typeof STORE_TABLES)[number];

/** What a move copied: rows per table, and the audit chain's head (seq and hash, the same on both sides). */
export interface MoveReport {
  rows: Record<StoreTableName, number>;
  auditHead: { seq: number; hash: string } | undefined;
}

/** Rows sent to PostgreSQL per INSERT. */
const BATCH = 500;

/**
 * Copies the SQLite database at `sqlitePath` into the PostgreSQL database at `url`, verbatim
 * (the audit chain keeps every seq and hash), in one PostgreSQL transaction: a failure leaves
 * the target as it was. The target is migrated first and must be empty (PRECONDITION_FAILED
 * otherwise: custos never merges two deployments' state). The source is brought to the current
 * schema first (as `custos serve` would) and only read. The caller holds the data dir's lock,
 * so no custos writes the source meanwhile. Counts are compared after the copy.
 */
export async function moveSqliteToPostgres(
  sqlitePath: string,
  url: string,
  onProgress: (table: StoreTableName, done: number, total: number) => void = () => undefined,
): Promise<MoveReport> {
  await new SqliteStore(sqlitePath).close();
  const source = new Database(sqlitePath, { readonly: true, fileMustExist: true });
  // Opening the store migrates the target's schema; the copy itself is raw SQL on a pool of its own.
  await (await PgStore.open(url, { setting: "--to" })).close();
  const pool = postgresPool(url, { maxConnections: 1, applicationName: "custos-store-migrate" });
  try {
    const rows = await inTransaction(pool, async (client) => {
      for (const table of STORE_TABLES) {
        const { rows: found } = await client.query<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`);
        if (found[0]!.n > 0)
          throw new CustosError("PRECONDITION_FAILED", `the target database is not empty (table ${table} has rows): custos moves into an empty one only`);
      }
      const copied = {} as Record<StoreTableName, number>;
      for (const table of STORE_TABLES) copied[table] = await copyTable(source, client, table, onProgress);
      return copied;
    });
    const [last] = (await pool.query<{ seq: number; hash: string }>("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")).rows;
    for (const table of STORE_TABLES) {
      const [row] = (await pool.query<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`)).rows;
      if (row?.n !== rows[table]) throw new CustosError("STORE_ERROR", `after the copy, ${table} has ${row?.n} rows in PostgreSQL, ${rows[table]} in SQLite`);
    }
    return { rows, auditHead: last ? { seq: last.seq, hash: last.hash } : undefined };
  } finally {
    source.close();
    await pool.end();
  }
}

/** Copies one table in batches, in seq/rowid order; returns how many rows. */
async function copyTable(
  source: Database.Database,
  client: pg.PoolClient,
  table: StoreTableName,
  onProgress: (table: StoreTableName, done: number, total: number) => void,
): Promise<number> {
  const total = (source.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
  let done = 0;
  let batch: Record<string, unknown>[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const columns = Object.keys(batch[0]!);
    const params: unknown[] = [];
    const tuples = batch.map((row) => `(${columns.map((c) => `$${params.push(row[c] ?? null)}`).join(", ")})`);
    await client.query(`INSERT INTO ${table} (${columns.join(", ")}) VALUES ${tuples.join(", ")}`, params);
    done += batch.length;
    batch = [];
    onProgress(table, done, total);
  };
  for (const row of source.prepare(`SELECT * FROM ${table} ORDER BY rowid`).iterate() as IterableIterator<Record<string, unknown>>) {
    batch.push(row);
    if (batch.length === BATCH) await flush();
  }
  await flush();
  return done;
}
