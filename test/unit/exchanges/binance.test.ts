import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHmac, generateKeyPairSync, sign as edSign, verify as edVerify } from "node:crypto";
import { CustosError } from "../../../src/errors.js";
import type { ExchangeRequest, SignedExchangeRequest, SigningContext } from "../../../src/exchanges/dialect.js";
import { binance } from "../../../src/exchanges/binance.js";

/*
 * The official worked example, published identically in the spot REST docs
 * (binance/binance-spot-api-docs rest-api.md, "SIGNED Endpoint Examples for POST /api/v3/order",
 * HMAC Keys) and the USDⓈ-M futures docs (developers.binance.com/docs/derivatives/
 * usds-margined-futures/general-info, "SIGNED Endpoint Examples for POST /fapi/v1/order").
 * The key pair is the docs' illustrative one.
 */
const DOC_API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
const DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
const DOC_TIMESTAMP = 1499827319559;
const DOC_ORDER = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1";
/** Examples 1 and 2 (query string / request body): `echo -n "…" | openssl dgst -sha256 -hmac …`. */
const DOC_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71";
/** Example 3 (mixed): no "&" between "GTC" and "quantity=1". */
const DOC_SIGNATURE_MIXED = "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77";
/** Current spot docs, second example: symbol "１２３４５６" percent-encoded before signing. */
const DOC_UNICODE_SYMBOL = "%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96";
const DOC_SIGNATURE_UNICODE = "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3";

const DOC_CTX: SigningContext = { timestamp: DOC_TIMESTAMP, expires: 0, nonce: "", recvWindow: 5000, apiKeyId: DOC_API_KEY };

/** Stands in for the HSM: HMAC-SHA256 with the secret's UTF-8 bytes. */
function sign(req: ExchangeRequest, ctx: SigningContext = DOC_CTX, secret = DOC_SECRET): { toSign: string[]; signed: SignedExchangeRequest } {
  const prepared = binance.prepare(req, ctx);
  const macs = prepared.toSign.map((data) => createHmac("sha256", Buffer.from(secret, "utf8")).update(data).digest());
  return { toSign: prepared.toSign.map((b) => b.toString("utf8")), signed: prepared.finish(macs) };
}

function post(path: string, query: string, body = ""): ExchangeRequest {
  return { method: "POST", path, query, body };
}

function refusedAsInvalid(fn: () => unknown): void {
  assert.throws(fn, (e: unknown) => e instanceof CustosError && e.code === "INVALID_ARGUMENT");
}

describe("binance.prepare reproduces the documented examples", () => {
  for (const path of ["/api/v3/order", "/fapi/v1/order"]) {
    it(`example 1, all parameters in the query string (${path})`, () => {
      const { toSign, signed } = sign(post(path, DOC_ORDER));
      assert.deepEqual(toSign, [`${DOC_ORDER}&recvWindow=5000&timestamp=${DOC_TIMESTAMP}`]);
      assert.equal(signed.signature, DOC_SIGNATURE);
      // The docs' curl: POST '…?symbol=LTCBTC&…&recvWindow=5000&timestamp=1499827319559&signature=c8db…'
      assert.equal(signed.query, `${DOC_ORDER}&recvWindow=5000&timestamp=${DOC_TIMESTAMP}&signature=${DOC_SIGNATURE}`);
      assert.equal(signed.body, "");
      assert.deepEqual(signed.headers, [["X-MBX-APIKEY", DOC_API_KEY]]);
      assert.deepEqual(signed.params, [
        ["recvWindow", "5000"],
        ["timestamp", String(DOC_TIMESTAMP)],
        ["signature", DOC_SIGNATURE],
      ]);
      assert.equal(signed.timestamp, String(DOC_TIMESTAMP));
    });
  }

  it("example 2, all parameters in the request body", () => {
    const { signed } = sign(post("/fapi/v1/order", "", DOC_ORDER));
    // The docs' curl: -d 'symbol=LTCBTC&…&recvWindow=5000&timestamp=1499827319559&signature=c8db…'
    assert.equal(signed.query, "");
    assert.equal(signed.body, `${DOC_ORDER}&recvWindow=5000&timestamp=${DOC_TIMESTAMP}&signature=${DOC_SIGNATURE}`);
    assert.equal(signed.signature, DOC_SIGNATURE);
  });

  it("example 3, mixed query string and request body (no separator between them)", () => {
    const { toSign, signed } = sign(post("/api/v3/order", "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC", "quantity=1&price=0.1"));
    assert.deepEqual(toSign, [`symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTCquantity=1&price=0.1&recvWindow=5000&timestamp=${DOC_TIMESTAMP}`]);
    assert.equal(signed.signature, DOC_SIGNATURE_MIXED);
    // The docs' curl: '…?symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC' -d 'quantity=1&price=0.1&recvWindow=5000&timestamp=…&signature=0fd1…'
    assert.equal(signed.query, "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC");
    assert.equal(signed.body, `quantity=1&price=0.1&recvWindow=5000&timestamp=${DOC_TIMESTAMP}&signature=${DOC_SIGNATURE_MIXED}`);
  });

  it("the non-ASCII example signs the percent-encoded bytes", () => {
    const { signed } = sign(post("/api/v3/order", `symbol=${DOC_UNICODE_SYMBOL}&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1`));
    assert.equal(signed.signature, DOC_SIGNATURE_UNICODE);
    assert.equal(
      signed.query,
      `symbol=${DOC_UNICODE_SYMBOL}&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=${DOC_TIMESTAMP}&signature=${DOC_SIGNATURE_UNICODE}`,
    );
    assert.deepEqual(binance.symbols(post("/api/v3/order", `symbol=${DOC_UNICODE_SYMBOL}&quantity=1`)), ["１２３４５６"]);
  });

  it("refuses raw non-ASCII: the wire bytes would not be the signed bytes", () => {
    refusedAsInvalid(() => binance.prepare(post("/api/v3/order", "symbol=１２３４５６&side=BUY"), DOC_CTX));
    refusedAsInvalid(() => binance.prepare(post("/api/v3/order", "symbol=BTC USDT"), DOC_CTX));
    // A WHATWG URL re-encodes these in a query string.
    refusedAsInvalid(() => binance.prepare(post("/fapi/v1/batchOrders", 'batchOrders=[{"symbol":"BTCUSDT"}]'), DOC_CTX));
  });
});

