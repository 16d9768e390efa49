import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { bitmex } from "../../../src/exchanges/bitmex.js";
import type { ExchangeRequest, SigningContext } from "../../../src/exchanges/dialect.js";
import { isCustosError } from "../../../src/errors.js";

// https://www.bitmex.com/app/apiKeysUsage, "Full sample calculation": "Use these calculations as test cases".
const API_KEY = "LAqUlngMIQkIUjXMUreyu3qn";
const API_SECRET = "chNOOS4KvNXR_Xq4k4c9qsfoKWvnDecLATCRlcBwyKDYnWgO";

function ctx(expires: number): SigningContext {
  return { timestamp: 0, expires, nonce: "", apiKeyId: API_KEY };
}

/** Signs as the HSM would: HMAC-SHA256 over each `toSign` buffer with the secret's UTF-8 bytes. */
function sign(req: ExchangeRequest, c: SigningContext) {
  const prepared = bitmex.prepare(req, c);
  return prepared.finish(prepared.toSign.map((b) => createHmac("sha256", Buffer.from(API_SECRET, "utf8")).update(b).digest()));
}

describe("bitmex signing: the documented examples", () => {
  // Each: the request as sent, api-expires, and the signature the docs give ("Result is: ...").
  const examples: Array<[string, ExchangeRequest, number, string, string]> = [
    [
      "Simple GET",
      { method: "GET", path: "/api/v1/instrument", query: "", body: "" },
      1518064236,
      "GET/api/v1/instrument1518064236",
      "c7682d435d0cfe87c16098df34ef2eb5a549d4c5a3c2b1f0f77b8af73423bf00",
    ],
    [
      "GET with complex querystring (value is URL-encoded)",
      { method: "GET", path: "/api/v1/instrument", query: "filter=%7B%22symbol%22%3A+%22XBTM15%22%7D", body: "" },
      1518064237,
      "GET/api/v1/instrument?filter=%7B%22symbol%22%3A+%22XBTM15%22%7D1518064237",
      "e2f422547eecb5b3cb29ade2127e21b858b235b386bfa45e1c1756eb3383919f",
    ],
    [
      "POST",
      {
        method: "POST",
        path: "/api/v1/order",
        query: "",
        body: '{"symbol":"XBTM15","price":219.0,"clOrdID":"mm_bitmex_1a/oemUeQ4CAJZgP3fjHsA","orderQty":98}',
      },
      1518064238,
      'POST/api/v1/order1518064238{"symbol":"XBTM15","price":219.0,"clOrdID":"mm_bitmex_1a/oemUeQ4CAJZgP3fjHsA","orderQty":98}',
      "1749cd2ccae4aa49048ae09f0b95110cee706e0944e6a14ad0b3a8cb45bd336b",
    ],
  ];
  for (const [name, req, expires, message, signature] of examples) {
    it(name, () => {
      assert.equal(bitmex.prepare(req, ctx(expires)).toSign[0]!.toString("utf8"), message);
      const signed = sign(req, ctx(expires));
      assert.equal(signed.signature, signature);
      assert.deepEqual(signed.headers, [
        ["api-expires", String(expires)],
        ["api-key", API_KEY],
        ["api-signature", signature],
      ]);
      assert.equal(signed.timestamp, String(expires));
      assert.equal(signed.query, req.query);
      assert.equal(signed.body, req.body);
      assert.deepEqual(signed.params, []);
    });
  }

  it("the same formula reproduces the earlier revision's api-nonce examples", () => {
    // Earlier versions of the same page signed verb + path + nonce + data with the same secret; the nonce
    // stood where expires stands now (quoted in, e.g., BitMEX VBA and Elixir clients' tests).
    const get: ExchangeRequest = { method: "GET", path: "/api/v1/instrument", query: "filter=%7B%22symbol%22%3A+%22XBTM15%22%7D", body: "" };
    assert.equal(sign(get, ctx(1429631577690)).signature, "9f1753e2db64711e39d111bc2ecace3dc9e7f026e6f65b65c4f53d3d14a60e5f");
    const post: ExchangeRequest = {
      method: "POST",
      path: "/api/v1/order",
      query: "",
      body: '{"symbol":"XBTM15","price":219.0,"clOrdID":"mm_bitmex_1a/oemUeQ4CAJZgP3fjHsA","orderQty":98}',
    };
    assert.equal(sign(post, ctx(1429631577995)).signature, "93912e048daa5387759505a76c28d6e92c6a0d782504fc9980f4fb8adfc13e25");
  });

  it("refuses an expiry that is not whole seconds and a key id that would break the header", () => {
    const req: ExchangeRequest = { method: "GET", path: "/api/v1/position", query: "", body: "" };
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      assert.throws(
        () => bitmex.prepare(req, ctx(bad)),
        (e) => isCustosError(e) && e.code === "INVALID_ARGUMENT",
      );
    }
    for (const id of ["", "a b", "a\r\nX-Evil: 1"]) {
      assert.throws(
        () => bitmex.prepare(req, { ...ctx(1518064236), apiKeyId: id }),
        (e) => isCustosError(e) && e.code === "INVALID_ARGUMENT",
      );
    }
  });

  it("refuses a path or query the HTTP client would rewrite after classification", () => {
    for (const req of [
      { method: "POST", path: "/api/v1/order/../user/requestWithdrawal", query: "", body: "" },
      { method: "GET", path: "/api/v1/order", query: 'filter={"symbol": "XBTUSD"}', body: "" },
    ] as ExchangeRequest[]) {
      assert.throws(
        () => bitmex.prepare(req, ctx(1518064236)),
        (e) => isCustosError(e) && e.code === "INVALID_ARGUMENT",
      );
    }
  });

  it("refuses a MAC of the wrong count or size (this is a bug)", () => {
    const prepared = bitmex.prepare({ method: "GET", path: "/api/v1/position", query: "", body: "" }, ctx(1518064236));
    assert.throws(
      () => prepared.finish([Buffer.alloc(32), Buffer.alloc(32)]),
      (e) => isCustosError(e) && e.code === "INTERNAL",
    );
    assert.throws(
      () => prepared.finish([Buffer.alloc(31)]),
      (e) => isCustosError(e) && e.code === "INTERNAL",
    );
  });
});

