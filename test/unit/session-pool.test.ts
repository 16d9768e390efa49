import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { setImmediate as tick } from "node:timers/promises";
import { CustosError } from "../../src/errors.js";
import { SessionPool } from "../../src/hsm/pkcs11/session-pool.js";

const isUnavailable = (e: unknown) => e instanceof CustosError && e.code === "HSM_UNAVAILABLE" && e.retryable;

/** Tracks whether a lease promise has settled, without awaiting it. */
function watch<S>(p: Promise<S>) {
  const w: { value?: S; error?: unknown; settled: boolean } = { settled: false };
  p.then(
    (v) => Object.assign(w, { value: v, settled: true }),
    (e: unknown) => Object.assign(w, { error: e, settled: true }),
  );
  return w;
}

describe("SessionPool", () => {
  it("leases each session once and takes it back on release", async () => {
    const pool = new SessionPool(["s1", "s2"], 4);
    const a = await pool.lease();
    const b = await pool.lease();
    assert.notEqual(a, b);
    assert.deepEqual(new Set([a, b]), new Set(["s1", "s2"]));
    assert.equal(pool.inUse, 2);
    assert.equal(pool.tryLease(), undefined, "nothing free");
    assert.equal(pool.waiting, 0, "tryLease never queues");
    pool.release(a);
    assert.equal(pool.inUse, 1);
    assert.equal(pool.tryLease(), a);
  });

  it("serves waiters first in, first out", async () => {
    const pool = new SessionPool(["s1", "s2"], 10);
    const held = [await pool.lease(), await pool.lease()];
    const waiters = [watch(pool.lease()), watch(pool.lease()), watch(pool.lease())];
    await tick();
    assert.equal(pool.waiting, 3);
    assert.ok(
      waiters.every((w) => !w.settled),
      "all wait while every session is leased",
    );

    pool.release(held[0]!);
    await tick();
    assert.deepEqual(
      waiters.map((w) => w.value),
      [held[0], undefined, undefined],
    );
    pool.release(held[1]!);
    await tick();
    assert.deepEqual(
      waiters.map((w) => w.value),
      [held[0], held[1], undefined],
    );
    pool.release(waiters[0]!.value!);
    await tick();
    assert.equal(waiters[2]!.value, held[0]);
    assert.equal(pool.waiting, 0);
    assert.equal(pool.tryLease(), undefined, "a session handed to a waiter is not also free");
  });

  it("refuses a waiter beyond maxWaiters with HSM_UNAVAILABLE", async () => {
    const pool = new SessionPool(["s1"], 2);
    await pool.lease();
    const queued = [watch(pool.lease()), watch(pool.lease())];
    await assert.rejects(pool.lease(), isUnavailable);
    assert.equal(pool.waiting, 2);
    await tick();
    assert.ok(
      queued.every((w) => !w.settled),
      "the queued ones still wait",
    );
  });

  it("with maxWaiters 0 never queues", async () => {
    const pool = new SessionPool(["s1"], 0);
    await pool.lease();
    await assert.rejects(pool.lease(), isUnavailable);
    assert.equal(pool.waiting, 0);
  });

  it("close rejects waiters, later leases, and ignores later releases", async () => {
    const pool = new SessionPool(["s1", "s2"], 5);
    const a = await pool.lease();
    await pool.lease();
    const waiters = [pool.lease(), pool.lease()];
    pool.close();
    for (const w of waiters) await assert.rejects(w, isUnavailable);
    assert.equal(pool.waiting, 0);

    const inUse = pool.inUse;
    pool.release(a); // a lease of the old generation comes back after close
    assert.equal(pool.inUse, inUse, "not taken back into the pool");
    assert.equal(pool.tryLease(), undefined);
    await assert.rejects(pool.lease(), isUnavailable);
  });

  it("never gives one session to two holders under contention", async () => {
    const pool = new SessionPool([1, 2, 3], 100);
    const held = new Set<number>();
    let maxHeld = 0;
    async function worker(i: number) {
      const s = await pool.lease();
      assert.ok(!held.has(s), `session ${s} leased twice`);
      held.add(s);
      maxHeld = Math.max(maxHeld, held.size);
      for (let t = 0; t < (i % 4) + 1; t++) await tick(); // hold it for a while
      held.delete(s);
      pool.release(s);
    }
    await Promise.all(Array.from({ length: 50 }, (_, i) => worker(i)));
    assert.equal(maxHeld, 3);
    assert.equal(pool.inUse, 0);
    assert.equal(pool.waiting, 0);
  });

  it("replace swaps a poisoned session for a fresh one, or drops it when none opened", async () => {
    const pool = new SessionPool(["a", "b"], 10);
    const first = pool.tryLease()!;
    const waiter = pool.lease(); // "the other" session is free, so this resolves at once
    const other = await waiter;
    const queued = pool.lease(); // now both are out: this one waits
    pool.replace(first, "fresh");
    assert.equal(await queued, "fresh", "the waiter gets the replacement");
    assert.deepEqual([...pool.sessions].sort(), [other, "fresh"].sort());
    pool.replace(other, undefined);
    assert.deepEqual([...pool.sessions], ["fresh"]);
    pool.release("fresh");
    assert.equal(pool.inUse, 0);
  });
});
