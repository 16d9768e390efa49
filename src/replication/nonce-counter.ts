/**
 * Nonces custos owns, shared by every replica: per key, strictly increasing across the whole
 * deployment, never repeated and never going backwards (Kraken Futures reads its `Nonce` as
 * an increasing, time-like integer: custos picks milliseconds, like SignService's in-process
 * `nextNonce`).
 *
 * One row per key; a draw is one statement, `GREATEST(last + 1, candidate)` under the row
 * lock of `INSERT … ON CONFLICT DO UPDATE`, so concurrent draws from several replicas are
 * serialised by PostgreSQL and each returns a value above every value committed before it.
 * The cost is one round trip per request that needs a custos-chosen nonce, on the sign path;
 * with SQLite (one process) the in-process counter stays, at no cost.
 */
import { withSchemaLock, type Queryable } from "./pg-session.js";

const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS custos_nonce (
  key_id text PRIMARY KEY,
  last bigint NOT NULL CHECK (last > 0)
);`;

const DRAW_SQL = `
INSERT INTO custos_nonce AS n (key_id, last) VALUES ($1, $2)
ON CONFLICT (key_id) DO UPDATE SET last = GREATEST(n.last + 1, EXCLUDED.last)
RETURNING last::text AS last`;

/** Creates the nonce table (idempotent; safe from several replicas at once). */
export async function installNonceCounter(url: string): Promise<void> {
  await withSchemaLock(url, async (q) => {
    await q.query(SCHEMA_SQL);
  });
}

/** The source of custos-chosen nonces; the PostgreSQL one is shared by replicas. */
export interface NonceSource {
  /** The next nonce for `keyId`: above every nonce drawn before for it, and at least `candidate`. */
  next(keyId: string, candidate: number): Promise<string>;
}

/** Nonces drawn from PostgreSQL (`q` is usually a pool: each draw is its own autocommit statement). */
export class PostgresNonceCounter implements NonceSource {
  constructor(private readonly q: Queryable) {}

  async next(keyId: string, candidate: number): Promise<string> {
    if (!Number.isSafeInteger(candidate) || candidate <= 0) throw new RangeError("a nonce candidate is a positive integer");
    const { rows } = await this.q.query<{ last: string }>(DRAW_SQL, [keyId, candidate]);
    const last = rows[0]?.last;
    if (last === undefined) throw new Error("the nonce draw returned no row");
    return last;
  }
}
