import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RateLimiter } from "../../src/signing/rate-limiter.js";

/** A clock the test moves by hand (milliseconds). */
function manualClock(start = 1_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

/** How many takes succeed in a row right now (stops at the first denial). */
function drain(limiter: RateLimiter, name: string, max = 1_000): number {
  let n = 0;
  while (n < max && limiter.take(name)) n++;
  return n;
}

// Clock steps are chosen so token counts are exact binary fractions (no float rounding).
describe("RateLimiter", () => {
  it("allows the burst at once, then denies", () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ perSecond: 1, burst: 3 }, clock.now);
    assert.deepEqual(
      [1, 2, 3, 4, 5].map(() => limiter.take("a")),
      [true, true, true, false, false],
    );
  });

  it("refills at perSecond from the injected clock", () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ perSecond: 2, burst: 4 }, clock.now);
    assert.equal(drain(limiter, "a"), 4);
    clock.advance(250); // half a token: not yet one
    assert.equal(limiter.take("a"), false);
    clock.advance(250); // one token
    assert.equal(limiter.take("a"), true);
    assert.equal(limiter.take("a"), false);
    clock.advance(1_000); // 2 tokens
    assert.equal(drain(limiter, "a"), 2);
  });

  it("denied takes do not consume tokens", () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ perSecond: 1, burst: 1 }, clock.now);
    assert.equal(limiter.take("a"), true);
    for (let i = 0; i < 4; i++) {
      clock.advance(125);
      assert.equal(limiter.take("a"), false);
    }
    clock.advance(500); // 4 × 125 + 500 = 1 s since the last success
    assert.equal(limiter.take("a"), true);
  });

  it("never holds more than the burst, however long it was idle", () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ perSecond: 100, burst: 5 }, clock.now);
    assert.equal(drain(limiter, "a"), 5);
    clock.advance(3_600_000);
    assert.equal(drain(limiter, "a"), 5);
  });

  it("supports fractional rates", () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ perSecond: 0.5, burst: 1 }, clock.now);
    assert.equal(limiter.take("a"), true);
    clock.advance(1_000);
    assert.equal(limiter.take("a"), false);
    clock.advance(1_000);
    assert.equal(limiter.take("a"), true);
  });

  it("remembers when each name last asked, granted or not", () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ perSecond: 0, burst: 1 }, clock.now);
    assert.equal(limiter.lastRequest("a"), undefined);
    limiter.take("a");
    clock.advance(500);
    assert.equal(limiter.take("a"), false);
    assert.equal(limiter.lastRequest("a"), 1_500);
    assert.equal(limiter.lastRequest("b"), undefined);
  });

  it("keeps one bucket per name", () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ perSecond: 1, burst: 2 }, clock.now);
    assert.equal(drain(limiter, "alpha"), 2);
    assert.equal(limiter.take("alpha"), false);
    assert.equal(drain(limiter, "beta"), 2, "another name is untouched by alpha's use");
    clock.advance(1_000);
    assert.equal(drain(limiter, "alpha"), 1);
    assert.equal(drain(limiter, "beta"), 1);
  });

  it("a name first seen late starts with a full burst", () => {
    const clock = manualClock(0);
    const limiter = new RateLimiter({ perSecond: 1, burst: 3 }, clock.now);
    clock.advance(10_000);
    assert.equal(drain(limiter, "late"), 3);
  });

  it("a zero rate never refills", () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ perSecond: 0, burst: 1 }, clock.now);
    assert.equal(limiter.take("a"), true);
    clock.advance(86_400_000);
    assert.equal(limiter.take("a"), false);
  });
});
