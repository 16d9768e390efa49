/**
 * Gate API v4 signing (futures first), from the official documentation
 * (https://www.gate.com/docs/developers/apiv4/en/#api-signature-string-generation):
 *
 *   SIGN = HexEncode(HMAC-SHA512(secret, METHOD + "\n" + URL path + "\n" + query string + "\n"
 *                                        + HexEncode(SHA512(body)) + "\n" + Timestamp))
 *
 * The URL path includes the "/api/v4" prefix; the query string is signed without URL encoding
 * and in the order sent; an empty body hashes as SHA512(""). `Timestamp` is Unix seconds and
 * may not be more than 60 seconds from the server's clock.
 *
 * Futures WebSocket v4 (https://www.gate.com/docs/developers/futures/ws/en/#authentication): each
 * private subscribe/unsubscribe carries its own signature, in the request's `auth` field:
 *
 *   SIGN = HexEncode(HMAC-SHA512(secret, "channel=" + channel + "&event=" + event + "&time=" + time))
 *   "auth": {"method": "api_key", "KEY": key, "SIGN": SIGN}
 *
 * `time` is the request's own `time` field, Unix seconds (the docs' demo: int(time.time())).
 */
import { createHash } from "node:crypto";
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
import { isObject, oneMac } from "./facts.js";
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
const SEGMENTS: Record<string, string> = {
  "{settle}": "[a-z]+",
  "{contract}": "(?<contract>[A-Za-z0-9_]+)",
  // order ids are numbers or "t-" texts; a segment never starts with a dot ("." / "..")
  "{id}": "[A-Za-z0-9_-][A-Za-z0-9_.-]*",
};
/** A path template from the reference, e.g. "/futures/{settle}/orders/{id}", under /api/v4. */
const tpl = (p: string): RegExp => new RegExp(`^/api/v4${p.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{[a-z]+\}/g, (m) => SEGMENTS[m] ?? m)}$`);
/** The path and everything below it. */
const family = (p: string): RegExp => new RegExp(`^/api/v4${p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?:/.*)?$`);

const GET: readonly Method[] = ["GET"];
const POST: readonly Method[] = ["POST"];
const DELETE: readonly Method[] = ["DELETE"];

/** POST orders: `contract` and `size` (contracts; negative sells, 0 closes with `close`). */
const single = (body: unknown): OrderFact[] => (isObject(body) ? [order(body)] : []);
/** batch_orders: an array of single orders. */
const many = (body: unknown): OrderFact[] => (Array.isArray(body) ? body.map((o) => order(isObject(o) ? o : {})) : single(body));
/** price_orders: the order placed when the trigger fires is `initial`. */
const triggered = (body: unknown): OrderFact[] => (isObject(body) ? [order(isObject(body.initial) ? body.initial : {})] : []);
/**
 * Amends name an order id, not a contract, so a new `size` cannot be checked against the
 * per-contract limits: refuse size amends (price-only amends pass). Cancel and re-place instead.
 */
const amended = (body: unknown): OrderFact[] => {
  for (const o of Array.isArray(body) ? body : [body]) {
    if (isObject(o) && o.size !== undefined)
      throw new CustosError("INVALID_ARGUMENT", "gate order amends that change size cannot be checked against quantity limits");
  }
  return [];
};

function order(o: Record<string, unknown>): OrderFact {
  return { symbol: typeof o.contract === "string" ? o.contract : "", quantity: quantity(o.size) };
}

/**
 * Endpoint table, first match wins. Paths from the v4 reference (Futures, Delivery, Wallet,
 * Withdrawal, SubAccount sections); anything not listed is `unknown`, including spot, margin
 * and options trading and the trail/chase/bbo order endpoints.
 */
