import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import ccxt from "ccxt";
import { bitget } from "../../../src/exchanges/bitget.js";
import type { ExchangeRequest, PreparedRequest, SigningContext } from "../../../src/exchanges/dialect.js";
import { CustosError } from "../../../src/errors.js";

const SECRET = "bitget-test-secret-0123456789abcdef";
const T = 1_700_000_000_000;
const ctx = (over: Partial<SigningContext> = {}): SigningContext => ({
  timestamp: T,
  expires: 0,
  nonce: "",
  apiKeyId: "bg-key",
  passphrase: "bg-pass",
  ...over,
});
const req = (method: ExchangeRequest["method"], path: string, query = "", body = ""): ExchangeRequest => ({ method, path, query, body });

/** Stands in for the HSM: one HMAC-SHA256 per message, keyed with the UTF-8 secret. */
const hsm = (p: PreparedRequest, secret = SECRET): Buffer[] => p.toSign.map((m) => createHmac("sha256", secret).update(m).digest());
const header = (headers: Array<[string, string]>, name: string): string | undefined => headers.find(([k]) => k === name)?.[1];

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof CustosError ? e.code : "not a CustosError";
  }
  return undefined;
}

/** ccxt's bitget with a fixed clock; `sign()` is pure (no markets, no network). */
function ccxtBitget() {
  const ex = new ccxt.bitget({ apiKey: "bg-key", secret: SECRET, password: "bg-pass" });
  ex.nonce = () => T;
  return ex;
}

describe("bitget dialect: string to sign", () => {
  // https://www.bitget.com/api-doc/common/signature "Sample Code": the docs publish the strings to
  // sign but no secret with an expected signature, so the MAC is cross-checked against ccxt below.
  it("reproduces the documented GET example (query after '?')", () => {
    const p = bitget.prepare(req("GET", "/api/mix/v2/market/depth", "limit=20&symbol=BTCUSDT"), ctx({ timestamp: 16273667805456 }));
    assert.equal(p.toSign.length, 1);
    assert.equal(p.toSign[0]!.toString("utf8"), "16273667805456GET/api/mix/v2/market/depth?limit=20&symbol=BTCUSDT");
  });

  it("reproduces the documented POST example (body appended, no '?')", () => {
    const body =
      '{"productType":"usdt-futures","symbol":"BTCUSDT","size":"8","marginMode":"crossed","side":"buy","orderType":"limit","clientOid":"channel#123456"}';
    const p = bitget.prepare(req("POST", "/api/v2/mix/order/place-order", "", body), ctx({ timestamp: 16273667805456 }));
    assert.equal(p.toSign[0]!.toString("utf8"), `16273667805456POST/api/v2/mix/order/place-order${body}`);
  });

  it("base64-encodes the MAC and sends the documented headers in order", () => {
    const body = '{"symbol":"BTCUSDT","size":"1"}';
    const p = bitget.prepare(req("POST", "/api/v2/mix/order/place-order", "", body), ctx());
    const mac = hsm(p);
    const signed = p.finish(mac);
    assert.equal(signed.signature, mac[0]!.toString("base64"));
    assert.deepEqual(signed.headers, [
      ["ACCESS-KEY", "bg-key"],
      ["ACCESS-SIGN", mac[0]!.toString("base64")],
      ["ACCESS-TIMESTAMP", String(T)],
      ["ACCESS-PASSPHRASE", "bg-pass"],
      ["Content-Type", "application/json"],
      ["locale", "en-US"],
    ]);
    assert.deepEqual([signed.query, signed.body, signed.timestamp, signed.params], ["", body, String(T), []]);
  });

  it("refuses a key without passphrase", () => {
    const { passphrase: _, ...noPass } = ctx();
    assert.equal(
      codeOf(() => bitget.prepare(req("GET", "/api/v2/mix/account/accounts", "productType=USDT-FUTURES"), noPass)),
      "INVALID_ARGUMENT",
    );
    assert.equal(
      codeOf(() => bitget.prepare(req("GET", "/api/v2/mix/account/accounts"), ctx({ passphrase: "" }))),
      "INVALID_ARGUMENT",
    );
  });

  it("refuses header injection and queries that would not be sent as signed", () => {
    const r = req("GET", "/api/v2/mix/order/detail", "symbol=BTCUSDT");
    assert.equal(
      codeOf(() => bitget.prepare(r, ctx({ apiKeyId: "k\r\nX-Evil: 1" }))),
      "INVALID_ARGUMENT",
    );
    assert.equal(
      codeOf(() => bitget.prepare(r, ctx({ passphrase: "p\nX-Evil: 1" }))),
      "INVALID_ARGUMENT",
    );
    assert.equal(
      codeOf(() => bitget.prepare(req("GET", "/api/v2/mix/order/detail", "clientOid=a+b"), ctx())),
      "INVALID_ARGUMENT",
    );
    assert.equal(
      codeOf(() => bitget.prepare(req("GET", "/api/v2/mix/order/detail", "clientOid=a b"), ctx())),
      "INVALID_ARGUMENT",
    );
    assert.equal(
      codeOf(() => bitget.prepare(req("GET", "/api/v2/mix/order/detail?symbol=BTCUSDT"), ctx())),
      "INVALID_ARGUMENT",
    );
  });

  it("refuses a malformed percent-escape and a MAC of the wrong shape", () => {
    assert.equal(
      codeOf(() => bitget.prepare(req("GET", "/api/v2/mix/order/detail", "symbol=%E0%A4%A"), ctx())),
      "INVALID_ARGUMENT",
    );
    const p = bitget.prepare(req("GET", "/api/v2/mix/order/detail", "symbol=BTCUSDT"), ctx());
    assert.equal(
      codeOf(() => p.finish([])),
      "INTERNAL",
    );
    assert.equal(
      codeOf(() => p.finish([Buffer.alloc(64)])),
      "INTERNAL",
    );
  });
});

