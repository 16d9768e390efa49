/**
 * Bitget v2 REST signing (futures "mix" first), from the official documentation:
 * https://www.bitget.com/api-doc/common/signature
 *
 *   ACCESS-SIGN = base64(HMAC-SHA256(secret, timestamp + METHOD + requestPath [+ "?" + queryString] + body))
 *
 * `timestamp` is milliseconds since the epoch and equals ACCESS-TIMESTAMP; the "?" is only
 * there when the query string is not empty. The query string is signed without URL encoding
 * (ccxt's bitget.js signs `rawencode` while it sends `urlencode`, for the same reason).
 *
 * Private WebSocket login (https://www.bitget.com/api-doc/common/websocket-intro, "Login"):
 *
 *   sign = base64(HMAC-SHA256(secret, timestamp + "GET" + "/user/verify"))
 *   {"op":"login","args":[{"apiKey","passphrase","timestamp","sign"}]}
 *
 * `timestamp` is Unix SECONDS, a string, expiring after 30 s — as Bitget's own SDKs send it
 * (v3-bitget-api-sdk BitgetWsClient.ts: Math.floor(Date.now() / 1000); bitget_ws_client.py:
 * int(round(time.time()))) and ccxt's pro/bitget.js authenticate() signs it.
 */
import { CustosError } from "../errors.js";
import type {
  Dialect,
  EndpointClass,
  ExchangeRequest,
  PreparedRequest,
  RequestReading,
  PreparedWebSocketAuth,
  SigningContext,
  WebSocketAuthInput,
  StrictReading,
} from "./dialect.js";
import { isObject, oneMac, passphraseLogin } from "./facts.js";
import {
  checkRequest,
  collectSymbols,
  parseBody,
  quantity,
  queryValues,
  readJsonRequest,
  routeOf,
  unencoded,
  type OrderFact,
  type Route,
} from "./json-request.js";

