import { CustosError } from "../errors.js";
import { websocketAuth, websocketRequestFacts } from "./binance-websocket.js";
import type { Dialect, EndpointClass, ExchangeRequest, PreparedRequest, SigningContext } from "./dialect.js";
import { oneMac, tableClassifier, textOf } from "./facts.js";

/*
 * Binance HMAC-SHA256 request signing, as documented in "SIGNED (TRADE and USER_DATA) Endpoint
 * security" (spot: binance-spot-api-docs rest-api.md, "SIGNED Endpoint Examples for POST
 * /api/v3/order"; USDⓈ-M and COIN-M futures: developers.binance.com/docs/derivatives/
 * {usds-margined-futures,coin-margined-futures}/general-info, "SIGNED Endpoint Examples for
 * POST /fapi/v1/order"):
 *   - totalParams is the query string concatenated WITHOUT a separator to the request body;
 *     non-ASCII must be percent-encoded before signing (the payload is the bytes on the wire);
 *   - signature = hex(HMAC-SHA256(secretKey, totalParams)), sent as the LAST parameter;
 *   - `timestamp` in ms is required; `recvWindow` (ms, default 5000, at most 60000) is optional;
 *     the server accepts timestamp < serverTime + 1000 and serverTime - timestamp <= recvWindow;
 *   - the API key travels in the X-MBX-APIKEY header.
 * The docs' examples put timestamp/recvWindow/signature at the end of the body when there is
 * one (examples "request body" and "mixed"), and at the end of the query otherwise. custos does
 * the same, so all three documented signatures are reproduced byte for byte.
 *
 * WebSocket API (`websocketAuth`, `websocketRequestFacts`): binance-websocket.ts signs
 * `session.logon` (Ed25519 keys only) and individual WebSocket API requests (any key), with the
 * request methods classified for the key's policy. HMAC keys' private streams can also use a
 * listenKey from the REST `userDataStream`/`listenKey` endpoints, which `prepare` signs.
 */

const API_KEY_HEADER = "X-MBX-APIKEY";
/** Binance rejects a larger recvWindow (error -1131). */
const MAX_RECV_WINDOW_MS = 60_000;
/**
 * Parameters custos owns: a caller-supplied copy would race ours (which one the server reads is
 * undocumented). `timestamp` and `recvWindow` may stay where the caller put them (ccxt puts
 * timestamp first) only when they carry exactly the values custos signs with; see `prepare`.
 */
const RESERVED = new Set(["timestamp", "recvWindow", "signature"]);
/** Printable ASCII a WHATWG URL keeps as is in a query (no space, ", #, ', <, >): anything else is re-encoded on the way out, so the sent bytes would not be the signed bytes. */
const QUERY_SAFE = /^[\x21\x24-\x26\x28-\x3b\x3d\x3f-\x7e]*$/;
/** A form body: printable ASCII, non-ASCII percent-encoded as Binance signs it. */
const BODY_SAFE = /^[\x21-\x7e]*$/;
const PATH = /^(\/[A-Za-z0-9_-]+)+$/;

// ---- endpoint tables (method + path, from the REST API references) ----

const TABLE = new Map<string, EndpointClass>();
function add(cls: EndpointClass, methods: string, prefix: string, paths: string[]): void {
  for (const m of methods.split(" ")) for (const p of paths) TABLE.set(`${m} ${prefix}${p}`, cls);
}

// USDⓈ-M futures (/fapi)
add("trade", "POST PUT DELETE", "/fapi/v1/", ["order", "batchOrders"]);
add("trade", "POST", "/fapi/v1/", ["order/test", "countdownCancelAll", "leverage", "marginType", "positionSide/dual", "positionMargin", "multiAssetsMargin", "algoOrder"]);
add("trade", "DELETE", "/fapi/v1/", ["allOpenOrders", "algoOrder", "algoOpenOrders"]);
add("read", "GET", "/fapi/v1/", ["order", "openOrder", "openOrders", "allOrders", "userTrades", "forceOrders", "orderAmendment", "rateLimit/order", "algoOrder", "openAlgoOrders", "allAlgoOrders", "order/asyn", "order/asyn/id", "trade/asyn", "trade/asyn/id"]);
add("account", "GET", "/fapi/", ["v2/account", "v3/account", "v2/balance", "v3/balance", "v2/positionRisk", "v3/positionRisk"]);
add("account", "GET", "/fapi/v1/", ["positionSide/dual", "multiAssetsMargin", "income", "income/asyn", "income/asyn/id", "leverageBracket", "adlQuantile", "commissionRate", "apiTradingStatus", "positionMargin/history", "accountConfig", "symbolConfig", "feeBurn", "pmAccountInfo"]);
add("account", "POST PUT DELETE", "/fapi/v1/", ["listenKey"]);

