import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { ChangeFeed, LISTENER_APPLICATION_NAME, installChangeFeed, readGeneration } from "../../src/replication/change-feed.js";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";
import { startReplicaProcess } from "../helpers/replica-process.js";

const wallMs = (): number => performance.timeOrigin + performance.now();

/** Polls `condition` until it holds or `timeoutMs` passes; returns whether it held. */
async function eventually(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  for (const deadline = performance.now() + timeoutMs; performance.now() < deadline; ) {
    if (await condition()) return true;
    await new Promise((r) => setTimeout(r, 5));
  }
  return condition();
}

describe("the change feed (generation row, NOTIFY fast path, poll as the truth)", () => {
  let cluster: TestPostgres;
  let admin: pg.Client;

  before(async () => {
    cluster = await startPostgres();
    admin = new pg.Client({ connectionString: cluster.url });
    await admin.connect();
    await admin.query("CREATE TABLE feed_probe (id serial PRIMARY KEY, v integer NOT NULL)");
    // Two replicas starting together install the same schema and triggers at once.
    await Promise.all([installChangeFeed(cluster.url, ["feed_probe"]), installChangeFeed(cluster.url, ["feed_probe"])]);
  });
  after(async () => {
    await admin?.end();
    cluster?.close();
  });

  const terminateListeners = async (): Promise<number> =>
    (await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [LISTENER_APPLICATION_NAME])).rowCount ?? 0;

  it("a change committed by another process reaches onChange; p99 over 100 changes within 250 ms", async (t) => {
    const firstSeen = new Map<bigint, number>();
    const feed = await ChangeFeed.start({ url: cluster.url, onChange: (g) => void firstSeen.set(g, wallMs()) });
    const writer = startReplicaProcess("writer", cluster.url);
    const latencies: number[] = [];
    try {
      for (let i = 0; i < 100; i++) {
        writer.send("change");
        const m = await writer.waitFor(() => true, 10_000, i);
        const generation = BigInt(m.generation as string);
        assert.ok(await eventually(() => feed.generation >= generation, 5_000), `change ${i} (generation ${generation}) never reached onChange`);
        latencies.push((firstSeen.get(generation) ?? wallMs()) - (m.committingAt as number));
      }
    } finally {
      writer.proc.stdin?.end();
      await writer.exited;
      await feed.stop();
    }
    latencies.sort((a, b) => a - b);
    const p99 = latencies[Math.ceil(latencies.length * 0.99) - 1] ?? Number.POSITIVE_INFINITY;
    t.diagnostic(`propagation p50 ${latencies[49]?.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms (the bench owns the numbers)`);
    assert.ok(p99 <= 250, `p99 ${p99.toFixed(1)} ms over ${latencies.length} changes`);
  });

  it("a replica whose listening session was killed still converges through the poll", async () => {
    const feed = await ChangeFeed.start({ url: cluster.url, onChange: () => undefined, pollIntervalMs: 300, listenRetryMs: 120_000 });
    try {
      assert.equal(feed.listening, true);
      assert.equal(await terminateListeners(), 1);
      assert.ok(await eventually(() => !feed.listening, 5_000), "the feed did not notice its session was killed");
      await admin.query("INSERT INTO feed_probe (v) VALUES (3)");
      const committed = await readGeneration(admin);
      assert.ok(await eventually(() => feed.generation === committed, 5_000), "no convergence without the listening session");
      assert.equal(feed.listening, false, "the listener stayed down: the poll delivered the change");
    } finally {
      await feed.stop();
    }
  });

  it("after a reconnect the feed re-reads: a change committed while nobody listened is not lost", async () => {
    const feed = await ChangeFeed.start({ url: cluster.url, onChange: () => undefined, pollIntervalMs: 600_000, listenRetryMs: 1_500 });
    try {
      assert.equal(await terminateListeners(), 1);
      assert.ok(await eventually(() => !feed.listening, 1_000), "the feed did not notice its session was killed");
      await admin.query("INSERT INTO feed_probe (v) VALUES (4)");
      const missed = await readGeneration(admin);
      assert.equal(feed.listening, false, "the change was committed while no session listened");
      // No poll for ten minutes, and the NOTIFY went to no session: only the reconnect's re-read can deliver it.
      assert.ok(await eventually(() => feed.generation === missed, 5_000), "the missed change was not re-read on reconnect");
      assert.equal(feed.listening, true);
      await admin.query("INSERT INTO feed_probe (v) VALUES (5)");
      const next = await readGeneration(admin);
      assert.ok(await eventually(() => feed.generation === next, 2_000), "the restored listener does not deliver");
    } finally {
      await feed.stop();
    }
  });

  it("concurrent changes from two processes: no bump lost, onChange never overlaps and ends on the last generation", async () => {
    let running = 0;
    let overlapped = false;
    const feed = await ChangeFeed.start({
      url: cluster.url,
      onChange: async () => {
        overlapped ||= ++running > 1;
        await new Promise((r) => setImmediate(r));
        running--;
      },
      pollIntervalMs: 200,
    });
    try {
      const before = await readGeneration(admin);
      const bumpers = [startReplicaProcess("bumper", cluster.url, ["300"]), startReplicaProcess("bumper", cluster.url, ["300"])];
      for (const b of bumpers) await b.waitFor((m) => m.done === 300, 60_000);
      const afterBumps = await readGeneration(admin);
      assert.equal(afterBumps - before, 600n, "every committed statement bumped the generation exactly once");
      assert.ok(await eventually(() => feed.generation === afterBumps, 5_000), `the feed stopped at ${feed.generation}, not ${afterBumps}`);
      assert.equal(overlapped, false);
    } finally {
      await feed.stop();
    }
  });

  it("an onChange that throws is retried until it succeeds", async () => {
    let failures = 1;
    const feed = await ChangeFeed.start({
      url: cluster.url,
      onChange: () => {
        if (failures-- > 0) throw new Error("the reload failed");
      },
      pollIntervalMs: 200,
      onError: () => undefined,
    });
    try {
      const start = feed.generation;
      await admin.query("INSERT INTO feed_probe (v) VALUES (6)");
      const committed = await readGeneration(admin);
      assert.ok(await eventually(() => feed.generation === committed, 5_000), "the failed reload was not retried");
      assert.notEqual(committed, start);
      assert.equal(failures, -1, "onChange ran twice: once failing, once succeeding");
    } finally {
      await feed.stop();
    }
  });

  it("a PostgreSQL restart: the feed reports how stale it is while the server is down, then recovers by itself", async () => {
    const feed = await ChangeFeed.start({ url: cluster.url, onChange: () => undefined, pollIntervalMs: 200, listenRetryMs: 200, onError: () => undefined });
    try {
      await admin.end(); // a fast shutdown would cut it: only the feed's sessions live through the outage
      cluster.stopServer();
      assert.ok(await eventually(() => !feed.listening, 5_000), "the listener did not notice the server stopped");
      assert.ok(await eventually(() => feed.msSinceConfirmed() > 1_000, 5_000), "staleness is not reported");
      cluster.startServer();
      admin = new pg.Client({ connectionString: cluster.url });
      await admin.connect();
      await admin.query("INSERT INTO feed_probe (v) VALUES (7)");
      const committed = await readGeneration(admin);
      assert.ok(await eventually(() => feed.generation === committed, 10_000), "no convergence after the restart");
      assert.ok(await eventually(() => feed.listening, 10_000), "the listener did not come back");
      assert.ok(feed.msSinceConfirmed() < 1_000);
    } finally {
      cluster.startServer();
      await feed.stop();
    }
  });

  it("a replica does not start blind: the feed refuses to start when PostgreSQL is unreachable", async () => {
    const nobody = cluster.url.replace(/:\d+\//, ":1/");
    await assert.rejects(ChangeFeed.start({ url: nobody, onChange: () => undefined }), (e: NodeJS.ErrnoException) => e.code === "ECONNREFUSED");
  });
});
