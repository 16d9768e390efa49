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

export function dialectFor(exchange: string): Dialect | undefined {
  return DIALECTS.get(exchange);
}

export function dialectExchanges(): string[] {
  return [...DIALECTS.keys()].sort();
}
