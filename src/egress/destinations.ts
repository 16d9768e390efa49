import { CustosError } from "../errors.js";
import type { Environment } from "../keys/model.js";

/*
 * Where custos sends a request it signed: the exchange's host, chosen by the dialect's exchange,
 * the key's environment and the request path's prefix — never by the caller. Hosts from the
 * exchanges' API documentation (and ccxt's `urls` tables, which follow it):
 *   - Binance: spot and wallet api.binance.com (/api, /sapi), USDⓈ-M fapi.binance.com (/fapi,
 *     /futures/data), COIN-M dapi.binance.com (/dapi), options eapi.binance.com (/eapi), portfolio
 *     margin papi.binance.com (/papi); testnet: testnet.binance.vision (/api), testnet.binancefuture.com
 *     (/fapi, /dapi); wallet, options and portfolio margin have no testnet;
 *   - Bybit v5: api.bybit.com / api-testnet.bybit.com;
 *   - OKX: www.okx.com for both; demo trading is the same host with `x-simulated-trading: 1`;
 *   - Deribit: www.deribit.com / test.deribit.com; BitMEX: www.bitmex.com / testnet.bitmex.com;
 *   - Kraken Futures: futures.kraken.com / demo-futures.kraken.com;
 *   - Bitget: api.bitget.com for both; demo trading sends `paptrading: 1`;
 *   - Gate: api.gateio.ws / api-testnet.gateapi.io;
 *   - KuCoin Futures: api-futures.kucoin.com (KuCoin runs no futures testnet any more); its API-key
 *     query GET /api/v1/user/api-key is on the spot host api.kucoin.com.
 * custos.json's `egress.hosts` may replace an origin (tests: local stand-ins), nothing else.
 */

/** One route: requests whose path starts with `prefix` go to `mainnet` or `testnet` (absent: no testnet). */
interface Route {
  readonly prefix: string;
  readonly mainnet: string;
  readonly testnet?: string;
}

/** How one exchange's requests leave custos. */
interface ExchangeEgress {
  readonly routes: readonly Route[];
  /** Headers the exchange reads to tell testnet (demo) requests from live ones on a shared host. */
  readonly testnetHeaders?: ReadonlyArray<readonly [string, string]>;
  /** The body's Content-Type as the exchange documents it (the caller never sets it). */
  contentType(body: string): string;
}

const JSON_TYPE = "application/json";
const FORM_TYPE = "application/x-www-form-urlencoded";
const json = (): string => JSON_TYPE;
const form = (): string => FORM_TYPE;
const everywhere = (mainnet: string, testnet?: string): Route[] => [{ prefix: "/", mainnet, ...(testnet ? { testnet } : {}) }];

/** The one table: exchange id (as the dialects name them) → its routes. */
const EGRESS: ReadonlyMap<string, ExchangeEgress> = new Map<string, ExchangeEgress>([
  [
    "binance",
    {
      routes: [
        { prefix: "/api/", mainnet: "https://api.binance.com", testnet: "https://testnet.binance.vision" },
        { prefix: "/sapi/", mainnet: "https://api.binance.com" },
        { prefix: "/fapi/", mainnet: "https://fapi.binance.com", testnet: "https://testnet.binancefuture.com" },
        { prefix: "/futures/data/", mainnet: "https://fapi.binance.com", testnet: "https://testnet.binancefuture.com" },
        { prefix: "/dapi/", mainnet: "https://dapi.binance.com", testnet: "https://testnet.binancefuture.com" },
        { prefix: "/eapi/", mainnet: "https://eapi.binance.com" },
        { prefix: "/papi/", mainnet: "https://papi.binance.com" },
      ],
      contentType: form,
    },
  ],
  ["bybit", { routes: everywhere("https://api.bybit.com", "https://api-testnet.bybit.com"), contentType: json }],
  ["okx", { routes: everywhere("https://www.okx.com", "https://www.okx.com"), testnetHeaders: [["x-simulated-trading", "1"]], contentType: json }],
  ["deribit", { routes: everywhere("https://www.deribit.com", "https://test.deribit.com"), contentType: json }],
  // BitMEX reads JSON or form bodies; the Content-Type follows the body's shape.
  [
    "bitmex",
    { routes: everywhere("https://www.bitmex.com", "https://testnet.bitmex.com"), contentType: (b) => (b.trimStart().startsWith("{") ? JSON_TYPE : FORM_TYPE) },
  ],
  ["krakenfutures", { routes: everywhere("https://futures.kraken.com", "https://demo-futures.kraken.com"), contentType: form }],
  ["bitget", { routes: everywhere("https://api.bitget.com", "https://api.bitget.com"), testnetHeaders: [["paptrading", "1"]], contentType: json }],
  ["gate", { routes: everywhere("https://api.gateio.ws", "https://api-testnet.gateapi.io"), contentType: json }],
  // The API-key query (custos's permission check, src/exchange-permissions) lives on the spot host.
  [
    "kucoinfutures",
    {
      routes: [
        { prefix: "/", mainnet: "https://api-futures.kucoin.com" },
        { prefix: "/api/v1/user/api-key", mainnet: "https://api.kucoin.com" },
      ],
      contentType: json,
    },
  ],
]);

