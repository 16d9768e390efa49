import { CustosError } from "../errors.js";
import type { Dialect, EndpointClass, ExchangeRequest, PreparedRequest, PreparedWebSocketAuth, SigningContext, WebSocketAuthInput } from "./dialect.js";
import { oneMac, orderSize, tableClassifier, textOf } from "./facts.js";

/*
 * Bybit v5 HMAC-SHA256 request signing, as documented in the v5 "Integration Guidance",
 * "Authentication" → "Create A Request" (bybit-exchange.github.io/docs/v5/guide):
 *   - string to sign: timestamp + API key + recv_window + (queryString for GET | raw request
 *     body for POST), queryString as sent (not sorted), body as sent (JSON);
 *   - sign = lower-case hex(HMAC-SHA256(secret, string));
 *   - headers X-BAPI-API-KEY, X-BAPI-TIMESTAMP (UTC ms), X-BAPI-RECV-WINDOW (ms, default
 *     5000), X-BAPI-SIGN; the server accepts server_time - recv_window <= timestamp <
 *     server_time + 1000.
 * The guide names no X-BAPI-SIGN-TYPE header for v5 (only the v3 contract/unified APIs sent
 * "2"), so none is sent. custos always sends X-BAPI-RECV-WINDOW, with the documented default
 * when the caller gives none, so the signed string never depends on a server-side default.
 *
 * Private WebSocket (wss://stream.bybit.com/v5/private), v5 "WebSocket Stream → Connect →
 * Authentication" (bybit-exchange.github.io/docs/v5/ws/connect):
 *   - signature = hex(HMAC-SHA256(secret, "GET/realtime" + expires)), expires in MILLISECONDS
 *     and in the future (the docs' sample: expires = int((time.time() + 1) * 1000));
 *   - message {"op":"auth","args":[api_key, expires, signature]}, expires a JSON number as in
 *     the docs' example.
 */

const DEFAULT_RECV_WINDOW_MS = 5_000;
/** Printable ASCII a WHATWG URL keeps as is in a query (no space, ", #, ', <, >): anything else is re-encoded on the way out, so the sent bytes would not be the signed bytes. */
const QUERY_SAFE = /^[\x21\x24-\x26\x28-\x3b\x3d\x3f-\x7e]*$/;
const PATH = /^(\/[A-Za-z0-9_-]+)+$/;

// ---- endpoint tables (method + path, from the v5 API reference) ----

const TABLE = new Map<string, EndpointClass>();
function add(cls: EndpointClass, method: "GET" | "POST", prefix: string, paths: string[]): void {
  for (const p of paths) TABLE.set(`${method} ${prefix}${p}`, cls);
}

add("trade", "POST", "/v5/order/", ["create", "amend", "cancel", "cancel-all", "create-batch", "amend-batch", "cancel-batch", "disconnected-cancel-all"]);
add("trade", "POST", "/v5/position/", ["set-leverage", "switch-isolated", "switch-mode", "set-tpsl-mode", "set-risk-limit", "trading-stop", "set-auto-add-margin", "add-margin", "confirm-pending-mmr"]);
add("trade", "POST", "/v5/account/", ["set-margin-mode", "set-hedging-mode"]);
add("read", "GET", "/v5/order/", ["realtime", "history", "spot-borrow-check"]);
add("read", "GET", "/v5/execution/", ["list"]);
add("account", "GET", "/v5/account/", ["wallet-balance", "info", "fee-rate", "transaction-log", "contract-transaction-log", "collateral-info", "borrow-history"]);
add("account", "GET", "/v5/position/", ["list", "closed-pnl", "get-closed-positions", "move-history"]);
add("account", "GET", "/v5/asset/", ["transfer/query-account-coins-balance", "transfer/query-account-coin-balance", "transfer/query-asset-info", "coin/query-info", "asset-overview", "deposit/query-address", "deposit/query-record"]);
// Reads the calling key's own permissions (ccxt uses it to detect a unified account).
add("account", "GET", "/v5/user/", ["query-api"]);

/** Checked after the table, any method: the classes the default policy refuses. */
const PATTERNS: ReadonlyArray<[RegExp, EndpointClass]> = [
  [/^\/v5\/user\//, "key-management"],
  [/^\/v5\/(asset\/withdraw\/|account\/withdrawal$)/, "withdraw"],
  [/^\/v5\/(asset\/transfer\/|position\/move-positions$)/, "transfer"],
];

type OrderShape = "single" | "batch";
const ORDER_SHAPES = new Map<string, OrderShape>([
  ["/v5/order/create", "single"],
  ["/v5/order/amend", "single"],
  ["/v5/order/create-batch", "batch"],
  ["/v5/order/amend-batch", "batch"],
]);
/** Amendments without `qty` keep the order's size: nothing to count. */
const AMENDS = new Set(["/v5/order/amend", "/v5/order/amend-batch"]);

function invalid(message: string): CustosError {
  return new CustosError("INVALID_ARGUMENT", `bybit: ${message}`);
}

type Fields = Record<string, unknown>;

/** The JSON object a POST carries, or the query's parameters for a GET; undefined if unreadable. */
function fieldsOf(req: ExchangeRequest): Fields | undefined {
  if (req.method === "GET") return Object.fromEntries(new URLSearchParams(req.query));
  if (req.body === "") return {};
  try {
    const v: unknown = JSON.parse(req.body);
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Fields) : undefined;
  } catch {
    return undefined;
  }
}

