import { CustosError } from "../errors.js";
import type {
  Dialect,
  EndpointClass,
  ExchangeRequest,
  OrderFact,
  PreparedRequest,
  PreparedWebSocketAuth,
  RequestReading,
  SigningContext,
  WebSocketAuthInput,
} from "./dialect.js";
import { oneMac, orderSize, passphraseLogin, tableClassifier, textOf } from "./facts.js";

/*
 * OKX v5 HMAC-SHA256 request signing, as documented in "Overview → REST Authentication →
 * Making Requests / Signature" (www.okx.com/docs-v5/en/#overview-rest-authentication):
 *   - prehash = timestamp + method + requestPath + body, where timestamp is the
 *     OK-ACCESS-TIMESTAMP value (ISO 8601 UTC with milliseconds, e.g. 2020-12-08T09:08:57.715Z),
 *     method is upper case, GET parameters belong to requestPath ("/api/v5/account/balance?ccy=BTC")
 *     and body is the JSON body as sent ("" when there is none);
 *   - OK-ACCESS-SIGN = base64(HMAC-SHA256(secretKey, prehash));
 *   - headers OK-ACCESS-KEY, OK-ACCESS-SIGN, OK-ACCESS-TIMESTAMP, OK-ACCESS-PASSPHRASE (the
 *     passphrase chosen when the key was created). The server refuses a timestamp more than
 *     30 s away from its clock; there is no receive-window parameter.
 *
 * Private WebSocket login, "Overview → WebSocket → Login" (www.okx.com/docs-v5/en/#overview-websocket-login):
 *   - sign = base64(HMAC-SHA256(secretKey, timestamp + "GET" + "/users/self/verify")), method always
 *     "GET", requestPath always "/users/self/verify";
 *   - timestamp is Unix epoch SECONDS (e.g. 1538054050, not ISO as in REST); the login expires 30 s
 *     after it;
 *   - message {"op":"login","args":[{"apiKey","passphrase","timestamp","sign"}]}, all strings.
 */

/** Printable ASCII a WHATWG URL keeps as is in a query (no space, ", #, ', <, >): anything else is re-encoded on the way out, so the sent bytes would not be the signed bytes. */
const QUERY_SAFE = /^[\x21\x24-\x26\x28-\x3b\x3d\x3f-\x7e]*$/;
const PATH = /^(\/[A-Za-z0-9_-]+)+$/;

// ---- endpoint tables (method + path, from the v5 API reference) ----

const TABLE = new Map<string, EndpointClass>();
function add(cls: EndpointClass, method: "GET" | "POST", prefix: string, paths: string[]): void {
  for (const p of paths) TABLE.set(`${method} ${prefix}${p}`, cls);
}

add("trade", "POST", "/api/v5/trade/", [
  "order",
  "batch-orders",
  "cancel-order",
  "cancel-batch-orders",
  "amend-order",
  "amend-batch-orders",
  "close-position",
  "order-algo",
  "cancel-algos",
  "amend-algos",
  "cancel-advance-algos",
  "mass-cancel",
  "cancel-all-after",
  "order-precheck",
]);
add("trade", "POST", "/api/v5/account/", ["set-leverage", "set-position-mode", "position/margin-balance", "set-isolated-mode"]);
add("read", "GET", "/api/v5/trade/", [
  "order",
  "orders-pending",
  "orders-history",
  "orders-history-archive",
  "fills",
  "fills-history",
  "order-algo",
  "orders-algo-pending",
  "orders-algo-history",
  "account-rate-limit",
]);
add("account", "GET", "/api/v5/account/", [
  "balance",
  "positions",
  "positions-history",
  "account-position-risk",
  "config",
  "leverage-info",
  "adjust-leverage-info",
  "max-size",
  "max-avail-size",
  "max-loan",
  "max-withdrawal",
  "trade-fee",
  "bills",
  "bills-archive",
  "instruments",
  "interest-accrued",
  "interest-rate",
  "risk-state",
  "position-tiers",
  "greeks",
]);
add("account", "GET", "/api/v5/asset/", ["balances", "asset-valuation", "currencies", "bills", "deposit-address", "deposit-history"]);

/** Checked after the table, any method: the classes the default policy refuses. */
const PATTERNS: ReadonlyArray<[RegExp, EndpointClass]> = [
  [/^\/api\/v5\/(users\/|broker\/)|apikey/, "key-management"],
  [/^\/api\/v5\/asset\/(withdrawal|cancel-withdrawal)/, "withdraw"],
  [/^\/api\/v5\/(asset\/transfer|asset\/transfer-state|asset\/subaccount\/transfer|account\/move-positions)$/, "transfer"],
];

type OrderShape = "place" | "amend";
const ORDER_SHAPES = new Map<string, OrderShape>([
  ["/api/v5/trade/order", "place"],
  ["/api/v5/trade/batch-orders", "place"],
  ["/api/v5/trade/order-algo", "place"],
  ["/api/v5/trade/amend-order", "amend"],
  ["/api/v5/trade/amend-batch-orders", "amend"],
]);

function invalid(message: string): CustosError {
  return new CustosError("INVALID_ARGUMENT", `okx: ${message}`);
}

type Fields = Record<string, unknown>;

