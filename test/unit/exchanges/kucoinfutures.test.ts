import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import ccxt from "ccxt";
import { KucoinFuturesDialect, kucoinfutures } from "../../../src/exchanges/kucoinfutures.js";
import type { ExchangeRequest, PreparedRequest, SigningContext } from "../../../src/exchanges/dialect.js";
import { CustosError } from "../../../src/errors.js";

const SECRET = "kucoin-test-secret-0123456789abcdef";
const T = 1_700_000_000_000;
/** The key version's stored KC-API-PASSPHRASE, as `custos key import` computes it from the passphrase "kc-pass". */
const SIGNED_PASSPHRASE = createHmac("sha256", SECRET).update("kc-pass").digest("base64");
const ctx = (over: Partial<SigningContext> = {}): SigningContext => ({
  timestamp: T,
  expires: 0,
  nonce: "",
  apiKeyId: "kc-key",
  signedPassphrase: SIGNED_PASSPHRASE,
  ...over,
});
const req = (method: ExchangeRequest["method"], path: string, query = "", body = ""): ExchangeRequest => ({ method, path, query, body });

/** Stands in for the HSM: one HMAC-SHA256 per message, keyed with the UTF-8 secret. */
const hsm = (p: PreparedRequest, secret = SECRET): Buffer[] => p.toSign.map((m) => createHmac("sha256", secret).update(m).digest());
const b64mac = (msg: string): string => createHmac("sha256", SECRET).update(msg).digest("base64");
const header = (headers: Array<[string, string]>, name: string): string | undefined => headers.find(([k]) => k === name)?.[1];

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof CustosError ? e.code : "not a CustosError";
  }
  return undefined;
}

/** ccxt's kucoinfutures with a fixed clock and no partner headers; `sign()` is pure. */
function ccxtKucoinFutures() {
  const ex = new ccxt.kucoinfutures({ apiKey: "kc-key", secret: SECRET, password: "kc-pass" });
  ex.nonce = () => T;
  ex.options.partner = {};
  return ex;
}

