/**
 * Leadership: one replica at a time runs housekeeping (proposal expiry, grace-period
 * destruction, overdue warnings, orphan sweeps). The leader is the replica whose dedicated
 * session holds a session-level advisory lock (`pg_try_advisory_lock`); the others retry
 * every `retryMs`. PostgreSQL releases the lock when the session ends, so when the leader's
 * process dies (SIGKILL included) another replica takes over on its next try.
 *
 * Fail closed: anything that may mean the session is gone (an error, the session ending, a
 * heartbeat that fails or does not answer within `heartbeatTimeoutMs`) drops leadership at
 * once, before reconnecting. The converse gap stays: a leader whose session the server has
 * ended learns it at its next heartbeat at the latest (`retryMs`), so housekeeping steps must
 * stay safe to run twice (they are: each is a guarded store transaction); leadership makes
 * doing them twice rare, not impossible.
 */
import type pg from "pg";
import { closeSession, openSession } from "./pg-session.js";

export interface LeadershipOptions {
  url: string;
  /** The lock's name (one per duty); default "custos.housekeeping". */
  name?: string;
  /** How often a follower tries to take the lock and a leader checks its session (default 1000 ms). */
  retryMs?: number;
  /** A heartbeat slower than this counts as a lost session (default 2000 ms). */
  heartbeatTimeoutMs?: number;
  onGain?: () => void;
  onLoss?: (why: Error) => void;
  /** Connection failures (the election carries on). */
  onError?: (e: Error) => void;
}

/** Whether this session still holds the lock (a bigint lock's low 32 bits are its objid). */
const HELD_SQL = `SELECT count(*)::text AS n FROM pg_locks
  WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted AND objid = (hashtextextended($1, 0) & 4294967295)::oid`;

/** application_name of the election session. */
export const LEADERSHIP_APPLICATION_NAME = "custos-leadership";

/** One replica's part in the election for one duty. */
export class Leadership {
  private session: pg.Client | undefined;
  private leader = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly name: string;
  private readonly retryMs: number;
  private readonly heartbeatTimeoutMs: number;

  constructor(private readonly opts: LeadershipOptions) {
    this.name = opts.name ?? "custos.housekeeping";
    this.retryMs = opts.retryMs ?? 1_000;
    this.heartbeatTimeoutMs = opts.heartbeatTimeoutMs ?? 2_000;
  }

  /** Starts trying (the first try runs now; the result arrives through onGain). */
  start(): void {
    this.stopped = false;
    void this.tick();
  }

  /** Whether this replica may run the duty now. */
  isLeader(): boolean {
    return this.leader;
  }

  /** Gives leadership up (ending the session releases the lock at once) and stops trying. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.drop(new Error("stopped"));
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      if (!this.session) this.session = await this.connect();
      const session = this.session;
      if (this.leader) await this.heartbeat(session);
      else if (await this.tryLock(session)) {
        if (this.stopped || this.session !== session) return;
        this.leader = true;
        this.opts.onGain?.();
      }
    } catch (e) {
      this.opts.onError?.(e as Error);
      this.drop(e as Error);
    }
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), this.retryMs);
    this.timer.unref();
  }

  private async connect(): Promise<pg.Client> {
    let client: pg.Client | undefined;
    client = await openSession(this.opts.url, LEADERSHIP_APPLICATION_NAME, (e) => {
      if (this.session === client) this.drop(e);
    });
    return client;
  }

  private async tryLock(session: pg.Client): Promise<boolean> {
    const { rows } = await session.query<{ ok: boolean }>("SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok", [this.name]);
    return rows[0]?.ok === true;
  }

  /** Proves the session (and so the lock) is still there; a slow answer counts as a lost session. */
  private async heartbeat(session: pg.Client): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the leadership heartbeat took over ${this.heartbeatTimeoutMs} ms`)), this.heartbeatTimeoutMs);
    });
    try {
      const held = session.query<{ n: string }>(HELD_SQL, [this.name]);
      const { rows } = await Promise.race([held, timeout]);
      if (rows[0]?.n === "0") throw new Error("the advisory lock is no longer held");
    } finally {
      clearTimeout(timer);
    }
  }

  /** Leadership ends before anything else happens (fail closed), then the session is closed. */
  private drop(why: Error): void {
    const session = this.session;
    this.session = undefined;
    if (this.leader) {
      this.leader = false;
      this.opts.onLoss?.(why);
    }
    closeSession(session);
  }
}