// COIN-M futures (/dapi)
add("trade", "POST PUT DELETE", "/dapi/v1/", ["order", "batchOrders"]);
add("trade", "POST", "/dapi/v1/", ["countdownCancelAll", "leverage", "marginType", "positionSide/dual", "positionMargin"]);
add("trade", "DELETE", "/dapi/v1/", ["allOpenOrders"]);
add("read", "GET", "/dapi/v1/", ["order", "openOrder", "openOrders", "allOrders", "userTrades", "forceOrders", "orderAmendment", "order/asyn", "order/asyn/id", "trade/asyn", "trade/asyn/id"]);
add("account", "GET", "/dapi/v1/", ["account", "balance", "positionRisk", "positionSide/dual", "income", "income/asyn", "income/asyn/id", "leverageBracket", "adlQuantile", "commissionRate", "positionMargin/history", "pmAccountInfo"]);
add("account", "GET", "/dapi/v2/", ["leverageBracket"]);
add("account", "POST PUT DELETE", "/dapi/v1/", ["listenKey"]);

// Spot (/api/v3)
add("trade", "POST", "/api/v3/", ["order", "order/test", "order/cancelReplace", "order/oco", "orderList/oco", "orderList/oto", "orderList/otoco", "orderList/opo", "orderList/opoco", "sor/order", "sor/order/test"]);
add("trade", "DELETE", "/api/v3/", ["order", "openOrders", "orderList"]);
add("trade", "PUT", "/api/v3/", ["order/amend/keepPriority"]);
add("read", "GET", "/api/v3/", ["order", "openOrders", "allOrders", "orderList", "allOrderList", "openOrderList", "myTrades", "myPreventedMatches", "myAllocations", "rateLimit/order", "order/amendments"]);
add("account", "GET", "/api/v3/", ["account", "account/commission"]);
add("account", "POST PUT DELETE", "/api/v3/", ["userDataStream"]);

// Wallet (/sapi): balances and status only; margin, earn, convert etc. stay unknown until reviewed.
add("account", "GET", "/sapi/v1/", ["capital/config/getall", "account/status", "account/apiTradingStatus", "asset/tradeFee", "capital/deposit/hisrec", "capital/deposit/address"]);
add("account", "POST", "/sapi/", ["v1/asset/get-funding-asset", "v3/asset/getUserAsset"]);

/** Checked after the table, any method: the classes the default policy refuses. */
const PATTERNS: ReadonlyArray<[RegExp, EndpointClass]> = [
  [/^\/sapi\/v\d+\/(sub-account\/subAccountApi|broker\/subAccountApi|account\/apiRestrictions|sub-account\/apiRestrictions|sub-account\/virtualSubAccount)(\/|$)/, "key-management"],
  [/^\/sapi\/v\d+\/(capital\/withdraw|localentity\/withdraw)(\/|$)/, "withdraw"],
  [/^\/sapi\/v\d+\/(asset\/transfer|futures\/transfer|margin\/transfer|margin\/isolated\/transfer|sub-account|managed-subaccount|broker\/transfer|broker\/universalTransfer)(\/|$)/, "transfer"],
];

// ---- order-placing endpoints and their shapes ----

type OrderShape = "single" | "batch" | "oto";
const ORDER_SHAPES = new Map<string, OrderShape>([
  ...["/fapi/v1/order", "/dapi/v1/order"].flatMap((p): Array<[string, OrderShape]> => [[`POST ${p}`, "single"], [`PUT ${p}`, "single"]]),
  ...["/fapi/v1/batchOrders", "/dapi/v1/batchOrders"].flatMap((p): Array<[string, OrderShape]> => [[`POST ${p}`, "batch"], [`PUT ${p}`, "batch"]]),
  ["POST /fapi/v1/algoOrder", "single"],
  ["POST /api/v3/order", "single"],
  ["POST /api/v3/order/cancelReplace", "single"],
  ["POST /api/v3/sor/order", "single"],
  ["POST /api/v3/order/oco", "single"],
  ["POST /api/v3/orderList/oco", "single"],
  ["POST /api/v3/orderList/oto", "oto"],
  ["POST /api/v3/orderList/otoco", "oto"],
]);

function invalid(message: string): CustosError {
  return new CustosError("INVALID_ARGUMENT", `binance: ${message}`);
}

/**
 * Query then body parameters, decoded (the query wins on the exchange when both name one).
 * classify, symbols, orders and prepare read them for one request in a row, synchronously:
 * the last request's pairs are kept (one slot, checked by identity and content) so they are
 * parsed once. Callers never mutate the list.
 */
