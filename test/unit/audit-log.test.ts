import { afterEach, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../helpers/manual-clock.js";
import { PassThrough } from "node:stream";
import { AuditLog, verifyAuditChain, type AuditEvent } from "../../src/audit/audit-log.js";
import { GENESIS_HASH } from "../../src/audit/chain.js";
import { AuditChainMonitor, type ChainVerification } from "../../src/audit/chain-monitor.js";
import { CustosError } from "../../src/errors.js";
import { createLogger } from "../../src/log.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import type { AuditTable, Store, StoredAuditEvent } from "../../src/store/store.js";

// Long enough that the background timer never flushes during a test: every write below is
// one the test asked for. (setInterval overflows above 2^31-1 ms, so not Infinity.)
const NO_TIMER = { flushIntervalMs: 3_600_000 };

function logSink() {
  const stream = new PassThrough();
  let text = "";
  stream.on("data", (d: Buffer) => (text += d.toString()));
  return { logger: createLogger("info", stream), text: () => text };
}

const ev = (i: number): AuditEvent => ({ kind: "sign", actor: "spiffe://custos/engine/alpha", outcome: "allowed", key: "k1", details: { i } });

async function readAll(store: Store): Promise<StoredAuditEvent[]> {
  return store.audit.readAudit(0, 1_000_000);
}

/** The `details.i` of every stored event, in seq order. */
async function storedOrder(store: Store): Promise<number[]> {
  return (await readAll(store)).map((e) => (JSON.parse(e.body) as { details: { i: number } }).details.i);
}

/** Delegates to a real store's audit table; the chain writer's `appendChained` can be told to fail once, and calls are counted. */
class FlakyStore {
  failNextAppend = false;
  appendCalls = 0;
  readonly audit: AuditTable;
  constructor(inner: Store) {
    // Everything but appendChained goes straight to the real table.
    this.audit = new Proxy(inner.audit, {
      get: (target, prop, receiver) => (prop === "appendChained" ? (link: ChainLink) => this.appendChained(target, link) : Reflect.get(target, prop, receiver)),
    });
  }
  private async appendChained(inner: AuditTable, link: ChainLink): Promise<StoredAuditEvent[]> {
    this.appendCalls++;
    if (this.failNextAppend) {
      this.failNextAppend = false;
      await Promise.resolve(); // fail asynchronously, like a real database
      throw new CustosError("STORE_ERROR", "database write failed", { retryable: true });
    }
    return inner.appendChained(link);
  }
}

type ChainLink = Parameters<AuditTable["appendChained"]>[0];

describe("AuditLog", () => {
  let store: SqliteStore;
  beforeEach(() => {
    store = new SqliteStore(":memory:");
  });
  afterEach(async () => {
    await store.close();
  });

  it("writes many records as one chain that verifies", async () => {
    const log = await AuditLog.open(store, logSink().logger, NO_TIMER);
    for (let i = 0; i < 1_000; i++) log.record(ev(i));
    assert.equal(log.queueDepth, 1_000);
    await log.flush();
    assert.equal(log.queueDepth, 0);

    assert.deepEqual(await verifyAuditChain(store), { ok: true, events: 1_000, lastHash: (await store.audit.lastAudit())!.hash, lastSeq: 1_000 });
    const rows = await readAll(store);
    assert.equal(rows[0]!.prevHash, GENESIS_HASH);
    // The body is canonical JSON carrying its own seq, so a row cannot be moved unnoticed.
    for (const r of rows) assert.equal((JSON.parse(r.body) as { seq: number }).seq, r.seq);
    assert.deepEqual(await storedOrder(store), [...Array(1_000).keys()]);
    await log.close();
  });

  it("stores the event fields in the body", async () => {
    const log = await AuditLog.open(store, logSink().logger, NO_TIMER);
    await log.recordNow({ kind: "key.import", actor: "spiffe://custos/admin/a", outcome: "ok", key: "k1", version: 1, details: { exchange: "binance" } });
    const body = JSON.parse((await store.audit.lastAudit())!.body) as Record<string, unknown>;
    assert.equal(body.kind, "key.import");
    assert.equal(body.actor, "spiffe://custos/admin/a");
    assert.equal(body.outcome, "ok");
    assert.equal(body.key, "k1");
    assert.equal(body.version, 1);
    assert.deepEqual(body.details, { exchange: "binance" });
    assert.ok(!Number.isNaN(Date.parse(body.at as string)), "at is a timestamp");
    await log.close();
  });

  it("recordNow returns only once the event is durable", async () => {
    const log = await AuditLog.open(store, logSink().logger, NO_TIMER);
    log.record(ev(0));
    await log.recordNow(ev(1));
    assert.deepEqual(await storedOrder(store), [0, 1], "the queued event before it is durable too");
    await log.close();
  });

  it("flushes on its own once maxBatch events are queued", async () => {
    const log = await AuditLog.open(store, logSink().logger, { ...NO_TIMER, maxBatch: 10 });
    for (let i = 0; i < 9; i++) log.record(ev(i));
    await new Promise((r) => setImmediate(r));
    assert.equal((await readAll(store)).length, 0, "below maxBatch nothing is written");
    log.record(ev(9));
    // The write was started by record(); flush() joins it.
    await log.flush();
    assert.equal((await readAll(store)).length, 10);
    await log.close();
  });

  it("concurrent flushes (and records between them) do not fork the chain", async () => {
    const log = await AuditLog.open(store, logSink().logger, { ...NO_TIMER, maxBatch: 7 });
    const flushes: Promise<void>[] = [];
    let i = 0;
    for (let round = 0; round < 20; round++) {
      for (let j = 0; j < 5; j++) log.record(ev(i++));
      // Several flushes started while a write is in flight.
      flushes.push(log.flush(), log.flush());
      if (round % 3 === 0) await Promise.resolve(); // let some writes finish mid-way
    }
    await Promise.all(flushes);
    await log.flush();

    const check = await verifyAuditChain(store);
    assert.equal(check.ok, true);
    assert.equal(check.events, 100);
    assert.deepEqual(await storedOrder(store), [...Array(100).keys()]);
    await log.close();
  });

  it("keeps events when a write fails and writes them, in order, on the next flush", async () => {
    const sink = logSink();
    const flaky = new FlakyStore(store);
    const log = await AuditLog.open(flaky, sink.logger, NO_TIMER);
    await log.recordNow(ev(0)); // one event already durable: the retry must continue after it

    for (let i = 1; i <= 3; i++) log.record(ev(i));
    flaky.failNextAppend = true;
    await assert.rejects(log.flush(), (e: unknown) => e instanceof CustosError && e.code === "STORE_ERROR");
    assert.equal(log.queueDepth, 3, "nothing dropped");
    assert.deepEqual(await storedOrder(store), [0], "nothing partially written");
    assert.match(sink.text(), /"event":"audit\.flush_failed"/);

    log.record(ev(4)); // queued after the failure: must land after the retried ones
    await log.flush();
    assert.equal(log.queueDepth, 0);
    assert.deepEqual(await storedOrder(store), [0, 1, 2, 3, 4]);
    const check = await verifyAuditChain(store);
    assert.deepEqual(check, { ok: true, events: 5, lastHash: (await store.audit.lastAudit())!.hash, lastSeq: 5 });
    await log.close();
  });

  it("a flush waiting behind a failed write does not lose events", async () => {
    const flaky = new FlakyStore(store);
    const log = await AuditLog.open(flaky, logSink().logger, NO_TIMER);
    log.record(ev(0));
    flaky.failNextAppend = true;
    const first = log.flush();
    log.record(ev(1));
    const second = log.flush(); // waits for the failing write
    await assert.rejects(first, (e: unknown) => e instanceof CustosError && e.code === "STORE_ERROR");
    await second.catch(() => undefined); // may share the failure; what matters is the queue
    await log.flush();
    assert.deepEqual(await storedOrder(store), [0, 1]);
    assert.equal((await verifyAuditChain(store)).ok, true);
    await log.close();
  });

  it("continues the stored chain when reopened (seq and previous hash)", async () => {
    const first = await AuditLog.open(store, logSink().logger, NO_TIMER);
    for (let i = 0; i < 3; i++) first.record(ev(i));
    await first.close();
    const last = (await store.audit.lastAudit())!;
    assert.equal(last.seq, 3);

    const second = await AuditLog.open(store, logSink().logger, NO_TIMER);
    second.record(ev(3));
    second.record(ev(4));
    await second.close();

    const rows = await readAll(store);
    assert.deepEqual(
      rows.map((r) => r.seq),
      [1, 2, 3, 4, 5],
    );
    assert.equal(rows[3]!.prevHash, last.hash);
    assert.equal((await verifyAuditChain(store)).ok, true);
  });

  it("close writes what is queued", async () => {
    const log = await AuditLog.open(store, logSink().logger, NO_TIMER);
    log.record(ev(0));
    log.record(ev(1));
    await log.close();
    assert.deepEqual(await storedOrder(store), [0, 1]);
  });

  it("reports its flush lag (age of the oldest unwritten event) and each successful write's duration", async () => {
    const flaky = new FlakyStore(store);
    const clock = new ManualClock();
    const log = await AuditLog.open(flaky, logSink().logger, { ...NO_TIMER, clock: () => clock.monotonic() });
    const flushes: number[] = [];
    log.onFlush = (seconds) => void flushes.push(seconds);
    assert.equal(log.lagSeconds, 0, "nothing queued: no lag");
    log.record(ev(0));
    clock.advance(30);
    log.record(ev(1)); // a newer event does not reset the age of the oldest
    assert.equal(log.lagSeconds, 0.03);
    flaky.failNextAppend = true;
    await assert.rejects(log.flush());
    assert.deepEqual(flushes, [], "a failed write is not a flush");
    assert.equal(log.lagSeconds, 0.03, "still waiting after a failed write");
    await log.flush();
    assert.equal(flushes.length, 1);
    assert.ok(flushes[0]! >= 0 && flushes[0]! < 60);
    assert.equal(log.lagSeconds, 0, "everything written");
    await log.close();
  });

  it("flush with nothing queued writes nothing", async () => {
    const flaky = new FlakyStore(store);
    const log = await AuditLog.open(flaky, logSink().logger, NO_TIMER);
    await log.flush();
    await log.flush();
    assert.equal(flaky.appendCalls, 0);
    await log.close();
  });
});

describe("verifyAuditChain", () => {
  it("passes on an empty store", async () => {
    const store = new SqliteStore(":memory:");
    assert.deepEqual(await verifyAuditChain(store), { ok: true, events: 0, lastHash: GENESIS_HASH, lastSeq: 0 });
    await store.close();
  });

  it("reports a tampered stored event", async () => {
    // Rows written straight to the store (bypassing AuditLog), one with a forged body.
    const store = new SqliteStore(":memory:");
    const log = await AuditLog.open(store, logSink().logger, NO_TIMER);
    for (let i = 0; i < 5; i++) log.record(ev(i));
    await log.close();
    const rows = await readAll(store);
    const forged = new SqliteStore(":memory:");
    await forged.audit.appendAudit(rows.map((r) => (r.seq === 3 ? { ...r, body: r.body.replace('"allowed"', '"denied"') } : r)));
    const check = await verifyAuditChain(forged);
    assert.equal(check.ok, false);
    assert.equal(!check.ok && check.brokenAt, 3);
    assert.equal(check.events, 2);
    await store.close();
    await forged.close();
  });
});

describe("verifying a long chain on a running service", () => {
  let store: SqliteStore;
  beforeEach(() => {
    store = new SqliteStore(":memory:");
  });
  afterEach(async () => {
    await store.close();
  });

  async function chainOf(n: number, from = 0): Promise<AuditLog> {
    const log = await AuditLog.open(store, logSink().logger, NO_TIMER);
    for (let i = from; i < from + n; i++) log.record(ev(i));
    await log.flush();
    return log;
  }

  it("lets the event loop run between pages, reports progress, and continues from a verified event", async () => {
    const log = await chainOf(10_000);
    // A loop that counts event-loop turns: it only advances while the verifier yields.
    let turns = 0;
    let counting = true;
    const tick = () => {
      turns++;
      if (counting) setImmediate(tick);
    };
    setImmediate(tick);
    const progress: number[] = [];
    const full = await verifyAuditChain(store, { pageSize: 1_000, onProgress: (events) => progress.push(events) });
    counting = false;
    assert.deepEqual(full, { ok: true, events: 10_000, lastHash: (await store.audit.lastAudit())!.hash, lastSeq: 10_000 });
    assert.ok(turns >= 9, `the event loop turned ${turns} times during 10 pages`);
    assert.deepEqual(progress, [1_000, 2_000, 3_000, 4_000, 5_000, 6_000, 7_000, 8_000, 9_000, 10_000]);

    for (let i = 0; i < 5; i++) log.record(ev(10_000 + i));
    await log.flush();
    const rest = await verifyAuditChain(store, { from: { seq: full.lastSeq, hash: full.ok ? full.lastHash : "" } });
    assert.deepEqual(rest, { ok: true, events: 5, lastHash: (await store.audit.lastAudit())!.hash, lastSeq: 10_005 });
    // Continuing from a hash that is not the chain's is a broken link.
    const wrong = await verifyAuditChain(store, { from: { seq: full.lastSeq, hash: GENESIS_HASH } });
    assert.equal(wrong.ok, false);
    await log.close();
  });

  it("the console's monitor checks the whole chain once, then only what was appended; callers share a run", async () => {
    const log = await chainOf(3_000);
    let reads = 0;
    const counted = {
      audit: new Proxy(store.audit, {
        get: (target, prop, receiver) =>
          prop === "readAudit"
            ? (afterSeq: number, limit: number) => {
                reads++;
                return target.readAudit(afterSeq, limit);
              }
            : Reflect.get(target, prop, receiver),
      }),
    };
    const monitor = new AuditChainMonitor(counted);
    const [a, b] = await Promise.all([monitor.check(), monitor.check()]);
    assert.deepEqual(a, { state: "verified", events: 3_000 });
    assert.deepEqual(b, a);
    assert.equal(reads, 3, "one run for both callers: two pages of 2,000 and the empty read at the end");

    for (let i = 0; i < 10; i++) log.record(ev(3_000 + i));
    await log.flush();
    reads = 0;
    assert.deepEqual(await monitor.check(), { state: "verified", events: 3_010 });
    assert.equal(reads, 2, "only the new events are read");
    await log.close();
  });

  it("a caller that cannot wait sees how far the check got; a broken link stays reported", async () => {
    const log = await chainOf(4_500);
    const impatient = new AuditChainMonitor(store, 0);
    const first = await impatient.check();
    assert.equal(first.state, "checking");
    let later: ChainVerification = first;
    while (later.state === "checking") later = await impatient.check();
    assert.deepEqual(later, { state: "verified", events: 4_500 });

    // Someone edits an event the monitor has not seen yet.
    for (let i = 0; i < 3; i++) log.record(ev(4_500 + i));
    await log.flush();
    const db = (store as unknown as { db: { prepare(sql: string): { run(...a: unknown[]): unknown } } }).db;
    db.prepare("UPDATE audit_events SET body = replace(body, '\"allowed\"', '\"denied\"') WHERE seq = ?").run(4_502);
    let after = await impatient.check();
    while (after.state === "checking") after = await impatient.check();
    assert.deepEqual(after, { state: "broken", events: 4_501, brokenAt: 4_502, reason: "hash does not match the event body" });
    assert.deepEqual(await impatient.check(), after, "still reported");
    await log.close();
  });
});
