/**
 * The change feed: how a replica learns that another replica committed a change it must
 * enforce (a freeze, a revocation, a destroyed version…).
 *
 * - One generation counter row (`custos_generation`), bumped inside the transaction of every
 *   change: by `bumpGeneration()` or by the statement triggers `installChangeFeed()` puts on
 *   the store's tables, so no code path can commit a change without bumping it.
 * - The bump also calls `pg_notify`, which PostgreSQL delivers at commit: the fast path.
 * - Each replica LISTENs on a dedicated session and polls the generation every
 *   `pollIntervalMs` on another: the poll is the truth. Notifications are not replayed to a
 *   session that was not listening, so after a reconnect the feed re-reads the generation.
 *
 * The feed calls `onChange` (e.g. `AccessDirectory.reload(store)`) once per observed change,
 * never two at a time, and again later if it threw.
 */
import pg from "pg";
import { closeSession, openSession, tableIdentifier, withSchemaLock, type Queryable } from "./pg-session.js";

/** The NOTIFY channel; the payload is the new generation in decimal. */
export const CHANGE_CHANNEL = "custos_change";
/** application_name of the listening session (operators see it in pg_stat_activity). */
export const LISTENER_APPLICATION_NAME = "custos-change-feed";

const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS custos_generation (
  id smallint PRIMARY KEY CHECK (id = 1),
  generation bigint NOT NULL
);
INSERT INTO custos_generation (id, generation) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
CREATE OR REPLACE FUNCTION custos_bump_generation() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE g bigint;
BEGIN
  UPDATE custos_generation SET generation = generation + 1 WHERE id = 1 RETURNING generation INTO g;
  PERFORM pg_notify('${CHANGE_CHANNEL}', g::text);
  RETURN g;
END $$;
CREATE OR REPLACE FUNCTION custos_generation_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM custos_bump_generation();
  RETURN NULL;
