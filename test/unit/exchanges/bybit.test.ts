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
    assert.deepEqual(
      prepared.toSign.map((b) => b.toString("utf8")),
      ["1658384314791XXXXXXXXXX5000category=option&symbol=BTC-29JUL22-25000-C"],
    );
  });

  it("signs a v5 order creation byte-identically to ccxt", () => {
    const { req, headers } = ccxtSigned("v5/order/create", "POST", {
      category: "linear",
      symbol: "BTCUSDT",
      side: "Buy",
      orderType: "Limit",
      qty: "0.01",
      price: "30000",
      timeInForce: "GTC",
    });
    const { toSign, signed } = sign(req);
    assert.deepEqual(toSign, [`${T}${API_KEY}5000${req.body}`]);
    assert.deepEqual(bapiHeaders(signed.headers), bapiHeaders(Object.entries(headers)));
    assert.deepEqual(
      signed.headers.map(([k]) => k),
      ["X-BAPI-API-KEY", "X-BAPI-TIMESTAMP", "X-BAPI-RECV-WINDOW", "X-BAPI-SIGN"],
    );
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
    const req: ExchangeRequest = {
      method: "POST",
      path: "/v5/order/create",
      query: "",
      body: JSON.stringify({ category: "linear", symbol: "BTCUSDT", side: "Buy", orderType: "Limit", qty: "0.01", price: "30000" }),
    };
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
      body: JSON.stringify({
        category: "linear",
        request: [
          { symbol: "BTCUSDT", qty: "0.5" },
          { symbol: "ETHUSDT", qty: "3" },
        ],
      }),
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
    const req: ExchangeRequest = {
      method: "POST",
      path: "/v5/order/create",
      query: "",
      body: JSON.stringify({ category: "linear", symbol: "BTCUSDT", qty: "lots" }),
    };
    assert.deepEqual(bybit.orders(req), [{ symbol: "linear:BTCUSDT", quantity: Number.POSITIVE_INFINITY }]);
  });
});

/** A POST to a v5 path with a JSON body. */
function post(path: string, body: unknown): ExchangeRequest {
  return { method: "POST", path, query: "", body: typeof body === "string" ? body : JSON.stringify(body) };
}
const ORDER = { category: "linear", symbol: "BTCUSDT", side: "Buy", orderType: "Limit", qty: "0.01", price: "30000" };

describe("bybit.binding", () => {
  it("covers the query or body, key, timestamp and receive window, not the method or path", () => {
    assert.deepEqual(bybit.binding, {
      method: false,
      path: false,
      query: true,
      body: true,
      apiKey: true,
      timestamp: true,
      nonce: "n/a",
      headers: ["X-BAPI-TIMESTAMP", "X-BAPI-API-KEY", "X-BAPI-RECV-WINDOW"],
      host: false,
    });
    // What the docs' plain text holds: no method, no path.
    const { toSign } = sign({ method: "GET", path: "/v5/order/realtime", query: "category=linear", body: "" });
    assert.equal(toSign[0], `${T}${API_KEY}5000category=linear`);
  });
});

