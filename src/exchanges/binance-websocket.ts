import { CustosError } from "../errors.js";
import { BINANCE_WS_PARAMS } from "./binance-ws-params.js";
import { oneMac } from "./facts.js";
import { schemaMisfit } from "./param-schema.js";
import type { EndpointClass, PreparedWebSocketAuth, SigningContext, WebSocketApiRequest, WebSocketAuthInput } from "./dialect.js";

/*
 * Binance's WebSocket API (spot ws-api/v3, USDⓈ-M ws-fapi/v1, COIN-M ws-dapi/v1), from
 * binance-spot-api-docs web-socket-api "Request security" and the futures "WebSocket API
 * General Info":
 *   - SIGNED requests carry apiKey, timestamp (ms; recvWindow optional, at most 60000) and
 *     signature in `params`;
 *   - the signature payload is every parameter but `signature`, sorted by name, as
 *     `name=value` joined by "&" (documented example: order.place, signature
 *     cc15477742bd…d08a); HMAC keys sign it hex, Ed25519 keys base64;
 *   - `session.logon` authenticates the connection, Ed25519 keys only ("Note: Only Ed25519 keys
 *     are supported for this feature"); the session's later requests carry no signature;
 *   - INT parameters are JSON integers, DECIMAL ones JSON strings.
 */

/** Parameters custos sets: the caller's would race them. */
const OWNED = new Set(["apiKey", "timestamp", "signature"]);
/** Outside the method schemas: custos sets these, or (recvWindow) checks them. */
const SCHEMA_OWNED = new Set(["apiKey", "timestamp", "signature", "recvWindow"]);
/** Binance rejects a larger recvWindow. */
const MAX_RECV_WINDOW_MS = 60_000;
/** INT parameters of the request methods below, sent as JSON integers; all others stay strings. */
const INT_PARAMS = new Set([
  "timestamp",
  "recvWindow",
  "orderId",
  "orderListId",
  "startTime",
  "endTime",
  "limit",
  "fromId",
  "strategyId",
  "strategyType",
  "trailingDelta",
  "goodTillDate",
  "preventedMatchId",
  "cancelOrderId",
  "priceMatch",
]);
const NAME = /^[A-Za-z][A-Za-z0-9]{0,63}$/;
/** Printable ASCII without "&" and "=": the payload is not encoded, so neither may appear in a value. */
const VALUE = /^[\x20-\x25\x27-\x3c\x3e-\x7e]*$/;

/**
 * Request methods by class, from the WebSocket API method lists (spot "Trading requests" /
 * "Account requests", futures "Trade" / "Account"; `v2/` prefixes included). Anything else is
 * `unknown`, refused by the default policy.
 */
const CLASSES = new Map<string, EndpointClass>([
  ...[
    "order.place",
    "order.test",
    "order.cancel",
    "order.modify",
    "order.cancelReplace",
    "order.amend.keepPriority",
    "openOrders.cancelAll",
    "orderList.place",
    "orderList.place.oco",
    "orderList.place.oto",
    "orderList.place.otoco",
    "orderList.cancel",
    "sor.order.place",
    "sor.order.test",
    "algoOrder.place",
    "algoOrder.cancel",
  ].map((m): [string, EndpointClass] => [m, "trade"]),
  ...[
    "order.status",
    "openOrders.status",
    "allOrders",
    "myTrades",
    "myPreventedMatches",
    "myAllocations",
    "orderList.status",
    "openOrderLists.status",
    "allOrderLists",
    "account.rateLimits.orders",
    "userDataStream.start",
    "userDataStream.ping",
    "userDataStream.stop",
    "userDataStream.subscribe",
    "userDataStream.unsubscribe",
  ].map((m): [string, EndpointClass] => [m, "read"]),
  ...["account.status", "account.balance", "account.position", "account.commission", "v2/account.status", "v2/account.balance", "v2/account.position"].map(
    (m): [string, EndpointClass] => [m, "account"],
  ),
]);
/** Every method custos classifies by name → class (binance-catalog.test.ts reads it). */
export const BINANCE_WEBSOCKET_METHOD_CLASSES: ReadonlyMap<string, EndpointClass> = CLASSES;
/** Methods that place orders, and the parameter holding each order's size. */
const ORDER_SIZES = new Map<string, string[]>([
  ["order.place", ["quantity"]],
  ["order.test", ["quantity"]],
  ["order.modify", ["quantity"]],
  ["order.cancelReplace", ["quantity"]],
  ["sor.order.place", ["quantity"]],
  ["sor.order.test", ["quantity"]],
  ["algoOrder.place", ["quantity"]],
  ["orderList.place", ["quantity"]],
  ["orderList.place.oco", ["quantity"]],
  ["orderList.place.oto", ["workingQuantity", "pendingQuantity"]],
  ["orderList.place.otoco", ["workingQuantity", "pendingQuantity"]],
]);

const invalid = (message: string) => new CustosError("INVALID_ARGUMENT", `binance: ${message}`);
const paramValue = (r: WebSocketApiRequest, name: string): string | undefined => r.params.find(([k]) => k === name)?.[1];

/** A plain decimal size (no sign, exponent, hex or spaces); anything else counts as unbounded. */
const DECIMAL = /^(\d+\.?\d*|\.\d+)$/;