const ROUTES: readonly Route[] = [
  // withdrawals (incl. UID "push" transfers and saved addresses), transfers, sub-accounts and keys
  { methods: "any", path: family("/withdrawals"), cls: "withdraw" },
  { methods: "any", path: family("/wallet/withdrawals"), cls: "withdraw" },
  { methods: "any", path: family("/wallet/withdraw_status"), cls: "withdraw" },
  { methods: "any", path: family("/wallet/saved_address"), cls: "withdraw" },
  { methods: "any", path: family("/wallet/push"), cls: "withdraw" },
  { methods: "any", path: family("/wallet/transfers"), cls: "transfer" },
  { methods: "any", path: family("/wallet/sub_account_transfers"), cls: "transfer" },
  { methods: "any", path: family("/wallet/sub_account_to_sub_account"), cls: "transfer" },
  { methods: "any", path: family("/wallet/order_status"), cls: "transfer" },
  { methods: "any", path: family("/sub_accounts"), cls: "key-management" },
  { methods: "any", path: family("/account/main_keys"), cls: "key-management" },
  // perpetual futures
  { methods: POST, path: tpl("/futures/{settle}/orders"), cls: "trade", orders: single },
  { methods: DELETE, path: tpl("/futures/{settle}/orders"), cls: "trade" },
  { methods: ["PUT"], path: tpl("/futures/{settle}/orders/{id}"), cls: "trade", orders: amended },
  { methods: DELETE, path: tpl("/futures/{settle}/orders/{id}"), cls: "trade" },
  { methods: POST, path: tpl("/futures/{settle}/batch_orders"), cls: "trade", orders: many },
  { methods: POST, path: tpl("/futures/{settle}/batch_cancel_orders"), cls: "trade" },
  { methods: POST, path: tpl("/futures/{settle}/batch_amend_orders"), cls: "trade", orders: amended },
  { methods: POST, path: tpl("/futures/{settle}/price_orders"), cls: "trade", orders: triggered },
  { methods: DELETE, path: tpl("/futures/{settle}/price_orders"), cls: "trade" },
  { methods: DELETE, path: tpl("/futures/{settle}/price_orders/{id}"), cls: "trade" },
  { methods: POST, path: tpl("/futures/{settle}/countdown_cancel_all"), cls: "trade" },
  { methods: POST, path: tpl("/futures/{settle}/positions/{contract}/margin"), cls: "trade" },
  { methods: POST, path: tpl("/futures/{settle}/positions/{contract}/leverage"), cls: "trade" },
  { methods: POST, path: tpl("/futures/{settle}/positions/{contract}/set_leverage"), cls: "trade" },
  { methods: POST, path: tpl("/futures/{settle}/positions/{contract}/risk_limit"), cls: "trade" },
  { methods: POST, path: tpl("/futures/{settle}/positions/cross_mode"), cls: "trade" },
  { methods: POST, path: tpl("/futures/{settle}/dual_mode"), cls: "trade" },
  { methods: POST, path: tpl("/futures/{settle}/set_position_mode"), cls: "trade" },
  { methods: POST, path: tpl("/futures/{settle}/dual_comp/positions/cross_mode"), cls: "trade" },
  { methods: POST, path: tpl("/futures/{settle}/dual_comp/positions/{contract}/margin"), cls: "trade" },
  { methods: POST, path: tpl("/futures/{settle}/dual_comp/positions/{contract}/leverage"), cls: "trade" },
  { methods: POST, path: tpl("/futures/{settle}/dual_comp/positions/{contract}/risk_limit"), cls: "trade" },
  { methods: GET, path: tpl("/futures/{settle}/orders"), cls: "read" },
  { methods: GET, path: tpl("/futures/{settle}/orders_timerange"), cls: "read" },
  { methods: GET, path: tpl("/futures/{settle}/orders/{id}"), cls: "read" },
  { methods: GET, path: tpl("/futures/{settle}/my_trades"), cls: "read" },
  { methods: GET, path: tpl("/futures/{settle}/my_trades_timerange"), cls: "read" },
  { methods: GET, path: tpl("/futures/{settle}/position_close"), cls: "read" },
  { methods: GET, path: tpl("/futures/{settle}/liquidates"), cls: "read" },
  { methods: GET, path: tpl("/futures/{settle}/auto_deleverages"), cls: "read" },
  { methods: GET, path: tpl("/futures/{settle}/price_orders"), cls: "read" },
  { methods: GET, path: tpl("/futures/{settle}/price_orders/{id}"), cls: "read" },
  { methods: GET, path: tpl("/futures/{settle}/accounts"), cls: "account" },
  { methods: GET, path: tpl("/futures/{settle}/account_book"), cls: "account" },
  { methods: GET, path: tpl("/futures/{settle}/positions"), cls: "account" },
  { methods: GET, path: tpl("/futures/{settle}/positions/{contract}"), cls: "account" },
  { methods: GET, path: tpl("/futures/{settle}/dual_comp/positions/{contract}"), cls: "account" },
  { methods: GET, path: tpl("/futures/{settle}/fee"), cls: "account" },
  // delivery futures
  { methods: POST, path: tpl("/delivery/{settle}/orders"), cls: "trade", orders: single },
  { methods: DELETE, path: tpl("/delivery/{settle}/orders"), cls: "trade" },
  { methods: DELETE, path: tpl("/delivery/{settle}/orders/{id}"), cls: "trade" },
  { methods: POST, path: tpl("/delivery/{settle}/price_orders"), cls: "trade", orders: triggered },
  { methods: DELETE, path: tpl("/delivery/{settle}/price_orders"), cls: "trade" },
  { methods: DELETE, path: tpl("/delivery/{settle}/price_orders/{id}"), cls: "trade" },
  { methods: POST, path: tpl("/delivery/{settle}/positions/{contract}/margin"), cls: "trade" },
  { methods: POST, path: tpl("/delivery/{settle}/positions/{contract}/leverage"), cls: "trade" },
  { methods: POST, path: tpl("/delivery/{settle}/positions/{contract}/risk_limit"), cls: "trade" },
  { methods: GET, path: tpl("/delivery/{settle}/orders"), cls: "read" },
  { methods: GET, path: tpl("/delivery/{settle}/orders/{id}"), cls: "read" },
  { methods: GET, path: tpl("/delivery/{settle}/my_trades"), cls: "read" },
  { methods: GET, path: tpl("/delivery/{settle}/position_close"), cls: "read" },
  { methods: GET, path: tpl("/delivery/{settle}/liquidates"), cls: "read" },
  { methods: GET, path: tpl("/delivery/{settle}/settlements"), cls: "read" },
  { methods: GET, path: tpl("/delivery/{settle}/price_orders"), cls: "read" },
  { methods: GET, path: tpl("/delivery/{settle}/price_orders/{id}"), cls: "read" },
  { methods: GET, path: tpl("/delivery/{settle}/accounts"), cls: "account" },
  { methods: GET, path: tpl("/delivery/{settle}/account_book"), cls: "account" },
  { methods: GET, path: tpl("/delivery/{settle}/positions"), cls: "account" },
  { methods: GET, path: tpl("/delivery/{settle}/positions/{contract}"), cls: "account" },
  // wallet reads
  { methods: GET, path: tpl("/wallet/total_balance"), cls: "account" },
  { methods: GET, path: tpl("/wallet/fee"), cls: "account" },
  { methods: GET, path: tpl("/wallet/sub_account_balances"), cls: "account" },
  { methods: GET, path: tpl("/wallet/sub_account_futures_balances"), cls: "account" },
  { methods: GET, path: tpl("/account/detail"), cls: "account" },
  // Spot balances: ccxt's fetchBalance reads them unless told the futures type.
  { methods: GET, path: tpl("/spot/accounts"), cls: "account" },
];