type Method = ExchangeRequest["method"];
const exact = (p: string): RegExp => new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
/** The path and everything below it. */
const family = (p: string): RegExp => new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?:/.*)?$`);

const GET: readonly Method[] = ["GET"];
const POST: readonly Method[] = ["POST"];

/** `size` is the order quantity in base coin (place-order), required. */
const placed = (body: unknown): OrderFact[] => (isObject(body) ? [{ symbol: str(body.symbol), quantity: quantity(body.size) }] : []);
/** batch-place-order: one symbol for the batch, `size` per entry of `orderList`. */
const batch = (body: unknown): OrderFact[] => {
  if (!isObject(body)) return [];
  const symbol = str(body.symbol);
  const list = Array.isArray(body.orderList) ? body.orderList : [body.orderList];
  return list.map((o) => ({ symbol, quantity: quantity(isObject(o) ? o.size : undefined) }));
};
/** Modify endpoints: only a present size field changes the quantity. */
const resized =
  (field: string) =>
  (body: unknown): OrderFact[] =>
    isObject(body) && body[field] !== undefined && body[field] !== "" ? [{ symbol: str(body.symbol), quantity: quantity(body[field]) }] : [];

const MIX = "/api/v2/mix";

/**
 * Endpoint table, first match wins. Paths from the v2 reference (https://www.bitget.com/api-doc/contract/intro,
 * .../spot/intro, .../common/intro); anything not listed is `unknown`. Spot order endpoints are not
 * listed: a spot market-buy `size` is in quote coin, which the quantity limits cannot express.
 */
const ROUTES: readonly Route[] = [
  // withdrawals and key management first: whole families, any method
  { methods: "any", path: exact("/api/v2/spot/wallet/withdrawal"), cls: "withdraw" },
  { methods: "any", path: exact("/api/v2/spot/wallet/cancel-withdrawal"), cls: "withdraw" },
  { methods: "any", path: exact("/api/v2/spot/wallet/withdrawal-records"), cls: "withdraw" },
  { methods: "any", path: exact("/api/v2/broker/account/subaccount-withdrawal"), cls: "withdraw" },
  { methods: "any", path: family("/api/v2/user"), cls: "key-management" },
  { methods: "any", path: family("/api/v2/broker/manage"), cls: "key-management" },
  { methods: "any", path: exact("/api/v2/broker/account/create-subaccount"), cls: "key-management" },
  { methods: "any", path: exact("/api/v2/broker/account/modify-subaccount"), cls: "key-management" },
  { methods: "any", path: exact("/api/v2/spot/wallet/transfer"), cls: "transfer" },
  { methods: "any", path: exact("/api/v2/spot/wallet/subaccount-transfer"), cls: "transfer" },
  { methods: "any", path: exact("/api/v2/spot/wallet/transfer-coin-info"), cls: "transfer" },
  { methods: "any", path: exact("/api/v2/spot/account/transferRecords"), cls: "transfer" },
  { methods: "any", path: exact("/api/v2/spot/account/sub-main-trans-record"), cls: "transfer" },
  // futures orders
  { methods: POST, path: exact(`${MIX}/order/place-order`), cls: "trade", orders: placed },
  { methods: POST, path: exact(`${MIX}/order/batch-place-order`), cls: "trade", orders: batch },
  { methods: POST, path: exact(`${MIX}/order/place-plan-order`), cls: "trade", orders: placed },
  { methods: POST, path: exact(`${MIX}/order/place-tpsl-order`), cls: "trade", orders: resized("size") },
  { methods: POST, path: exact(`${MIX}/order/place-pos-tpsl`), cls: "trade" },
  { methods: POST, path: exact(`${MIX}/order/modify-order`), cls: "trade", orders: resized("newSize") },
  { methods: POST, path: exact(`${MIX}/order/modify-plan-order`), cls: "trade", orders: resized("newSize") },
  { methods: POST, path: exact(`${MIX}/order/modify-tpsl-order`), cls: "trade", orders: resized("size") },
  { methods: POST, path: exact(`${MIX}/order/cancel-order`), cls: "trade" },
  { methods: POST, path: exact(`${MIX}/order/batch-cancel-orders`), cls: "trade" },
  { methods: POST, path: exact(`${MIX}/order/cancel-all-orders`), cls: "trade" },
  { methods: POST, path: exact(`${MIX}/order/cancel-plan-order`), cls: "trade" },
  { methods: POST, path: exact(`${MIX}/order/close-positions`), cls: "trade" },
  { methods: POST, path: exact(`${MIX}/account/set-leverage`), cls: "trade" },
  { methods: POST, path: exact(`${MIX}/account/set-margin`), cls: "trade" },
  { methods: POST, path: exact(`${MIX}/account/set-margin-mode`), cls: "trade" },
  { methods: POST, path: exact(`${MIX}/account/set-position-mode`), cls: "trade" },
  { methods: POST, path: exact(`${MIX}/account/set-auto-margin`), cls: "trade" },
  { methods: GET, path: exact(`${MIX}/order/detail`), cls: "read" },
  { methods: GET, path: exact(`${MIX}/order/orders-pending`), cls: "read" },
  { methods: GET, path: exact(`${MIX}/order/orders-history`), cls: "read" },
  { methods: GET, path: exact(`${MIX}/order/fills`), cls: "read" },
  { methods: GET, path: exact(`${MIX}/order/fill-history`), cls: "read" },
  { methods: GET, path: exact(`${MIX}/order/orders-plan-pending`), cls: "read" },
  { methods: GET, path: exact(`${MIX}/order/orders-plan-history`), cls: "read" },
  { methods: GET, path: exact(`${MIX}/order/plan-sub-order`), cls: "read" },
  { methods: GET, path: exact(`${MIX}/account/account`), cls: "account" },
  { methods: GET, path: exact(`${MIX}/account/accounts`), cls: "account" },
  { methods: GET, path: exact(`${MIX}/account/sub-account-assets`), cls: "account" },
  { methods: GET, path: exact(`${MIX}/account/bill`), cls: "account" },
  { methods: GET, path: exact(`${MIX}/account/open-count`), cls: "account" },
  { methods: GET, path: exact(`${MIX}/account/max-open`), cls: "account" },
  { methods: GET, path: exact(`${MIX}/account/liq-price`), cls: "account" },
  { methods: GET, path: exact(`${MIX}/position/single-position`), cls: "account" },
  { methods: GET, path: exact(`${MIX}/position/all-position`), cls: "account" },
  { methods: GET, path: exact(`${MIX}/position/history-position`), cls: "account" },
  { methods: GET, path: exact("/api/v2/account/all-account-balance"), cls: "account" },
  { methods: GET, path: exact("/api/v2/spot/account/info"), cls: "account" },
  { methods: GET, path: exact("/api/v2/spot/account/assets"), cls: "account" },
  { methods: GET, path: exact("/api/v2/spot/account/bills"), cls: "account" },
  { methods: GET, path: exact("/api/v2/common/trade-rate"), cls: "account" },
  // ccxt's probe for a unified (UTA) account; UTA's own v3 trading endpoints stay unknown (refused).
  { methods: GET, path: exact("/api/v3/account/settings"), cls: "account" },
];

/** Bitget v2 (`exchange: "bitget"`): base64 HMAC-SHA256, passphrase sent as is. */
export class BitgetDialect implements Dialect {
  readonly exchange = "bitget";
  /** timestamp + METHOD + requestPath + "?" + query + body; the key id travels unsigned. */
  readonly binding = {
    method: true,
    path: true,
    query: true,
    body: true,
    apiKey: false,
    timestamp: true,
    nonce: "n/a",
    headers: ["ACCESS-TIMESTAMP"],
    host: false,
  } as const;
  readonly algorithm = "hmac-sha256" as const;
  readonly secretEncoding = "utf8" as const;

  classify(req: ExchangeRequest): EndpointClass {
    return routeOf(ROUTES, req)?.cls ?? "unknown";
  }

  symbols(req: ExchangeRequest, body: unknown = parseBody(req.body)): string[] {
    const out = queryValues(req.query, "symbol");
    collectSymbols(body, "symbol", out);
    return [...new Set(out)];
  }

  orders(req: ExchangeRequest, body: unknown = parseBody(req.body)): OrderFact[] {
    const extract = routeOf(ROUTES, req)?.orders;
    return extract ? extract(body) : [];
  }

  /** One reading: the JSON body parsed once for symbols and orders. */
  read(req: ExchangeRequest, strict?: StrictReading): RequestReading {
    return readJsonRequest(this, req, strict);
  }

  prepare(req: ExchangeRequest, ctx: SigningContext): PreparedRequest {
    checkRequest(req, ctx);
    if (!ctx.passphrase) throw new CustosError("INVALID_ARGUMENT", "bitget keys need the API passphrase");
    if (!/^[\x20-\x7e]+$/.test(ctx.passphrase))
      throw new CustosError("INVALID_ARGUMENT", "the API passphrase must be printable ASCII (it is sent as a header)");
    const passphrase = ctx.passphrase;
    const timestamp = String(ctx.timestamp);
    const query = unencoded(req.query);
    const text = timestamp + req.method + req.path + (query === "" ? "" : `?${query}`) + req.body;
    return {
      toSign: [Buffer.from(text, "utf8")],
      finish(macs: Buffer[]) {
        const signature = oneMac("bitget", "hmac-sha256", macs).toString("base64");
        const headers: Array<[string, string]> = [
          ["ACCESS-KEY", ctx.apiKeyId],
          ["ACCESS-SIGN", signature],
          ["ACCESS-TIMESTAMP", timestamp],
          ["ACCESS-PASSPHRASE", passphrase],
        ];
        // "Content-Type: please set to application/json for all POST request"; locale is in the
        // list every request "must contain" (it only picks the language of error messages).
        if (req.method === "POST" || req.body !== "") headers.push(["Content-Type", "application/json"]);
        headers.push(["locale", "en-US"]);
        return { headers, params: [], query: req.query, body: req.body, signature, timestamp };
      },
    };
  }

  /** The private WebSocket `login` op (bitget.com/api-doc/common/websocket-intro, Login). */
  websocketAuth(_input: WebSocketAuthInput, ctx: SigningContext): PreparedWebSocketAuth {
    return passphraseLogin("bitget", ctx, "/user/verify");
  }
}

/** The Bitget v2 dialect. */
export const bitget: Dialect = new BitgetDialect();

function str(v: unknown): string {
  return typeof v === "string" ? v : v === undefined || v === null ? "" : String(v);
}