describe("binance.prepare", () => {
  it("omits recvWindow when the caller gives none, and signs a GET with an empty query", () => {
    const { toSign, signed } = sign({ method: "GET", path: "/fapi/v3/account", query: "", body: "" }, { ...DOC_CTX, recvWindow: undefined } as SigningContext);
    assert.deepEqual(toSign, [`timestamp=${DOC_TIMESTAMP}`]);
    assert.equal(signed.query, `timestamp=${DOC_TIMESTAMP}&signature=${signed.signature}`);
    assert.match(signed.signature, /^[0-9a-f]{64}$/);
  });

  it("refuses parameters custos owns, repeated parameters and JSON bodies", () => {
    refusedAsInvalid(() => binance.prepare(post("/fapi/v1/order", `${DOC_ORDER}&timestamp=1`), DOC_CTX));
    refusedAsInvalid(() => binance.prepare(post("/fapi/v1/order", DOC_ORDER, "signature=00"), DOC_CTX));
    refusedAsInvalid(() => binance.prepare(post("/fapi/v1/order", "recvWindow=60000"), DOC_CTX));
    refusedAsInvalid(() => binance.prepare(post("/fapi/v1/order", "symbol=BTCUSDT", "symbol=DOGEUSDT"), DOC_CTX));
    refusedAsInvalid(() => binance.prepare(post("/fapi/v1/order", "", '{"symbol":"BTCUSDT"}'), DOC_CTX));
    refusedAsInvalid(() => binance.prepare({ method: "GET", path: "/fapi/v1/order", query: "", body: "symbol=BTCUSDT" }, DOC_CTX));
    refusedAsInvalid(() => binance.prepare(post("/fapi/v1/batchOrders", "batchOrders=not-json"), DOC_CTX));
  });

  it("refuses a receive window Binance would reject and odd paths", () => {
    refusedAsInvalid(() => binance.prepare(post("/fapi/v1/order", DOC_ORDER), { ...DOC_CTX, recvWindow: 60_001 }));
    refusedAsInvalid(() => binance.prepare(post("/fapi/v1/order", DOC_ORDER), { ...DOC_CTX, timestamp: 1.5 }));
    refusedAsInvalid(() => binance.prepare(post("/fapi/v1/../v1/order", DOC_ORDER), DOC_CTX));
  });

  it("refuses a MAC that is not one HMAC-SHA256", () => {
    const prepared = binance.prepare(post("/fapi/v1/order", DOC_ORDER), DOC_CTX);
    assert.throws(
      () => prepared.finish([]),
      (e: unknown) => e instanceof CustosError && e.code === "INTERNAL",
    );
  });
});