let lastParsed: { req: ExchangeRequest; query: string; body: string; params: ReadonlyArray<[string, string]> } | undefined;
function parameters(req: ExchangeRequest): ReadonlyArray<[string, string]> {
  const hit = lastParsed;
  if (hit !== undefined && hit.req === req && hit.query === req.query && hit.body === req.body) return hit.params;
  const params: Array<[string, string]> = [];
  formPairs(req.query, params);
  formPairs(req.body, params);
  lastParsed = { req, query: req.query, body: req.body, params };
  return params;
}

/**
 * application/x-www-form-urlencoded pairs, exactly as URLSearchParams reads them. Without "%"
 * or "+" there is nothing to decode, so a split does (the common order, and 2× faster on the
 * sign path); anything else goes through URLSearchParams itself.
 */
function formPairs(text: string, out: Array<[string, string]>): void {
  if (text === "") return;
  if (text.includes("%") || text.includes("+")) {
    for (const pair of new URLSearchParams(text)) out.push(pair);
    return;
  }
  for (const part of text.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    out.push(eq < 0 ? [part, ""] : [part.slice(0, eq), part.slice(eq + 1)]);
  }
}

function valuesOf(params: ReadonlyArray<[string, string]>, name: string): string[] {
  return params.filter(([k]) => k === name).map(([, v]) => v);
}

/** `batchOrders` is a JSON list of order objects, URL-encoded; undefined when absent or malformed. */
function batchOf(params: ReadonlyArray<[string, string]>): Array<Record<string, unknown>> | undefined {
  const raw = valuesOf(params, "batchOrders");
  if (raw.length !== 1) return undefined;
  try {
    const list: unknown = JSON.parse(raw[0]!);
    if (!Array.isArray(list) || !list.every((o) => typeof o === "object" && o !== null && !Array.isArray(o))) return undefined;
    return list as Array<Record<string, unknown>>;
  } catch {
    return undefined;
  }
}

/** The largest of the given sizes; an order whose size cannot be read counts as unbounded. */
function sizeOf(values: Array<string | undefined>): number {
  let largest = Number.NEGATIVE_INFINITY;
  for (const v of values) {
    if (v === undefined) continue;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) return Number.POSITIVE_INFINITY;
    if (n > largest) largest = n;
  }
  return largest === Number.NEGATIVE_INFINITY ? Number.POSITIVE_INFINITY : largest;
}

function singleOrder(get: (name: string) => Array<string | undefined>): { symbol: string; quantity: number } {
  const symbol = get("symbol")[0] ?? "";
  // closePosition=true (futures stop/take-profit) carries no quantity and can only close.
  if (get("closePosition").includes("true") && get("quantity").length === 0) return { symbol, quantity: 0 };
  return { symbol, quantity: sizeOf(get("quantity")) };
}

const classify = tableClassifier(TABLE, PATTERNS);

function symbols(req: ExchangeRequest): string[] {
  const params = parameters(req);
  const found = valuesOf(params, "symbol");
  for (const o of batchOf(params) ?? []) {
    const s = textOf(o.symbol);
    if (s !== undefined) found.push(s);
  }
  return [...new Set(found)];
}

function orders(req: ExchangeRequest): Array<{ symbol: string; quantity: number }> {
  const shape = ORDER_SHAPES.get(`${req.method} ${req.path}`);
  if (!shape) return [];
  const params = parameters(req);
  const get = (name: string): string[] => valuesOf(params, name);
  switch (shape) {
    case "single":
      return [singleOrder(get)];
    case "oto": {
      const symbol = get("symbol")[0] ?? "";
      return [
        { symbol, quantity: sizeOf(get("workingQuantity")) },
        { symbol, quantity: sizeOf(get("pendingQuantity")) },
      ];
    }
    case "batch": {
      const batch = batchOf(params);
      if (!batch) return [{ symbol: "", quantity: Number.POSITIVE_INFINITY }];
      return batch.map((o) => singleOrder((name) => (o[name] === undefined ? [] : [textOf(o[name])])));
    }
  }
}

