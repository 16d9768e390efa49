import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import ccxt from "ccxt";
import { gate } from "../../../src/exchanges/gate.js";
import type { ExchangeRequest, PreparedRequest, SigningContext } from "../../../src/exchanges/dialect.js";
import { CustosError } from "../../../src/errors.js";

const SECRET = "gate-test-secret-0123456789abcdef0123456789abcdef";
const T = 1_700_000_000_000;
const ctx = (over: Partial<SigningContext> = {}): SigningContext => ({ timestamp: T, expires: 0, nonce: "", apiKeyId: "gate-key", ...over });
const req = (method: ExchangeRequest["method"], path: string, query = "", body = ""): ExchangeRequest => ({ method, path, query, body });

/** Stands in for the HSM: one HMAC-SHA512 per message, keyed with the UTF-8 secret. */
const hsm = (p: PreparedRequest, secret = SECRET): Buffer[] => p.toSign.map((m) => createHmac("sha512", secret).update(m).digest());
const header = (headers: Array<[string, string]>, name: string): string | undefined => headers.find(([k]) => k === name)?.[1];

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof CustosError ? e.code : "not a CustosError";
  }
  return undefined;
}

/** ccxt's gate with a fixed clock (it signs nonce() / 1000); `sign()` is pure. */
function ccxtGate() {
  const ex = new ccxt.gate({ apiKey: "gate-key", secret: SECRET });
  ex.nonce = () => T;
  return ex;
}

describe("gate dialect: documented examples", () => {
  // https://www.gate.com/docs/developers/apiv4/en/#api-signature-string-generation, "Examples":
  // key "key", secret "secret", Timestamp 1541993715.
  const docs = ctx({ apiKeyId: "key", timestamp: 1541993715_000 });

  it("reproduces 'List all orders' (GET with a query, empty body)", () => {
    const p = gate.prepare(req("GET", "/api/v4/futures/orders", "contract=BTC_USD&status=finished&limit=50"), docs);
    assert.equal(
      p.toSign[0]!.toString("utf8"),
      "GET\n/api/v4/futures/orders\ncontract=BTC_USD&status=finished&limit=50\n" +
        "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e\n1541993715",
    );
    const signed = p.finish(hsm(p, "secret"));
    assert.equal(
      signed.signature,
      "55f84ea195d6fe57ce62464daaa7c3c02fa9d1dde954e4c898289c9a2407a3d6fb3faf24deff16790d726b66ac9f74526668b13bd01029199cc4fcc522418b8a",
    );
    assert.deepEqual(signed.headers, [
      ["KEY", "key"],
      ["Timestamp", "1541993715"],
      ["SIGN", signed.signature],
    ]);
  });

  it("reproduces 'Create an order' (POST, empty query, hashed JSON body)", () => {
    const body = '{"contract":"BTC_USD","type":"limit","size":100,"price":6800,"time_in_force":"gtc"}';
    const p = gate.prepare(req("POST", "/api/v4/futures/orders", "", body), docs);
    assert.equal(
      p.toSign[0]!.toString("utf8"),
      "POST\n/api/v4/futures/orders\n\n" +
        "ad3c169203dc3026558f01b4df307641fa1fa361f086b2306658886d5708767b1854797c68d9e62fef2f991645aa82673622ebf417e091d0bd22bafe5d956cca\n1541993715",
    );
    const signed = p.finish(hsm(p, "secret"));
    assert.equal(
      signed.signature,
      "eae42da914a590ddf727473aff25fc87d50b64783941061f47a3fdb92742541fc4c2c14017581b4199a1418d54471c269c03a38d788d802e2c306c37636389f0",
    );
    assert.equal(header(signed.headers, "Content-Type"), "application/json");
  });

  it("signs whole seconds: milliseconds are dropped, not rounded", () => {
    const p = gate.prepare(req("GET", "/api/v4/futures/usdt/accounts"), ctx({ timestamp: 1541993715_999 }));
    assert.equal(p.finish(hsm(p)).timestamp, "1541993715");
  });

  it("refuses a MAC of the wrong shape", () => {
    const p = gate.prepare(req("GET", "/api/v4/futures/usdt/accounts"), ctx());
    assert.equal(
      codeOf(() => p.finish([Buffer.alloc(32)])),
      "INTERNAL",
    );
    assert.equal(
      codeOf(() => p.finish(hsm(p).concat(hsm(p)))),
      "INTERNAL",
    );
  });
});

describe("gate dialect: cross-check with ccxt", () => {
  const compare = (theirs: ReturnType<ReturnType<typeof ccxtGate>["sign"]>, method: ExchangeRequest["method"]) => {
    const url = new URL(String(theirs.url));
    const p = gate.prepare(req(method, url.pathname, url.search.slice(1), theirs.body ?? ""), ctx());
    const ours = p.finish(hsm(p));
    for (const name of ["KEY", "Timestamp", "SIGN"]) assert.equal(header(ours.headers, name), theirs.headers[name], name);
    return ours;
  };

  it("signs a futures sell order (negative size) like ccxt", () => {
    const theirs = ccxtGate().sign("{settle}/orders", ["private", "futures"], "POST", {
      settle: "usdt",
      contract: "BTC_USDT",
      size: -3,
      price: "0",
      tif: "ioc",
    });
    assert.equal(compare(theirs, "POST").body, theirs.body);
  });

  it("signs a GET with a query like ccxt, unencoded", () => {
    const theirs = ccxtGate().sign("{settle}/orders", ["private", "futures"], "GET", {
      settle: "usdt",
      contract: "BTC_USDT",
      status: "finished",
      text: "t-a b",
    });
    assert.match(theirs.url, /t-a%20b/);
    compare(theirs, "GET");
  });

  it("signs a POST whose parameters travel in the query (position leverage) like ccxt", () => {
    const theirs = ccxtGate().sign("{settle}/positions/{contract}/leverage", ["private", "futures"], "POST", {
      settle: "usdt",
      contract: "BTC_USDT",
      leverage: "10",
    });
    assert.equal(theirs.body, undefined);
    compare(theirs, "POST");
  });

  it("signs a cancel-all DELETE like ccxt", () => {
    compare(ccxtGate().sign("{settle}/orders", ["private", "futures"], "DELETE", { settle: "usdt", contract: "ETH_USDT" }), "DELETE");
  });
});

