/**
 * Deployment-wide rate limits: a client's and a key's limits hold for the whole deployment,
 * not once per replica, and the sign path never waits for the database.
 *
 * One token bucket row per name in PostgreSQL (`custos_rate_bucket`), refilled by time in SQL
 * on the server's clock (replicas' clocks never meet). Each replica leases tokens from the row
 * in batches (`batch`, by default ~100 ms of the rate) and spends them locally, synchronously;
 * when its lease runs low it leases more in the background. Until a lease answers (a name's
 * first requests, a quiet name, a burst that outran the lease) a replica may spend up to one
 * batch on credit, repaid from that lease, so the first requests of a name are not refused for
 * a query in flight; once the shared bucket ran dry there is no credit until it refills.
 *
 * Tolerance: leased tokens were taken from the shared bucket, so over any window of T seconds
 * the deployment grants at most `burst + perSecond × T + replicas × 2 × batch`: the bucket's
 * own bound plus what replicas held in leases and owed on credit. It errs low, never high,
 * beyond that: tokens leased by a replica are not available to another.
 * PostgreSQL unreachable: a replica spends what it holds, then refuses (fail closed).
 */
import type { RateLimit } from "../signing/rate-limiter.js";
import { withSchemaLock, type Queryable } from "./pg-session.js";

const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS custos_rate_bucket (
  name text PRIMARY KEY,
  tokens double precision NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE OR REPLACE FUNCTION custos_rate_lease(p_name text, p_rate double precision, p_burst double precision, p_want integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  t timestamptz := clock_timestamp();
  available double precision;
  granted integer;
BEGIN
  INSERT INTO custos_rate_bucket (name, tokens, updated_at) VALUES (p_name, p_burst, t) ON CONFLICT (name) DO NOTHING;
  SELECT LEAST(p_burst, tokens + p_rate * GREATEST(0, EXTRACT(EPOCH FROM t - updated_at))) INTO available
    FROM custos_rate_bucket WHERE name = p_name FOR UPDATE;
  granted := GREATEST(0, LEAST(p_want, floor(available)))::integer;
  UPDATE custos_rate_bucket SET tokens = available - granted, updated_at = t WHERE name = p_name;
  RETURN granted;
END $$;`;

/** Creates the bucket table and the lease function (idempotent; safe from several replicas at once). */
export async function installSharedRateLimits(url: string): Promise<void> {
  await withSchemaLock(url, async (q) => {
    await q.query(SCHEMA_SQL);
  });
}

export interface SharedRateLimiterOptions {
  /** Usually a pg.Pool: leases run as autocommit statements. */
  db: Queryable;
  limit: RateLimit;
  /** Bucket names are `${scope}:${name}` so client and key limits never share a row. */
  scope: string;
  /** Tokens per lease (default: ~100 ms of the rate, at least 1, at most the burst). */
  batch?: number;
  /** A lease that failed (the limiter refuses once it has nothing left). */
  onError?: (e: Error) => void;
  /** Monotonic milliseconds, for lastRequest (default performance.now). */
  clock?: () => number;
  /**
   * While PostgreSQL is unreachable (the last lease failed), requests beyond the tokens held are
   * judged by this replica's own bucket at the configured rate: refusing them would turn a
   * database restart into a trading stop, and an outage is bounded by the audit backlog bound
   * anyway. For that time the deployment may grant up to replicas × the limit. Not while a
   * lease is merely in flight: under sustained load every replica has one in flight often, and
   * a local bucket judging those gaps let two replicas grant about 1.35 × the limit (the e2e
   * test in test/e2e/replicas-operations.test.ts measured it). Absent: refuse (fail closed).
   */
  fallback?: { take(name: string): boolean };
}

interface Lease {
  /** Tokens this replica holds; negative while a credit is outstanding. */
  tokens: number;
  inFlight: Promise<void> | undefined;
  lastRequest: number;
  /** After a short lease (the bucket ran dry), no new lease before this time: a refused request must not cost a query. */
  notBefore: number;
}

/** Same surface as the in-process RateLimiter (`take`, `lastRequest`), shared through PostgreSQL. */
export class SharedRateLimiter {
  private readonly leases = new Map<string, Lease>();
  /** The last lease failed (PostgreSQL unreachable); cleared by the next one that succeeds. */
  private unreachable = false;
  private readonly batch: number;
  private readonly clock: () => number;

  constructor(private readonly opts: SharedRateLimiterOptions) {
    const defaultBatch = Math.ceil(opts.limit.perSecond / 10);
    this.batch = Math.max(1, Math.min(opts.batch ?? defaultBatch, Math.floor(opts.limit.burst)));
    this.clock = opts.clock ?? (() => performance.now());
  }

  /** The tokens a lease asks for; with credit, the worst case a replica adds to the bucket's bound is 2 × batch. */
  get batchSize(): number {
    return this.batch;
  }

  /** When `name` last made a request through this replica; undefined if never. */
  lastRequest(name: string): number | undefined {
    return this.leases.get(name)?.lastRequest;
  }

  /** Spends one token for `name` if this replica holds one (or may take one on credit). Never waits. */
  take(name: string): boolean {
    let lease = this.leases.get(name);
    if (!lease) this.leases.set(name, (lease = { tokens: 0, inFlight: undefined, lastRequest: 0, notBefore: 0 }));
    const now = this.clock();
    lease.lastRequest = now;
    const dry = now < lease.notBefore;
    const mayLease = lease.inFlight === undefined && !dry;
    let granted = false;
    // Credit (down to one batch owed) while a lease is coming; none once the shared bucket ran dry.
    if (lease.tokens >= 1 || (!dry && lease.tokens > -this.batch)) {
      lease.tokens -= 1;
      granted = true;
    }
    if (lease.tokens < this.batch / 2 && mayLease) lease.inFlight = this.refill(name, lease);
    // Cut off from PostgreSQL: the replica's own bucket judges. (Waiting for a lease is a refusal: see `fallback`.)
    if (!granted && this.opts.fallback && this.unreachable) return this.opts.fallback.take(name);
    return granted;
  }

  /** Resolves when no lease is in flight (tests and shutdown). */
  async settled(): Promise<void> {
    for (const lease of this.leases.values()) await lease.inFlight;
  }

  private async refill(name: string, lease: Lease): Promise<void> {
    try {
      const want = Math.ceil(this.batch - lease.tokens);
      const { rows } = await this.opts.db.query<{ granted: number }>("SELECT custos_rate_lease($1, $2, $3, $4) AS granted", [
        `${this.opts.scope}:${name}`,
        this.opts.limit.perSecond,
        this.opts.limit.burst,
        want,
      ]);
      const granted = rows[0]?.granted ?? 0;
      this.unreachable = false;
      lease.tokens += granted;
      // The bucket ran dry: wait about as long as it takes to accrue a batch (10 ms to 1 s).
      if (granted < want) lease.notBefore = this.clock() + Math.min(1_000, Math.max(10, (this.batch / this.opts.limit.perSecond) * 1_000));
    } catch (e) {
      lease.notBefore = this.clock() + 1_000;
      this.unreachable = true;
      this.opts.onError?.(e as Error);
    } finally {
      lease.inFlight = undefined;
    }
  }
}