const EMPTY_SHA512 = createHash("sha512").update("").digest("hex");
/** A WebSocket channel ("futures.orders"): no "&" or "=" that could shift the signed string's fields. */
const WS_CHANNEL = /^[a-z0-9_]+\.[a-z0-9_]+$/;
/** The events the docs sign this way (the WebSocket API's "api" event signs another string). */
const WS_EVENTS = new Set(["subscribe", "unsubscribe"]);

/** Gate API v4 (`exchange: "gate"`): hex HMAC-SHA512 over a newline-joined string. */
export class GateDialect implements Dialect {
  readonly exchange = "gate";
  /** METHOD\nPATH\nQUERY\nSHA512(body)\nTIMESTAMP; the key id travels unsigned. */
  readonly binding = {
    method: true,
    path: true,
    query: true,
    body: true,
    apiKey: false,
    timestamp: true,
    nonce: "n/a",
    headers: ["Timestamp"],
    host: false,
  } as const;
  readonly algorithm = "hmac-sha512" as const;
  readonly secretEncoding = "utf8" as const;

  classify(req: ExchangeRequest): EndpointClass {
    return routeOf(ROUTES, req)?.cls ?? "unknown";
  }

  /** `contract` in the query, anywhere in the JSON body, and in position paths. */
  symbols(req: ExchangeRequest, body: unknown = parseBody(req.body)): string[] {
    const out = queryValues(req.query, "contract");
    collectSymbols(body, "contract", out);
    const route = routeOf(ROUTES, req);
    const inPath = route?.path.exec(req.path)?.groups?.contract;
    if (inPath !== undefined) out.push(inPath);
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
    const timestamp = String(Math.floor(ctx.timestamp / 1000));
    const bodyHash = req.body === "" ? EMPTY_SHA512 : createHash("sha512").update(req.body, "utf8").digest("hex");
    const text = [req.method, req.path, unencoded(req.query), bodyHash, timestamp].join("\n");
    return {
      toSign: [Buffer.from(text, "utf8")],
      finish(macs: Buffer[]) {
        const signature = oneMac("gate", "hmac-sha512", macs).toString("hex");
        const headers: Array<[string, string]> = [
          ["KEY", ctx.apiKeyId],
          ["Timestamp", timestamp],
          ["SIGN", signature],
        ];
        if (req.body !== "") headers.push(["Content-Type", "application/json"]);
        return { headers, params: [], query: req.query, body: req.body, signature, timestamp };
      },
    };
  }

