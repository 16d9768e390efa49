import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CustosError } from "../../src/errors.js";
import type { EndpointClass, ExchangeRequest } from "../../src/exchanges/dialect.js";
import {
  PolicyDenied,
  checkRequest,
  checkSessionLogin,
  checkTiming,
  checkUntimed,
  globMatch,
  validatePolicy,
  type KeyPolicy,
  type RequestFacts,
} from "../../src/policy/policy.js";

const order: ExchangeRequest = { method: "POST", path: "/fapi/v1/order", query: "symbol=BTCUSDT&side=BUY&quantity=2", body: "" };
const facts = (endpointClass: EndpointClass, extra: Partial<RequestFacts> = {}): RequestFacts => ({
  endpointClass,
  symbols: ["BTCUSDT"],
  orders: [{ symbol: "BTCUSDT", quantity: 2 }],
  ...extra,
});

/** The rule id a check denied with, or "allowed". */
function verdict(run: () => void): string {
  try {
    run();
    return "allowed";
  } catch (e) {
    assert.ok(e instanceof PolicyDenied, `not a PolicyDenied: ${String(e)}`);
    assert.equal(e.code, "POLICY_DENIED");
    return e.rule;
  }
}

describe("checkRequest", () => {
  const table: Array<{ name: string; policy: KeyPolicy; req?: ExchangeRequest; facts: RequestFacts; expect: string }> = [
    { name: "default: a trade", policy: {}, facts: facts("trade"), expect: "allowed" },
    { name: "default: a read", policy: {}, facts: facts("read"), expect: "allowed" },
    { name: "default: account", policy: {}, facts: facts("account"), expect: "allowed" },
    { name: "default: a withdrawal", policy: {}, facts: facts("withdraw"), expect: "class:withdraw" },
    { name: "default: a transfer", policy: {}, facts: facts("transfer"), expect: "class:transfer" },
    { name: "default: key management", policy: {}, facts: facts("key-management"), expect: "class:key-management" },
    { name: "default: an unknown endpoint", policy: {}, facts: facts("unknown"), expect: "class:unknown" },
    { name: "classes narrowed to reads", policy: { allowClasses: ["read"] }, facts: facts("trade"), expect: "class:trade" },
    {
      name: "a deny rule on the path",
      policy: { rules: [{ id: "no-orders", effect: "deny", method: "POST", path: "/fapi/v1/order" }] },
      facts: facts("trade"),
      expect: "rule:no-orders",
    },
    {
      name: "a deny rule for another method does not match",
      policy: { rules: [{ id: "no-delete", effect: "deny", method: "DELETE", path: "/fapi/**" }] },
      facts: facts("trade"),
      expect: "allowed",
    },
    {
      name: "an allow rule opens an unknown path",
      policy: { rules: [{ id: "listen-key", effect: "allow", path: "/fapi/v1/listenKey" }] },
      req: { ...order, path: "/fapi/v1/listenKey" },
      facts: facts("unknown", { symbols: [], orders: [] }),
      expect: "allowed",
    },
    {
      name: "first matching rule wins",
      policy: {
        rules: [
          { id: "deny-all", effect: "deny", path: "/**" },
          { id: "allow", effect: "allow", path: "/fapi/v1/order" },
        ],
      },
      facts: facts("trade"),
      expect: "rule:deny-all",
    },
    {
      name: "an allow rule still checks symbols",
      policy: { rules: [{ id: "open", effect: "allow", path: "/fapi/**" }], symbols: ["ETHUSDT"] },
      facts: facts("trade"),
      expect: "symbols",
    },
    { name: "symbol in the allowlist", policy: { symbols: ["BTCUSDT", "ETHUSDT"] }, facts: facts("trade"), expect: "allowed" },
    { name: "symbol outside the allowlist", policy: { symbols: ["ETHUSDT"] }, facts: facts("trade"), expect: "symbols" },
    { name: "quantity at the maximum", policy: { maxQuantity: { BTCUSDT: 2 } }, facts: facts("trade"), expect: "allowed" },
    { name: "quantity over the maximum", policy: { maxQuantity: { BTCUSDT: 1.5 } }, facts: facts("trade"), expect: "max-quantity:BTCUSDT" },
    { name: "wildcard maximum for other symbols", policy: { maxQuantity: { ETHUSDT: 100, "*": 1 } }, facts: facts("trade"), expect: "max-quantity:BTCUSDT" },
    {
      name: "a NaN quantity fails closed",
      policy: { maxQuantity: { "*": 1 } },
      facts: facts("trade", { orders: [{ symbol: "BTCUSDT", quantity: Number.NaN }] }),
      expect: "max-quantity:BTCUSDT",
    },
  ];
  for (const t of table) {
    it(`${t.name} → ${t.expect}`, () => {
      assert.equal(
        verdict(() => checkRequest(t.policy, t.req ?? order, t.facts)),
        t.expect,
      );
    });
  }
});

