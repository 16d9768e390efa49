import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { installNonceCounter, PostgresNonceCounter } from "../../src/replication/nonce-counter.js";
import { installSharedRateLimits, SharedRateLimiter } from "../../src/replication/shared-rate-limit.js";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";
import { startReplicaProcess } from "../helpers/replica-process.js";

describe("counters and limits shared by replicas", () => {
  let cluster: TestPostgres;
  let pool: pg.Pool;

  before(async () => {
    cluster = await startPostgres();
    await Promise.all([installNonceCounter(cluster.url), installNonceCounter(cluster.url)]);
    await Promise.all([installSharedRateLimits(cluster.url), installSharedRateLimits(cluster.url)]);
    pool = new pg.Pool({ connectionString: cluster.url, max: 2 });
  });
  after(async () => {
    await pool?.end();
    cluster?.close();
  });

  it("nonces drawn by two processes at once: per key strictly increasing in each, never repeated across both", async () => {
    const keys = ["kf-a", "kf-b"];
    const drawers = [startReplicaProcess("nonces", cluster.url, ["400", ...keys]), startReplicaProcess("nonces", cluster.url, ["400", ...keys])];
    for (const d of drawers) d.send("go");
    const results = await Promise.all(drawers.map((d) => d.waitFor((m) => m.drawn !== undefined, 60_000)));
    const perKey = new Map<string, bigint[]>(keys.map((k) => [k, []]));
    for (const r of results) {
      for (const [key, values] of Object.entries(r.drawn as Record<string, string[]>)) {
        const sequence = values.map(BigInt);
        assert.equal(sequence.length, 200);
        for (let i = 1; i < sequence.length; i++)
          assert.ok((sequence[i] as bigint) > (sequence[i - 1] as bigint), `${key}: ${sequence[i]} after ${sequence[i - 1]}`);
        perKey.get(key)?.push(...sequence);
      }
    }
    for (const [key, all] of perKey) {
      assert.equal(new Set(all).size, 400, `${key}: a nonce was drawn twice`);
      const { rows } = await pool.query<{ last: string }>("SELECT last::text AS last FROM custos_nonce WHERE key_id = $1", [key]);
      const highest = [...all].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).at(-1);
      assert.equal(rows[0]?.last, highest?.toString(), `${key}: the row holds the highest nonce handed out`);
    }
  });

  it("a nonce never goes backwards: a candidate below the last one (a clock stepped back) is raised above it", async () => {
    const counter = new PostgresNonceCounter(pool);
    const now = Date.now();
    const first = BigInt(await counter.next("kf-clock", now));
    assert.equal(first, BigInt(now), "the candidate is used when it is above the last nonce");
    const second = BigInt(await counter.next("kf-clock", now - 60_000));
    assert.equal(second, first + 1n);
    await assert.rejects(counter.next("kf-clock", 0), RangeError);
  });

  it("a key's limit holds for the deployment: two processes hammering one key get the configured rate, not twice it", async (t) => {
    const perSecond = 50;
    const burst = 10;
    const durationMs = 3_000;
    const limiters = [0, 1].map(() => startReplicaProcess("limiter", cluster.url, [String(perSecond), String(burst), String(durationMs), "2000000"]));
    for (const l of limiters) await l.waitFor((m) => m.ready === true, 30_000);
    const started = performance.now();
    for (const l of limiters) l.send("go");
    const results = await Promise.all(limiters.map((l) => l.waitFor((m) => m.granted !== undefined, 60_000)));
    const windowS = (performance.now() - started) / 1000;
    const granted = results.reduce((sum, r) => sum + (r.granted as number), 0);
    const batch = results[0]?.batch as number;
    // The documented tolerance: burst + rate × window + replicas × 2 × batch.
    const bound = burst + perSecond * windowS + 2 * 2 * batch;
    const perReplica = 2 * (burst + perSecond * windowS);
    t.diagnostic(`granted ${granted} in ${windowS.toFixed(2)} s (bound ${bound.toFixed(0)}; per-replica limits would allow ~${perReplica.toFixed(0)})`);
    assert.ok(granted <= bound, `granted ${granted} > ${bound}`);
    // Not refusing everything either: at least the rate over the run, less a second of it.
    assert.ok(granted >= perSecond * (durationMs / 1000 - 1), `granted only ${granted}`);
    for (const r of results) assert.ok((r.attempts as number) > (r.granted as number), "each process was refused at times: it hammered");
  });

  it("the sign path never waits: take() answers synchronously, and a name's first request is granted on credit", async () => {
    const limiter = new SharedRateLimiter({ db: pool, limit: { perSecond: 1, burst: 1 }, scope: "client" });
    assert.equal(limiter.take("quiet"), true, "one token (the batch at this rate) on credit");
    assert.equal(limiter.take("quiet"), false, "nothing more until the lease answers");
    await limiter.settled();
    // The lease repaid the credit with the bucket's one token: still nothing to spend.
    assert.equal(limiter.take("quiet"), false);
    const { rows } = await pool.query<{ tokens: number }>("SELECT tokens FROM custos_rate_bucket WHERE name = 'client:quiet'");
    assert.ok((rows[0]?.tokens ?? 1) < 1, "the credited token was charged to the shared bucket");
  });

  it("a burst before the first lease answers is granted on credit up to one batch, and no further", async () => {
    const limiter = new SharedRateLimiter({ db: pool, limit: { perSecond: 1000, burst: 2000 }, scope: "client" });
    assert.equal(limiter.batchSize, 100);
    const burst = Array.from({ length: 150 }, () => limiter.take("cold")).filter(Boolean).length;
    assert.equal(burst, 100, "one batch on credit while the first lease is in flight");
    await limiter.settled();
    // The lease repaid the debt and brought a batch: the name spends from it.
    assert.equal(Array.from({ length: 100 }, () => limiter.take("cold")).filter(Boolean).length, 100);
  });

  it("PostgreSQL unreachable: a limiter spends at most one batch on credit, then refuses (fail closed)", async () => {
    const dead = new pg.Pool({ connectionString: cluster.url.replace(/:\d+\//, ":1/"), max: 1 });
    let errors = 0;
    const limiter = new SharedRateLimiter({ db: dead, limit: { perSecond: 1000, burst: 1000 }, scope: "key", onError: () => errors++ });
    const granted = Array.from({ length: 150 }, () => limiter.take("k")).filter(Boolean).length;
    await limiter.settled();
    const later = Array.from({ length: 50 }, () => limiter.take("k")).filter(Boolean).length;
    await dead.end();
    assert.equal(granted, 100, "one batch on credit, before the lease failed");
    assert.equal(later, 0);
    assert.ok(errors >= 1);
  });
});
