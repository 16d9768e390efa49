import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import ccxt from "ccxt";
import { CustosError } from "../../../src/errors.js";
import type { ExchangeRequest, SignedExchangeRequest, SigningContext } from "../../../src/exchanges/dialect.js";
import { okx } from "../../../src/exchanges/okx.js";

/*
 * OKX's v5 docs ("REST Authentication → Signature") give the prehash rule and an example
 * prehash — timestamp + 'GET' + '/api/v5/account/balance?ccy=BTC', timestamp
 * 2020-12-08T09:08:57.715Z — but no secret with its signature, so signatures are cross-checked
 * against ccxt's independent implementation (node_modules/ccxt/js/src/okx.js sign(): clock
 * from nonce(), passphrase from `password`).
 */
const API_KEY = "4f1c2b3a-9d8e-4c7b-a6f5-0e1d2c3b4a59";
const SECRET = "22582BD0CFF14C41EDBF1AB98506286D";
const PASSPHRASE = "Correct-Horse-9";
const DOC_ISO = "2020-12-08T09:08:57.715Z";
const T = Date.parse(DOC_ISO);
const CTX: SigningContext = { timestamp: T, expires: 0, nonce: "", apiKeyId: API_KEY, passphrase: PASSPHRASE };

function sign(req: ExchangeRequest, ctx: SigningContext = CTX): { toSign: string[]; signed: SignedExchangeRequest } {
  const prepared = okx.prepare(req, ctx);
  const macs = prepared.toSign.map((data) => createHmac("sha256", Buffer.from(SECRET, "utf8")).update(data).digest());
  return { toSign: prepared.toSign.map((b) => b.toString("utf8")), signed: prepared.finish(macs) };
}

/** ccxt's own signed request (path relative to /api/v5), with its clock pinned to T. */
function ccxtSigned(
  path: string,
  method: "GET" | "POST",
  params: Record<string, unknown> | Array<Record<string, unknown>>,
): { req: ExchangeRequest; headers: Record<string, string> } {
  const exchange = new ccxt.okx({ apiKey: API_KEY, secret: SECRET, password: PASSPHRASE });
  exchange.nonce = () => T;
  const out = exchange.sign(path, "private", method, params as Record<string, unknown>) as { url: string; body?: string; headers: Record<string, string> };
  const url = new URL(out.url);
  return { req: { method, path: url.pathname, query: url.search.slice(1), body: out.body ?? "" }, headers: out.headers };
}

function accessHeaders(headers: Iterable<[string, string]>): Record<string, string> {
  return Object.fromEntries([...headers].filter(([k]) => k.startsWith("OK-ACCESS-")));
}

function refusedAsInvalid(fn: () => unknown): void {
  assert.throws(fn, (e: unknown) => e instanceof CustosError && e.code === "INVALID_ARGUMENT");
}

describe("okx.prepare", () => {
  it("builds the docs' prehash: ISO timestamp + GET + requestPath with its query", () => {
    const { toSign, signed } = sign({ method: "GET", path: "/api/v5/account/balance", query: "ccy=BTC", body: "" });
    assert.deepEqual(toSign, [`${DOC_ISO}GET/api/v5/account/balance?ccy=BTC`]);
    assert.equal(signed.timestamp, DOC_ISO);
    assert.equal(signed.signature, createHmac("sha256", SECRET).update(toSign[0]!).digest("base64"));
  });

  it("signs a GET byte-identically to ccxt", () => {
    const { req, headers } = ccxtSigned("account/balance", "GET", { ccy: "BTC" });
    assert.equal(req.path, "/api/v5/account/balance");
    const { signed } = sign(req);
    assert.deepEqual(accessHeaders(signed.headers), accessHeaders(Object.entries(headers)));
    assert.deepEqual(
      signed.headers.map(([k]) => k),
      ["OK-ACCESS-KEY", "OK-ACCESS-SIGN", "OK-ACCESS-TIMESTAMP", "OK-ACCESS-PASSPHRASE"],
    );
    assert.equal(signed.query, "ccy=BTC");
    assert.deepEqual(signed.params, []);
  });

  it("signs an order placement byte-identically to ccxt", () => {
    const { req, headers } = ccxtSigned("trade/order", "POST", {
      instId: "BTC-USDT-SWAP",
      tdMode: "cross",
      side: "buy",
      ordType: "limit",
      sz: "2",
      px: "30000",
      clOrdId: "custos1",
    });
    const { toSign, signed } = sign(req);
    assert.deepEqual(toSign, [`${DOC_ISO}POST/api/v5/trade/order${req.body}`]);
    assert.deepEqual(accessHeaders(signed.headers), accessHeaders(Object.entries(headers)));
    assert.equal(signed.body, req.body);
    assert.match(signed.signature, /^[A-Za-z0-9+/]{43}=$/);
  });

  it("signs a batch (a JSON list body) byte-identically to ccxt", () => {
    const { req, headers } = ccxtSigned("trade/batch-orders", "POST", [
      { instId: "BTC-USDT-SWAP", tdMode: "cross", side: "buy", ordType: "market", sz: "1", clOrdId: "b1" },
      { instId: "ETH-USDT-SWAP", tdMode: "cross", side: "sell", ordType: "market", sz: "3", clOrdId: "b2" },
    ]);
    assert.ok(req.body.startsWith("["));
    const { signed } = sign(req);
    assert.deepEqual(accessHeaders(signed.headers), accessHeaders(Object.entries(headers)));
  });

  it("refuses a key without a passphrase", () => {
    const { passphrase: _, ...noPassphrase } = CTX;
    refusedAsInvalid(() => okx.prepare({ method: "GET", path: "/api/v5/account/balance", query: "", body: "" }, noPassphrase));
    refusedAsInvalid(() => okx.prepare({ method: "GET", path: "/api/v5/account/balance", query: "", body: "" }, { ...CTX, passphrase: "" }));
  });

  it("refuses what the signature would not cover or OKX would not take", () => {
    refusedAsInvalid(() => okx.prepare({ method: "POST", path: "/api/v5/trade/order", query: "instId=BTC-USDT", body: "{}" }, CTX));
    refusedAsInvalid(() => okx.prepare({ method: "GET", path: "/api/v5/account/balance", query: "", body: "{}" }, CTX));
    refusedAsInvalid(() => okx.prepare({ method: "POST", path: "/api/v5/trade/order", query: "", body: "instId=BTC-USDT" }, CTX));
    refusedAsInvalid(() => okx.prepare({ method: "PUT", path: "/api/v5/trade/order", query: "", body: "{}" }, CTX));
    refusedAsInvalid(() => okx.prepare({ method: "GET", path: "/api/v5/account/balance", query: "", body: "" }, { ...CTX, passphrase: "line\nbreak" }));
  });
});

