import { binance } from "./binance.js";
import { bybit } from "./bybit.js";
import type { Dialect } from "./dialect.js";
import { okx } from "./okx.js";

/** Every exchange custos can read and sign requests for, by the exchange id keys are imported with. */
const DIALECTS: ReadonlyMap<string, Dialect> = new Map<string, Dialect>([binance, bybit, okx].map((d) => [d.exchange, d]));

export function dialectFor(exchange: string): Dialect | undefined {
  return DIALECTS.get(exchange);
}

export function dialectExchanges(): string[] {
  return [...DIALECTS.keys()].sort();
}
