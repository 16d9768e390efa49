import { CustosError } from "../errors.js";
import { BINANCE_REST_PARAMS } from "./binance-params.js";
import { websocketAuth, websocketRequestFacts, websocketSchemaMisfit } from "./binance-websocket.js";
import type {
  Dialect,
  EndpointClass,
  ExchangeRequest,
  OrderFact,
  PreparedRequest,
  RequestReading,
  SignatureBinding,
  SigningContext,
  StrictReading,
} from "./dialect.js";
import { isObject, oneMac, tableClassifier, textOf } from "./facts.js";
import { schemaMisfit as misfitOf } from "./param-schema.js";
import { formPairsStrict, parseJsonStrict } from "./strict-parse.js";

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
 *
 * The signature covers totalParams only: not the method, not the path. A query signed for
 * GET /api/v3/account would be just as valid at POST /sapi/v1/capital/withdraw/apply, so
 * `schemaMisfit` holds every request to its endpoint's documented parameters
 * (binance-params.ts), which no refused endpoint's mandatory parameters fit
 * (test/unit/exchanges/binance-catalog.test.ts).
 */

/** What Binance's REST signature covers (totalParams = query + body, timestamp among them). */
const BINDING: SignatureBinding = {
  method: false,
  path: false,
  query: true,
  body: true,
  apiKey: false,
  timestamp: true,
  nonce: "n/a",
  headers: [],
  host: false,
};

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
/** Every endpoint custos classifies by name, "METHOD /path" → class (binance-catalog.test.ts reads it). */
export const BINANCE_ENDPOINT_CLASSES: ReadonlyMap<string, EndpointClass> = TABLE;
function add(cls: EndpointClass, methods: string, prefix: string, paths: string[]): void {
  for (const m of methods.split(" ")) for (const p of paths) TABLE.set(`${m} ${prefix}${p}`, cls);
}

// USDⓈ-M futures (/fapi)
add("trade", "POST PUT DELETE", "/fapi/v1/", ["order", "batchOrders"]);
add("trade", "POST", "/fapi/v1/", [
  "order/test",
  "countdownCancelAll",
  "leverage",
  "marginType",
  "positionSide/dual",
  "positionMargin",
  "multiAssetsMargin",
  "algoOrder",
]);
add("trade", "DELETE", "/fapi/v1/", ["allOpenOrders", "algoOrder", "algoOpenOrders"]);
add("read", "GET", "/fapi/v1/", [
  "order",
  "openOrder",
  "openOrders",
  "allOrders",
  "userTrades",
  "forceOrders",
  "orderAmendment",
  "rateLimit/order",
  "algoOrder",
  "openAlgoOrders",
  "allAlgoOrders",
  "order/asyn",
  "order/asyn/id",
  "trade/asyn",
  "trade/asyn/id",
]);
add("account", "GET", "/fapi/", ["v2/account", "v3/account", "v2/balance", "v3/balance", "v2/positionRisk", "v3/positionRisk"]);
add("account", "GET", "/fapi/v1/", [
  "positionSide/dual",
  "multiAssetsMargin",
  "income",
  "income/asyn",
  "income/asyn/id",
  "leverageBracket",
  "adlQuantile",
  "commissionRate",
  "apiTradingStatus",
  "positionMargin/history",
  "accountConfig",
  "symbolConfig",
  "feeBurn",
  "pmAccountInfo",
]);
add("account", "POST PUT DELETE", "/fapi/v1/", ["listenKey"]);

// COIN-M futures (/dapi)
add("trade", "POST PUT DELETE", "/dapi/v1/", ["order", "batchOrders"]);
add("trade", "POST", "/dapi/v1/", ["countdownCancelAll", "leverage", "marginType", "positionSide/dual", "positionMargin"]);
add("trade", "DELETE", "/dapi/v1/", ["allOpenOrders"]);
add("read", "GET", "/dapi/v1/", [
  "order",
  "openOrder",
  "openOrders",
  "allOrders",
  "userTrades",
  "forceOrders",
  "orderAmendment",
  "order/asyn",
  "order/asyn/id",
  "trade/asyn",
  "trade/asyn/id",
]);
add("account", "GET", "/dapi/v1/", [
  "account",
  "balance",
  "positionRisk",
  "positionSide/dual",
  "income",
  "income/asyn",
  "income/asyn/id",
  "leverageBracket",
  "adlQuantile",
  "commissionRate",
  "positionMargin/history",
  "pmAccountInfo",
]);
add("account", "GET", "/dapi/v2/", ["leverageBracket"]);
add("account", "POST PUT DELETE", "/dapi/v1/", ["listenKey"]);

