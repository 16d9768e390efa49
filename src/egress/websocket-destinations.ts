import { CustosError } from "../errors.js";
import type { Environment } from "../keys/model.js";

/*
 * Where `custos gateway` opens a bot's private WebSocket stream: the exchange's private-stream
 * host, chosen by the exchange, the environment and the stream's exact path — never by the bot.
 * Hosts from the exchanges' API documentation (and ccxt.pro's `urls.api.ws`):
 *   - Bybit v5: wss://stream.bybit.com/v5/private, testnet wss://stream-testnet.bybit.com;
 *   - OKX v5: wss://ws.okx.com:8443/ws/v5/private and /ws/v5/business, demo trading
 *     wss://wspap.okx.com:8443;
 *   - Bitget v2: wss://ws.bitget.com/v2/ws/private, demo trading wss://wspap.bitget.com.
 * Only private streams whose login custos signs are listed. Bybit's order-entry socket
 * (/v5/trade) is not: the gateway proxies account streams, and orders go through
 * SendExchangeRequest where the key's policy sees each one. The gateway's configuration
 * (`--ws-hosts`) may replace an origin (tests: local stand-ins), nothing else.
 */

interface StreamRoute {
  /** The stream's path, matched exactly. */
  readonly path: string;
  readonly mainnet: string;
  readonly testnet: string;
}

/** The one table: exchange id (as the dialects name them) → its private streams. */
const PRIVATE_STREAMS: ReadonlyMap<string, readonly StreamRoute[]> = new Map([
  ["bybit", [{ path: "/v5/private", mainnet: "wss://stream.bybit.com", testnet: "wss://stream-testnet.bybit.com" }]],
  [
    "okx",
    [
      { path: "/ws/v5/private", mainnet: "wss://ws.okx.com:8443", testnet: "wss://wspap.okx.com:8443" },
      { path: "/ws/v5/business", mainnet: "wss://ws.okx.com:8443", testnet: "wss://wspap.okx.com:8443" },
    ],
  ],
  ["bitget", [{ path: "/v2/ws/private", mainnet: "wss://ws.bitget.com", testnet: "wss://wspap.bitget.com" }]],
]);

/** `--ws-hosts`: exchange → stream path → origin (wss://host[:port]), replacing the table's origin for both environments. */
export type StreamHostOverrides = Readonly<Record<string, Readonly<Record<string, string>>>>;

/** Exchanges whose private streams the gateway proxies. */
export function privateStreamExchanges(): string[] {
  return [...PRIVATE_STREAMS.keys()].sort();
}

/** The private-stream paths of an exchange (docs, refusals). */
export function privateStreamPaths(exchange: string): string[] {
  return PRIVATE_STREAMS.get(exchange)?.map((r) => r.path) ?? [];
}

/**
 * The wss:// URL (origin and path, no query) of this exchange's private stream at `path`. A path
 * the table does not list exactly is refused (INVALID_ARGUMENT): no prefix matching, so no
 * `//host`, `..` or encoded trick can name anything but a listed stream.
 */
export function privateStreamUrl(exchange: string, environment: Environment, path: string, overrides: StreamHostOverrides = {}): string {
  const routes = PRIVATE_STREAMS.get(exchange);
  if (!routes) throw new CustosError("NO_DIALECT", `the gateway proxies no private WebSocket stream of ${exchange}`);
  const route = routes.find((r) => r.path === path);
  if (!route) throw new CustosError("INVALID_ARGUMENT", `${exchange}'s private streams are ${privateStreamPaths(exchange).join(", ")}`);
  const origin = overrides[exchange]?.[path] ?? (environment === "testnet" ? route.testnet : route.mainnet);
  return `${origin}${path}`;
}

/** True for a `--ws-hosts` origin: wss://host[:port] and nothing else (no path, user info, query). */
export function isStreamOrigin(value: string): boolean {
  return /^wss:\/\/[^/?#@\\]+$/.test(value);
}
