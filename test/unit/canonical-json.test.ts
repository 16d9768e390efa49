import assert from "node:assert/strict";
import { randomBytes, randomInt } from "node:crypto";
import { it } from "node:test";
import canonicalizeModule from "canonicalize";
import { canonicalJson } from "../../src/audit/audit-log.js";

const canonicalize = canonicalizeModule as unknown as (input: unknown) => string;

/** The fast path must produce exactly the RFC 8785 bytes the general library produces. */
it("equals the RFC 8785 library for sign-shaped events and for nested ones", () => {
  const tricky = ["é", "\u2028", '"quoted"', "back\\slash", "tab\t", "\u0000", "😀", "Zeta", "alpha"];
  for (let i = 0; i < 2_000; i++) {
    const event: Record<string, unknown> = {
      seq: randomInt(1, 2 ** 40),
      at: new Date(randomInt(0, 2 ** 41)).toISOString(),
      kind: "sign",
      actor: "spiffe://custos/engine/" + tricky[i % tricky.length],
      outcome: i % 3 ? "allowed" : "denied",
      key: randomBytes(6).toString("base64"),
      payloadSha256: randomBytes(32).toString("hex"),
      [tricky[(i + 3) % tricky.length]!]: i % 2 === 0,
    };
    if (i % 5 === 0) event.version = randomInt(1, 100);
    if (i % 7 === 0) event.details = { z: 1, a: "x", m: [3, 1] }; // an array inside: library path
    if (i % 3 === 1) event.details = { method: "POST", path: "/fapi/v1/order", [tricky[i % tricky.length]!]: i, ok: true }; // one flat level: fast path
    if (i % 17 === 0) event.details = { deeper: { x: 1 } }; // two levels: library path
    if (i % 11 === 0) event.ratio = 0.1; // non-integer number: library path
    if (i % 13 === 0) Object.assign(event, { "10": "ten", "9": "nine", "1x": "not an index" }); // JS orders index keys numerically
    assert.equal(canonicalJson(event), canonicalize(event));
  }
});