describe("bitget dialect: cross-check with ccxt", () => {
  it("signs a futures order exactly like ccxt", () => {
    const params = {
      symbol: "BTCUSDT",
      productType: "USDT-FUTURES",
      marginMode: "crossed",
      marginCoin: "USDT",
      size: "0.01",
      side: "buy",
      orderType: "market",
    };
    const theirs = ccxtBitget().sign("v2/mix/order/place-order", ["private", "mix"], "POST", params);
    const url = new URL(theirs.url);
    const p = bitget.prepare(req("POST", url.pathname, url.search.slice(1), theirs.body), ctx());
    const ours = p.finish(hsm(p));
    for (const name of ["ACCESS-KEY", "ACCESS-SIGN", "ACCESS-TIMESTAMP", "ACCESS-PASSPHRASE", "Content-Type"]) {
      assert.equal(header(ours.headers, name), theirs.headers[name], name);
    }
    assert.equal(ours.body, theirs.body);
  });

  it("signs a GET with a query exactly like ccxt", () => {
    const theirs = ccxtBitget().sign("v2/mix/order/orders-pending", ["private", "mix"], "GET", { symbol: "BTCUSDT", productType: "USDT-FUTURES" });
    const url = new URL(theirs.url);
    const p = bitget.prepare(req("GET", url.pathname, url.search.slice(1)), ctx());
    assert.equal(header(p.finish(hsm(p)).headers, "ACCESS-SIGN"), theirs.headers["ACCESS-SIGN"]);
  });

  it("signs the query without URL encoding, as ccxt does (the URL keeps its escapes)", () => {
    const theirs = ccxtBitget().sign("v2/mix/order/detail", ["private", "mix"], "GET", {
      symbol: "BTCUSDT",
      productType: "USDT-FUTURES",
      clientOid: "channel#123456",
    });
    const url = new URL(theirs.url);
    assert.match(url.search, /channel%23123456/);
    const p = bitget.prepare(req("GET", url.pathname, url.search.slice(1)), ctx());
    assert.match(p.toSign[0]!.toString("utf8"), /clientOid=channel#123456/);
    const ours = p.finish(hsm(p));
    assert.equal(header(ours.headers, "ACCESS-SIGN"), theirs.headers["ACCESS-SIGN"]);
    assert.equal(ours.query, url.search.slice(1), "the query is sent as given");
  });
});

describe("bitget dialect: classify", () => {
  const cases: Array<[ExchangeRequest, string]> = [
    [req("POST", "/api/v2/mix/order/place-order", "", "{}"), "trade"],
    [req("POST", "/api/v2/mix/order/cancel-order", "", "{}"), "trade"],
    [req("POST", "/api/v2/mix/account/set-leverage", "", "{}"), "trade"],
    [req("GET", "/api/v2/mix/order/orders-pending", "productType=USDT-FUTURES"), "read"],
    [req("GET", "/api/v2/mix/order/fills", "productType=USDT-FUTURES"), "read"],
    [req("GET", "/api/v2/mix/account/accounts", "productType=USDT-FUTURES"), "account"],
    [req("GET", "/api/v2/mix/position/all-position", "productType=USDT-FUTURES"), "account"],
    [req("POST", "/api/v2/spot/wallet/transfer", "", "{}"), "transfer"],
    [req("POST", "/api/v2/spot/wallet/subaccount-transfer", "", "{}"), "transfer"],
    [req("POST", "/api/v2/spot/wallet/withdrawal", "", "{}"), "withdraw"],
    [req("GET", "/api/v2/spot/wallet/withdrawal-records", "coin=USDT"), "withdraw"],
    [req("POST", "/api/v2/user/create-virtual-subaccount-apikey", "", "{}"), "key-management"],
    [req("POST", "/api/v2/broker/manage/create-subaccount-apikey", "", "{}"), "key-management"],
    // fail closed: unknown paths, wrong methods, near misses
    [req("POST", "/api/v2/mix/order/place-order-everything", "", "{}"), "unknown"],
    [req("GET", "/api/v2/mix/order/place-order"), "unknown"],
    [req("POST", "/api/v2/mix/order/place-order/", "", "{}"), "unknown"],
    [req("POST", "/api/v2/spot/trade/place-order", "", "{}"), "unknown"],
    [req("GET", "/api/v2/made/up"), "unknown"],
  ];
  for (const [r, cls] of cases) {
    it(`${r.method} ${r.path} is ${cls}`, () => assert.equal(bitget.classify(r), cls));
  }
});

describe("bitget dialect: symbols and orders", () => {
  const order = req(
    "POST",
    "/api/v2/mix/order/place-order",
    "",
    '{"symbol":"BTCUSDT","productType":"USDT-FUTURES","marginMode":"crossed","marginCoin":"USDT","size":"0.25","side":"buy","orderType":"market"}',
  );

  it("reads symbol and size of a placed order", () => {
    assert.deepEqual(bitget.symbols(order), ["BTCUSDT"]);
    assert.deepEqual(bitget.orders(order), [{ symbol: "BTCUSDT", quantity: 0.25 }]);
  });

  it("reads every entry of a batch", () => {
    const batch = req(
      "POST",
      "/api/v2/mix/order/batch-place-order",
      "",
      '{"symbol":"ETHUSDT","productType":"USDT-FUTURES","marginCoin":"USDT","marginMode":"crossed","orderList":[{"size":"1","side":"buy"},{"size":"2.5","side":"sell"}]}',
    );
    assert.deepEqual(bitget.orders(batch), [
      { symbol: "ETHUSDT", quantity: 1 },
      { symbol: "ETHUSDT", quantity: 2.5 },
    ]);
  });

  it("reads symbols from the query and counts an unreadable size as unmeasurable", () => {
    assert.deepEqual(bitget.symbols(req("GET", "/api/v2/mix/order/detail", "productType=USDT-FUTURES&symbol=ETHUSDT")), ["ETHUSDT"]);
    const noSize = bitget.orders(req("POST", "/api/v2/mix/order/place-order", "", '{"symbol":"BTCUSDT","size":"lots"}'));
    assert.equal(noSize.length, 1);
    assert.ok(Number.isNaN(noSize[0]!.quantity));
    assert.deepEqual(bitget.orders(req("POST", "/api/v2/mix/order/cancel-order", "", '{"symbol":"BTCUSDT","orderId":"1"}')), []);
  });

  it("refuses a body that is not JSON", () => {
    assert.equal(
      codeOf(() => bitget.symbols(req("POST", "/api/v2/mix/order/place-order", "", "symbol=BTCUSDT"))),
      "INVALID_ARGUMENT",
    );
  });
});
