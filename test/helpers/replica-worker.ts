/**
 * A replica-like child process for the replication tests: `node replica-worker.js ROLE URL …`.
 * It prints one JSON object per line on stdout and reads commands (one per line) on stdin.
 * Roles exercise one primitive each from another process, as a second custos replica would.
 */
import { createInterface } from "node:readline";
import pg from "pg";
import { Leadership } from "../../src/replication/leadership.js";
import { PostgresNonceCounter } from "../../src/replication/nonce-counter.js";
import { SharedRateLimiter } from "../../src/replication/shared-rate-limit.js";

const [role, url, ...args] = process.argv.slice(2);
if (!role || !url) throw new Error("usage: replica-worker ROLE URL …");

const say = (o: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
};
const wallMs = (): number => performance.timeOrigin + performance.now();
// Lines are queued from the start: a readline iterator created later would miss those already read.
const queued: string[] = [];
const readers: Array<(line: string | undefined) => void> = [];
let stdinClosed = false;
const input = createInterface({ input: process.stdin });
input.on("line", (line) => (readers.length > 0 ? readers.shift()?.(line) : queued.push(line)));
input.on("close", () => {
  stdinClosed = true;
  for (const r of readers.splice(0)) r(undefined);
});
/** The next command line; undefined once stdin is closed. */
const nextLine = (): Promise<string | undefined> =>
  queued.length > 0 ? Promise.resolve(queued.shift()) : stdinClosed ? Promise.resolve(undefined) : new Promise((r) => readers.push(r));

switch (role) {
  // Commits one change per stdin line; reports the generation it committed and when it asked to commit.
  case "writer": {
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    while ((await nextLine()) !== undefined) {
      await db.query("BEGIN");
      await db.query("INSERT INTO feed_probe (v) VALUES (1)");
      const { rows } = await db.query<{ g: string }>("SELECT generation::text AS g FROM custos_generation WHERE id = 1");
      const committingAt = wallMs();
      await db.query("COMMIT");
      say({ generation: rows[0]?.g, committingAt });
    }
    await db.end();
    break;
  }
  // Commits `count` changes back to back, each its own transaction.
  case "bumper": {
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    const count = Number(args[0]);
    for (let i = 0; i < count; i++) await db.query("INSERT INTO feed_probe (v) VALUES (2)");
    await db.end();
    say({ done: count });
    break;
  }
  // Takes part in the housekeeping election until killed.
  case "leader": {
    const leadership = new Leadership({
      url,
      retryMs: 200,
      onGain: () => say({ event: "gain", pid: process.pid }),
      onLoss: () => say({ event: "loss", pid: process.pid }),
    });
    leadership.start();
    say({ event: "started", pid: process.pid });
    await new Promise<never>(() => setInterval(() => undefined, 60_000)); // alive until killed
    break;
  }
  // Draws `count` nonces round-robin over the keys once told to go; reports them per key, in draw order.
  case "nonces": {
    const [countText, ...keys] = args;
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    const counter = new PostgresNonceCounter(pool);
    const drawn: Record<string, string[]> = Object.fromEntries(keys.map((k) => [k, []]));
    say({ ready: true });
    await nextLine();
    for (let i = 0; i < Number(countText); i++) {
      const key = keys[i % keys.length] as string;
      drawn[key]?.push(await counter.next(key, Date.now()));
    }
    await pool.end();
    say({ drawn });
    break;
  }
  // Once told to go, calls take("k") for `durationMs` (at most `maxAttempts` times) and reports the count granted.
  case "limiter": {
    const [perSecond, burst, durationMs, maxAttempts] = args.map(Number) as [number, number, number, number];
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    const limiter = new SharedRateLimiter({ db: pool, limit: { perSecond, burst }, scope: "key" });
    say({ ready: true });
    await nextLine();
    let granted = 0;
    let attempts = 0;
    const end = performance.now() + durationMs;
    while (performance.now() < end && attempts < maxAttempts) {
      attempts++;
      if (limiter.take("k")) granted++;
      await new Promise((r) => setImmediate(r)); // let leases complete, as a busy event loop would
    }
    await limiter.settled();
    await pool.end();
    say({ granted, attempts, batch: limiter.batchSize });
    break;
  }
  default:
    throw new Error(`unknown role ${role}`);
}
process.exit(0);