describe("bybit.schemaMisfit", () => {
  it("fits what ccxt sends to the endpoints it uses", () => {
    const calls: Array<[string, "GET" | "POST", Record<string, unknown>]> = [
      ["v5/order/create", "POST", { ...ORDER, timeInForce: "GTC", orderLinkId: "bot-1", positionIdx: 0, reduceOnly: false }],
      ["v5/order/amend", "POST", { category: "linear", symbol: "BTCUSDT", orderId: "42", qty: "0.02", price: "30100" }],
      ["v5/order/cancel", "POST", { category: "linear", symbol: "BTCUSDT", orderId: "42", orderFilter: "Order" }],
      ["v5/order/cancel-all", "POST", { category: "linear", settleCoin: "USDT" }],
      ["v5/order/create-batch", "POST", { category: "linear", request: [{ symbol: "BTCUSDT", side: "Buy", orderType: "Market", qty: "0.01" }] }],
      [
        "v5/order/cancel-batch",
        "POST",
        {
          category: "linear",
          request: [
            { symbol: "BTCUSDT", orderId: "42" },
            { symbol: "BTCUSDT", orderLinkId: "x" },
          ],
        },
      ],
      ["v5/position/set-leverage", "POST", { symbol: "BTCUSDT", buyLeverage: "5", sellLeverage: "5", category: "linear" }],
      ["v5/position/trading-stop", "POST", { symbol: "BTCUSDT", category: "linear", activePrice: "31000", trailingStop: "100" }],
      ["v5/order/realtime", "GET", { symbol: "BTCUSDT", orderId: "42", category: "linear" }],
      ["v5/position/list", "GET", { category: "linear", symbol: "BTCUSDT" }],
      ["v5/account/wallet-balance", "GET", { accountType: "UNIFIED" }],
      ["v5/user/query-api", "GET", {}],
      ["v5/account/info", "GET", {}],
    ];
    for (const [path, method, params] of calls) {
      const { req } = ccxtSigned(path, method, params);
      assert.equal(bybit.schemaMisfit!(req), undefined, path);
    }
  });

  it("refuses a withdrawal body signed as an order (its signature would be valid at /v5/asset/withdraw/create)", () => {
    const withdrawal = { coin: "USDT", chain: "TRX", address: "TXYZ", amount: "1000", timestamp: T, accountType: "FUND" };
    assert.equal(bybit.classify(post("/v5/order/create", withdrawal)), "trade");
    assert.notEqual(bybit.schemaMisfit!(post("/v5/order/create", withdrawal)), undefined);
    // Dressed up as a complete order, it still carries fields Place Order does not take.
    assert.notEqual(bybit.schemaMisfit!(post("/v5/order/create", { ...ORDER, ...withdrawal })), undefined);
    const { req } = ccxtSigned("v5/asset/withdraw/create", "POST", withdrawal);
    assert.notEqual(bybit.schemaMisfit!({ ...req, path: "/v5/order/create" }), undefined);
  });

  it("refuses parameters outside the claimed endpoint's schema, by exact name", () => {
    assert.notEqual(bybit.schemaMisfit!({ method: "GET", path: "/v5/position/list", query: "category=linear&address=TXYZ", body: "" }), undefined);
    assert.notEqual(bybit.schemaMisfit!(post("/v5/order/create", { ...ORDER, Coin: "USDT" })), undefined);
    assert.notEqual(bybit.schemaMisfit!(post("/v5/order/cancel", { category: "linear", symbol: "BTCUSDT", orderID: "42" })), undefined);
    // A batch's fields are category and request; an item's are the documented per-order ones.
    assert.notEqual(bybit.schemaMisfit!(post("/v5/order/create-batch", { category: "linear", symbol: "BTCUSDT", request: [] })), undefined);
    const item = { symbol: "BTCUSDT", side: "Buy", orderType: "Market", qty: "1" };
    assert.equal(bybit.schemaMisfit!(post("/v5/order/create-batch", { category: "linear", request: [item] })), undefined);
    assert.notEqual(bybit.schemaMisfit!(post("/v5/order/create-batch", { category: "linear", request: [{ ...item, address: "TXYZ" }] })), undefined);
    const cancelItem = { symbol: "BTCUSDT", orderFilter: "Order" };
    assert.notEqual(bybit.schemaMisfit!(post("/v5/order/cancel-batch", { category: "linear", request: [cancelItem] })), undefined);
  });

  it("names the endpoint it has no schema for, refused ones included", () => {
    assert.equal(bybit.schemaMisfit!(post("/v5/order/teleport", {})), "custos has no parameter schema for POST /v5/order/teleport");
    const get: ExchangeRequest = { method: "GET", path: "/v5/order/create", query: "", body: "" };
    assert.equal(bybit.schemaMisfit!(get), "custos has no parameter schema for GET /v5/order/create");
    assert.notEqual(bybit.schemaMisfit!(post("/v5/asset/withdraw/create", { coin: "USDT" })), undefined);
  });

  it("reports an unreadable request as a misfit instead of throwing", () => {
    const dup = post("/v5/order/create", '{"category":"linear","symbol":"BTCUSDT","qty":"1","qty":"100"}');
    assert.notEqual(bybit.schemaMisfit!(dup), undefined);
    assert.notEqual(bybit.schemaMisfit!(post("/v5/order/create", "not json")), undefined);
  });
});

describe("bybit strict reading", () => {
  it("refuses a JSON body naming a key twice (Bybit's choice of copy is unknown)", () => {
    const req = post("/v5/order/create", '{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"0.01","qty":"100"}');
    refusedAsInvalid(() => bybit.prepare(req, CTX));
    refusedAsInvalid(() => bybit.orders(req));
    const nested = post("/v5/order/create-batch", '{"category":"linear","request":[{"symbol":"BTCUSDT","qty":"1","qty":"9"}]}');
    refusedAsInvalid(() => bybit.orders(nested));
  });

  it("refuses a query naming a parameter twice", () => {
    const req: ExchangeRequest = { method: "GET", path: "/v5/order/realtime", query: "category=linear&symbol=BTCUSDT&symbol=ETHUSDT", body: "" };
    refusedAsInvalid(() => bybit.prepare(req, CTX));
    refusedAsInvalid(() => bybit.symbols(req));
  });

  it("refuses a batch item carrying its own category: Bybit reads the top-level one", () => {
    const item = { category: "spot", symbol: "BTCUSDT", side: "Buy", orderType: "Market", qty: "1" };
    const req = post("/v5/order/create-batch", { category: "linear", request: [item] });
    refusedAsInvalid(() => bybit.prepare(req, CTX));
    refusedAsInvalid(() => bybit.orders(req));
    refusedAsInvalid(() => bybit.symbols(post("/v5/order/cancel-batch", { category: "linear", request: [{ category: "linear", symbol: "BTCUSDT" }] })));
  });

  it("refuses a batch whose request is not a JSON array of objects", () => {
    const item = { symbol: "BTCUSDT", side: "Buy", orderType: "Market", qty: "1" };
    for (const request of [item, JSON.stringify([item]), [item, "x"], [[item]], undefined]) {
      const req = post("/v5/order/create-batch", { category: "linear", request });
      refusedAsInvalid(() => bybit.prepare(req, CTX));
      refusedAsInvalid(() => bybit.orders(req));
    }
  });

  it("refuses a body with & or ; (read as a query string, it would carry parameters)", () => {
    for (const orderLinkId of ["a&coin=USDT&", "a;coin=USDT;"]) {
      refusedAsInvalid(() => bybit.prepare(post("/v5/order/cancel", { category: "linear", symbol: "BTCUSDT", orderLinkId }), CTX));
    }
  });
});