/**
 * What a WebSocket API request does, for the key's policy. An order whose size is sent empty,
 * or as both `quantity` and `quoteOrderQty`, is refused (INVALID_ARGUMENT).
 */
export function websocketRequestFacts(r: WebSocketApiRequest): {
  endpointClass: EndpointClass;
  symbols: string[];
  orders: Array<{ symbol: string; quantity: number }>;
} {
  const symbol = paramValue(r, "symbol");
  const sizes = ORDER_SIZES.get(r.method);
  if (sizes) {
    for (const name of ["quantity", "quoteOrderQty", ...sizes]) if (paramValue(r, name)?.trim() === "") throw invalid(`${name} is empty`);
    if (paramValue(r, "quantity") !== undefined && paramValue(r, "quoteOrderQty") !== undefined) throw invalid("quantity and quoteOrderQty are both given");
  }
  const orders = sizes
    ? sizes.map((name) => {
        const raw = paramValue(r, name);
        // closePosition orders carry no quantity and can only close.
        const closing = raw === undefined && paramValue(r, "closePosition") === "true";
        return { symbol: symbol ?? "", quantity: closing ? 0 : raw !== undefined && DECIMAL.test(raw) ? Number(raw) : Number.POSITIVE_INFINITY };
      })
    : [];
  return { endpointClass: CLASSES.get(r.method) ?? "unknown", symbols: symbol === undefined ? [] : [symbol], orders };
}

/**
 * Why the request's parameters are not all ones its method documents (binance-ws-params.ts),
 * or undefined when they are. The signature does not cover the method name, so a request
 * signed for one method is valid for any other whose parameters fit. Never throws.
 */
export function websocketSchemaMisfit(r: WebSocketApiRequest): string | undefined {
  const schema = BINANCE_WS_PARAMS.get(r.method);
  if (!schema) return `custos has no parameter schema for WebSocket API method ${r.method}`;
  const seen = new Set<string>();
  for (const [name] of r.params) {
    if (seen.has(name)) return `parameter ${name} is sent twice`;
    seen.add(name);
  }
  const why = schemaMisfit(schema, r.params, SCHEMA_OWNED);
  return why === undefined ? undefined : `${r.method}: ${why}`;
}

/** `session.logon`, or a signed WebSocket API request when `input.request` is given. */
export function websocketAuth(input: WebSocketAuthInput, ctx: SigningContext): PreparedWebSocketAuth {
  if (!Number.isSafeInteger(ctx.timestamp) || ctx.timestamp <= 0) throw invalid("timestamp must be a positive integer of milliseconds");
  if (!/^[\x21-\x7e]+$/.test(ctx.apiKeyId)) throw invalid("the API key id must be printable ASCII");
  const ed25519 = ctx.keyAlgorithm === "ed25519";
  const request = input.request ?? { method: "session.logon", params: [] };
  if (request.method === "session.logon") {
    if (!ed25519)
      throw new CustosError(
        "PRECONDITION_FAILED",
        "Binance's session.logon takes Ed25519 keys only; HMAC keys sign each WebSocket API request, or open private streams with a listenKey",
      );
    if (request.params.length) throw invalid("session.logon takes no parameters but those custos sets");
  }
  if (!/^(v\d+\/)?[A-Za-z][A-Za-z.]{0,63}$/.test(request.method)) throw invalid("not a WebSocket API method name");
  const seen = new Set<string>();
  for (const [name, value] of request.params) {
    if (!NAME.test(name)) throw invalid(`parameter name ${JSON.stringify(name)} is not allowed`);
    if (OWNED.has(name)) throw invalid(`${name} is set by custos, not by the caller`);
    if (seen.has(name)) throw invalid(`parameter ${name} is sent twice`);
    if (!VALUE.test(value)) throw invalid(`parameter ${name}: values are printable ASCII without "&" or "="`);
    seen.add(name);
  }
  const recvWindow = paramValue(request, "recvWindow");
  if (recvWindow !== undefined && !(/^\d{1,5}$/.test(recvWindow) && Number(recvWindow) > 0 && Number(recvWindow) <= MAX_RECV_WINDOW_MS)) {
    throw invalid(`recvWindow must be 1..${MAX_RECV_WINDOW_MS} ms`);
  }

  const timestamp = String(ctx.timestamp);
  const signed: Array<[string, string]> = [...request.params, ["apiKey", ctx.apiKeyId], ["timestamp", timestamp]];
  // Sorted by name (code units, as the docs' examples sort: "apiKey" < "newOrderRespType" < … < "type").
  const payload = [...signed]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  return {
    toSign: [Buffer.from(payload, "utf8")],
    finish(sigs: Buffer[]) {
      const mac = oneMac("binance", ed25519 ? "ed25519" : "hmac-sha256", sigs);
      // In JSON, not a URL: the base64 signature is sent as is.
      const signature = ed25519 ? mac.toString("base64") : mac.toString("hex");
      const fields: Array<[string, string]> = [...signed, ["signature", signature]];
      const params = Object.fromEntries(fields.map(([k, v]) => [k, INT_PARAMS.has(k) && /^-?\d+$/.test(v) && Number.isSafeInteger(Number(v)) ? Number(v) : v]));
      return { fields, message: JSON.stringify({ id: ctx.nonce, method: request.method, params }), signature, timestamp };
    },
  };
}