describe("binance.classify", () => {
  const cases: Array<[ExchangeRequest["method"], string, string]> = [
    ["POST", "/fapi/v1/order", "trade"],
    ["DELETE", "/fapi/v1/order", "trade"],
    ["PUT", "/fapi/v1/order", "trade"],
    ["POST", "/fapi/v1/batchOrders", "trade"],
    ["POST", "/fapi/v1/leverage", "trade"],
    ["POST", "/fapi/v1/marginType", "trade"],
    ["POST", "/dapi/v1/order", "trade"],
    ["POST", "/api/v3/order", "trade"],
    ["GET", "/fapi/v1/order", "read"],
    ["GET", "/fapi/v1/openOrders", "read"],
    ["GET", "/fapi/v1/userTrades", "read"],
    ["GET", "/api/v3/myTrades", "read"],
    ["GET", "/fapi/v2/balance", "account"],
    ["GET", "/fapi/v3/positionRisk", "account"],
    ["GET", "/dapi/v1/account", "account"],
    ["GET", "/api/v3/account", "account"],
    ["POST", "/sapi/v1/capital/withdraw/apply", "withdraw"],
    ["GET", "/sapi/v1/capital/withdraw/address/list", "withdraw"],
    ["POST", "/sapi/v1/asset/transfer", "transfer"],
    ["POST", "/sapi/v1/futures/transfer", "transfer"],
    ["POST", "/sapi/v1/sub-account/universalTransfer", "transfer"],
    ["POST", "/sapi/v1/sub-account/subAccountApi/ipRestriction", "key-management"],
    ["POST", "/sapi/v1/broker/subAccountApi", "key-management"],
    ["GET", "/sapi/v1/account/apiRestrictions", "key-management"],
    ["POST", "/fapi/v1/withdrawEverything", "unknown"],
    ["GET", "/fapi/v1/order/", "unknown"],
    ["POST", "/sapi/v1/margin/order", "unknown"],
    ["PUT", "/fapi/v1/leverage", "unknown"],
  ];
  for (const [method, path, expected] of cases) {
    it(`${method} ${path} is ${expected}`, () => {
      assert.equal(binance.classify({ method, path, query: "", body: "" }), expected);
    });
  }
});

describe("binance.symbols and binance.orders", () => {
  it("read a futures order from the query", () => {
    const req = post("/fapi/v1/order", "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.010&price=30000");
    assert.deepEqual(binance.symbols(req), ["BTCUSDT"]);
    assert.deepEqual(binance.orders(req), [{ symbol: "BTCUSDT", quantity: 0.01 }]);
  });

  it("read parameters exactly as URLSearchParams does, encoded or not", () => {
    const queries = ["symbol=BTCUSDT", "symbol=BTC%55SDT", "symbol=A+B", "&&symbol=X&&", "symbol", "symbol=a=b", "symbol=%E2%82%AC", "symbol=%zz"];
    for (const q of queries) {
      const expected = [...new URLSearchParams(q)].filter(([k]) => k === "symbol").map(([, v]) => v);
      assert.deepEqual(binance.symbols({ method: "GET", path: "/fapi/v1/openOrders", query: q, body: "" }), [...new Set(expected)], q);
    }
  });

  it("read a mixed query/body order (the docs' example 3)", () => {
    const req = post("/api/v3/order", "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC", "quantity=1&price=0.1");
    assert.deepEqual(binance.symbols(req), ["LTCBTC"]);
    assert.deepEqual(binance.orders(req), [{ symbol: "LTCBTC", quantity: 1 }]);
  });

  it("read every order of a batch", () => {
    const batch = JSON.stringify([
      { symbol: "BTCUSDT", side: "BUY", type: "LIMIT", quantity: "0.5", price: "30000", timeInForce: "GTC" },
      { symbol: "ETHUSDT", side: "SELL", type: "MARKET", quantity: "2" },
    ]);
    const req = post("/fapi/v1/batchOrders", `batchOrders=${encodeURIComponent(batch)}`);
    assert.deepEqual(binance.symbols(req), ["BTCUSDT", "ETHUSDT"]);
    assert.deepEqual(binance.orders(req), [
      { symbol: "BTCUSDT", quantity: 0.5 },
      { symbol: "ETHUSDT", quantity: 2 },
    ]);
  });

  it("count an order without a readable size as unbounded, and closePosition as closing only", () => {
    assert.deepEqual(binance.orders(post("/api/v3/order", "symbol=BTCUSDT&side=BUY&type=MARKET&quoteOrderQty=100")), [
      { symbol: "BTCUSDT", quantity: Number.POSITIVE_INFINITY },
    ]);
    assert.deepEqual(binance.orders(post("/fapi/v1/order", "symbol=BTCUSDT&side=SELL&type=STOP_MARKET&stopPrice=25000&closePosition=true")), [
      { symbol: "BTCUSDT", quantity: 0 },
    ]);
  });

  it("place no order on reads, cancels and tests", () => {
    assert.deepEqual(binance.orders({ method: "GET", path: "/fapi/v1/order", query: "symbol=BTCUSDT&orderId=1", body: "" }), []);
    assert.deepEqual(binance.orders({ method: "DELETE", path: "/fapi/v1/order", query: "symbol=BTCUSDT&orderId=1", body: "" }), []);
    assert.deepEqual(binance.orders(post("/api/v3/order/test", "symbol=BTCUSDT&quantity=1")), []);
  });
});