// Spot (/api/v3)
add("trade", "POST", "/api/v3/", [
  "order",
  "order/test",
  "order/cancelReplace",
  "order/oco",
  "orderList/oco",
  "orderList/oto",
  "orderList/otoco",
  "orderList/opo",
  "orderList/opoco",
  "sor/order",
  "sor/order/test",
]);
add("trade", "DELETE", "/api/v3/", ["order", "openOrders", "orderList"]);
add("trade", "PUT", "/api/v3/", ["order/amend/keepPriority"]);
add("read", "GET", "/api/v3/", [
  "order",
  "openOrders",
  "allOrders",
  "orderList",
  "allOrderList",
  "openOrderList",
  "myTrades",
  "myPreventedMatches",
  "myAllocations",
  "rateLimit/order",
  "order/amendments",
]);
add("account", "GET", "/api/v3/", ["account", "account/commission"]);
add("account", "POST PUT DELETE", "/api/v3/", ["userDataStream"]);

// Wallet (/sapi): balances and status only; margin, earn, convert etc. stay unknown until reviewed.
add("account", "GET", "/sapi/v1/", [
  "capital/config/getall",
  "account/status",
  "account/apiTradingStatus",
  "asset/tradeFee",
  "capital/deposit/hisrec",
  "capital/deposit/address",
]);
add("account", "POST", "/sapi/", ["v1/asset/get-funding-asset", "v3/asset/getUserAsset"]);
// The margin pair lists ccxt's loadMarkets reads (with an API key) on every Binance class: market data, no account state.
add("read", "GET", "/sapi/v1/", ["margin/allPairs", "margin/isolated/allPairs"]);

/** Checked after the table, any method: the classes the default policy refuses. */
const PATTERNS: ReadonlyArray<[RegExp, EndpointClass]> = [
  [
    /^\/sapi\/v\d+\/(sub-account\/subAccountApi|broker\/subAccountApi|account\/apiRestrictions|sub-account\/apiRestrictions|sub-account\/virtualSubAccount)(\/|$)/,
    "key-management",
  ],
  [/^\/sapi\/v\d+\/(capital\/withdraw|localentity\/withdraw)(\/|$)/, "withdraw"],
  [
    /^\/sapi\/v\d+\/(asset\/transfer|futures\/transfer|margin\/transfer|margin\/isolated\/transfer|sub-account|managed-subaccount|broker\/transfer|broker\/universalTransfer)(\/|$)/,
    "transfer",
  ],
];

// ---- order-placing endpoints and their shapes ----

/** single: `quantity`; batch: each item's; oto: working and pending; opo: the pending legs sell what the working order buys. */
type OrderShape = "single" | "batch" | "oto" | "opo";
const ORDER_SHAPES = new Map<string, OrderShape>([
  ...["/fapi/v1/order", "/dapi/v1/order"].flatMap(
    (p): Array<[string, OrderShape]> => [
      [`POST ${p}`, "single"],
      [`PUT ${p}`, "single"],
    ],
  ),
  ...["/fapi/v1/batchOrders", "/dapi/v1/batchOrders"].flatMap(
    (p): Array<[string, OrderShape]> => [
      [`POST ${p}`, "batch"],
      [`PUT ${p}`, "batch"],
    ],
  ),
  ["POST /fapi/v1/algoOrder", "single"],
  ["POST /api/v3/order", "single"],
  ["POST /api/v3/order/cancelReplace", "single"],
  ["POST /api/v3/sor/order", "single"],
  ["POST /api/v3/order/oco", "single"],
  ["POST /api/v3/orderList/oco", "single"],
  ["POST /api/v3/orderList/oto", "oto"],
  ["POST /api/v3/orderList/otoco", "oto"],
  // OPO/OPOCO (faqs/opo.md): no pendingQuantity; the pending order(s) sell the working order's fill.
  ["POST /api/v3/orderList/opo", "opo"],
  ["POST /api/v3/orderList/opoco", "opo"],
]);
/** Size parameters: sent empty, or more than one on one order, they are refused. */
const SIZE_PARAMS = ["quantity", "quoteOrderQty", "workingQuantity", "pendingQuantity"];

function invalid(message: string): CustosError {
  return new CustosError("INVALID_ARGUMENT", `binance: ${message}`);
}

/** One request's parameters as Binance reads them, parsed once. */
interface Parsed {
  /** Query then body pairs, decoded; no name twice. */
  readonly params: ReadonlyArray<[string, string]>;
  readonly byName: ReadonlyMap<string, string>;
  /** `batchOrders` as a list of orders, undefined when absent (parsed on first use). */
  batch?: Array<Record<string, unknown>> | undefined;
  batchRead: boolean;
  sizesChecked: boolean;
}