describe("kucoinfutures dialect: string to sign", () => {
  // https://www.kucoin.com/docs-new/authentication publishes the rules and code samples but no
  // secret with an expected signature: the MACs are cross-checked against ccxt below.
  it("signs timestamp + METHOD + endpoint + body, and nothing else (no HMAC oracle)", () => {
    const p = kucoinfutures.prepare(req("GET", "/api/v1/account-overview", "currency=USDT"), ctx());
    assert.equal(p.toSign.length, 1);
    assert.deepEqual(p.toSign[0], Buffer.from(`${T}GET/api/v1/account-overview?currency=USDT`, "utf8"));
    const signed = p.finish(hsm(p));
    assert.deepEqual(signed.headers, [
      ["KC-API-KEY", "kc-key"],
      ["KC-API-SIGN", b64mac(`${T}GET/api/v1/account-overview?currency=USDT`)],
      ["KC-API-TIMESTAMP", String(T)],
      ["KC-API-PASSPHRASE", SIGNED_PASSPHRASE],
      ["KC-API-KEY-VERSION", "2"],
    ]);
    assert.equal(signed.signature, header(signed.headers, "KC-API-SIGN"));
  });

  it("sends the key version's precomputed passphrase as is: base64(HMAC-SHA256(secret, passphrase))", () => {
    // The documented passphrase rule, cross-checked with node:crypto on an independent secret and passphrase.
    const secret = "another-kucoin-secret-fedcba9876543210";
    const signedPassphrase = createHmac("sha256", secret).update("Pass phrase!1").digest("base64");
    const p = kucoinfutures.prepare(req("GET", "/api/v1/positions"), ctx({ signedPassphrase }));
    assert.deepEqual(p.toSign, [Buffer.from(`${T}GET/api/v1/positions`)]);
    const signed = p.finish(hsm(p, secret));
    assert.equal(header(signed.headers, "KC-API-PASSPHRASE"), signedPassphrase);
    assert.equal(header(signed.headers, "KC-API-SIGN"), createHmac("sha256", secret).update(`${T}GET/api/v1/positions`).digest("base64"));
  });

  it("never signs caller bytes for the passphrase: a request string posing as a passphrase is refused", () => {
    // The old oracle: "passphrase" = a withdrawal's string to sign, returned as its KC-API-SIGN.
    const withdrawal = `${T}POST/api/v1/withdrawals{"currency":"USDT","address":"0xabc","amount":1000}`;
    assert.equal(
      codeOf(() => kucoinfutures.prepare(req("GET", "/api/v1/positions"), ctx({ passphrase: withdrawal }))),
      "INVALID_ARGUMENT",
    );
    assert.equal(
      codeOf(() => kucoinfutures.prepare(req("GET", "/api/v1/positions"), ctx({ passphrase: "kc-pass" }))),
      "INVALID_ARGUMENT",
    );
    try {
      kucoinfutures.prepare(req("GET", "/api/v1/positions"), ctx({ passphrase: "kc-pass" }));
    } catch (e) {
      assert.match((e as Error).message, /the KuCoin passphrase is part of the key, not of the request/);
    }
  });

  it("signs the URL without URL encoding (the documented sub/api-key example)", () => {
    // docs-new/authentication: "/api/v1/sub/api-key?apiKey=67*b3&subName=test&passphrase=abc%21%40%2311"
    // participates in the signature as "/api/v1/sub/api-key?apiKey=67*b3&subName=test&passphrase=abc!@#11".
    const query = "apiKey=67*b3&subName=test&passphrase=abc%21%40%2311";
    const p = kucoinfutures.prepare(req("GET", "/api/v1/sub/api-key", query), ctx());
    assert.equal(p.toSign[0]!.toString("utf8"), `${T}GET/api/v1/sub/api-key?apiKey=67*b3&subName=test&passphrase=abc!@#11`);
    assert.equal(p.finish(hsm(p)).query, query, "the query is sent as given");
  });

  it("adds Content-Type with a body; key version 3 differs only in its header", () => {
    const body = '{"clientOid":"x1","side":"buy","symbol":"XBTUSDTM","leverage":5,"type":"market","size":1}';
    const v2 = kucoinfutures.prepare(req("POST", "/api/v1/orders", "", body), ctx());
    const v3 = new KucoinFuturesDialect("3").prepare(req("POST", "/api/v1/orders", "", body), ctx());
    const s2 = v2.finish(hsm(v2));
    const s3 = v3.finish(hsm(v3));
    assert.equal(header(s2.headers, "Content-Type"), "application/json");
    assert.equal(header(s3.headers, "KC-API-KEY-VERSION"), "3");
    assert.deepEqual(
      s3.headers.filter(([k]) => k !== "KC-API-KEY-VERSION"),
      s2.headers.filter(([k]) => k !== "KC-API-KEY-VERSION"),
    );
  });

  it("takes the key version the engine states per request, and refuses version 1 or garbage", () => {
    const body = '{"clientOid":"x2","side":"sell","symbol":"XBTUSDTM","type":"market","size":2}';
    const v3 = kucoinfutures.prepare(req("POST", "/api/v1/orders", "", body), ctx({ apiKeyVersion: "3" }));
    const s3 = v3.finish(hsm(v3));
    assert.equal(header(s3.headers, "KC-API-KEY-VERSION"), "3");
    assert.equal(s3.signature, b64mac(`${T}POST/api/v1/orders${body}`));
    assert.equal(header(s3.headers, "KC-API-PASSPHRASE"), b64mac("kc-pass"), "version 3 sends the passphrase HMAC like version 2");
    assert.equal(
      codeOf(() => kucoinfutures.prepare(req("GET", "/api/v1/positions"), ctx({ apiKeyVersion: "1" }))),
      "INVALID_ARGUMENT",
    );
    assert.equal(
      codeOf(() => kucoinfutures.prepare(req("GET", "/api/v1/positions"), ctx({ apiKeyVersion: "3 " }))),
      "INVALID_ARGUMENT",
    );
  });

  it("refuses a key version without a signed passphrase (set at import or rotation), and MACs of the wrong shape", () => {
    const { signedPassphrase: _, ...noPass } = ctx();
    assert.equal(
      codeOf(() => kucoinfutures.prepare(req("GET", "/api/v1/positions"), noPass)),
      "PRECONDITION_FAILED",
    );
    assert.equal(
      codeOf(() => kucoinfutures.prepare(req("GET", "/api/v1/positions"), ctx({ signedPassphrase: "" }))),
      "PRECONDITION_FAILED",
    );
    const p = kucoinfutures.prepare(req("GET", "/api/v1/positions"), ctx());
    assert.equal(
      codeOf(() => p.finish([])),
      "INTERNAL",
    );
    assert.equal(
      codeOf(() => p.finish([...hsm(p), ...hsm(p)])),
      "INTERNAL",
    );
    assert.equal(
      codeOf(() => p.finish([Buffer.alloc(64)])),
      "INTERNAL",
    );
  });
});

