import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import ccxt from "ccxt";
import { deribit } from "../../../src/exchanges/deribit.js";
import type { ExchangeRequest, SigningContext } from "../../../src/exchanges/dialect.js";
import { isCustosError } from "../../../src/errors.js";

// The docs' example credentials (docs.deribit.com, "Deribit signature credentials", shell example).
const CLIENT_ID = "AMANDA";
const CLIENT_SECRET = "AMANDASECRECT";

function ctx(timestamp: number, nonce: string): SigningContext {
  return { timestamp, expires: 0, nonce, apiKeyId: CLIENT_ID };
}

/** Signs as the HSM would: HMAC-SHA256 over each `toSign` buffer with the secret's UTF-8 bytes. */
function sign(req: ExchangeRequest, c: SigningContext) {
  const prepared = deribit.prepare(req, c);
  return prepared.finish(prepared.toSign.map((b) => createHmac("sha256", Buffer.from(CLIENT_SECRET, "utf8")).update(b).digest()));
}

function get(method: string, query = ""): ExchangeRequest {
  return { method: "GET", path: `/api/v2/private/${method}`, query, body: "" };
}

describe("deribit signing", () => {
  it("signs Timestamp\\nNonce\\nMETHOD\\nURI-with-query\\nBody\\n, as the docs' formula and example URI", () => {
    // docs.deribit.com: RequestData = UPPERCASE(HTTP_METHOD()) + "\n" + URI() + "\n" + RequestBody + "\n";
    // StringToSign = Timestamp + "\n" + Nonce + "\n" + RequestData; URI="/api/v2/private/get_account_summary?currency=BTC".
    const prepared = deribit.prepare(get("get_account_summary", "currency=BTC"), ctx(1700000000000, "abcd1234"));
    assert.equal(prepared.toSign.length, 1);
    assert.equal(prepared.toSign[0]!.toString("utf8"), "1700000000000\nabcd1234\nGET\n/api/v2/private/get_account_summary?currency=BTC\n\n");
  });

  it("matches the docs' openssl pipeline for their example with the timestamp and nonce fixed", () => {
    // The docs publish no fixed signature (theirs "depends on current timestamp"). This value is the output of
    // their own shell example run with Timestamp=1700000000000 and Nonce=abcd1234:
    //   echo -ne "${Timestamp}\n${Nonce}\n${HttpMethod}\n${URI}\n${Body}\n" | openssl sha256 -r -hmac "$ClientSecret"
    const signed = sign(get("get_account_summary", "currency=BTC"), ctx(1700000000000, "abcd1234"));
    assert.equal(signed.signature, "8e3a7b7a4f66fff3471a81e867192d77aedc40eb22a635398c8a1ab35df51db2");
    assert.deepEqual(signed.headers, [
      ["Authorization", "deri-hmac-sha256 id=AMANDA,ts=1700000000000,sig=8e3a7b7a4f66fff3471a81e867192d77aedc40eb22a635398c8a1ab35df51db2,nonce=abcd1234"],
    ]);
    assert.equal(signed.timestamp, "1700000000000");
    assert.equal(signed.query, "currency=BTC");
    assert.equal(signed.body, "");
    assert.deepEqual(signed.params, []);
  });

  describe("agrees with ccxt's deribit.sign()", () => {
    const T = 1700000000000;
    const N = 1700000000123;
    const exchange = new ccxt.deribit({ apiKey: CLIENT_ID, secret: CLIENT_SECRET });
    exchange.milliseconds = () => T;
    exchange.nonce = () => N;

    const cases: Array<[string, Record<string, string | number>]> = [
      ["get_account_summary", { currency: "BTC" }],
      ["buy", { instrument_name: "BTC-PERPETUAL", amount: 10, type: "limit", price: 50000.5, label: "a b/c" }],
      ["get_open_orders", {}],
    ];
    for (const [method, params] of cases) {
      it(`private/${method}`, () => {
        const theirs = exchange.sign(method, "private", "GET", params);
        const url = new URL(theirs.url);
        const req: ExchangeRequest = { method: "GET", path: url.pathname, query: url.search.slice(1), body: "" };
        assert.equal(req.path, `/api/v2/private/${method}`);
        const ours = sign(req, ctx(T, String(N)));
        assert.equal(`https://www.deribit.com${req.path}${ours.query === "" ? "" : `?${ours.query}`}`, theirs.url);
        assert.deepEqual(ours.headers, Object.entries(theirs.headers as Record<string, string>));
        assert.equal(theirs.body, undefined);
        assert.equal(ours.body, "");
      });
    }
  });

  it("signs a POSTed JSON-RPC body", () => {
    const body = '{"jsonrpc":"2.0","id":1,"method":"private/buy","params":{"instrument_name":"ETH-PERPETUAL","amount":5}}';
    const req: ExchangeRequest = { method: "POST", path: "/api/v2/private/buy", query: "", body };
    const prepared = deribit.prepare(req, ctx(1, "n"));
    assert.equal(prepared.toSign[0]!.toString("utf8"), `1\nn\nPOST\n/api/v2/private/buy\n${body}\n`);
  });

  it("refuses a nonce or client id that would forge a header field", () => {
    for (const [nonce, id] of <Array<[string, string]>>[
      ["a,sig=x", CLIENT_ID],
      ["", CLIENT_ID],
      ["a b", CLIENT_ID],
      ["n", "id,ts=1"],
      ["n", "id=x"],
    ]) {
      assert.throws(
        () => deribit.prepare(get("get_positions"), { ...ctx(1, nonce), apiKeyId: id }),
        (e) => isCustosError(e) && e.code === "INVALID_ARGUMENT",
      );
    }
    assert.throws(
      () => deribit.prepare(get("get_positions"), ctx(1.5, "n")),
      (e) => isCustosError(e) && e.code === "INVALID_ARGUMENT",
    );
  });

  it("refuses a path or query the HTTP client would rewrite after classification", () => {
    for (const req of [get("buy/../withdraw"), get("buy%2F..%2Fwithdraw"), get("buy", "label=a b"), get("buy", 'label="x"')]) {
      assert.throws(
        () => deribit.prepare(req, ctx(1, "n")),
        (e) => isCustosError(e) && e.code === "INVALID_ARGUMENT",
      );
    }
  });

  it("refuses a MAC of the wrong count or size (this is a bug)", () => {
    const prepared = deribit.prepare(get("get_positions"), ctx(1, "n"));
    assert.throws(
      () => prepared.finish([]),
      (e) => isCustosError(e) && e.code === "INTERNAL",
    );
    assert.throws(
      () => prepared.finish([Buffer.alloc(64)]),
      (e) => isCustosError(e) && e.code === "INTERNAL",
    );
  });
});