/**
 * The request's parameters, parsed once per reading (`read` hands the same parse to the policy's
 * facts and to `prepare`); the sign path's strict reading is reused when given. A name given
 * twice, within or across query and body, is refused: which copy Binance reads is undocumented.
 */
function parse(req: ExchangeRequest, strict?: StrictReading): Parsed {
  const query = strict?.query ?? formPairsStrict(req.query);
  // A JSON body is refused by checkRequest; read as a form it names no parameter custos knows.
  const body = strict?.form ?? formPairsStrict(req.body);
  const params = query.length === 0 ? body : body.length === 0 ? query : [...query, ...body];
  const byName = new Map<string, string>();
  for (const [k, v] of params) {
    if (byName.has(k)) throw invalid(`parameter ${k} is sent twice`);
    byName.set(k, v);
  }
  return { params, byName, batchRead: false, sizesChecked: false };
}

/** The values of `name`: none or one. */
function valuesOf(p: Parsed, name: string): string[] {
  const v = p.byName.get(name);
  return v === undefined ? [] : [v];
}

/**
 * `batchOrders`, a JSON list of order objects (URL-encoded); undefined when absent. JSON that
 * names a key twice, or is not a list of objects, is refused (INVALID_ARGUMENT).
 */
function batchOf(p: Parsed): Array<Record<string, unknown>> | undefined {
  if (p.batchRead) return p.batch;
  const raw = p.byName.get("batchOrders");
  if (raw !== undefined) {
    const list = parseJsonStrict(raw);
    if (!Array.isArray(list) || !list.every(isObject)) throw invalid("batchOrders must be a JSON list of orders");
    p.batch = list;
  }
  p.batchRead = true;
  return p.batch;
}

/**
 * The largest of the given sizes. A size must be a plain decimal: anything else (an exponent,
 * a sign, hex, spaces) is one the exchange may read differently, so the order counts as
 * unbounded, as does an order with no size at all.
 */
function sizeOf(values: Array<string | undefined>): number {
  let largest = Number.NEGATIVE_INFINITY;
  for (const v of values) {
    if (v === undefined) continue;
    if (!/^(\d+\.?\d*|\.\d+)$/.test(v)) return Number.POSITIVE_INFINITY;
    largest = Math.max(largest, Number(v));
  }
  return largest === Number.NEGATIVE_INFINITY ? Number.POSITIVE_INFINITY : largest;
}

/**
 * Refuses an order whose size is sent empty (`quantity=`, which a lenient reader takes for 0)
 * or given twice over (`quantity` and `quoteOrderQty`: which one Binance uses is its choice).
 */
function checkSizes(get: (name: string) => Array<string | undefined>, where: string): void {
  const given = SIZE_PARAMS.filter((name) => get(name).length > 0);
  for (const name of given) if (get(name).some((v) => v === undefined || v.trim() === "")) throw invalid(`${where}${name} is empty`);
  if (given.includes("quantity") && given.includes("quoteOrderQty")) throw invalid(`${where}quantity and quoteOrderQty are both given`);
}

function singleOrder(get: (name: string) => Array<string | undefined>): { symbol: string; quantity: number } {
  const symbol = get("symbol")[0] ?? "";
  // closePosition=true (futures stop/take-profit) carries no quantity and can only close.
  if (get("closePosition").includes("true") && get("quantity").length === 0) return { symbol, quantity: 0 };
  return { symbol, quantity: sizeOf(get("quantity")) };
}

const classify = tableClassifier(TABLE, PATTERNS);

function symbolsOf(p: Parsed): string[] {
  const found = valuesOf(p, "symbol");
  for (const o of batchOf(p) ?? []) {
    const s = textOf(o.symbol);
    if (s !== undefined) found.push(s);
  }
  return [...new Set(found)];
}

/** A batch item's field as the exchange reads it: text, or [undefined] when present but not text. */
const itemField =
  (o: Record<string, unknown>) =>
  (name: string): Array<string | undefined> =>
    o[name] === undefined ? [] : [textOf(o[name])];

/** The request's order shape, after refusing empty or doubled sizes (INVALID_ARGUMENT). */
function checkedShape(req: ExchangeRequest, p: Parsed): OrderShape | undefined {
  const shape = ORDER_SHAPES.get(`${req.method} ${req.path}`);
  if (!shape) return undefined;
  // The orders and prepare both ask, for the same reading: check its sizes once.
  if (p.sizesChecked) return shape;
  if (shape === "batch") {
    for (const [i, o] of (batchOf(p) ?? []).entries()) checkSizes(itemField(o), `batchOrders[${i}]: `);
  } else checkSizes((name) => valuesOf(p, name), "");
  p.sizesChecked = true;
  return shape;
}