describe("kucoinfutures dialect: cross-check with ccxt", () => {
  const compare = (theirs: ReturnType<ReturnType<typeof ccxtKucoinFutures>["sign"]>, method: ExchangeRequest["method"]) => {
    const url = new URL(String(theirs.url));
    const p = kucoinfutures.prepare(req(method, url.pathname, url.search.slice(1), theirs.body ?? ""), ctx());
    const ours = p.finish(hsm(p));
    for (const name of ["KC-API-KEY", "KC-API-SIGN", "KC-API-TIMESTAMP", "KC-API-PASSPHRASE", "KC-API-KEY-VERSION"]) {
      assert.equal(header(ours.headers, name), theirs.headers[name], name);
    }
    return ours;
  };

  it("signs an order like ccxt", () => {
    const params = { clientOid: "abc", side: "buy", symbol: "XBTUSDTM", leverage: 5, type: "limit", price: "30000", size: 2 };
    const theirs = ccxtKucoinFutures().sign("orders", "futuresPrivate", "POST", params);
    const ours = compare(theirs, "POST");
    assert.equal(header(ours.headers, "Content-Type"), theirs.headers["Content-Type"]);
  });

  it("signs a GET with a query like ccxt", () => {
    compare(ccxtKucoinFutures().sign("orders", "futuresPrivate", "GET", { status: "active", symbol: "XBTUSDTM" }), "GET");
  });

  it("signs a cancel like ccxt", () => {
    compare(ccxtKucoinFutures().sign("orders/{orderId}", "futuresPrivate", "DELETE", { orderId: "5cdfc138b21023a909e5ad55" }), "DELETE");
  });
});

describe("kucoinfutures dialect: classify", () => {
  const cases: Array<[ExchangeRequest, string]> = [
    [req("POST", "/api/v1/orders", "", "{}"), "trade"],
    [req("POST", "/api/v1/orders/multi", "", "[]"), "trade"],
    [req("DELETE", "/api/v1/orders/5cdfc138b21023a909e5ad55"), "trade"],
    [req("POST", "/api/v1/position/margin/deposit-margin", "", "{}"), "trade"],
    [req("GET", "/api/v1/orders", "status=active"), "read"],
    [req("GET", "/api/v1/fills"), "read"],
    [req("POST", "/api/v1/bullet-private"), "read"], // the private WebSocket token
    [req("GET", "/api/v1/account-overview", "currency=USDT"), "account"],
    [req("GET", "/api/v1/positions"), "account"],
    [req("POST", "/api/v3/transfer-out", "", "{}"), "transfer"],
    [req("POST", "/api/v1/transfer-in", "", "{}"), "transfer"],
    [req("POST", "/api/v1/withdrawals", "", "{}"), "withdraw"],
    [req("DELETE", "/api/v1/withdrawals/abc123"), "withdraw"],
    [req("POST", "/api/v1/sub/api-key", "", "{}"), "key-management"],
    [req("POST", "/api/v1/sub/api-key/update", "", "{}"), "key-management"],
    // fail closed
    [req("PUT", "/api/v1/orders", "", "{}"), "unknown"],
    [req("POST", "/api/v1/copy-trade/futures/orders", "", "{}"), "unknown"],
    [req("GET", "/api/v9/orders"), "unknown"],
    [req("GET", "/api/v1/made/up"), "unknown"],
  ];
  for (const [r, cls] of cases) {
    it(`${r.method} ${r.path} is ${cls}`, () => assert.equal(kucoinfutures.classify(r), cls));
  }
});

describe("kucoinfutures dialect: symbols and orders", () => {
  it("reads symbol and size (lots) of an order", () => {
    const order = req(
      "POST",
      "/api/v1/orders",
      "",
      '{"clientOid":"abc","side":"sell","symbol":"XBTUSDTM","leverage":5,"type":"limit","price":"30000","size":2}',
    );
    assert.deepEqual(kucoinfutures.symbols(order), ["XBTUSDTM"]);
    assert.deepEqual(kucoinfutures.orders(order), [{ symbol: "XBTUSDTM", quantity: 2 }]);
  });

  it("reads multi orders, position closes, queries and risk-limit paths", () => {
    const multi = req("POST", "/api/v1/orders/multi", "", '[{"symbol":"ETHUSDTM","size":"3"},{"symbol":"XBTUSDTM","size":1}]');
    assert.deepEqual(kucoinfutures.orders(multi), [
      { symbol: "ETHUSDTM", quantity: 3 },
      { symbol: "XBTUSDTM", quantity: 1 },
    ]);
    const close = req("POST", "/api/v1/orders", "", '{"clientOid":"c","symbol":"XBTUSDTM","type":"market","closeOrder":true}');
    assert.deepEqual(kucoinfutures.orders(close), [{ symbol: "XBTUSDTM", quantity: 0 }]);
    assert.deepEqual(kucoinfutures.symbols(req("DELETE", "/api/v1/orders", "symbol=SOLUSDTM")), ["SOLUSDTM"]);
    assert.deepEqual(kucoinfutures.symbols(req("GET", "/api/v1/contracts/risk-limit/XBTUSDTM")), ["XBTUSDTM"]);
  });

  it("counts qty / valueQty orders (not in lots) as unmeasurable", () => {
    const [o] = kucoinfutures.orders(req("POST", "/api/v1/orders", "", '{"symbol":"XBTUSDTM","side":"buy","type":"market","qty":"0.5"}'));
    assert.equal(o!.symbol, "XBTUSDTM");
    assert.ok(Number.isNaN(o!.quantity));
  });
});