describe("checkTiming", () => {
  const now = 1_700_000_000_000;
  const table: Array<{ name: string; policy: KeyPolicy; caller: Parameters<typeof checkTiming>[2]; expect: string }> = [
    { name: "nothing supplied", policy: {}, caller: {}, expect: "allowed" },
    { name: "an old timestamp (the exchange's to reject)", policy: {}, caller: { timestampMs: now - 3_600_000 }, expect: "allowed" },
    { name: "a timestamp 5 s ahead (default skew)", policy: {}, caller: { timestampMs: now + 5_000 }, expect: "allowed" },
    { name: "a timestamp 5.001 s ahead", policy: {}, caller: { timestampMs: now + 5_001 }, expect: "timestamp-skew" },
    { name: "a pre-signed timestamp an hour ahead", policy: { maxSkewMs: 60_000 }, caller: { timestampMs: now + 3_600_000 }, expect: "timestamp-skew" },
    { name: "a nonce ahead of the clock", policy: {}, caller: { nonceMs: now + 10_000 }, expect: "nonce-skew" },
    { name: "an expiry within 60 s", policy: {}, caller: { expires: now / 1000 + 60 }, expect: "allowed" },
    { name: "an expiry beyond the maximum", policy: {}, caller: { expires: now / 1000 + 3_600 }, expect: "expiry" },
    { name: "a longer maximum expiry", policy: { maxExpirySeconds: 7_200 }, caller: { expires: now / 1000 + 3_600 }, expect: "allowed" },
    { name: "a receive window over the maximum", policy: {}, caller: { recvWindowMs: 60_000 }, expect: "recv-window" },
  ];
  for (const t of table) {
    it(`${t.name} → ${t.expect}`, () => {
      assert.equal(
        verdict(() => checkTiming(t.policy, now, t.caller)),
        t.expect,
      );
    });
  }
});

describe("policy shape and globs", () => {
  it("globs: * within a segment, ** across segments, the rest literal", () => {
    assert.ok(globMatch("/fapi/v1/*", "/fapi/v1/order"));
    assert.ok(!globMatch("/fapi/v1/*", "/fapi/v1/order/test"));
    assert.ok(globMatch("/fapi/**", "/fapi/v1/order/test"));
    assert.ok(!globMatch("/fapi/v1.order", "/fapi/v1xorder"), "a dot is literal");
    assert.ok(!globMatch("/sapi/*", "/fapi/v1"));
  });

  it("a WebSocket login passes the default policy, and is refused where symbol or size limits could not hold on the session", () => {
    const ruleOf = (policy: KeyPolicy, path = "auth"): string | undefined => {
      try {
        checkSessionLogin(policy, { path });
        return undefined;
      } catch (e) {
        assert.ok(e instanceof PolicyDenied);
        return e.rule;
      }
    };
    assert.equal(ruleOf({}), undefined);
    assert.equal(ruleOf({ symbols: ["BTCUSDT"] }), "session-login");
    assert.equal(ruleOf({ maxQuantity: { "*": 1 } }, "session.logon"), "session-login");
    assert.equal(ruleOf({ allowClasses: ["read", "account"] }), "class:trade");
    assert.equal(
      ruleOf({ symbols: ["BTCUSDT"], rules: [{ id: "ws-ok", effect: "allow", method: "WS", path: "auth" }] }),
      undefined,
      "an explicit allow rule accepts the login",
    );
    assert.equal(ruleOf({ rules: [{ id: "no-ws", effect: "deny", method: "WS", path: "**" }] }), "rule:no-ws");
    assert.equal(
      ruleOf({ symbols: ["X"], rules: [{ id: "rest-only", effect: "allow", method: "POST", path: "/**" }] }),
      "session-login",
      "REST rules do not name logins",
    );
  });

  it("an untimed request (no nonce) needs allowUntimedRequests", () => {
    for (const policy of [{}, { allowUntimedRequests: false }, { allowRawSign: true }] as KeyPolicy[]) {
      assert.throws(
        () => checkUntimed(policy),
        (e: unknown) => e instanceof PolicyDenied && e.rule === "untimed-request",
        JSON.stringify(policy),
      );
    }
    assert.doesNotThrow(() => checkUntimed({ allowUntimedRequests: true }));
  });

  it("accepts a full policy and refuses malformed ones with INVALID_ARGUMENT", () => {
    validatePolicy({
      allowClasses: ["trade"],
      rules: [{ id: "r", effect: "deny", path: "/x" }],
      symbols: ["BTCUSDT"],
      maxQuantity: { BTCUSDT: 1 },
      maxSkewMs: 1000,
      maxExpirySeconds: 30,
      maxRecvWindowMs: 5000,
      allowRawSign: false,
      allowUntimedRequests: false,
    });
    validatePolicy({ rules: [{ id: "ws", effect: "deny", method: "WS", path: "order.*" }] });
    assert.ok(globMatch("order.*", "order.place") && !globMatch("order.*", "openOrders.cancelAll"), "WS method patterns");
    const bad: unknown[] = [
      null,
      [],
      { allowClasses: ["withdrawals"] },
      { rules: [{ id: "r", effect: "maybe", path: "/x" }] },
      { rules: [{ id: "r", effect: "deny", path: "x" }] },
      { rules: [{ id: "r", effect: "deny", method: "WS", path: "order place" }] },
      { symbols: "BTCUSDT" },
      { maxQuantity: { BTCUSDT: -1 } },
      { maxSkewMs: "5s" },
      { allowRawSign: "yes" },
      { allowUntimedRequests: 1 },
      { allowWithdrawals: true },
    ];
    for (const p of bad)
      assert.throws(
        () => validatePolicy(p),
        (e: unknown) => e instanceof CustosError && e.code === "INVALID_ARGUMENT",
        JSON.stringify(p),
      );
  });
});
