import { CustosError } from "../errors.js";
import { binance } from "./binance.js";
import { bitget } from "./bitget.js";
import { bitmex } from "./bitmex.js";
import { bybit } from "./bybit.js";
import { deribit } from "./deribit.js";
import type { Dialect } from "./dialect.js";
import { gate } from "./gate.js";
import { krakenfutures } from "./krakenfutures.js";
import { kucoinfutures } from "./kucoinfutures.js";
import { okx } from "./okx.js";

/** Every exchange custos can read and sign requests for, by the exchange id keys are imported with. */
const DIALECTS: ReadonlyMap<string, Dialect> = new Map<string, Dialect>(
  [binance, bybit, okx, deribit, bitmex, krakenfutures, bitget, gate, kucoinfutures].map((d) => [d.exchange, d]),
);

/**
 * The exchange id of a key that signs raw bytes only: no dialect reads its requests, so no request
 * policy guards it. Officers ask for it by name (`--raw`); a mistyped exchange never becomes it.
 */
export const RAW_EXCHANGE = "raw";

/**
 * Other names officers type for a venue a dialect serves → that dialect's exchange id. The one
 * table: ccxt's ids for the same venue and account (Binance's futures APIs are the same Binance
 * account and key), and `gateio`, ccxt's id for Gate before it became `gate`. Regional venues with
 * their own accounts and APIs (binanceus, bybiteu, myokx, okxus, gateeu) and other products of
 * the same company (kraken spot, kucoin spot, coinbase) are not aliases: they are refused.
 */
const ALIASES: ReadonlyMap<string, string> = new Map([
  ["binanceusdm", "binance"],
  ["binancecoinm", "binance"],
  ["gateio", "gate"],
]);

export function dialectFor(exchange: string): Dialect | undefined {
  return DIALECTS.get(exchange);
}

export function dialectExchanges(): string[] {
  return [...DIALECTS.keys()].sort();
}

/** The alias table (alias → dialect exchange id), for docs, errors and tests. */
export function exchangeAliases(): ReadonlyMap<string, string> {
  return ALIASES;
}

/**
 * The exchange id a new key is stored and approved with: a dialect's id as is, an alias resolved
 * to its dialect's id, or {@link RAW_EXCHANGE}. Anything else is refused (`UNKNOWN_EXCHANGE`,
 * INVALID_ARGUMENT) with the list of valid names, since a key without a dialect has no request policy.
 */
export function canonicalExchange(name: string): string {
  if (DIALECTS.has(name) || name === RAW_EXCHANGE) return name;
  const aliased = ALIASES.get(name);
  if (aliased !== undefined) return aliased;
  // Echo the name only when it is short and plain: it comes from the caller.
  const shown = /^[A-Za-z0-9._-]{1,32}$/.test(name) ? `"${name}"` : "the exchange name";
  throw new CustosError(
    "UNKNOWN_EXCHANGE",
    `unknown exchange ${shown}: custos signs for ${dialectExchanges().join(", ")}` +
      ` (ccxt ids also accepted: ${[...ALIASES].map(([alias, to]) => `${alias} → ${to}`).join(", ")});` +
      ` a key that signs raw bytes only, with no request policy, is imported as ${RAW_EXCHANGE} (custos key import --raw)`,
  );
}

/**
 * True for a key no dialect reads: raw `Sign` signs any bytes with it and no request policy
 * applies. That is {@link RAW_EXCHANGE}, and any exchange name stored before names were checked.
 */
export function isRawOnly(exchange: string): boolean {
  return !DIALECTS.has(exchange);
}