describe("binance with an Ed25519 key", () => {
  it("signs the same payload; the signature is base64, percent-encoded where it is sent", () => {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const req: ExchangeRequest = { method: "POST", path: "/fapi/v1/order", query: "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1", body: "" };
    const ctx: SigningContext = { timestamp: 1700000000000, expires: 0, nonce: "", apiKeyId: "ed-key", keyAlgorithm: "ed25519" };
    const prepared = binance.prepare(req, ctx);
    assert.equal(prepared.toSign[0]!.toString(), "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1&timestamp=1700000000000");
    const sig = edSign(null, prepared.toSign[0]!, privateKey);
    const out = binance.prepare(req, ctx).finish([sig]);
    assert.equal(out.signature, sig.toString("base64"));
    assert.equal(out.query, `symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1&timestamp=1700000000000&signature=${encodeURIComponent(sig.toString("base64"))}`);
    assert.deepEqual(out.params.at(-1), ["signature", encodeURIComponent(sig.toString("base64"))]);
    assert.ok(edVerify(null, prepared.toSign[0]!, publicKey, Buffer.from(out.signature, "base64")));
    // An HMAC-length MAC for an Ed25519 key is a bug, never a silent wrong signature.
    assert.throws(
      () => binance.prepare(req, ctx).finish([Buffer.alloc(32)]),
      (e: unknown) => e instanceof CustosError && e.code === "INTERNAL",
    );
  });
});

