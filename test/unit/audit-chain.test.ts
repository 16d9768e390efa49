import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { GENESIS_HASH, chainHash, checkChain } from "../../src/audit/chain.js";
import type { StoredAuditEvent } from "../../src/store/store.js";

/** A well-formed chain of `n` events continuing (`prevSeq`, `prevHash`). */
function makeChain(n: number, prevSeq = 0, prevHash = GENESIS_HASH): StoredAuditEvent[] {
  const out: StoredAuditEvent[] = [];
  let hash = prevHash;
  for (let i = 1; i <= n; i++) {
    const seq = prevSeq + i;
    const body = JSON.stringify({ seq, kind: "sign", actor: "spiffe://custos/engine/alpha", outcome: "allowed", n: i });
    const e = { seq, body, prevHash: hash, hash: chainHash(hash, body) };
    out.push(e);
    hash = e.hash;
  }
  return out;
}

/** Deep copy, so each tamper case starts from an intact chain. */
const copy = (events: StoredAuditEvent[]) => events.map((e) => ({ ...e }));

/** Flips one bit of the character at `at` (keeps the string the same length). */
function flipChar(s: string, at: number): string {
  return s.slice(0, at) + String.fromCharCode(s.charCodeAt(at) ^ 1) + s.slice(at + 1);
}

describe("chainHash", () => {
  it("is SHA-256 over prevHash, a newline and the body", () => {
    const expected = createHash("sha256").update(`${GENESIS_HASH}\n{"a":1}`).digest("hex");
    assert.equal(chainHash(GENESIS_HASH, '{"a":1}'), expected);
  });

  it("depends on both inputs and on where they split", () => {
    const h = chainHash("ab", "c");
    assert.notEqual(h, chainHash("ab", "d"));
    assert.notEqual(h, chainHash("ac", "c"));
    // The separator keeps ("ab","c") and ("a","bc") apart.
    assert.notEqual(h, chainHash("a", "bc"));
  });
});

describe("checkChain", () => {
  const N = 10;

  it("accepts a valid chain from genesis", () => {
    const events = makeChain(N);
    const r = checkChain(events, 0, GENESIS_HASH);
    assert.deepEqual(r, { ok: true, events: N, lastHash: events[N - 1]!.hash });
  });

  it("accepts an empty run and returns the previous hash", () => {
    assert.deepEqual(checkChain([], 7, "ab".repeat(32)), { ok: true, events: 0, lastHash: "ab".repeat(32) });
  });

  it("accepts a run continuing from the middle of a chain", () => {
    const events = makeChain(N);
    const r = checkChain(events.slice(4), 4, events[3]!.hash);
    assert.equal(r.ok, true);
    assert.equal(r.events, N - 4);
  });

  it("rejects a run that does not continue the given previous event", () => {
    const events = makeChain(N);
    const wrongSeq = checkChain(events.slice(4), 3, events[3]!.hash);
    assert.equal(wrongSeq.ok, false);
    assert.equal(!wrongSeq.ok && wrongSeq.brokenAt, 5);
    const wrongHash = checkChain(events.slice(4), 4, events[2]!.hash);
    assert.equal(wrongHash.ok, false);
    assert.equal(!wrongHash.ok && wrongHash.brokenAt, 5);
  });

  // Each tamper at index i must be reported at the event it broke, with i good events before it.
  const tampers: Array<{
    name: string;
    apply: (events: StoredAuditEvent[], i: number) => StoredAuditEvent[];
    brokenSeq: (i: number) => number;
    goodBefore?: (i: number) => number;
  }> = [
    {
      name: "one byte of a body",
      apply: (ev, i) => {
        ev[i]!.body = flipChar(ev[i]!.body, 5);
        return ev;
      },
      brokenSeq: (i) => i + 1,
    },
    {
      name: "one byte of a prevHash",
      apply: (ev, i) => {
        ev[i]!.prevHash = flipChar(ev[i]!.prevHash, 0);
        return ev;
      },
      brokenSeq: (i) => i + 1,
    },
    {
      name: "one byte of a hash",
      apply: (ev, i) => {
        ev[i]!.hash = flipChar(ev[i]!.hash, 63);
        return ev;
      },
      brokenSeq: (i) => i + 1,
    },
    {
      name: "a deleted event (gap in seq)",
      apply: (ev, i) => {
        ev.splice(i, 1);
        return ev;
      },
      brokenSeq: (i) => i + 2, // reported at the first event after the gap
    },
    {
      name: "a repeated event",
      apply: (ev, i) => {
        ev.splice(i + 1, 0, { ...ev[i]! });
        return ev;
      },
      brokenSeq: (i) => i + 1, // the copy right after the original repeats its seq
      goodBefore: (i) => i + 1,
    },
  ];

  for (const t of tampers) {
    for (const i of [0, 4, N - 2]) {
      it(`reports ${t.name} at index ${i}`, () => {
        const events = t.apply(copy(makeChain(N)), i);
        const r = checkChain(events, 0, GENESIS_HASH);
        assert.equal(r.ok, false);
        if (r.ok) return;
        assert.equal(r.brokenAt, t.brokenSeq(i));
        assert.equal(r.events, (t.goodBefore ?? ((x: number) => x))(i), "events before the break");
      });
    }
  }

  it("reports a body rewritten with a consistently recomputed hash at the next event", () => {
    // An attacker who rewrites event 3 and fixes its hash still breaks event 4's prevHash.
    const events = copy(makeChain(N));
    events[2]!.body = events[2]!.body.replace('"allowed"', '"denied"');
    events[2]!.hash = chainHash(events[2]!.prevHash, events[2]!.body);
    const r = checkChain(events, 0, GENESIS_HASH);
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.brokenAt, 4);
  });
});
