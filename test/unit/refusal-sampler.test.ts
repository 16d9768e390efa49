import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { AuditEvent } from "../../src/audit/audit-log.js";
import { AGGREGATE_KIND, RefusalSampler } from "../../src/audit/refusal-sampler.js";
import { boundText } from "../../src/audit/bounded-text.js";
import { createHash } from "node:crypto";

const refusal = (actor: string, reason = "KEY_NOT_FOUND", peer = "10.0.0.1"): AuditEvent => ({ kind: "sign", actor, outcome: "denied", reason, peer });

describe("RefusalSampler: every refusal audited, a flood counted", () => {
  it("records the first N per source in full, counts the rest, and drains one aggregate per source when the window ends", () => {
    let now = 1_000_000;
    const s = new RefusalSampler({ windowMs: 10_000, individualPerSource: 3, maxSources: 100 }, () => now);
    const admitted = Array.from({ length: 50 }, () => s.admit(refusal("a"))).filter(Boolean).length;
    assert.equal(admitted, 3);
    assert.equal(s.admit(refusal("a", "NO_GRANT")), true, "another reason is another source");
    assert.deepEqual(s.drain(), [], "the window has not ended");
    now += 10_000;
    const rows = s.drain();
    assert.equal(rows.length, 1);
    assert.deepEqual(
      { ...rows[0], details: { ...rows[0]!.details, from: "", to: "" } },
      {
        kind: AGGREGATE_KIND,
        actor: "a",
        outcome: "denied",
        reason: "KEY_NOT_FOUND",
        peer: "10.0.0.1",
        details: { refused: "sign", count: 47, from: "", to: "" },
      },
    );
    assert.equal(s.admit(refusal("a")), true, "a new window records in full again");
  });

  it("past maxSources, new sources merge per kind and reason, counted only", () => {
    const s = new RefusalSampler({ windowMs: 1, individualPerSource: 1, maxSources: 2 }, () => 0);
    assert.equal(s.admit(refusal("a")), true);
    assert.equal(s.admit(refusal("b")), true);
    for (let i = 0; i < 100; i++) assert.equal(s.admit(refusal(`x${i}`, "KEY_NOT_FOUND", `10.1.${i}.1`)), false);
    const rows = s.drain(true);
    assert.deepEqual(
      rows.map((r) => [r.actor, r.peer, r.details?.count]),
      [["*", undefined, 100]],
    );
  });
});

describe("boundText", () => {
  it("keeps ordinary strings, escapes controls, bidi overrides, backslashes and lone surrogates", () => {
    assert.equal(boundText("binance-main"), "binance-main");
    assert.equal(boundText("a\nb\r\u0000\u007f\u0085\u2028\u202e\u2066\\"), "a\\u000ab\\u000d\\u0000\\u007f\\u0085\\u2028\\u202e\\u2066\\\\");
    assert.equal(boundText("x\ud800y"), "x\\ud800y");
    assert.equal(boundText("😀"), "😀", "a surrogate pair is one character, kept");
  });

  it("cuts a long value to the bound with its length and SHA-256, never inside an escape", () => {
    const long = "\n".repeat(1_000);
    const out = boundText(long, 100);
    const marker = `…[1000 chars sha256:${createHash("sha256").update(long).digest("hex")}]`;
    assert.ok(out.endsWith(marker), out);
    assert.ok(out.length <= 100);
    assert.match(out.slice(0, -marker.length), /^(\\u000a)+$/);
    assert.equal(boundText("a".repeat(256)), "a".repeat(256));
    assert.equal(boundText("a".repeat(257)).length, 256);
  });
});