function checkRequest(req: ExchangeRequest, ownedInPlace: ReadonlyMap<string, string>): void {
  if (!PATH.test(req.path)) throw invalid(`path ${JSON.stringify(req.path)} is not a plain REST path`);
  if (!QUERY_SAFE.test(req.query)) throw invalid("the query must be percent-encoded printable ASCII (Binance signs the encoded bytes)");
  if (!BODY_SAFE.test(req.body)) throw invalid("the body must be percent-encoded printable ASCII (application/x-www-form-urlencoded)");
  if (req.method === "GET" && req.body !== "") throw invalid("GET parameters must be sent in the query string");
  if (/^\s*[[{]/.test(req.body)) throw invalid("Binance takes form-encoded bodies, not JSON");
  const seen = new Set<string>();
  for (const [name] of parameters(req)) {
    if (RESERVED.has(name) && !ownedInPlace.has(name)) throw invalid(`${name} is set by custos, not by the caller`);
    if (seen.has(name)) throw invalid(`parameter ${name} is sent twice`);
    seen.add(name);
  }
  if (seen.has("batchOrders") && batchOf(parameters(req)) === undefined) throw invalid("batchOrders must be a JSON list of orders");
}

function prepare(req: ExchangeRequest, ctx: SigningContext): PreparedRequest {
  // The caller's timestamp/recvWindow are kept in place iff they equal what custos signs with
  // (ctx: custos's clock, or the caller's value that passed the skew and window policy).
  const ownedInPlace = new Map<string, string>();
  for (const [name, value] of parameters(req)) {
    const expected = name === "timestamp" ? String(ctx.timestamp) : name === "recvWindow" && ctx.recvWindow !== undefined ? String(ctx.recvWindow) : undefined;
    if (expected !== undefined && value === expected && !ownedInPlace.has(name)) ownedInPlace.set(name, value);
  }
  checkRequest(req, ownedInPlace);
  if (!Number.isSafeInteger(ctx.timestamp) || ctx.timestamp <= 0) throw invalid("timestamp must be a positive integer of milliseconds");
  if (ctx.recvWindow !== undefined && !(Number.isSafeInteger(ctx.recvWindow) && ctx.recvWindow > 0 && ctx.recvWindow <= MAX_RECV_WINDOW_MS)) {
    throw invalid(`recvWindow must be 1..${MAX_RECV_WINDOW_MS} ms`);
  }
  if (!/^[\x21-\x7e]+$/.test(ctx.apiKeyId)) throw invalid("the API key id must be printable ASCII");

  const timestamp = String(ctx.timestamp);
  const added: Array<[string, string]> = [
    ...(ctx.recvWindow !== undefined && !ownedInPlace.has("recvWindow") ? [["recvWindow", String(ctx.recvWindow)] as [string, string]] : []),
    ...(ownedInPlace.has("timestamp") ? [] : [["timestamp", timestamp] as [string, string]]),
  ];
  const suffix = added.map(([k, v]) => `${k}=${v}`).join("&");
  const inBody = req.body !== "";
  const append = (s: string, more: string): string => (s === "" ? more : more === "" ? s : `${s}&${more}`);
  const query = inBody ? req.query : append(req.query, suffix);
  const body = inBody ? append(req.body, suffix) : "";
  // totalParams: query + body, no separator between them.
  const payload = query + body;

  return {
    toSign: [Buffer.from(payload, "utf8")],
    finish(macs: Buffer[]) {
      // HMAC-SHA256 keys: hex. Ed25519 keys: base64, percent-encoded as a parameter value
      // (Binance, "SIGNED Endpoint security": Ed25519 signatures must be URL-encoded).
      const ed25519 = ctx.keyAlgorithm === "ed25519";
      const mac = oneMac("binance", ed25519 ? "ed25519" : "hmac-sha256", macs);
      const signature = ed25519 ? mac.toString("base64") : mac.toString("hex");
      const sent = ed25519 ? encodeURIComponent(signature) : signature;
      const signed = `signature=${sent}`;
      return {
        headers: [[API_KEY_HEADER, ctx.apiKeyId]],
        params: [...added, ["signature", sent]],
        query: inBody ? query : append(query, signed),
        body: inBody ? append(body, signed) : body,
        signature,
        timestamp,
      };
    },
  };
}

/**
 * Binance USDⓈ-M futures (/fapi), COIN-M futures (/dapi), spot (/api) and wallet (/sapi)
 * requests signed with an HMAC-SHA256 API key or an Ed25519 key generated in the HSM (the same
 * payload; the signature base64 and percent-encoded). RSA keys are not handled.
 * custos appends `recvWindow` (when given) and `timestamp`, then `signature`, to the body when
 * the request has one and to the query otherwise; `params` lists them in the order sent.
 * `symbols` reads `symbol` and the symbols inside `batchOrders`; `orders` reads `quantity`
 * (spot `quoteOrderQty` orders have no readable size and count as unbounded).
 */
export const binance: Dialect = {
  exchange: "binance",
  algorithm: "hmac-sha256",
  otherAlgorithms: ["ed25519"],
  secretEncoding: "utf8",
  classify,
  symbols,
  orders,
  prepare,
  websocketAuth,
  websocketRequestFacts,
};