describe("gate dialect: classify", () => {
  const cases: Array<[ExchangeRequest, string]> = [
    [req("POST", "/api/v4/futures/usdt/orders", "", "{}"), "trade"],
    [req("DELETE", "/api/v4/futures/usdt/orders/12345"), "trade"],
    [req("POST", "/api/v4/futures/usdt/batch_orders", "", "[]"), "trade"],
    [req("POST", "/api/v4/futures/usdt/positions/BTC_USDT/leverage", "leverage=10"), "trade"],
    [req("POST", "/api/v4/delivery/usdt/orders", "", "{}"), "trade"],
    [req("GET", "/api/v4/futures/usdt/orders", "contract=BTC_USDT&status=open"), "read"],
    [req("GET", "/api/v4/futures/usdt/my_trades"), "read"],
    [req("GET", "/api/v4/futures/usdt/accounts"), "account"],
    [req("GET", "/api/v4/futures/usdt/positions/BTC_USDT"), "account"],
    [req("POST", "/api/v4/wallet/transfers", "", "{}"), "transfer"],
    [req("POST", "/api/v4/wallet/sub_account_transfers", "", "{}"), "transfer"],
    [req("POST", "/api/v4/withdrawals", "", "{}"), "withdraw"],
    [req("POST", "/api/v4/withdrawals/push", "", "{}"), "withdraw"],
    [req("DELETE", "/api/v4/withdrawals/w123"), "withdraw"],
    [req("GET", "/api/v4/wallet/saved_address", "currency=USDT"), "withdraw"],
    [req("POST", "/api/v4/sub_accounts/1001/keys", "", "{}"), "key-management"],
    [req("DELETE", "/api/v4/sub_accounts/1001/keys/abcdef"), "key-management"],
    // fail closed
    [req("POST", "/api/v4/spot/orders", "", "{}"), "unknown"],
    [req("POST", "/api/v4/futures/usdt/orders/../../withdrawals", "", "{}"), "unknown"],
    [req("POST", "/futures/usdt/orders", "", "{}"), "unknown"],
    [req("GET", "/api/v4/made/up"), "unknown"],
  ];
  for (const [r, cls] of cases) {
    it(`${r.method} ${r.path} is ${cls}`, () => assert.equal(gate.classify(r), cls));
  }
});

describe("gate dialect: symbols and orders", () => {
  it("reads contract and |size| of a sell order", () => {
    const order = req("POST", "/api/v4/futures/usdt/orders", "", '{"contract":"BTC_USDT","size":-3,"price":"0","tif":"ioc"}');
    assert.deepEqual(gate.symbols(order), ["BTC_USDT"]);
    assert.deepEqual(gate.orders(order), [{ symbol: "BTC_USDT", quantity: 3 }]);
  });

  it("reads batches, trigger orders, queries and position paths", () => {
    const batch = req("POST", "/api/v4/futures/usdt/batch_orders", "", '[{"contract":"BTC_USDT","size":2},{"contract":"ETH_USDT","size":"-5"}]');
    assert.deepEqual(gate.orders(batch), [
      { symbol: "BTC_USDT", quantity: 2 },
      { symbol: "ETH_USDT", quantity: 5 },
    ]);
    assert.deepEqual(gate.symbols(batch), ["BTC_USDT", "ETH_USDT"]);
    const trigger = req(
      "POST",
      "/api/v4/futures/usdt/price_orders",
      "",
      '{"initial":{"contract":"BTC_USDT","size":-7,"price":"0"},"trigger":{"price":"90000","rule":1}}',
    );
    assert.deepEqual(gate.orders(trigger), [{ symbol: "BTC_USDT", quantity: 7 }]);
    assert.deepEqual(gate.symbols(req("DELETE", "/api/v4/futures/usdt/orders", "contract=ETH_USDT")), ["ETH_USDT"]);
    assert.deepEqual(gate.symbols(req("POST", "/api/v4/futures/usdt/positions/SOL_USDT/leverage", "leverage=5")), ["SOL_USDT"]);
  });

  it("refuses size amends (no contract to check a limit against) but lets price amends through", () => {
    assert.equal(
      codeOf(() => gate.orders(req("PUT", "/api/v4/futures/usdt/orders/123", "", '{"size":100}'))),
      "INVALID_ARGUMENT",
    );
    assert.deepEqual(gate.orders(req("PUT", "/api/v4/futures/usdt/orders/123", "", '{"price":"65000"}')), []);
  });
});