describe("binance.binding and binance.schemaMisfit: the signature binds parameters, not the endpoint", () => {
  const get = (path: string, query: string): ExchangeRequest => ({ method: "GET", path, query, body: "" });
  const WITHDRAW_QUERY = "coin=BTC&network=BTC&address=bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh&amount=1";

  it("declares that Binance's signature covers query, body and timestamp only", () => {
    const bound = { method: false, path: false, query: true, body: true, apiKey: false, timestamp: true, nonce: "n/a", headers: [], host: false };
    assert.deepEqual(binance.binding, bound);
  });

  it("refuses withdrawal parameters claimed for GET /api/v3/account (the signed query would be a valid withdraw/apply)", () => {
    const req = get("/api/v3/account", WITHDRAW_QUERY);
    assert.equal(binance.classify(req), "account");
    assert.match(binance.schemaMisfit!(req) ?? "", /coin/);
    // What the engine really sends to /api/v3/account fits, custos's own parameters included.
    assert.equal(binance.schemaMisfit!(get("/api/v3/account", "omitZeroBalances=true")), undefined);
    assert.equal(binance.schemaMisfit!(get("/api/v3/account", `timestamp=${DOC_TIMESTAMP}&recvWindow=5000`)), undefined);
  });

  it("accepts the documented examples and refuses a parameter of another endpoint", () => {
    assert.equal(binance.schemaMisfit!(post("/api/v3/order", DOC_ORDER)), undefined);
    assert.equal(binance.schemaMisfit!(post("/fapi/v1/order", "symbol=LTCBTC&side=BUY&type=LIMIT", "timeInForce=GTC&quantity=1&price=0.1")), undefined);
    assert.ok(binance.schemaMisfit!(post("/fapi/v1/leverage", "symbol=BTCUSDT&leverage=5&asset=USDT")));
  });

  it("holds shared names to the endpoint's values: an order's type is an order type", () => {
    // GET /sapi/v1/asset/transfer needs only `type` (a transfer type): an order's `type` cannot be one.
    assert.ok(binance.schemaMisfit!(post("/fapi/v1/order", "symbol=BTCUSDT&side=BUY&type=MAIN_UMFUTURE&quantity=1")));
    assert.ok(binance.schemaMisfit!(post("/fapi/v1/positionMargin", "symbol=BTCUSDT&amount=1&type=MAIN_UMFUTURE")));
    assert.equal(binance.schemaMisfit!(post("/fapi/v1/positionMargin", "symbol=BTCUSDT&amount=1&type=1")), undefined);
  });

  it("refuses a REST request carrying apiKey: with timestamp and signature it is a WebSocket session.logon payload", () => {
    assert.ok(binance.schemaMisfit!(get("/fapi/v2/balance", "apiKey=vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A")));
    assert.ok(binance.schemaMisfit!(get("/api/v3/rateLimit/order", `apiKey=k&timestamp=${DOC_TIMESTAMP}`)));
  });

  it("names the endpoint it has no schema for, and never throws", () => {
    const withdraw = post("/sapi/v1/capital/withdraw/apply", "coin=BTC");
    assert.equal(binance.schemaMisfit!(withdraw), "custos has no parameter schema for POST /sapi/v1/capital/withdraw/apply");
    const leverage: ExchangeRequest = { method: "PUT", path: "/fapi/v1/leverage", query: "", body: "" };
    assert.match(binance.schemaMisfit!(leverage) ?? "", /no parameter schema for PUT \/fapi\/v1\/leverage/);
    assert.ok(binance.schemaMisfit!(get("/fapi/v1/openOrders", "symbol=A&symbol=B")));
  });

  it("checks WebSocket API requests against their method's schema", () => {
    const ws = binance.websocketSchemaMisfit!;
    // The documented order.place (web-socket-api.md, "SIGNED request example (HMAC)").
    const place: Array<[string, string]> = [
      ["symbol", "BTCUSDT"],
      ["side", "SELL"],
      ["type", "LIMIT"],
      ["timeInForce", "GTC"],
      ["quantity", "0.01000000"],
      ["price", "52000.00"],
      ["newOrderRespType", "ACK"],
      ["recvWindow", "100"],
    ];
    assert.equal(ws({ method: "order.place", params: place }), undefined);
    assert.equal(ws({ method: "account.status", params: [] }), undefined);
    // The same withdrawal parameters, claimed for account.status.
    assert.ok(
      ws({
        method: "account.status",
        params: [
          ["coin", "BTC"],
          ["address", "bc1q"],
          ["amount", "1"],
        ],
      }),
    );
    assert.ok(
      ws({
        method: "order.place",
        params: [
          ["symbol", "BTCUSDT"],
          ["type", "MAIN_UMFUTURE"],
        ],
      }),
    );
    assert.match(ws({ method: "sapi.withdraw", params: [] }) ?? "", /no parameter schema/);
    assert.ok(
      ws({
        method: "order.status",
        params: [
          ["symbol", "A"],
          ["symbol", "B"],
        ],
      }),
    );
  });
});

describe("binance: strict parameter reading", () => {
  it("refuses a name given twice, in the query, in the body or across them (symbols, orders and prepare alike)", () => {
    for (const req of [
      { method: "GET" as const, path: "/fapi/v1/openOrders", query: "x=1&symbol=Y&symbol=Z", body: "" },
      post("/fapi/v1/order", "symbol=BTCUSDT&quantity=1&quantity=100"),
      post("/fapi/v1/order", "symbol=BTCUSDT", "quantity=1&quantity=100"),
      post("/fapi/v1/order", "symbol=BTCUSDT&quantity=1", "quantity=100"),
      post("/fapi/v1/order", "symbol=BTCUSDT&quantit%79=1", "quantity=100"),
    ]) {
      refusedAsInvalid(() => binance.symbols(req));
      if (req.path === "/fapi/v1/order") refusedAsInvalid(() => binance.orders(req));
      refusedAsInvalid(() => binance.prepare(req, DOC_CTX));
    }
  });

  it("refuses a batch whose JSON names a key twice (which copy the exchange reads is its choice)", () => {
    const batch = '[{"symbol":"BTCUSDT","side":"BUY","type":"MARKET","quantity":"0.001","quantity":"100"}]';
    const req = post("/fapi/v1/batchOrders", `batchOrders=${encodeURIComponent(batch)}`);
    refusedAsInvalid(() => binance.orders(req));
    refusedAsInvalid(() => binance.prepare(req, DOC_CTX));
    const escaped = '[{"symbol":"BTCUSDT","quantity":"0.001","quantit\\u0079":"100"}]';
    refusedAsInvalid(() => binance.orders(post("/fapi/v1/batchOrders", `batchOrders=${encodeURIComponent(escaped)}`)));
  });
});

