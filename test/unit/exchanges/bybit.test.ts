import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import ccxt from "ccxt";
import { CustosError } from "../../../src/errors.js";
import type { ExchangeRequest, SignedExchangeRequest, SigningContext } from "../../../src/exchanges/dialect.js";
import { bybit } from "../../../src/exchanges/bybit.js";

/*
 * Bybit's v5 guide ("Integration Guidance" → "Create A Request") publishes the plain text to
 * sign but no secret with its signature, so the signatures are cross-checked against ccxt's
 * independent implementation (node_modules/ccxt/js/src/bybit.js sign(): v5 branch, clock from
 * nonce(), recvWindow from options, default 5000).
 */
const API_KEY = "XUwVDQ9tZdFyqPJbE1";
const SECRET = "yQ1UpD4mWb2gqz3Vv7XkRkP9tHc6sLJfN0aE";
const T = 1658384314791;
const CTX: SigningContext = { timestamp: T, expires: 0, nonce: "", apiKeyId: API_KEY };

function sign(req: ExchangeRequest, ctx: SigningContext = CTX): { toSign: string[]; signed: SignedExchangeRequest } {
  const prepared = bybit.prepare(req, ctx);
  const macs = prepared.toSign.map((data) => createHmac("sha256", Buffer.from(SECRET, "utf8")).update(data).digest());
  return { toSign: prepared.toSign.map((b) => b.toString("utf8")), signed: prepared.finish(macs) };
}

/** ccxt's own signed request for a v5 call, with its clock pinned to T. */
function ccxtSigned(path: string, method: "GET" | "POST", params: Record<string, unknown>): { req: ExchangeRequest; headers: Record<string, string> } {
  const exchange = new ccxt.bybit({ apiKey: API_KEY, secret: SECRET });
  exchange.nonce = () => T;
  const out = exchange.sign(path, "private", method, params) as { url: string; body?: string; headers: Record<string, string> };
  const url = new URL(out.url);
  return { req: { method, path: url.pathname, query: url.search.slice(1), body: out.body ?? "" }, headers: out.headers };
}

function bapiHeaders(headers: Iterable<[string, string]>): Record<string, string> {
  return Object.fromEntries([...headers].filter(([k]) => k.startsWith("X-BAPI-")));
}

function refusedAsInvalid(fn: () => unknown): void {
  assert.throws(fn, (e: unknown) => e instanceof CustosError && e.code === "INVALID_ARGUMENT");
}

describe("bybit.prepare", () => {
  it("builds the guide's GET plain text: timestamp + api_key + recv_window + queryString", () => {
    // Guide, GET tab: "1658384314791XXXXXXXXXX5000category=option&symbol=BTC-29JUL22-25000-C"
    const prepared = bybit.prepare(
      { method: "GET", path: "/v5/order/realtime", query: "category=option&symbol=BTC-29JUL22-25000-C", body: "" },
      { ...CTX, apiKeyId: "XXXXXXXXXX", recvWindow: 5000 },
    );
    assert.deepEqual(prepared.toSign.map((b) => b.toString("utf8")), ["1658384314791XXXXXXXXXX5000category=option&symbol=BTC-29JUL22-25000-C"]);
  });

  it("signs a v5 order creation byte-identically to ccxt", () => {
    const { req, headers } = ccxtSigned("v5/order/create", "POST", { category: "linear", symbol: "BTCUSDT", side: "Buy", orderType: "Limit", qty: "0.01", price: "30000", timeInForce: "GTC" });
    const { toSign, signed } = sign(req);
    assert.deepEqual(toSign, [`${T}${API_KEY}5000${req.body}`]);
    assert.deepEqual(bapiHeaders(signed.headers), bapiHeaders(Object.entries(headers)));
    assert.deepEqual(signed.headers.map(([k]) => k), ["X-BAPI-API-KEY", "X-BAPI-TIMESTAMP", "X-BAPI-RECV-WINDOW", "X-BAPI-SIGN"]);
    assert.equal(signed.body, req.body);
    assert.equal(signed.query, "");
    assert.deepEqual(signed.params, []);
    assert.match(signed.signature, /^[0-9a-f]{64}$/);
    assert.equal(signed.timestamp, String(T));
  });

  it("signs a v5 GET byte-identically to ccxt", () => {
    const { req, headers } = ccxtSigned("v5/position/list", "GET", { category: "linear", symbol: "BTCUSDT" });
    assert.equal(req.query, "category=linear&symbol=BTCUSDT");
    const { signed } = sign(req);
    assert.deepEqual(bapiHeaders(signed.headers), bapiHeaders(Object.entries(headers)));
    assert.equal(signed.query, req.query);
  });

  it("signs a batch order byte-identically to ccxt", () => {
    const { req, headers } = ccxtSigned("v5/order/create-batch", "POST", {
      category: "linear",
      request: [
        { symbol: "BTCUSDT", side: "Buy", orderType: "Limit", qty: "0.01", price: "30000" },
        { symbol: "ETHUSDT", side: "Sell", orderType: "Market", qty: "1" },
      ],
    });
    const { signed } = sign(req);
    assert.deepEqual(bapiHeaders(signed.headers), bapiHeaders(Object.entries(headers)));
  });

  it("uses the caller's receive window in the header and the signed text", () => {
    const exchange = new ccxt.bybit({ apiKey: API_KEY, secret: SECRET, options: { recvWindow: 2500 } });
    exchange.nonce = () => T;
    const out = exchange.sign("v5/account/wallet-balance", "private", "GET", { accountType: "UNIFIED" }) as { headers: Record<string, string> };
    const { signed } = sign({ method: "GET", path: "/v5/account/wallet-balance", query: "accountType=UNIFIED", body: "" }, { ...CTX, recvWindow: 2500 });
    assert.deepEqual(bapiHeaders(signed.headers), bapiHeaders(Object.entries(out.headers)));
    assert.equal(bapiHeaders(signed.headers)["X-BAPI-RECV-WINDOW"], "2500");
  });

  it("refuses what the signature would not cover or Bybit would not take", () => {
    refusedAsInvalid(() => bybit.prepare({ method: "POST", path: "/v5/order/create", query: "symbol=BTCUSDT", body: "{}" }, CTX));
    refusedAsInvalid(() => bybit.prepare({ method: "GET", path: "/v5/order/realtime", query: "", body: "{}" }, CTX));
    refusedAsInvalid(() => bybit.prepare({ method: "POST", path: "/v5/order/create", query: "", body: "category=linear" }, CTX));
    refusedAsInvalid(() => bybit.prepare({ method: "DELETE", path: "/v5/order/cancel", query: "", body: "" }, CTX));
    refusedAsInvalid(() => bybit.prepare({ method: "GET", path: "/v5/order/realtime", query: "symbol=BTC USDT", body: "" }, CTX));
    refusedAsInvalid(() => bybit.prepare({ method: "GET", path: "/v5/order/realtime", query: "", body: "" }, { ...CTX, recvWindow: 0 }));
  });
});

