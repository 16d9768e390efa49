import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CustosError } from "../../../src/errors.js";
import type { Dialect, ExchangeRequest, SigningContext } from "../../../src/exchanges/dialect.js";
import { dialectExchanges, dialectFor } from "../../../src/exchanges/registry.js";
import { readStrict } from "../../../src/exchanges/strict-parse.js";

/*
 * Dialect.read is the sign path's one reading of a request: it must answer exactly what the
 * single-purpose readers answer (class, symbols, orders, schema fit), and its `prepare` must sign
 * exactly what `Dialect.prepare` signs, for every dialect, on requests the policy allows and ones
 * it refuses or that do not read at all.
 */

const get = (path: string, query: string): ExchangeRequest => ({ method: "GET", path, query, body: "" });
const post = (path: string, body: string, query = ""): ExchangeRequest => ({ method: "POST", path, query, body });

const REQUESTS: Record<string, ExchangeRequest[]> = {
  binance: [
    post("/fapi/v1/order", "", "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=42000"),
    post("/fapi/v1/batchOrders", "batchOrders=%5B%7B%22symbol%22%3A%22ETHUSDT%22%2C%22quantity%22%3A%222%22%7D%5D"),
    get("/api/v3/account", "omitZeroBalances=true"),
    get("/api/v3/account", "apiKey=pub"),
    post("/sapi/v1/capital/withdraw/apply", "", "coin=BTC&amount=1&address=x"),
    post("/fapi/v1/order", "", "symbol=BTCUSDT&quantity="),
  ],
  bybit: [
    post("/v5/order/create", '{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.01","price":"42000"}'),
    post("/v5/order/create-batch", '{"category":"linear","request":[{"symbol":"ETHUSDT","side":"Buy","orderType":"Market","qty":"2"}]}'),
    get("/v5/order/realtime", "category=linear&symbol=BTCUSDT"),
    post("/v5/order/create", '{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":""}'),
    post("/v5/asset/transfer/inter-transfer", '{"coin":"USDT","amount":"1"}'),
  ],
  okx: [
    post("/api/v5/trade/order", '{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"limit","sz":"1","px":"42000"}'),
    get("/api/v5/account/balance", "ccy=BTC"),
    post("/api/v5/trade/batch-orders", '[{"instId":"ETH-USDT","sz":"3"}]'),
  ],
  bitget: [
    post(
      "/api/v2/mix/order/place-order",
      '{"symbol":"BTCUSDT","productType":"USDT-FUTURES","marginMode":"crossed","marginCoin":"USDT","size":"0.01","side":"buy","orderType":"market"}',
    ),
    get("/api/v2/mix/account/accounts", "productType=USDT-FUTURES"),
  ],
  gate: [post("/api/v4/futures/usdt/orders", '{"contract":"BTC_USDT","size":10,"price":"42000"}'), get("/api/v4/futures/usdt/accounts", "")],
  kucoinfutures: [
    post("/api/v1/orders", '{"clientOid":"a1","side":"buy","symbol":"XBTUSDTM","type":"limit","size":1,"price":"42000","leverage":"5"}'),
    get("/api/v1/account-overview", "currency=USDT"),
  ],
  bitmex: [post("/api/v1/order", '{"symbol":"XBTUSD","orderQty":100,"price":42000}'), get("/api/v1/position", "filter=%7B%22symbol%22%3A%22XBTUSD%22%7D")],
  deribit: [
    get("/api/v2/private/buy", "instrument_name=BTC-PERPETUAL&amount=10&type=limit&price=42000"),
    get("/api/v2/private/get_position", "instrument_name=BTC-PERPETUAL"),
  ],
  krakenfutures: [
    post("/derivatives/api/v3/sendorder", "orderType=lmt&symbol=PF_XBTUSD&side=buy&size=1&limitPrice=42000"),
    get("/derivatives/api/v3/openpositions", ""),
  ],
};

const CTX: SigningContext = { timestamp: 1_735_689_600_000, expires: 1_735_689_630, nonce: "1735689600000", apiKeyId: "pub-key", passphrase: "pass phrase" };

/** A value, or the CustosError code it throws: read and the readers must agree on refusals too. */
function outcome<T>(run: () => T): T | { throws: string } {
  try {
    return run();
  } catch (e) {
    assert.ok(e instanceof CustosError, String(e));
    return { throws: e.code };
  }
}

const toSignHex = (run: () => ReturnType<Dialect["prepare"]>) => outcome(() => run().toSign.map((b) => b.toString("hex")));

describe("Dialect.read: one reading answers what the single-purpose readers answer", () => {
  it("covers every dialect in the registry", () => {
    assert.deepEqual(Object.keys(REQUESTS).sort(), dialectExchanges());
  });

  for (const exchange of Object.keys(REQUESTS)) {
    it(`${exchange}: class, symbols, orders, schema fit and the bytes to sign`, () => {
      const d = dialectFor(exchange)!;
      for (const req of REQUESTS[exchange]!) {
        const what = `${req.method} ${req.path}?${req.query} ${req.body}`;
        const reading = outcome(() => d.read(req, readStrict(req)));
        const separately = outcome(() => ({ endpointClass: d.classify(req), symbols: d.symbols(req), orders: d.orders(req) }));
        if ("throws" in separately) {
          assert.deepEqual(reading, separately, what);
          continue;
        }
        assert.ok(!("throws" in reading), what);
        assert.deepEqual({ endpointClass: reading.endpointClass, symbols: reading.symbols, orders: reading.orders }, separately, what);
        if (!d.binding.path) assert.equal(reading.schemaMisfit, d.schemaMisfit!(req), what);
        assert.deepEqual(
          toSignHex(() => reading.prepare(CTX)),
          toSignHex(() => d.prepare(req, CTX)),
          what,
        );
      }
    });
  }

  it("Binance and Bybit read the sign path's strict parse instead of parsing again", () => {
    // The strict reading handed over is what the dialect reads: here it names another symbol than the text.
    const binanceReq = get("/fapi/v1/openOrders", "symbol=BTCUSDT");
    const binance = dialectFor("binance")!.read(binanceReq, { query: [["symbol", "ETHUSDT"]] });
    assert.deepEqual(binance.symbols, ["ETHUSDT"]);
    const bybitReq = post("/v5/order/create", '{"category":"linear","symbol":"BTCUSDT","qty":"1"}');
    const bybit = dialectFor("bybit")!.read(bybitReq, { query: [], json: { value: { category: "linear", symbol: "ETHUSDT", qty: "1" } } });
    assert.deepEqual(bybit.symbols, ["linear:ETHUSDT"]);
  });

  it("keeps no reading between requests: a reading prepares its own request after others were read", () => {
    const d = dialectFor("binance")!;
    const first = post("/fapi/v1/order", "", "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=42000");
    const second = post("/fapi/v1/order", "", "symbol=ETHUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=5&price=3000");
    const a = d.read(first, readStrict(first));
    const b = d.read(second, readStrict(second));
    assert.deepEqual([a.orders, b.orders], [[{ symbol: "BTCUSDT", quantity: 1 }], [{ symbol: "ETHUSDT", quantity: 5 }]]);
    assert.match(a.prepare(CTX).toSign[0]!.toString(), /^symbol=BTCUSDT&/);
    assert.match(b.prepare(CTX).toSign[0]!.toString(), /^symbol=ETHUSDT&/);
  });
});