describe("deribit classify", () => {
  const cases: Array<[ExchangeRequest, string]> = [
    [get("buy", "instrument_name=BTC-PERPETUAL&amount=10"), "trade"],
    [get("cancel_all"), "trade"],
    [get("get_open_orders_by_instrument", "instrument_name=BTC-PERPETUAL"), "read"],
    [get("get_user_trades_by_currency", "currency=BTC"), "read"],
    [get("get_account_summary", "currency=BTC"), "account"],
    [get("get_positions", "currency=BTC"), "account"],
    [get("withdraw", "currency=BTC&address=bc1q&amount=1"), "withdraw"],
    [get("submit_transfer_to_user", "currency=BTC&amount=1&destination=x"), "withdraw"],
    [get("submit_transfer_to_subaccount", "currency=BTC&amount=1&destination=7"), "transfer"],
    [get("create_api_key", "max_scope=account:read_write"), "key-management"],
    [get("list_api_keys"), "key-management"],
    [get("make_me_rich"), "unknown"],
    [get("execute_block_trade"), "unknown"],
    [get("Withdraw"), "unknown"],
    [get("buy/"), "unknown"],
    [{ method: "GET", path: "/api/v2/public/get_instruments", query: "currency=BTC", body: "" }, "unknown"],
    [{ method: "DELETE", path: "/api/v2/private/buy", query: "", body: "" }, "unknown"],
  ];
  for (const [req, expected] of cases) {
    it(`${req.method} ${req.path} → ${expected}`, () => assert.equal(deribit.classify(req), expected));
  }

  it("classifies a JSON-RPC body by its method, and refuses a body that names another method than the path", () => {
    const rpc = (method: string) => JSON.stringify({ jsonrpc: "2.0", id: 1, method, params: {} });
    assert.equal(deribit.classify({ method: "POST", path: "/api/v2", query: "", body: rpc("private/withdraw") }), "withdraw");
    assert.equal(deribit.classify({ method: "POST", path: "/api/v2/private/buy", query: "", body: rpc("private/buy") }), "trade");
    assert.equal(deribit.classify({ method: "POST", path: "/api/v2/private/buy", query: "", body: rpc("private/withdraw") }), "unknown");
    assert.equal(deribit.classify({ method: "POST", path: "/api/v2/private/buy", query: "", body: "not json" }), "unknown");
    assert.equal(deribit.classify({ method: "POST", path: "/api/v2/private/buy", query: "", body: "[]" }), "unknown");
    assert.equal(deribit.classify({ method: "POST", path: "/api/v2", query: "", body: "" }), "unknown");
  });
});