  /**
   * The `auth` of one private subscribe/unsubscribe. It is embedded in that request (whose `time` must be
   * `timestamp`), so `message` is "".
   */
  websocketAuth(input: WebSocketAuthInput, ctx: SigningContext): PreparedWebSocketAuth {
    const { channel, event } = input;
    if (channel === undefined || !WS_CHANNEL.test(channel))
      throw new CustosError("INVALID_ARGUMENT", "gate WebSocket auth needs the private channel (e.g. futures.orders)");
    if (event === undefined || !WS_EVENTS.has(event))
      throw new CustosError("INVALID_ARGUMENT", "gate WebSocket auth needs the event: subscribe or unsubscribe");
    if (!/^[\x21-\x7e]+$/.test(ctx.apiKeyId)) throw new CustosError("INVALID_ARGUMENT", "the API key id must be printable ASCII");
    if (!Number.isSafeInteger(ctx.timestamp) || ctx.timestamp < 0) throw new CustosError("INVALID_ARGUMENT", "timestamp must be whole milliseconds");
    const time = String(Math.floor(ctx.timestamp / 1000));
    return {
      toSign: [Buffer.from(`channel=${channel}&event=${event}&time=${time}`, "utf8")],
      finish(macs: Buffer[]) {
        const signature = oneMac("gate", "hmac-sha512", macs).toString("hex");
        return {
          fields: [
            ["method", "api_key"],
            ["KEY", ctx.apiKeyId],
            ["SIGN", signature],
            ["time", time],
          ],
          message: "",
          signature,
          timestamp: time,
        };
      },
    };
  }
}

/** The Gate API v4 dialect. */
export const gate: Dialect = new GateDialect();