describe("binance: order sizes", () => {
  it("refuses an empty size, which a lenient reader takes for 0", () => {
    for (const req of [
      post("/fapi/v1/order", "symbol=BTCUSDT&side=BUY&type=MARKET&quantity="),
      post("/api/v3/order", "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=%20"),
      post("/dapi/v1/order", "symbol=BTCUSD_PERP&side=BUY&type=MARKET", "quantity="),
      post("/api/v3/orderList/oto", "symbol=BTCUSDT&workingQuantity=1&pendingQuantity="),
    ]) {
      refusedAsInvalid(() => binance.orders(req));
      refusedAsInvalid(() => binance.prepare(req, DOC_CTX));
    }
  });

  it("refuses quantity and quoteOrderQty together", () => {
    const req = post("/api/v3/order", "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.001&quoteOrderQty=1000000");
    refusedAsInvalid(() => binance.orders(req));
    refusedAsInvalid(() => binance.prepare(req, DOC_CTX));
  });

  it("refuses the same in a batch item", () => {
    for (const item of [{ quantity: "" }, { quantity: "1", quoteOrderQty: "10" }, { quantity: null }]) {
      const order = { symbol: "BTCUSDT", side: "BUY", type: "MARKET" };
      const batch = JSON.stringify([
        { ...order, quantity: "0.5" },
        { ...order, ...item },
      ]);
      refusedAsInvalid(() => binance.orders(post("/fapi/v1/batchOrders", `batchOrders=${encodeURIComponent(batch)}`)));
    }
  });

  it("counts a size that is not a plain decimal as unbounded", () => {
    for (const q of ["1e3", "0x10", "-1", "%2B1", "1%20"]) {
      const req = post("/fapi/v1/order", `symbol=BTCUSDT&side=BUY&type=MARKET&quantity=${q}`);
      assert.deepEqual(binance.orders(req), [{ symbol: "BTCUSDT", quantity: Number.POSITIVE_INFINITY }], q);
    }
  });

  it("measures OPO and OPOCO lists by the working quantity (the pending legs sell what it buys)", () => {
    const working = "symbol=BTCUSDT&workingType=LIMIT&workingSide=BUY&workingPrice=30000";
    const opo = post("/api/v3/orderList/opo", `${working}&workingQuantity=2&pendingType=MARKET&pendingSide=SELL`);
    assert.deepEqual(binance.orders(opo), [
      { symbol: "BTCUSDT", quantity: 2 },
      { symbol: "BTCUSDT", quantity: 2 },
    ]);
    assert.equal(binance.schemaMisfit!(opo), undefined);
    const opoco = post("/api/v3/orderList/opoco", `${working}&workingQuantity=3&pendingSide=SELL&pendingAboveType=LIMIT_MAKER&pendingAbovePrice=31000`);
    assert.deepEqual(binance.orders(opoco), [
      { symbol: "BTCUSDT", quantity: 3 },
      { symbol: "BTCUSDT", quantity: 3 },
    ]);
    assert.deepEqual(binance.orders(post("/api/v3/orderList/opo", "symbol=BTCUSDT&workingSide=BUY")), [
      { symbol: "BTCUSDT", quantity: Number.POSITIVE_INFINITY },
      { symbol: "BTCUSDT", quantity: Number.POSITIVE_INFINITY },
    ]);
  });

  it("applies the same rules to WebSocket API orders", () => {
    const facts = binance.websocketRequestFacts!;
    refusedAsInvalid(() =>
      facts({
        method: "order.place",
        params: [
          ["symbol", "BTCUSDT"],
          ["quantity", ""],
        ],
      }),
    );
    refusedAsInvalid(() =>
      facts({
        method: "order.place",
        params: [
          ["symbol", "BTCUSDT"],
          ["quantity", "1"],
          ["quoteOrderQty", "100"],
        ],
      }),
    );
    const odd = facts({
      method: "order.place",
      params: [
        ["symbol", "BTCUSDT"],
        ["quantity", "1e3"],
      ],
    });
    assert.deepEqual(odd.orders, [{ symbol: "BTCUSDT", quantity: Number.POSITIVE_INFINITY }]);
  });
});
