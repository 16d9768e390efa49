import { describe, it } from "node:test";
import assert from "node:assert/strict";
import ccxt from "ccxt";
import ccxtWithBitmex from "ccxt-bitmex";
import { requestShapeFor, supportedCcxtExchanges } from "../../../src/client/ccxt/request-shapes.js";
import { CustosError } from "../../../src/errors.js";
import { canonicalExchange, dialectExchanges, dialectFor, exchangeAliases, isRawOnly, RAW_EXCHANGE } from "../../../src/exchanges/registry.js";

/**
 * The names a new key may be imported with: a dialect's exchange id, an alias of one (ccxt's ids
 * for the same venue), or "raw". A name that fits none would have made a key with no request
 * policy, so it is refused.
 */

/** The exchanges custos has a dialect for, written out (not read from the registry under test). */
const DIALECT_IDS = ["binance", "bitget", "bitmex", "bybit", "deribit", "gate", "krakenfutures", "kucoinfutures", "okx"];
/** ccxt >= 4.5.79 no longer ships BitMEX; its id in ccxt 4.5.78 (the dev dependency ccxt-bitmex), the last release with it, was "bitmex". */
const NOT_IN_CCXT_4_5 = new Set(["bitmex"]);
/** ccxt's id for Gate before it was renamed "gate": no longer in ccxt.exchanges, still what officers type. */
const FORMER_CCXT_IDS = new Set(["gateio"]);

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    return e instanceof CustosError ? e.code : "not a CustosError";
  }
  return undefined;
};

describe("exchange names of new keys", () => {
  it("the dialects are the nine exchanges, each a ccxt id (bitmex: ccxt's id until 4.5.78, the last release with it)", () => {
    assert.deepEqual(dialectExchanges(), DIALECT_IDS);
    for (const id of DIALECT_IDS) {
      if (NOT_IN_CCXT_4_5.has(id)) {
        assert.ok(!ccxt.exchanges.includes(id), `${id} is back in ccxt: drop it from NOT_IN_CCXT_4_5`);
        assert.ok(ccxtWithBitmex.exchanges.includes(id), `${id} is not an id of ccxt 4.5.78`);
      } else assert.ok(ccxt.exchanges.includes(id), `${id} is not a ccxt exchange id`);
    }
  });

  it("the alias table: ccxt's Binance futures ids and Gate's former id, each mapping to a registered dialect", () => {
    assert.deepEqual(Object.fromEntries(exchangeAliases()), { binanceusdm: "binance", binancecoinm: "binance", gateio: "gate" });
    for (const [alias, exchange] of exchangeAliases()) {
      assert.ok(dialectFor(exchange), `${alias} → ${exchange}, which has no dialect`);
      assert.equal(dialectFor(alias), undefined, `${alias} is itself a dialect: an alias would shadow nothing`);
      assert.notEqual(alias, RAW_EXCHANGE);
      if (FORMER_CCXT_IDS.has(alias)) assert.ok(!ccxt.exchanges.includes(alias), `${alias} is a ccxt id again: check it still means ${exchange}`);
      else assert.ok(ccxt.exchanges.includes(alias), `${alias} is not in ccxt.exchanges`);
      assert.equal(canonicalExchange(alias), exchange);
    }
  });

  it("agrees with the ccxt drop-in: every ccxt id withCustos covers resolves to the dialect it signs with", () => {
    for (const ccxtId of supportedCcxtExchanges()) {
      assert.equal(canonicalExchange(ccxtId), requestShapeFor(ccxtId)!.dialect, ccxtId);
    }
  });

  it("dialect ids and raw stay as they are; raw is the only raw-only name a new key can have", () => {
    for (const id of DIALECT_IDS) {
      assert.equal(canonicalExchange(id), id);
      assert.equal(isRawOnly(id), false, id);
    }
    assert.equal(canonicalExchange("raw"), "raw");
    assert.equal(isRawOnly("raw"), true);
    // A name stored before names were checked has no dialect: raw-only too.
    assert.equal(isRawOnly("custom"), true);
  });

  it("refuses other venues, other products of the same company, typos and case variants: UNKNOWN_EXCHANGE", () => {
    const refused = [
      "kraken", // Kraken spot, not Kraken Futures
      "kucoin", // KuCoin spot
      "coinbase",
      "binanceus", // Binance.US: another venue and account
      "bybiteu",
      "myokx",
      "okxus",
      "gateeu",
      "binance-futures",
      "Binance",
      "binance ",
      "custom",
      "",
      "x".repeat(300),
    ];
    for (const name of refused)
      assert.equal(
        codeOf(() => canonicalExchange(name)),
        "UNKNOWN_EXCHANGE",
        JSON.stringify(name),
      );
  });

  it("the refusal names every valid exchange, alias and raw, and echoes only a short plain name", () => {
    let message = "";
    try {
      canonicalExchange("binance-futures");
    } catch (e) {
      message = (e as Error).message;
    }
    for (const name of [...DIALECT_IDS, "binanceusdm", "binancecoinm", "gateio", "raw"]) assert.ok(message.includes(name), `${name} missing from: ${message}`);
    assert.ok(message.includes('"binance-futures"'), message);
    const hostile = "<script>" + "a".repeat(40);
    try {
      canonicalExchange(hostile);
    } catch (e) {
      assert.ok(!(e as Error).message.includes("<script>"), "the caller's text was echoed");
    }
  });
});
