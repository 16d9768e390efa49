import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Dialect, ExchangeRequest, SigningContext } from "../../../src/exchanges/dialect.js";
import { CTX, PAIRS } from "../../fixtures/dialect-samples.js";
import { dialectExchanges, dialectFor } from "../../../src/exchanges/registry.js";

/*
 * Each dialect's binding table (what the exchange's signature covers, also in SECURITY.md) is
 * checked against the dialect's actual string to sign: changing a bound part must change the
 * bytes sent to the HSM, and changing an unbound part must not. A binding that claims too much
 * would let the policy decide on a part a caller can swap after signing.
 */

function bytes(d: Dialect, req: ExchangeRequest, over: Partial<SigningContext>): string {
  return Buffer.concat(d.prepare(req, { ...CTX, ...over }).toSign).toString("hex");
}

/** Whether two inputs give different bytes to sign. */
function differs(d: Dialect, a: ExchangeRequest, b: ExchangeRequest, ctxA: Partial<SigningContext>, ctxB: Partial<SigningContext> = ctxA): boolean {
  return bytes(d, a, ctxA) !== bytes(d, b, ctxB);
}

describe("each dialect's binding table matches its string to sign", () => {
  it("covers every registered dialect", () => {
    assert.deepEqual(Object.keys(PAIRS).sort(), dialectExchanges());
  });

  for (const exchange of Object.keys(PAIRS)) {
    const d = dialectFor(exchange)!;
    const p = PAIRS[exchange]!;
    const base = p.ctx ?? {};
    describe(exchange, () => {
      for (const part of ["method", "path", "query", "body"] as const) {
        it(`${part}: ${d.binding[part] ? "bound" : "not bound"}`, () => {
          const [a, b] = p[part];
          assert.equal(differs(d, a, b, base), d.binding[part]);
        });
      }
      it(`API key id: ${d.binding.apiKey ? "bound" : "not bound"}`, () => {
        const [a] = p.query;
        assert.equal(differs(d, a, a, base, { ...base, apiKeyId: "key-b" }), d.binding.apiKey);
      });
      it(`timestamp: ${d.binding.timestamp ? "bound" : "not bound"}`, () => {
        const [a] = p.query;
        const later = { ...base, timestamp: CTX.timestamp + 1_000, expires: CTX.expires + 1 };
        assert.equal(differs(d, a, a, base, later), d.binding.timestamp);
      });
      it(`nonce: ${String(d.binding.nonce)}`, () => {
        const [a] = p.query;
        const other = { ...base, nonce: exchange === "deribit" ? "xyz789" : "1767225600001" };
        assert.equal(differs(d, a, a, base, other), d.binding.nonce === true);
      });
      it("a path the signature does not bind comes with parameter schemas", () => {
        if (!d.binding.path) assert.equal(typeof d.schemaMisfit, "function");
        else assert.equal(d.schemaMisfit, undefined);
      });
      it("every header the table names carries a bound value", () => {
        const [a] = p.query;
        const headersOf = (over: Partial<SigningContext>) =>
          new Map(d.prepare(a, { ...CTX, ...base, ...over }).finish(fakeMacs(d, a, { ...base, ...over })).headers);
        const before = headersOf({});
        const after = headersOf({
          timestamp: CTX.timestamp + 1_000,
          expires: CTX.expires + 1,
          nonce: exchange === "deribit" ? "xyz789" : "1767225600001",
          apiKeyId: "key-b",
          recvWindow: 6000,
        });
        for (const name of d.binding.headers) {
          assert.ok(before.has(name), `${name} is sent`);
          assert.notEqual(before.get(name), after.get(name), `${name} carries a value that the variation changes`);
        }
      });
    });
  }
});

/** MACs of the right length for `finish` (their value does not matter here). */
function fakeMacs(d: Dialect, req: ExchangeRequest, over: Partial<SigningContext>): Buffer[] {
  const n = d.prepare(req, { ...CTX, ...over }).toSign.length;
  const len = d.algorithm === "hmac-sha512" ? 64 : 32;
  return Array.from({ length: n }, () => Buffer.alloc(len, 1));
}