describe("bitmex classify", () => {
  const r = (method: ExchangeRequest["method"], path: string, query = "", body = ""): ExchangeRequest => ({ method, path: `/api/v1${path}`, query, body });
  const cases: Array<[ExchangeRequest, string]> = [
    [r("POST", "/order", "", '{"symbol":"XBTUSD","orderQty":100}'), "trade"],
    [r("PUT", "/order", "", '{"orderID":"x","orderQty":50}'), "trade"],
    [r("DELETE", "/order/all"), "trade"],
    [r("POST", "/position/leverage", "", "symbol=XBTUSD&leverage=5"), "trade"],
    [r("GET", "/order", "filter=%7B%22open%22%3Atrue%7D"), "read"],
    [r("GET", "/execution/tradeHistory"), "read"],
    [r("GET", "/position"), "account"],
    [r("GET", "/user/margin", "currency=all"), "account"],
    [r("GET", "/user/wallet"), "account"],
    [r("POST", "/user/requestWithdrawal", "", '{"currency":"XBt","amount":1000,"address":"bc1q"}'), "withdraw"],
    [r("POST", "/address", "", '{"currency":"XBt","address":"bc1q","skipConfirm":true}'), "withdraw"],
    [r("POST", "/user/walletTransfer", "", '{"currency":"XBt","amount":1,"targetAccountId":2}'), "transfer"],
    // Isolated margin in or out of the account's own position; to a paired account's position it is a transfer.
    [r("POST", "/position/transferMargin", "", '{"symbol":"XBTUSD","amount":1000}'), "trade"],
    [r("POST", "/position/transferMargin", "", "symbol=XBTUSD&amount=-1000"), "trade"],
    [r("POST", "/position/transferMargin", "", '{"symbol":"XBTUSD","amount":1000,"targetAccountId":2}'), "transfer"],
    [r("POST", "/position/transferMargin", "", '{"symbol":"XBTUSD","amount":1000,"target\\u0041ccountId":2}'), "transfer"],
    [r("POST", "/position/transferMargin", "", "symbol=XBTUSD&amount=1000&target%41ccountId=2"), "transfer"],
    [r("POST", "/position/transferMargin", "targetAccountId=2", '{"symbol":"XBTUSD","amount":1000}'), "transfer"],
    [r("POST", "/position/transferMargin", "", '{"symbol":"XBTUSD","amount":1000,"targetAccountId":2'), "transfer"],
    // Public market data ccxt signs once it holds a key (loadMarkets, funding rates).
    [r("GET", "/instrument/active"), "read"],
    [r("GET", "/instrument/activeAndIndices"), "read"],
    [r("GET", "/wallet/assets"), "read"],
    [r("GET", "/funding", "symbol=XBTUSD&reverse=true"), "read"],
    [r("POST", "/instrument/active"), "unknown"],
    [r("GET", "/apiKey"), "key-management"],
    [r("POST", "/apiKey/disable"), "key-management"],
    [r("POST", "/user/becomeRich"), "unknown"],
    [r("POST", "/order/bulk", "", '{"orders":[]}'), "unknown"],
    [r("GET", "/user/requestWithdrawal"), "unknown"],
    [r("POST", "/user/RequestWithdrawal"), "unknown"],
    [{ method: "POST", path: "/order", query: "", body: "" }, "unknown"],
  ];
  for (const [req, expected] of cases) {
    it(`${req.method} ${req.path} → ${expected}`, () => assert.equal(bitmex.classify(req), expected));
  }
});

