import { binancePermissions } from "./binance.js";
import { bitgetPermissions } from "./bitget.js";
import { bitmexPermissions } from "./bitmex.js";
import { bybitPermissions } from "./bybit.js";
import { deribitPermissions } from "./deribit.js";
import type { PermissionProbe } from "./facts.js";
import { gatePermissions } from "./gate.js";
import { kucoinPermissions } from "./kucoin.js";
import { okxPermissions } from "./okx.js";

export type { Fact, PermissionFacts, PermissionProbe } from "./facts.js";
export { PermissionParseError, unsafeReasons, unverified } from "./facts.js";

/** The one table: exchange id (as keys are imported with) → how custos reads its keys' permissions. */
const PROBES: ReadonlyMap<string, PermissionProbe> = new Map(
  [binancePermissions, bybitPermissions, okxPermissions, kucoinPermissions, deribitPermissions, bitgetPermissions, gatePermissions, bitmexPermissions].map(
    (p) => [p.exchange, p],
  ),
);

/**
 * Exchanges whose keys custos cannot check, and why: reported as not verified (audited, `key list`),
 * never as safe.
 */
export const NOT_EXPOSED: ReadonlyMap<string, string> = new Map([
  [
    "krakenfutures",
    // docs.futures.kraken.com: the private REST endpoints (accounts, open positions, orders, transfers,
    // withdrawals, history) answer about the account, none about the calling key; permissions and
    // IP whitelists are set and shown only in the web interface.
    "not exposed by the exchange: Kraken Futures documents no endpoint that returns an API key's permissions or IP whitelist",
  ],
]);

/** How custos reads this exchange's key permissions, if the exchange exposes them. */
export function permissionProbeFor(exchange: string): PermissionProbe | undefined {
  return PROBES.get(exchange);
}

/** Exchanges whose key permissions custos reads. */
export function probedExchanges(): string[] {
  return [...PROBES.keys()].sort();
}
