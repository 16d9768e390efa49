import { binancePermissions } from "./binance.js";
import { bybitPermissions } from "./bybit.js";
import { deribitPermissions } from "./deribit.js";
import type { PermissionProbe } from "./facts.js";
import { kucoinPermissions } from "./kucoin.js";
import { okxPermissions } from "./okx.js";

export type { Fact, PermissionFacts, PermissionProbe } from "./facts.js";
export { PermissionParseError, unsafeReasons, unverified } from "./facts.js";

/** The one table: exchange id (as keys are imported with) → how custos reads its keys' permissions. */
const PROBES: ReadonlyMap<string, PermissionProbe> = new Map(
  [binancePermissions, bybitPermissions, okxPermissions, kucoinPermissions, deribitPermissions].map((p) => [p.exchange, p]),
);

/**
 * Exchanges whose keys custos does not check: Kraken Futures documents no API-key query; BitMEX,
 * Bitget and Gate document account-level answers that name some of a key's settings (BitMEX's key
 * list, Bitget's account info `authorities` and `ips`, Gate's account detail), which custos does not
 * read yet. Their keys are reported as not verified (audited, no metric value).
 */
export const NOT_EXPOSED: readonly string[] = ["bitmex", "krakenfutures", "bitget", "gate"];

/** How custos reads this exchange's key permissions, if the exchange exposes them. */
export function permissionProbeFor(exchange: string): PermissionProbe | undefined {
  return PROBES.get(exchange);
}

/** Exchanges whose key permissions custos reads. */
export function probedExchanges(): string[] {
  return [...PROBES.keys()].sort();
}