END $$;
`;

/**
 * The SQL that makes every committed statement on `tables` bump the generation (statement-level
 * triggers: one bump per statement, whatever the row count, including TRUNCATE). Idempotent.
 */
export function generationTriggersSql(tables: readonly string[]): string {
  return tables
    .map((t) => {
      const id = tableIdentifier(t);
      return `CREATE OR REPLACE TRIGGER custos_generation_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ${id}
  FOR EACH STATEMENT EXECUTE FUNCTION custos_generation_trigger();`;
    })
    .join("\n");
}

/**
 * Creates the generation row and its functions, and the triggers on `tables` (which must exist).
 * Safe to run from several replicas at once (serialised by an advisory lock).
 */
export async function installChangeFeed(url: string, tables: readonly string[] = []): Promise<void> {
  await withSchemaLock(url, async (q) => {
    await q.query(SCHEMA_SQL);
    if (tables.length > 0) await q.query(generationTriggersSql(tables));
  });
}

/** Bumps the generation inside the caller's transaction (for changes to tables without a trigger); returns the new value. */
export async function bumpGeneration(q: Queryable): Promise<bigint> {
  const { rows } = await q.query<{ g: string }>("SELECT custos_bump_generation()::text AS g");
  return BigInt(rows[0]?.g ?? "0");
}

/** The committed generation. */
export async function readGeneration(q: Queryable): Promise<bigint> {
  const { rows } = await q.query<{ g: string }>("SELECT generation::text AS g FROM custos_generation WHERE id = 1");
  const g = rows[0]?.g;
  if (g === undefined) throw new Error("custos_generation has no row: run installChangeFeed first");
  return BigInt(g);
}

export interface ChangeFeedOptions {
  url: string;
  /** Re-read what changed; called with the generation observed, one call at a time, retried after a throw. */
  onChange: (generation: bigint) => void | Promise<void>;
  /** The truth: how often the generation is read (default 1000 ms). */
  pollIntervalMs?: number;
  /** Delay before re-opening a broken listening session (default 1000 ms). */
  listenRetryMs?: number;
  /** Connection failures and `onChange` errors (the feed carries on). */
  onError?: (e: Error) => void;
}

/** A running feed; `stop()` ends its sessions and timers. */
export class ChangeFeed {
  private seen: bigint;
  private applied: bigint;
  private applying = false;
  private stopped = false;
  private listener: pg.Client | undefined;
  private listenTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private confirmedAt = performance.now();
  private readonly poller: pg.Pool;
  private readonly pollIntervalMs: number;
  private readonly listenRetryMs: number;

  private constructor(
    private readonly opts: ChangeFeedOptions,
    initial: bigint,
    poller: pg.Pool,
  ) {
    this.seen = initial;
    this.applied = initial;
    this.poller = poller;
    this.pollIntervalMs = opts.pollIntervalMs ?? 1_000;
    this.listenRetryMs = opts.listenRetryMs ?? 1_000;
  }

  /**
   * Reads the current generation (failing if PostgreSQL is unreachable: a replica must not
   * start blind), then listens and polls. Start the feed before the first full load, so a
   * change committed in between is not missed.
   */
  static async start(opts: ChangeFeedOptions): Promise<ChangeFeed> {
    const poller = new pg.Pool({ connectionString: opts.url, max: 1, application_name: "custos-change-poll", connectionTimeoutMillis: 5_000 });
    poller.on("error", (e) => opts.onError?.(e));
    let initial: bigint;
    try {
      initial = await readGeneration(poller);
    } catch (e) {
      await poller.end().catch(() => undefined);
      throw e;
    }
    const feed = new ChangeFeed(opts, initial, poller);
    await feed.listen();
    feed.schedulePoll();
    return feed;
  }

  /** The last generation whose `onChange` completed. */
  get generation(): bigint {
    return this.applied;
  }

  /** Whether the fast path is up (the listening session is connected and LISTENing). */
  get listening(): boolean {
    return this.listener !== undefined;
  }

  /** Milliseconds since PostgreSQL last confirmed the generation (a poll or a notification). */
  msSinceConfirmed(): number {
    return performance.now() - this.confirmedAt;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.listenTimer);
    clearTimeout(this.pollTimer);
    closeSession(this.listener);
    this.listener = undefined;
    await this.poller.end().catch(() => undefined);
  }

  private async listen(): Promise<void> {
    if (this.stopped) return;
    let broken = false;
    const onBroken = (e: Error): void => {
      if (broken) return;
      broken = true;
      if (this.listener === client) this.listener = undefined;
      closeSession(client);
      this.opts.onError?.(e);
      this.scheduleListen();
    };
    let client: pg.Client | undefined;
    try {
      client = await openSession(this.opts.url, LISTENER_APPLICATION_NAME, onBroken);
      client.on("notification", (m) => {
        if (m.channel !== CHANGE_CHANNEL || !m.payload || !/^\d+$/.test(m.payload)) return;
        this.confirmedAt = performance.now();
        const g = BigInt(m.payload);
        // Notifications only move forward; the poll corrects anything else.
        if (g > this.seen) this.observe(g);
      });
      await client.query(`LISTEN ${CHANGE_CHANNEL}`);
      if (this.stopped || broken) return closeSession(client);
      this.listener = client;
      // Anything committed while no session was listening was not queued for this one: re-read.
      this.truth(await readGeneration(client));
    } catch (e) {
      onBroken(e as Error);
    }
  }

  private scheduleListen(): void {
    if (this.stopped) return;
    clearTimeout(this.listenTimer);
    this.listenTimer = setTimeout(() => void this.listen(), this.listenRetryMs);
    this.listenTimer.unref();
  }

  private schedulePoll(): void {
    if (this.stopped) return;
    this.pollTimer = setTimeout(async () => {
      try {
        this.truth(await readGeneration(this.poller));
      } catch (e) {
        this.opts.onError?.(e as Error);
      }
      this.schedulePoll();
    }, this.pollIntervalMs);
    this.pollTimer.unref();
  }

  /** A generation read from the table: authoritative even if it went backwards (a restored database). */
  private truth(g: bigint): void {
    this.confirmedAt = performance.now();
    if (g !== this.seen) this.observe(g);
    else if (this.applied !== this.seen) void this.apply(); // a failed onChange is retried
  }

  private observe(g: bigint): void {
    this.seen = g;
    void this.apply();
  }

  /** Runs onChange until it has seen the latest generation; never two at a time. */
  private async apply(): Promise<void> {
    if (this.applying) return;
    this.applying = true;
    try {
      while (!this.stopped && this.applied !== this.seen) {
        const target = this.seen;
        await this.opts.onChange(target);
        this.applied = target;
      }
    } catch (e) {
      this.opts.onError?.(e as Error);
    } finally {
      this.applying = false;
    }
  }
}