describe("bitmex symbols and orders", () => {
  const order: ExchangeRequest = {
    method: "POST",
    path: "/api/v1/order",
    query: "",
    body: '{"symbol":"XBTM15","price":219.0,"clOrdID":"mm_bitmex_1a/oemUeQ4CAJZgP3fjHsA","orderQty":98}',
  };

  it("reads symbol and orderQty from a JSON body", () => {
    assert.deepEqual(bitmex.symbols(order), ["XBTM15"]);
    assert.deepEqual(bitmex.orders(order), [{ symbol: "XBTM15", quantity: 98 }]);
  });

  it("reads them from a form body and from the query", () => {
    assert.deepEqual(bitmex.orders({ ...order, body: "symbol=XBTUSD&orderQty=200&price=1" }), [{ symbol: "XBTUSD", quantity: 200 }]);
    assert.deepEqual(bitmex.orders({ ...order, query: "symbol=ETHUSD&orderQty=3", body: "" }), [{ symbol: "ETHUSD", quantity: 3 }]);
  });

  it("reads a JSON-looking body as a form too, since the unsigned Content-Type decides", () => {
    // As form data this is symbol=ETHUSD&orderQty=100000; as JSON it is XBTUSD × 1. Both are reported.
    const body = '{"symbol":"XBTUSD","orderQty":1,"x":"&symbol=ETHUSD&orderQty=100000&y="}';
    assert.deepEqual(bitmex.symbols({ ...order, body }), ["ETHUSD", "XBTUSD"]);
    assert.deepEqual(bitmex.orders({ ...order, body }), [
      { symbol: "ETHUSD", quantity: 100000 },
      { symbol: "XBTUSD", quantity: 100000 },
    ]);
  });

  it("sizes a sell given as a negative orderQty by its absolute value, and a missing size as NaN", () => {
    assert.deepEqual(bitmex.orders({ ...order, body: '{"symbol":"XBTUSD","orderQty":-500}' }), [{ symbol: "XBTUSD", quantity: 500 }]);
    assert.ok(Number.isNaN(bitmex.orders({ ...order, body: '{"symbol":"XBTUSD","execInst":"Close"}' })[0]!.quantity));
  });

  it("reports an amend's new size under the empty symbol, and a price-only amend as no order", () => {
    const amend = (body: string): ExchangeRequest => ({ method: "PUT", path: "/api/v1/order", query: "", body });
    assert.deepEqual(bitmex.orders(amend('{"orderID":"abc","leavesQty":70}')), [{ symbol: "", quantity: 70 }]);
    assert.deepEqual(bitmex.orders(amend('{"orderID":"abc","price":300}')), []);
  });

  it("names the symbol of a table query's filter, and places no orders for it", () => {
    const get: ExchangeRequest = { method: "GET", path: "/api/v1/order", query: "filter=%7B%22symbol%22%3A+%22XBTM15%22%7D&count=5", body: "" };
    assert.deepEqual(bitmex.symbols(get), ["XBTM15"]);
    assert.deepEqual(bitmex.orders(get), []);
    assert.deepEqual(bitmex.symbols({ ...get, query: "symbol=xbtusd" }), ["XBTUSD"]);
  });
});
