import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { LEADERSHIP_APPLICATION_NAME, Leadership } from "../../src/replication/leadership.js";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";
import { startReplicaProcess } from "../helpers/replica-process.js";

async function eventually(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  for (const deadline = performance.now() + timeoutMs; performance.now() < deadline; ) {
    if (await condition()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return condition();
}

describe("housekeeping leadership (a session advisory lock)", () => {
  let cluster: TestPostgres;
  let admin: pg.Client;

  before(async () => {
    cluster = await startPostgres();
    admin = new pg.Client({ connectionString: cluster.url });
    await admin.connect();
  });
  after(async () => {
    await admin?.end();
    cluster?.close();
  });

  const electionSessions = async (): Promise<number> =>
    Number(
      (await admin.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1", [LEADERSHIP_APPLICATION_NAME])).rows[0]?.n,
    );
  const heldLocks = async (): Promise<number> =>
    Number((await admin.query<{ n: string }>("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted")).rows[0]?.n);

  it("one of two replica processes leads; when it is SIGKILLed the other takes over within seconds", async (t) => {
    const first = startReplicaProcess("leader", cluster.url);
    await first.waitFor((m) => m.event === "gain");
    const second = startReplicaProcess("leader", cluster.url);
    try {
      await second.waitFor((m) => m.event === "started");
      assert.ok(await eventually(async () => (await electionSessions()) === 2, 5_000), "the second replica never joined the election");
      // A window of several retries (every 200 ms): the follower must not gain while the leader lives.
      await new Promise((r) => setTimeout(r, 1_200));
      assert.equal(
        second.messages.some((m) => m.event === "gain"),
        false,
        "two leaders at once",
      );
      assert.equal(await heldLocks(), 1);
      const killedAt = performance.now();
      first.proc.kill("SIGKILL");
      await first.exited;
      await second.waitFor((m) => m.event === "gain", 10_000);
      t.diagnostic(`takeover after SIGKILL: ${(performance.now() - killedAt).toFixed(0)} ms`);
      assert.equal(await heldLocks(), 1);
    } finally {
      first.proc.kill("SIGKILL");
      second.proc.kill("SIGKILL");
      await Promise.all([first.exited, second.exited]);
    }
  });

  it("a leader whose session is killed loses leadership (onLoss), then competes again with a new session", async () => {
    const events: string[] = [];
    const leadership = new Leadership({
      url: cluster.url,
      retryMs: 100,
      onGain: () => events.push("gain"),
      onLoss: () => events.push("loss"),
      onError: () => undefined,
    });
    leadership.start();
    try {
      assert.ok(await eventually(() => leadership.isLeader(), 5_000));
      await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [LEADERSHIP_APPLICATION_NAME]);
      assert.ok(await eventually(() => events.includes("loss"), 5_000), "no onLoss after the session was killed");
      // It competes again with a new session and, being alone, regains.
      assert.ok(await eventually(() => events.length === 3, 5_000), events.join());
      assert.deepEqual(events, ["gain", "loss", "gain"]);
      assert.equal(leadership.isLeader(), true);
    } finally {
      leadership.stop();
    }
  });

  it("stop() releases the lock at once: another replica gains it", async () => {
    const a = new Leadership({ url: cluster.url, retryMs: 100 });
    const b = new Leadership({ url: cluster.url, retryMs: 100 });
    a.start();
    try {
      assert.ok(await eventually(() => a.isLeader(), 5_000));
      b.start();
      a.stop();
      assert.equal(a.isLeader(), false);
      assert.ok(await eventually(() => b.isLeader(), 5_000), "the lock was not released by stop()");
    } finally {
      a.stop();
      b.stop();
    }
    assert.ok(await eventually(async () => (await heldLocks()) === 0, 5_000));
  });
});
