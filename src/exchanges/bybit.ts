import { CustosError } from "../errors.js";
import type {
  Dialect,
  EndpointClass,
  ExchangeRequest,
  OrderFact,
  PreparedRequest,
  PreparedWebSocketAuth,
  RequestReading,
  SignatureBinding,
  SigningContext,
  StrictReading,
  WebSocketAuthInput,
} from "./dialect.js";
import { BYBIT_BATCH_ITEMS, BYBIT_PARAMS } from "./bybit-params.js";
import { isObject, oneMac, orderSize, tableClassifier, textOf } from "./facts.js";
import { schemaMisfit as paramMisfit } from "./param-schema.js";
import { formPairsStrict, parseJsonStrict } from "./strict-parse.js";

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
add("trade", "POST", "/v5/position/", [
  "set-leverage",
  "switch-isolated",
  "switch-mode",
  "set-tpsl-mode",
  "set-risk-limit",
  "trading-stop",
  "set-auto-add-margin",
  "add-margin",
  "confirm-pending-mmr",
]);
add("trade", "POST", "/v5/account/", ["set-margin-mode", "set-hedging-mode"]);
add("read", "GET", "/v5/order/", ["realtime", "history", "spot-borrow-check"]);
add("read", "GET", "/v5/execution/", ["list"]);
add("account", "GET", "/v5/account/", [
  "wallet-balance",
  "info",
  "fee-rate",
  "transaction-log",
  "contract-transaction-log",
  "collateral-info",
  "borrow-history",
]);
add("account", "GET", "/v5/position/", ["list", "closed-pnl", "get-closed-positions", "move-history"]);
add("account", "GET", "/v5/asset/", [
  "transfer/query-account-coins-balance",
  "transfer/query-account-coin-balance",
  "transfer/query-asset-info",
  "coin/query-info",
  "asset-overview",
  "deposit/query-address",
  "deposit/query-record",
]);
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
const BATCHES = new Set(["/v5/order/create-batch", "/v5/order/amend-batch", "/v5/order/cancel-batch"]);
/** Place Order and Batch Place Order mark `qty` required: a creation without one is refused, not counted as nothing. */
const CREATES = new Set(["/v5/order/create", "/v5/order/create-batch"]);
/** Amendments without `qty` keep the order's size: nothing to count. */
const AMENDS = new Set(["/v5/order/amend", "/v5/order/amend-batch"]);
const NONE: ReadonlySet<string> = new Set();

function invalid(message: string): CustosError {
  return new CustosError("INVALID_ARGUMENT", `bybit: ${message}`);
}

type Fields = Record<string, unknown>;

/** A request as Bybit reads it: the top-level fields, and a batch endpoint's `request` items. */
interface Reading {
  fields: Fields;
  items?: Fields[];
}

/**
 * Reads the query (GET) or JSON body (POST) strictly — a repeated name or key is refused, as
 * Bybit's choice of copy is unknown — and a batch's items: INVALID_ARGUMENT for what cannot be
 * read unambiguously.
 */
function readFields(req: ExchangeRequest, strict?: StrictReading): Reading {
  if (req.method === "GET") return { fields: Object.fromEntries(strict?.query ?? formPairsStrict(req.query)) };
  // Read as a query string, a body without `&` (or `;`, a separator to some parsers) is one
  // pair whose name starts with `{`: no parameter of any endpoint. So a signed body is never a
  // query carrying another endpoint's parameters (the catalog test relies on this).
  if (/[&;]/.test(req.body)) throw invalid("a JSON body must not contain & or ; (a signed body must not read as a query string)");
  const v = req.body === "" ? {} : strict?.json ? strict.json.value : parseJsonStrict(req.body);
  if (!isObject(v)) throw invalid("the body must be a JSON object");
  const items = BATCHES.has(req.path) ? batchItems(v) : undefined;
  return items ? { fields: v, items } : { fields: v };
}

/**
 * The `request` array of a batch. The docs (order/batch-place, batch-amend, batch-cancel) give
 * `category` at the top level only and list none per item, so Bybit reads the top-level one: an
 * item naming its own would make custos and Bybit disagree on the instrument, and is refused.
 */