describe("deribit symbols and orders", () => {
  const order = get("buy", "instrument_name=BTC-PERPETUAL&amount=40&type=market&label=market0000234");

  it("reads instrument_name and amount from a buy", () => {
    assert.deepEqual(deribit.symbols(order), ["BTC-PERPETUAL"]);
    assert.deepEqual(deribit.orders(order), [{ symbol: "BTC-PERPETUAL", quantity: 40 }]);
  });

  it("reads them from a JSON-RPC body too", () => {
    const body = JSON.stringify({ jsonrpc: "2.0", method: "private/sell", params: { instrument_name: "ETH-PERPETUAL", amount: 7.5 } });
    const req: ExchangeRequest = { method: "POST", path: "/api/v2", query: "", body };
    assert.deepEqual(deribit.symbols(req), ["ETH-PERPETUAL"]);
    assert.deepEqual(deribit.orders(req), [{ symbol: "ETH-PERPETUAL", quantity: 7.5 }]);
  });

  it("names every instrument and the largest amount when a parameter repeats", () => {
    const req = get("buy", "instrument_name=BTC-PERPETUAL&amount=1&instrument_name=eth-perpetual&amount=500");
    assert.deepEqual(deribit.symbols(req), ["BTC-PERPETUAL", "ETH-PERPETUAL"]);
    assert.deepEqual(deribit.orders(req), [
      { symbol: "BTC-PERPETUAL", quantity: 500 },
      { symbol: "ETH-PERPETUAL", quantity: 500 },
    ]);
  });

  it("reports an unreadable or missing amount as NaN, which any applicable limit refuses", () => {
    assert.ok(Number.isNaN(deribit.orders(get("buy", "instrument_name=BTC-PERPETUAL&contracts=4"))[0]!.quantity));
    assert.ok(Number.isNaN(deribit.orders(get("buy", "instrument_name=BTC-PERPETUAL&amount=lots"))[0]!.quantity));
  });

  it("reports an edit by order id under the empty symbol", () => {
    assert.deepEqual(deribit.orders(get("edit", "order_id=ETH-1&amount=3&price=1")), [{ symbol: "", quantity: 3 }]);
  });

  it("places no orders for reads, cancels or symbols-only requests", () => {
    assert.deepEqual(deribit.orders(get("get_open_orders_by_instrument", "instrument_name=BTC-PERPETUAL")), []);
    assert.deepEqual(deribit.orders(get("cancel_all_by_instrument", "instrument_name=BTC-PERPETUAL")), []);
    assert.deepEqual(deribit.symbols(get("get_open_orders_by_instrument", "instrument_name=BTC-PERPETUAL")), ["BTC-PERPETUAL"]);
  });
});