/** `egress.hosts` in custos.json: exchange → path prefix → origin, replacing the table's origin for both environments. */
export type HostOverrides = Readonly<Record<string, Readonly<Record<string, string>>>>;

/** Where one signed request goes. */
export interface Destination {
  /** scheme://host[:port], no path. */
  readonly origin: string;
  /** Headers the environment adds (OKX and Bitget demo trading). */
  readonly headers: ReadonlyArray<readonly [string, string]>;
}

/** Exchanges custos can send requests to (every dialect's). */
export function egressExchanges(): string[] {
  return [...EGRESS.keys()].sort();
}

/** Every prefix the table routes for an exchange (config validation, docs). */
export function routePrefixes(exchange: string): string[] {
  return EGRESS.get(exchange)?.routes.map((r) => r.prefix) ?? [];
}

/**
 * The destination of a request with this path for a key of this exchange and environment. The
 * longest matching prefix decides; a path no route covers, or an environment the exchange does
 * not offer for it, is refused (INVALID_ARGUMENT / FAILED_PRECONDITION) before anything is signed.
 */
export function destinationFor(exchange: string, environment: Environment, path: string, overrides: HostOverrides = {}): Destination {
  const egress = EGRESS.get(exchange);
  if (!egress) throw new CustosError("NO_DIALECT", `custos cannot send requests to ${exchange}`);
  let route: Route | undefined;
  for (const r of egress.routes) if (path.startsWith(r.prefix) && (!route || r.prefix.length > route.prefix.length)) route = r;
  if (!route)
    throw new CustosError("INVALID_ARGUMENT", `custos sends no ${exchange} request with this path: its paths start with ${routePrefixes(exchange).join(", ")}`);
  const override = overrides[exchange]?.[route.prefix];
  const origin = override ?? (environment === "testnet" ? route.testnet : route.mainnet);
  if (!origin) throw new CustosError("PRECONDITION_FAILED", `${exchange} has no testnet for ${route.prefix} requests`);
  return { origin, headers: environment === "testnet" ? (egress.testnetHeaders ?? []) : [] };
}

/** The Content-Type custos sends with this exchange's request body. */
export function contentTypeFor(exchange: string, body: string): string {
  return EGRESS.get(exchange)?.contentType(body) ?? JSON_TYPE;
}

/**
 * Refuses a path or query that could steer the request elsewhere than the table's host, or be
 * read differently by a proxy or the exchange: `//host`, absolute URLs, `@`, backslashes, dot
 * segments, percent-encoded slashes, backslashes or dots, anything but printable ASCII, a
 * fragment. The query may hold `%` escapes, but no `#` and nothing outside printable ASCII.
 */
export function checkEgressTarget(path: string, query: string): void {
  const refuse = (why: string): never => {
    throw new CustosError("INVALID_ARGUMENT", `the request path ${why}: custos alone chooses where a request goes`);
  };
  if (!path.startsWith("/") || path.startsWith("//")) refuse("must start with a single /");
  if (!/^[\x21-\x7e]+$/.test(path)) refuse("must be printable ASCII");
  if (/[\\@?#]/.test(path)) refuse("must not contain \\, @, ? or #");
  if (/%(2f|5c|2e|40|3f|23|25)/i.test(path)) refuse("must not carry encoded slashes, backslashes, dots, @, ?, # or %");
  if (/:\/\//.test(path) || /^\/[a-z][a-z0-9+.-]*:/i.test(path)) refuse("must not be a URL");
  if (path.split("/").some((seg) => seg === "." || seg === "..")) refuse("must not have dot segments");
  if (!/^[\x21-\x7e]*$/.test(query) || query.includes("#")) {
    throw new CustosError("INVALID_ARGUMENT", "the query must be printable ASCII without #: custos sends it as signed");
  }
}

/** Header names that would name or re-frame the destination: never taken from a caller. */
const DESTINATION_HEADERS = new Set(["host", ":authority", "forwarded", "x-forwarded-host", "x-forwarded-for", "x-real-ip", "connection", "transfer-encoding"]);

/** Refuses headers that could influence where (or how) the request is delivered (a gateway's incoming request, a dialect's output). */
export function checkEgressHeaders(headers: ReadonlyArray<readonly [string, string]>): void {
  for (const [name, value] of headers) {
    if (DESTINATION_HEADERS.has(name.toLowerCase()))
      throw new CustosError("INVALID_ARGUMENT", `a ${name} header is never forwarded: custos alone chooses the destination`);
    if (/[\r\n\0]/.test(name) || /[\r\n\0]/.test(value)) throw new CustosError("INVALID_ARGUMENT", "header names and values must not contain line breaks");
  }
}