function batchItems(f: Fields): Fields[] {
  const list = f.request;
  if (!Array.isArray(list) || !list.every(isObject)) throw invalid("a batch's `request` must be a JSON array of objects");
  if (list.some((o) => Object.hasOwn(o, "category"))) throw invalid("a batch item must not carry its own category: Bybit reads the top-level one");
  return list;
}

/**
 * An empty size (or none where the docs require one) is not a size custos can count: refused at
 * signing. `orders` counts it as unbounded, so the policy (quantity limits, parameter schema)
 * decides first and names its rule.
 */
function checkQty(path: string, o: Fields): void {
  const q = o.qty;
  const empty = q === null || (typeof q === "string" && q.trim() === "");
  if (empty || (q === undefined && CREATES.has(path))) throw invalid("an order needs a non-empty qty");
}

/**
 * A symbol is only unique within its category (BTCUSDT is both spot and linear): "linear:BTCUSDT".
 * "" when the object names no symbol: no allowlist holds "", so an unnamed instrument is refused.
 */
function instrument(category: string | undefined, symbol: unknown): string {
  const s = textOf(symbol);
  if (s === undefined || s === "") return "";
  return category ? `${category}:${s}` : s;
}

const classify = tableClassifier(TABLE, PATTERNS);

function symbolsOf(req: ExchangeRequest, { fields, items }: Reading): string[] {
  const category = textOf(fields.category);
  // A trading request acts on instruments: one it does not name (cancel-all by settleCoin,
  // account-wide settings, an item without a symbol) is "", outside every allowlist.
  const trading = classify(req) === "trade";
  const found = new Set<string>();
  for (const o of items ?? [fields]) {
    const s = instrument(category, o.symbol);
    if (s !== "" || trading) found.add(s);
  }
  return [...found];
}

/**
 * Spot market orders are sized in the quote coin (a value) unless marketUnit is baseCoin; without
 * marketUnit, a Buy is by value and a Sell by quantity (order/create-order, marketUnit and qty).
 * Compared without case, and any other marketUnit counts as a value: custos must not undercount.
 */
function inQuoteCoin(category: string | undefined, o: Fields): boolean {
  if (category?.toLowerCase() !== "spot" || textOf(o.orderType)?.toLowerCase() !== "market") return false;
  if (o.marketUnit === undefined) return textOf(o.side)?.toLowerCase() !== "sell";
  return textOf(o.marketUnit)?.toLowerCase() !== "basecoin";
}

/**
 * The size of an order, in the instrument's base unit. Unbounded where custos cannot tell it:
 * unreadable, a value (spot market by quoteCoin), or "0", which with reduceOnly and
 * closeOnTrigger closes up to the instrument's maximum order size (order/create-order, qty).
 */
function sizeOf(category: string | undefined, o: Fields): number {
  if (inQuoteCoin(category, o)) return Number.POSITIVE_INFINITY;
  const q = orderSize(o.qty);
  return q === 0 ? Number.POSITIVE_INFINITY : q;
}

function ordersOf(req: ExchangeRequest, { fields, items }: Reading): OrderFact[] {
  const shape = req.method === "POST" ? ORDER_SHAPES.get(req.path) : undefined;
  if (!shape) return [];
  const category = textOf(fields.category);
  const amend = AMENDS.has(req.path);
  return (items ?? [fields])
    .filter((o) => !(amend && o.qty === undefined))
    .map((o) => ({ symbol: instrument(category, o.symbol), quantity: sizeOf(category, o) }));
}

function paramsOf(o: Fields): Array<[string, string | undefined]> {
  return Object.entries(o).map(([k, v]) => [k, textOf(v)]);
}

/**
 * Why the request's parameters do not fit the claimed endpoint's documented schema (bybit-params.ts),
 * batch items included; undefined when they fit. Never throws: an unreadable request is a misfit.
 */
function schemaMisfit(req: ExchangeRequest): string | undefined {
  if (!BYBIT_PARAMS.has(`${req.method} ${req.path}`)) return `custos has no parameter schema for ${req.method} ${req.path}`;
  let reading: Reading;
  try {
    reading = readFields(req);
  } catch (e) {
    return `the request cannot be read unambiguously (${e instanceof Error ? e.message : String(e)})`;
  }
  return misfitIn(req, reading);
}