/** A symbol is only unique within its category (BTCUSDT is both spot and linear): "linear:BTCUSDT". */
function instrument(category: string | undefined, symbol: string): string {
  return category ? `${category}:${symbol}` : symbol;
}

function batchOf(f: Fields): Fields[] {
  const list = f.request;
  return Array.isArray(list) ? list.filter((o): o is Fields => typeof o === "object" && o !== null && !Array.isArray(o)) : [];
}

const classify = tableClassifier(TABLE, PATTERNS);

function symbols(req: ExchangeRequest): string[] {
  const f = fieldsOf(req);
  if (!f) return [];
  const category = textOf(f.category);
  const found: string[] = [];
  for (const o of [f, ...batchOf(f)]) {
    const s = textOf(o.symbol);
    if (s !== undefined) found.push(instrument(textOf(o.category) ?? category, s));
  }
  return [...new Set(found)];
}

function orders(req: ExchangeRequest): Array<{ symbol: string; quantity: number }> {
  const shape = req.method === "POST" ? ORDER_SHAPES.get(req.path) : undefined;
  if (!shape) return [];
  const f = fieldsOf(req);
  if (!f) return [{ symbol: "", quantity: Number.POSITIVE_INFINITY }];
  const category = textOf(f.category);
  const amend = AMENDS.has(req.path);
  const list = shape === "single" ? [f] : batchOf(f);
  return list
    .filter((o) => !(amend && o.qty === undefined))
    .map((o) => ({ symbol: instrument(textOf(o.category) ?? category, textOf(o.symbol) ?? ""), quantity: orderSize(o.qty) }));
}

function prepare(req: ExchangeRequest, ctx: SigningContext): PreparedRequest {
  if (req.method !== "GET" && req.method !== "POST") throw invalid("v5 private endpoints are GET or POST");
  if (!PATH.test(req.path)) throw invalid(`path ${JSON.stringify(req.path)} is not a plain REST path`);
  if (!QUERY_SAFE.test(req.query)) throw invalid("the query must be percent-encoded printable ASCII");
  // Only one of them is signed: anything in the other would travel unsigned.
  if (req.method === "GET" && req.body !== "") throw invalid("a GET request has no body");
  if (req.method === "POST" && req.query !== "") throw invalid("POST parameters go in the JSON body (a query string would not be signed)");
  if (req.method === "POST" && fieldsOf(req) === undefined) throw invalid("the body must be a JSON object");
  if (!Number.isSafeInteger(ctx.timestamp) || ctx.timestamp <= 0) throw invalid("timestamp must be a positive integer of milliseconds");
  const recvWindowMs = ctx.recvWindow ?? DEFAULT_RECV_WINDOW_MS;
  if (!Number.isSafeInteger(recvWindowMs) || recvWindowMs <= 0) throw invalid("recvWindow must be a positive integer of milliseconds");
  if (!/^[\x21-\x7e]+$/.test(ctx.apiKeyId)) throw invalid("the API key id must be printable ASCII");

  const timestamp = String(ctx.timestamp);
  const recvWindow = String(recvWindowMs);
  const payload = timestamp + ctx.apiKeyId + recvWindow + (req.method === "GET" ? req.query : req.body);

  return {
    toSign: [Buffer.from(payload, "utf8")],
    finish(macs: Buffer[]) {
      const signature = oneMac("bybit", "hmac-sha256", macs).toString("hex");
      return {
        headers: [
          ["X-BAPI-API-KEY", ctx.apiKeyId],
          ["X-BAPI-TIMESTAMP", timestamp],
          ["X-BAPI-RECV-WINDOW", recvWindow],
          ["X-BAPI-SIGN", signature],
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

/** The v5 private WebSocket `auth` op. custos signs ctx.expires (seconds) as milliseconds. */
function websocketAuth(_input: WebSocketAuthInput, ctx: SigningContext): PreparedWebSocketAuth {
  const expiresMs = ctx.expires * 1000;
  if (!Number.isSafeInteger(ctx.expires) || ctx.expires <= 0 || !Number.isSafeInteger(expiresMs)) throw invalid("expires must be a positive integer of seconds");
  if (!/^[\x21-\x7e]+$/.test(ctx.apiKeyId)) throw invalid("the API key id must be printable ASCII");
  const expires = String(expiresMs);
  return {
    toSign: [Buffer.from(`GET/realtime${expires}`, "utf8")],
    finish(macs: Buffer[]) {
      const signature = oneMac("bybit", "hmac-sha256", macs).toString("hex");
      return {
        fields: [
          ["api_key", ctx.apiKeyId],
          ["expires", expires],
          ["signature", signature],
        ],
        message: JSON.stringify({ op: "auth", args: [ctx.apiKeyId, expiresMs, signature] }),
        signature,
        timestamp: expires,
      };
    },
  };
}

/**
 * Bybit v5 (/v5) requests signed with a system-generated (HMAC) API key; RSA keys are not
 * handled here. Nothing is added to the query or body: authentication is in the X-BAPI-*
 * headers. `symbols` and `orders` name instruments as "category:symbol" (e.g.
 * "linear:BTCUSDT"), or the bare symbol when the request names no category; `orders` reads
 * `qty` of order creations and of amendments that change it, batch requests included.
 */
export const bybit: Dialect = {
  exchange: "bybit",
  algorithm: "hmac-sha256",
  secretEncoding: "utf8",
  classify,
  symbols,
  orders,
  prepare,
  websocketAuth,
};