/** The objects a request carries: the query for GET, the JSON object or list for POST; undefined if unreadable. */
function objectsOf(req: ExchangeRequest): Fields[] | undefined {
  if (req.method === "GET") return [Object.fromEntries(new URLSearchParams(req.query))];
  if (req.body === "") return [];
  try {
    const v: unknown = JSON.parse(req.body);
    const list = Array.isArray(v) ? v : [v];
    return list.every((o) => typeof o === "object" && o !== null && !Array.isArray(o)) ? (list as Fields[]) : undefined;
  } catch {
    return undefined;
  }
}

const classify = tableClassifier(TABLE, PATTERNS);

function symbols(req: ExchangeRequest, list: Fields[] | undefined = objectsOf(req)): string[] {
  const found = (list ?? []).map((o) => textOf(o.instId)).filter((s): s is string => s !== undefined);
  return [...new Set(found)];
}

function orders(req: ExchangeRequest, list: Fields[] | undefined = objectsOf(req)): OrderFact[] {
  const shape = req.method === "POST" ? ORDER_SHAPES.get(req.path) : undefined;
  if (!shape) return [];
  if (!list) return [{ symbol: "", quantity: Number.POSITIVE_INFINITY }];
  if (shape === "amend") {
    // An amendment without newSz keeps the order's size.
    return list.filter((o) => o.newSz !== undefined).map((o) => ({ symbol: textOf(o.instId) ?? "", quantity: orderSize(o.newSz) }));
  }
  // An algo order may close by fraction instead of size (closeFraction=1, reduce-only).
  return list.map((o) => ({ symbol: textOf(o.instId) ?? "", quantity: o.sz === undefined && textOf(o.closeFraction) !== undefined ? 0 : orderSize(o.sz) }));
}

/** One reading: the query or body read once for symbols and orders. */
function read(req: ExchangeRequest): RequestReading {
  const list = objectsOf(req);
  return {
    endpointClass: classify(req),
    symbols: symbols(req, list),
    orders: orders(req, list),
    schemaMisfit: undefined,
    prepare: (ctx) => prepare(req, ctx, () => list),
  };
}

/** `list` is read only after the method and query checks, so those refusals come first. */
function prepare(req: ExchangeRequest, ctx: SigningContext, list: () => Fields[] | undefined = () => objectsOf(req)): PreparedRequest {
  if (req.method !== "GET" && req.method !== "POST") throw invalid("v5 private endpoints are GET or POST");
  if (!PATH.test(req.path)) throw invalid(`path ${JSON.stringify(req.path)} is not a plain REST path`);
  if (!QUERY_SAFE.test(req.query)) throw invalid("the query must be percent-encoded printable ASCII");
  if (req.method === "GET" && req.body !== "") throw invalid("a GET request has no body");
  if (req.method === "POST" && req.query !== "") throw invalid("POST parameters go in the JSON body");
  if (req.method === "POST" && list() === undefined) throw invalid("the body must be a JSON object or a list of objects");
  if (ctx.passphrase === undefined || ctx.passphrase === "") throw invalid("an OKX key needs its API passphrase (OK-ACCESS-PASSPHRASE)");
  if (!/^[\x20-\x7e]+$/.test(ctx.passphrase)) throw invalid("the API passphrase must be printable ASCII");
  if (!/^[\x21-\x7e]+$/.test(ctx.apiKeyId)) throw invalid("the API key id must be printable ASCII");
  if (!Number.isSafeInteger(ctx.timestamp) || ctx.timestamp <= 0 || ctx.timestamp > 253_402_300_799_999) {
    throw invalid("timestamp must be a positive integer of milliseconds before year 10000");
  }

  const timestamp = new Date(ctx.timestamp).toISOString();
  const requestPath = req.query === "" ? req.path : `${req.path}?${req.query}`;
  const payload = timestamp + req.method + requestPath + req.body;
  const passphrase = ctx.passphrase;

  return {
    toSign: [Buffer.from(payload, "utf8")],
    finish(macs: Buffer[]) {
      const signature = oneMac("okx", "hmac-sha256", macs).toString("base64");
      return {
        headers: [
          ["OK-ACCESS-KEY", ctx.apiKeyId],
          ["OK-ACCESS-SIGN", signature],
          ["OK-ACCESS-TIMESTAMP", timestamp],
          ["OK-ACCESS-PASSPHRASE", passphrase],
        ],
        params: [],
        query: req.query,
        body: req.body,
        signature,
        timestamp,
      };
    },
  };
}

/** The private WebSocket `login` op (https://www.okx.com/docs-v5/en/#overview-websocket-login). */
function websocketAuth(_input: WebSocketAuthInput, ctx: SigningContext): PreparedWebSocketAuth {
  return passphraseLogin("okx", ctx, "/users/self/verify");
}

/**
 * OKX v5 (/api/v5) requests signed with an HMAC API key and its passphrase (refused with
 * INVALID_ARGUMENT when the key has none). Nothing is added to the query or body. `symbols`
 * reads `instId` (query, JSON object or JSON list); `orders` reads `sz` of placements
 * (contracts for SWAP/FUTURES, as OKX counts them) and `newSz` of amendments.
 */
export const okx: Dialect = {
  exchange: "okx",
  /** prehash = timestamp + METHOD + requestPath (with query) + body; the key id travels unsigned. */
  binding: { method: true, path: true, query: true, body: true, apiKey: false, timestamp: true, nonce: "n/a", headers: ["OK-ACCESS-TIMESTAMP"], host: false },
  algorithm: "hmac-sha256",
  secretEncoding: "utf8",
  read,
  classify,
  symbols,
  orders,
  prepare,
  websocketAuth,
};