function misfitIn(req: ExchangeRequest, reading: Reading): string | undefined {
  const endpoint = `${req.method} ${req.path}`;
  const schema = BYBIT_PARAMS.get(endpoint);
  if (!schema) return `custos has no parameter schema for ${endpoint}`;
  const misfit = paramMisfit(schema, paramsOf(reading.fields), NONE);
  if (misfit) return misfit;
  const itemSchema = BYBIT_BATCH_ITEMS.get(endpoint);
  if (!itemSchema || !reading.items) return undefined;
  for (const [i, o] of reading.items.entries()) {
    const m = paramMisfit(itemSchema, paramsOf(o), NONE);
    if (m) return `request[${i}]: ${m}`;
  }
  return undefined;
}

/** One reading: the policy's facts and `prepare` from one parse of the query or body. */
function read(req: ExchangeRequest, strict?: StrictReading): RequestReading {
  const reading = readFields(req, strict);
  return {
    endpointClass: classify(req),
    symbols: symbolsOf(req, reading),
    orders: ordersOf(req, reading),
    schemaMisfit: misfitIn(req, reading),
    prepare: (ctx) => prepareFrom(req, ctx, () => reading),
  };
}

const symbols = (req: ExchangeRequest): string[] => symbolsOf(req, readFields(req));
const orders = (req: ExchangeRequest): OrderFact[] => ordersOf(req, readFields(req));
const prepare = (req: ExchangeRequest, ctx: SigningContext): PreparedRequest => prepareFrom(req, ctx, () => readFields(req));

/** `reading` is called after the shape checks, so a malformed request is refused for its shape first. */
function prepareFrom(req: ExchangeRequest, ctx: SigningContext, reading: () => Reading): PreparedRequest {
  if (req.method !== "GET" && req.method !== "POST") throw invalid("v5 private endpoints are GET or POST");
  if (!PATH.test(req.path)) throw invalid(`path ${JSON.stringify(req.path)} is not a plain REST path`);
  if (!QUERY_SAFE.test(req.query)) throw invalid("the query must be percent-encoded printable ASCII");
  // Only one of them is signed: anything in the other would travel unsigned.
  if (req.method === "GET" && req.body !== "") throw invalid("a GET request has no body");
  if (req.method === "POST" && req.query !== "") throw invalid("POST parameters go in the JSON body (a query string would not be signed)");
  // Strict reading: repeated names and malformed batches are refused, and so are missing sizes.
  const { fields, items } = reading();
  if (req.method === "POST") for (const o of items ?? [fields]) checkQty(req.path, o);
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

/**
 * What the v5 signature covers: timestamp, API key, receive window (their headers) and the
 * query string of a GET or the body of a POST — each request signs exactly one of the two, and
 * prepare refuses the other when it is not empty. Neither the method nor the path is signed.
 */
const binding: SignatureBinding = {
  method: false,
  path: false,
  query: true,
  body: true,
  apiKey: true,
  timestamp: true,
  nonce: "n/a",
  headers: ["X-BAPI-TIMESTAMP", "X-BAPI-API-KEY", "X-BAPI-RECV-WINDOW"],
  host: false,
};

/** The v5 private WebSocket `auth` op. custos signs ctx.expires (seconds) as milliseconds. */
function websocketAuth(_input: WebSocketAuthInput, ctx: SigningContext): PreparedWebSocketAuth {
  const expiresMs = ctx.expires * 1000;
  if (!Number.isSafeInteger(ctx.expires) || ctx.expires <= 0 || !Number.isSafeInteger(expiresMs))
    throw invalid("expires must be a positive integer of seconds");
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
 * "linear:BTCUSDT"), or the bare symbol when the request names no category, and "" for a
 * trading request's instrument it does not name; `orders` reads `qty` of order creations and
 * of amendments that change it, batch requests included. The signature binds neither method
 * nor path, so `schemaMisfit` holds every request to its claimed endpoint's documented
 * parameters (bybit-params.ts).
 */
export const bybit: Dialect = {
  exchange: "bybit",
  algorithm: "hmac-sha256",
  secretEncoding: "utf8",
  binding,
  read,
  classify,
  schemaMisfit,
  symbols,
  orders,
  prepare,
  websocketAuth,
};