describe("bybit.classify", () => {
  const cases: Array<[ExchangeRequest["method"], string, string]> = [
    ["POST", "/v5/order/create", "trade"],
    ["POST", "/v5/order/cancel", "trade"],
    ["POST", "/v5/order/create-batch", "trade"],
    ["POST", "/v5/position/set-leverage", "trade"],
    ["GET", "/v5/order/realtime", "read"],
    ["GET", "/v5/execution/list", "read"],
    ["GET", "/v5/account/wallet-balance", "account"],
    ["GET", "/v5/position/list", "account"],
    ["GET", "/v5/user/query-api", "account"],
    ["POST", "/v5/asset/withdraw/create", "withdraw"],
    ["GET", "/v5/asset/withdraw/query-address", "withdraw"],
    ["POST", "/v5/asset/transfer/inter-transfer", "transfer"],
    ["POST", "/v5/asset/transfer/universal-transfer", "transfer"],
    ["POST", "/v5/position/move-positions", "transfer"],
    ["POST", "/v5/user/create-sub-api", "key-management"],
    ["POST", "/v5/user/update-api", "key-management"],
    ["POST", "/v5/user/delete-api", "key-management"],
    ["POST", "/v5/order/teleport", "unknown"],
    ["GET", "/v5/order/create", "unknown"],
    ["POST", "/v5/account/borrow", "unknown"],
  ];
  for (const [method, path, expected] of cases) {
    it(`${method} ${path} is ${expected}`, () => {
      assert.equal(bybit.classify({ method, path, query: "", body: "" }), expected);
    });
  }
});

describe("bybit.symbols and bybit.orders", () => {
  it("read an order creation as category:symbol", () => {
    const req: ExchangeRequest = { method: "POST", path: "/v5/order/create", query: "", body: JSON.stringify({ category: "linear", symbol: "BTCUSDT", side: "Buy", orderType: "Limit", qty: "0.01", price: "30000" }) };
    assert.deepEqual(bybit.symbols(req), ["linear:BTCUSDT"]);
    assert.deepEqual(bybit.orders(req), [{ symbol: "linear:BTCUSDT", quantity: 0.01 }]);
  });

  it("read a GET query", () => {
    assert.deepEqual(bybit.symbols({ method: "GET", path: "/v5/order/realtime", query: "category=spot&symbol=ETHUSDT", body: "" }), ["spot:ETHUSDT"]);
  });

  it("read every order of a batch, and amendments that change the size", () => {
    const batch: ExchangeRequest = {
      method: "POST",
      path: "/v5/order/create-batch",
      query: "",
      body: JSON.stringify({ category: "linear", request: [{ symbol: "BTCUSDT", qty: "0.5" }, { symbol: "ETHUSDT", qty: "3" }] }),
    };
    assert.deepEqual(bybit.symbols(batch), ["linear:BTCUSDT", "linear:ETHUSDT"]);
    assert.deepEqual(bybit.orders(batch), [
      { symbol: "linear:BTCUSDT", quantity: 0.5 },
      { symbol: "linear:ETHUSDT", quantity: 3 },
    ]);
    const amend = (body: object): ExchangeRequest => ({ method: "POST", path: "/v5/order/amend", query: "", body: JSON.stringify(body) });
    assert.deepEqual(bybit.orders(amend({ category: "linear", symbol: "BTCUSDT", orderId: "1", qty: "2" })), [{ symbol: "linear:BTCUSDT", quantity: 2 }]);
    assert.deepEqual(bybit.orders(amend({ category: "linear", symbol: "BTCUSDT", orderId: "1", price: "1" })), []);
  });

  it("count an unreadable size as unbounded", () => {
    const req: ExchangeRequest = { method: "POST", path: "/v5/order/create", query: "", body: JSON.stringify({ category: "linear", symbol: "BTCUSDT", qty: "lots" }) };
    assert.deepEqual(bybit.orders(req), [{ symbol: "linear:BTCUSDT", quantity: Number.POSITIVE_INFINITY }]);
  });
});
