/**
 * What a replica runs beside the service when its store is PostgreSQL: the change feed that
 * keeps its sign-path snapshot current (and destroys its own HSM session copies of versions
 * another replica destroyed), the leadership that lets one replica at a time run
 * housekeeping, the shared nonce counter and the deployment-wide rate limits.
 */
import pg from "pg";
import type { Logger } from "pino";
import type { KeyCustody } from "../hsm/hsm.js";
import type { KeyWithVersions } from "../keys/model.js";
import type { AccessDirectory } from "../signing/directory.js";
import { RateLimiter, type RateLimit } from "../signing/rate-limiter.js";
import type { StoreSlice } from "../store/store.js";
import { ChangeFeed, installChangeFeed } from "./change-feed.js";
import { PostgresExecutionClaims } from "./execution-claims.js";
import { Leadership } from "./leadership.js";
import { installNonceCounter, PostgresNonceCounter, type NonceSource } from "./nonce-counter.js";
import { installSharedRateLimits, SharedRateLimiter } from "./shared-rate-limit.js";

/** The store tables the sign path's snapshot is read from: a committed statement on any of them bumps the generation. */
export const SNAPSHOT_TABLES = ["keys", "key_versions", "key_policies", "clients", "grants"] as const;

export interface ReplicaOptions {
  url: string;
  store: StoreSlice<"clients" | "keys">;
  directory: AccessDirectory;
  /** Destroys this process's session copies (and the token object, idempotently) of a destroyed version. */
  custody: Pick<KeyCustody, "destroySecret">;
  limits: { client: RateLimit; key: RateLimit };
  logger: Logger;
  /** How often the generation is polled when no notification arrives (default 1000 ms). */
  pollIntervalMs?: number;
  /** How often a follower tries to take the housekeeping lock (default 1000 ms). */
  leadershipRetryMs?: number;
}

/** Store tables whose rows governance keeps in memory (officers, threshold): reloaded on a change too. */
export const GOVERNANCE_TABLES = ["officers", "governance"] as const;

/** A running replica's coordination; `stop()` ends its sessions and timers. */
export interface Replica {
  readonly leadership: Leadership;
  readonly nonces: NonceSource;
  readonly clientLimiter: SharedRateLimiter;
  readonly keyLimiter: SharedRateLimiter;
  readonly feed: ChangeFeed;
  /** Proposal execution claims shared by the replicas (a dead executor's are released with its session). */
  readonly claims: PostgresExecutionClaims;
  /** Also runs `reload` on every change (governance registers its own: it keeps officers and the threshold in memory). */
  onChange(reload: () => Promise<void>): void;
  stop(): Promise<void>;
}

/** Installs the coordination tables (idempotent; safe when replicas start together) and starts the feed and the election. */
export async function startReplica(opts: ReplicaOptions): Promise<Replica> {
  const log = opts.logger.child({ component: "replica" });
  await installChangeFeed(opts.url, [...SNAPSHOT_TABLES, ...GOVERNANCE_TABLES]);
  await installNonceCounter(opts.url);
  await installSharedRateLimits(opts.url);
  // Execution claims hold a connection each while a proposal runs: a few run at once at most.
  const pool = new pg.Pool({ connectionString: opts.url, max: 8, application_name: "custos-coordination", connectionTimeoutMillis: 5_000 });
  pool.on("error", (e) => log.warn({ event: "replica.pool_error", err: e }, "coordination connection failed"));
  const onLeaseError = (e: Error) => log.warn({ event: "replica.rate_lease_failed", err: e }, "rate limit lease failed; refusing until one succeeds");
  // During a PostgreSQL outage each replica limits on its own (the audit backlog bound ends the outage's signing).
  const local = (limit: RateLimit) => new RateLimiter(limit, () => performance.now());
  const clientLimiter = new SharedRateLimiter({
    db: pool,
    limit: opts.limits.client,
    scope: "client",
    onError: onLeaseError,
    fallback: local(opts.limits.client),
  });
  const keyLimiter = new SharedRateLimiter({ db: pool, limit: opts.limits.key, scope: "key", onError: onLeaseError, fallback: local(opts.limits.key) });

  const alsoOnChange: Array<() => Promise<void>> = [];
  // Started before the caller's first full load is superseded: a change committed in between is seen.
  const feed = await ChangeFeed.start({
    url: opts.url,
    ...(opts.pollIntervalMs ? { pollIntervalMs: opts.pollIntervalMs } : {}),
    onChange: async (generation) => {
      const before = liveObjects(opts.directory.allKeys());
      await opts.directory.reload(opts.store);
      const gone = destroyedSince(before, opts.directory.allKeys());
      for (const objectId of gone) {
        // A session copy keeps signing after another process destroys the token object: destroy ours.
        await opts.custody.destroySecret(objectId);
        log.info({ event: "replica.session_copies_destroyed", objectId }, "destroyed this replica's copies of a destroyed version");
      }
      for (const reload of alsoOnChange) await reload();
      log.debug({ event: "replica.reloaded", generation: String(generation) }, "snapshot reloaded");
    },
    onError: (e) => log.warn({ event: "replica.change_feed_error", err: e }, "change feed error; the poll carries on"),
  });
  const leadership = new Leadership({
    url: opts.url,
    ...(opts.leadershipRetryMs ? { retryMs: opts.leadershipRetryMs } : {}),
    onGain: () => log.info({ event: "replica.leader" }, "this replica runs housekeeping"),
    onLoss: (why) => log.warn({ event: "replica.follower", reason: why.message }, "this replica no longer runs housekeeping"),
    onError: (e) => log.warn({ event: "replica.leadership_error", err: e }, "leadership session failed; retrying"),
  });
  leadership.start();
  return {
    onChange: (reload) => void alsoOnChange.push(reload),
    leadership,
    nonces: new PostgresNonceCounter(pool),
    claims: new PostgresExecutionClaims(pool),
    clientLimiter,
    keyLimiter,
    feed,
    async stop() {
      leadership.stop();
      await feed.stop();
      await clientLimiter.settled();
      await keyLimiter.settled();
      await pool.end().catch(() => undefined);
    },
  };
}

/** Object ids of versions that may still have HSM objects (anything not destroyed). */
function liveObjects(keys: Iterable<KeyWithVersions>): Set<string> {
  const live = new Set<string>();
  for (const k of keys) for (const v of k.versions) if (v.state !== "destroyed" && v.state !== "destroying") live.add(v.objectId);
  return live;
}

/** Versions that were live in `before` and are destroyed (or being destroyed) now. */
export function destroyedSince(before: ReadonlySet<string>, keys: Iterable<KeyWithVersions>): string[] {
  const gone: string[] = [];
  for (const k of keys) for (const v of k.versions) if ((v.state === "destroyed" || v.state === "destroying") && before.has(v.objectId)) gone.push(v.objectId);
  return gone;
}