describe("bybit order sizes and instruments", () => {
  it("refuses to sign an order creation with an empty or missing qty (required by Place Order and Batch Place Order)", () => {
    for (const qty of ["", " ", null, undefined]) {
      const req = post("/v5/order/create", { ...ORDER, qty });
      refusedAsInvalid(() => bybit.prepare(req, CTX));
      // Counted as unbounded meanwhile, so a quantity limit refuses it first (with its rule).
      assert.deepEqual(bybit.orders(req), [{ symbol: "linear:BTCUSDT", quantity: Number.POSITIVE_INFINITY }]);
      const item = { symbol: "BTCUSDT", side: "Buy", orderType: "Market", qty };
      refusedAsInvalid(() => bybit.prepare(post("/v5/order/create-batch", { category: "linear", request: [item] }), CTX));
    }
    const amend = post("/v5/order/amend", { category: "linear", symbol: "BTCUSDT", orderId: "1", qty: "" });
    refusedAsInvalid(() => bybit.prepare(amend, CTX));
    assert.deepEqual(bybit.orders(amend), [{ symbol: "linear:BTCUSDT", quantity: Number.POSITIVE_INFINITY }]);
    // An amendment without qty keeps the size and signs.
    assert.doesNotThrow(() => bybit.prepare(post("/v5/order/amend", { category: "linear", symbol: "BTCUSDT", orderId: "1", price: "1" }), CTX));
  });

  it("counts as unbounded a size it cannot tell in base units", () => {
    const size = (body: object) => bybit.orders(post("/v5/order/create", body))[0]!.quantity;
    // qty "0" with reduceOnly and closeOnTrigger closes up to the instrument's maximum.
    assert.equal(size({ ...ORDER, qty: "0", reduceOnly: true, closeOnTrigger: true }), Number.POSITIVE_INFINITY);
    // Spot market orders: in the quote coin for a Buy by default, or by marketUnit.
    const spot = { category: "spot", symbol: "SHIBUSDT", orderType: "Market", qty: "100" };
    assert.equal(size({ ...spot, side: "Buy" }), Number.POSITIVE_INFINITY);
    assert.equal(size({ ...spot, side: "Sell", marketUnit: "quoteCoin" }), Number.POSITIVE_INFINITY);
    assert.equal(size({ ...spot, side: "Buy", marketUnit: "baseCoin" }), 100);
    assert.equal(size({ ...spot, side: "Sell" }), 100);
    assert.equal(size({ ...spot, side: "Sell", marketUnit: "lots" }), Number.POSITIVE_INFINITY);
    assert.equal(size({ ...spot, side: "Buy", orderType: "Limit", price: "0.00001" }), 100);
  });

  it('name an instrument a trading request does not name as "", which no allowlist holds', () => {
    const noSymbol = post("/v5/order/create", { ...ORDER, symbol: undefined });
    assert.deepEqual(bybit.orders(noSymbol), [{ symbol: "", quantity: 0.01 }]);
    assert.deepEqual(bybit.symbols(noSymbol), [""]);
    const batch = post("/v5/order/create-batch", { category: "linear", request: [{ symbol: "BTCUSDT", qty: "1" }, { qty: "2" }] });
    assert.deepEqual(bybit.orders(batch), [
      { symbol: "linear:BTCUSDT", quantity: 1 },
      { symbol: "", quantity: 2 },
    ]);
    assert.deepEqual(bybit.symbols(batch), ["linear:BTCUSDT", ""]);
    assert.deepEqual(bybit.symbols(post("/v5/order/cancel-all", { category: "linear", settleCoin: "USDT" })), [""]);
    assert.deepEqual(bybit.symbols(post("/v5/account/set-margin-mode", { setMarginMode: "PORTFOLIO_MARGIN" })), [""]);
    // A read without a symbol filter names none.
    assert.deepEqual(bybit.symbols({ method: "GET", path: "/v5/position/list", query: "category=linear&settleCoin=USDT", body: "" }), []);
  });
});