function ordersOf(req: ExchangeRequest, p: Parsed): OrderFact[] {
  const shape = checkedShape(req, p);
  if (!shape) return [];
  const get = (name: string): string[] => valuesOf(p, name);
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
    case "opo": {
      // The pending leg(s) can sell at most what the working order bought.
      const symbol = get("symbol")[0] ?? "";
      const working = sizeOf(get("workingQuantity"));
      return [
        { symbol, quantity: working },
        { symbol, quantity: working },
      ];
    }
    case "batch": {
      const batch = batchOf(p);
      if (!batch) return [{ symbol: "", quantity: Number.POSITIVE_INFINITY }];
      return batch.map((o) => singleOrder(itemField(o)));
    }
  }
}

function checkRequest(req: ExchangeRequest, p: Parsed, ownedInPlace: ReadonlyMap<string, string>): void {
  if (!PATH.test(req.path)) throw invalid(`path ${JSON.stringify(req.path)} is not a plain REST path`);
  if (!QUERY_SAFE.test(req.query)) throw invalid("the query must be percent-encoded printable ASCII (Binance signs the encoded bytes)");
  if (!BODY_SAFE.test(req.body)) throw invalid("the body must be percent-encoded printable ASCII (application/x-www-form-urlencoded)");
  if (req.method === "GET" && req.body !== "") throw invalid("GET parameters must be sent in the query string");
  if (/^\s*[[{]/.test(req.body)) throw invalid("Binance takes form-encoded bodies, not JSON");
  // parse() refused repeated names; batchOf() refuses malformed batches, checkedShape() bad sizes.
  for (const [name] of p.params) {
    if (RESERVED.has(name) && !ownedInPlace.has(name)) throw invalid(`${name} is set by custos, not by the caller`);
  }
  batchOf(p);
  checkedShape(req, p);
}

/**
 * Why the request's parameters (query and body) are not all ones its claimed endpoint
 * documents, or undefined when they are. Never throws: an unreadable request is a misfit too.
 */
function schemaMisfit(req: ExchangeRequest): string | undefined {
  if (!BINANCE_REST_PARAMS.has(`${req.method} ${req.path}`)) return `custos has no parameter schema for ${req.method} ${req.path}`;
  try {
    return misfitIn(req, parse(req));
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

function misfitIn(req: ExchangeRequest, p: Parsed): string | undefined {
  const endpoint = `${req.method} ${req.path}`;
  const schema = BINANCE_REST_PARAMS.get(endpoint);
  if (!schema) return `custos has no parameter schema for ${endpoint}`;
  const why = misfitOf(schema, p.params, RESERVED);
  return why === undefined ? undefined : `${endpoint}: ${why}`;
}

/** One reading: the policy's facts and `prepare` from one parse. */
function read(req: ExchangeRequest, strict?: StrictReading): RequestReading {
  const p = parse(req, strict);
  return {
    endpointClass: classify(req),
    symbols: symbolsOf(p),
    orders: ordersOf(req, p),
    schemaMisfit: misfitIn(req, p),
    prepare: (ctx) => prepareFrom(req, p, ctx),
  };
}

const symbols = (req: ExchangeRequest): string[] => symbolsOf(parse(req));
const orders = (req: ExchangeRequest): OrderFact[] => ordersOf(req, parse(req));
const prepare = (req: ExchangeRequest, ctx: SigningContext): PreparedRequest => prepareFrom(req, parse(req), ctx);

function prepareFrom(req: ExchangeRequest, p: Parsed, ctx: SigningContext): PreparedRequest {
  // The caller's timestamp/recvWindow are kept in place iff they equal what custos signs with
  // (ctx: custos's clock, or the caller's value that passed the skew and window policy).
  const ownedInPlace = new Map<string, string>();
  for (const [name, value] of p.params) {
    const expected = name === "timestamp" ? String(ctx.timestamp) : name === "recvWindow" && ctx.recvWindow !== undefined ? String(ctx.recvWindow) : undefined;
    if (expected !== undefined && value === expected && !ownedInPlace.has(name)) ownedInPlace.set(name, value);
  }
  checkRequest(req, p, ownedInPlace);
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
  binding: BINDING,
  read,
  classify,
  schemaMisfit,
  symbols,
  orders,
  prepare,
  websocketAuth,
  websocketRequestFacts,
  websocketSchemaMisfit,
};