describe("okx.classify", () => {
  const cases: Array<[ExchangeRequest["method"], string, string]> = [
    ["POST", "/api/v5/trade/order", "trade"],
    ["POST", "/api/v5/trade/cancel-order", "trade"],
    ["POST", "/api/v5/trade/batch-orders", "trade"],
    ["POST", "/api/v5/account/set-leverage", "trade"],
    ["GET", "/api/v5/trade/order", "read"],
    ["GET", "/api/v5/trade/orders-pending", "read"],
    ["GET", "/api/v5/trade/fills", "read"],
    ["GET", "/api/v5/account/balance", "account"],
    ["GET", "/api/v5/account/positions", "account"],
    ["POST", "/api/v5/asset/withdrawal", "withdraw"],
    ["GET", "/api/v5/asset/withdrawal-history", "withdraw"],
    ["POST", "/api/v5/asset/cancel-withdrawal", "withdraw"],
    ["POST", "/api/v5/asset/transfer", "transfer"],
    ["POST", "/api/v5/asset/subaccount/transfer", "transfer"],
    ["POST", "/api/v5/users/subaccount/apikey", "key-management"],
    ["POST", "/api/v5/users/subaccount/modify-apikey", "key-management"],
    ["POST", "/api/v5/broker/nd/subaccount/apikey", "key-management"],
    ["POST", "/api/v5/trade/teleport", "unknown"],
    ["GET", "/api/v5/trade/order/", "unknown"],
    ["POST", "/api/v5/account/borrow-repay", "unknown"],
  ];
  for (const [method, path, expected] of cases) {
    it(`${method} ${path} is ${expected}`, () => {
      assert.equal(okx.classify({ method, path, query: "", body: "" }), expected);
    });
  }
});

describe("okx.symbols and okx.orders", () => {
  it("read an order placement", () => {
    const req: ExchangeRequest = {
      method: "POST",
      path: "/api/v5/trade/order",
      query: "",
      body: JSON.stringify({ instId: "BTC-USDT-SWAP", tdMode: "cross", side: "buy", ordType: "limit", sz: "2", px: "30000" }),
    };
    assert.deepEqual(okx.symbols(req), ["BTC-USDT-SWAP"]);
    assert.deepEqual(okx.orders(req), [{ symbol: "BTC-USDT-SWAP", quantity: 2 }]);
  });

  it("read every order of a batch and the new size of amendments", () => {
    const batch: ExchangeRequest = {
      method: "POST",
      path: "/api/v5/trade/batch-orders",
      query: "",
      body: JSON.stringify([
        { instId: "BTC-USDT-SWAP", sz: "1" },
        { instId: "ETH-USDT-SWAP", sz: "3" },
      ]),
    };
    assert.deepEqual(okx.symbols(batch), ["BTC-USDT-SWAP", "ETH-USDT-SWAP"]);
    assert.deepEqual(okx.orders(batch), [
      { symbol: "BTC-USDT-SWAP", quantity: 1 },
      { symbol: "ETH-USDT-SWAP", quantity: 3 },
    ]);
    const amend: ExchangeRequest = {
      method: "POST",
      path: "/api/v5/trade/amend-order",
      query: "",
      body: JSON.stringify({ instId: "BTC-USDT-SWAP", ordId: "1", newSz: "5" }),
    };
    assert.deepEqual(okx.orders(amend), [{ symbol: "BTC-USDT-SWAP", quantity: 5 }]);
  });

  it("read instId from a GET query, and place nothing on reads", () => {
    const req: ExchangeRequest = { method: "GET", path: "/api/v5/trade/orders-pending", query: "instType=SWAP&instId=BTC-USDT-SWAP", body: "" };
    assert.deepEqual(okx.symbols(req), ["BTC-USDT-SWAP"]);
    assert.deepEqual(okx.orders(req), []);
  });

  it("count an unreadable size as unbounded", () => {
    const req: ExchangeRequest = { method: "POST", path: "/api/v5/trade/order", query: "", body: JSON.stringify({ instId: "BTC-USDT-SWAP", sz: "-1" }) };
    assert.deepEqual(okx.orders(req), [{ symbol: "BTC-USDT-SWAP", quantity: Number.POSITIVE_INFINITY }]);
  });
});
