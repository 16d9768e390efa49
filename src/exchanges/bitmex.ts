import { CustosError } from "../errors.js";
import type {
  Dialect,
  EndpointClass,
  ExchangeRequest,
  OrderFact,
  PreparedRequest,
  RequestReading,
  PreparedWebSocketAuth,
  SigningContext,
  WebSocketAuthInput,
} from "./dialect.js";
import { isObject, largestQuantity, oneMac, parseJson, symbolOf } from "./facts.js";

/*
 * BitMEX REST API keys (www.bitmex.com/app/apiKeysUsage, "Authenticating with an API Key"):
 *
 *   api-expires:   UNIX timestamp in seconds after which the request is no longer valid
 *   api-key:       the key id
 *   api-signature: hex(HMAC_SHA256(apiSecret, verb + path + expires + data))
 *
 * path is the URL path with its query string exactly as sent ("Be sure to HMAC *exactly* what is sent on
 * the wire"); data is the raw body, JSON or form-encoded, or "".
 *
 * WebSocket (www.bitmex.com/app/wsAPI, "API Keys"): the same signature over verb "GET", path "/realtime" and
 * no data, sent as {"op":"authKeyExpires","args":[apiKey, expires, signature]} with expires a JSON number of
 * seconds (BitMEX's reference websocket-apikey-auth-test.py: expires = int(time.time()) + 5; the same three
 * values may instead travel as api-expires/api-key/api-signature headers on connect, as its
 * official-ws/python/bitmex_websocket.py does).
 */

const PREFIX = "/api/v1";
/** Printable ASCII a WHATWG URL keeps as is in a query (no space, ", #, ', <, >): anything else is re-encoded on the way out, so the sent bytes would not be the signed bytes. */
const QUERY_SAFE = /^[\x21\x24-\x26\x28-\x3b\x3d\x3f-\x7e]*$/;
/** Plain segments only: no "..", "%2F" or empty segment for a client to normalise after classification. */
const PATH = /^(\/[A-Za-z0-9_-]+)+$/;

const ROUTES = new Map<string, EndpointClass>([
  // The "order" permission covers /order and /position. /order/bulk is deprecated and left unknown.
  // POST /position/transferMargin is classified in classify(): it can move margin to another account.
  ...routes("trade", [
    "POST /order",
    "PUT /order",
    "DELETE /order",
    "DELETE /order/all",
    "POST /order/cancelAllAfter",
    "POST /order/closePosition",
    "POST /position/leverage",
    "POST /position/crossLeverage",
    "POST /position/isolate",
    "POST /position/riskLimit",
  ]),
  ...routes("read", ["GET /order", "GET /execution", "GET /execution/tradeHistory", "GET /user/executionHistory"]),
  // Market and reference data BitMEX serves without a key (no security in its swagger.json). ccxt signs them
  // anyway once it holds a key (loadMarkets, fetchFundingRate, tickers, candles, the order book).
  ...routes("read", [
    "GET /instrument",
    "GET /instrument/active",
    "GET /instrument/activeAndIndices",
    "GET /instrument/activeIntervals",
    "GET /instrument/compositeIndex",
    "GET /instrument/indices",
    "GET /instrument/usdVolume",
    "GET /funding",
    "GET /insurance",
    "GET /liquidation",
    "GET /orderBook/L2",
    "GET /quote",
    "GET /quote/bucketed",
    "GET /settlement",
    "GET /stats",
    "GET /stats/history",
    "GET /stats/historyUSD",
    "GET /trade",
    "GET /trade/bucketed",
    "GET /wallet/assets",
    "GET /wallet/networks",
  ]),
  ...routes("account", [
    "GET /position",
    "GET /user",
    "GET /user/margin",
    "GET /user/wallet",
    "GET /user/walletHistory",
    "GET /user/walletSummary",
    "GET /user/commission",
    "GET /user/tradingVolume",
    "GET /user/depositAddress",
    "GET /user/minWithdrawalFee",
    "GET /user/getWalletTransferAccounts",
    "GET /user/quoteFillRatio",
    "GET /user/quoteValueRatio",
    "GET /userEvent",
    "GET /address",
  ]),
  ...routes("transfer", ["POST /user/walletTransfer"]),
  // Address-book edits open the way for a withdrawal that skips e-mail confirmation.
  ...routes("withdraw", [
    "POST /user/requestWithdrawal",
    "POST /user/confirmWithdrawal",
    "POST /user/cancelWithdrawal",
    "DELETE /user/withdrawal",
    "POST /address",
    "PUT /address",
  ]),
]);

/**
 * BitMEX REST with `api-expires` / `api-key` / `api-signature`. Endpoints are classified by verb and path
 * under `/api/v1`; every `/apiKey` route is key management.
 */
export const bitmex = {
  exchange: "bitmex",
  /** verb + path (with query) + expires + data; the key id travels unsigned. */
  binding: { method: true, path: true, query: true, body: true, apiKey: false, timestamp: true, nonce: "n/a", headers: ["api-expires"], host: false },
  algorithm: "hmac-sha256",
  secretEncoding: "utf8",

  /** One reading: query and body parsed once for symbols and orders. */
  read(req: ExchangeRequest): RequestReading {
    const params = new Params(req);
    return {
      endpointClass: bitmex.classify(req, params),
      symbols: bitmex.symbols(req, params),
      orders: bitmex.orders(req, params),
      schemaMisfit: undefined,
      prepare: (ctx) => bitmex.prepare(req, ctx),
    };
  },

  classify(req: ExchangeRequest, params?: Params): EndpointClass {
    if (!req.path.startsWith(`${PREFIX}/`)) return "unknown";
    const route = req.path.slice(PREFIX.length);
    if (route === "/apiKey" || route.startsWith("/apiKey/")) return "key-management";
    if (`${req.method} ${route}` === "POST /position/transferMargin") return marginTransferClass(req, params ?? new Params(req));
    return ROUTES.get(`${req.method} ${route}`) ?? "unknown";
  },

  symbols(req: ExchangeRequest, params = new Params(req)): string[] {
    const named = params.values("symbol");
    // A table query may name its symbol inside the JSON `filter` instead.
    for (const f of params.values("filter")) {
      const filter = typeof f === "string" ? parseJson(f) : f;
      if (isObject(filter) && Object.hasOwn(filter, "symbol")) named.push(...[filter.symbol].flat());
    }
    return [...new Set(named.map(symbolOf))];
  },

  orders(req: ExchangeRequest, params = new Params(req)): OrderFact[] {
    const route = `${req.method} ${req.path.slice(PREFIX.length)}`;
    if (!req.path.startsWith(`${PREFIX}/`) || (route !== "POST /order" && route !== "PUT /order")) return [];
    const quantities = [...params.values("orderQty"), ...params.values("leavesQty")];
    // An amend that changes only the price places no new quantity.
    if (route === "PUT /order" && quantities.length === 0) return [];
    const quantity = largestQuantity(quantities);
    const symbols = [...new Set(params.values("symbol").map(symbolOf))];
    // "" = no symbol in the request (an amend names the order, not the instrument): only a "*" limit applies.
    return (symbols.length > 0 ? symbols : [""]).map((symbol) => ({ symbol, quantity }));
  },

  prepare(req: ExchangeRequest, ctx: SigningContext): PreparedRequest {
    if (!PATH.test(req.path)) invalid(`path ${JSON.stringify(req.path)} is not a plain REST path`);
    if (!QUERY_SAFE.test(req.query)) invalid("the query must be percent-encoded printable ASCII");
    if (!Number.isSafeInteger(ctx.expires) || ctx.expires <= 0) invalid("expires must be a positive integer of seconds");
    if (!/^[\x21-\x7e]+$/.test(ctx.apiKeyId)) invalid("api key id must be printable ASCII without spaces");
    const expires = String(ctx.expires);
    const path = req.query === "" ? req.path : `${req.path}?${req.query}`;
    return {
      toSign: [Buffer.from(`${req.method}${path}${expires}${req.body}`, "utf8")],
      finish(macs: Buffer[]) {
        const signature = oneMac("bitmex", "hmac-sha256", macs).toString("hex");
        return {
          headers: [
            ["api-expires", expires],
            ["api-key", ctx.apiKeyId],
            ["api-signature", signature],
          ],
          params: [],
          query: req.query,
          body: req.body,
          signature,
          timestamp: expires,
        };
      },
    };
  },

  /** The `authKeyExpires` op; `fields` uses the header names, which also authenticate a connect. */
  websocketAuth(_input: WebSocketAuthInput, ctx: SigningContext): PreparedWebSocketAuth {
    if (!Number.isSafeInteger(ctx.expires) || ctx.expires <= 0) invalid("expires must be a positive integer of seconds");
    if (!/^[\x21-\x7e]+$/.test(ctx.apiKeyId)) invalid("api key id must be printable ASCII without spaces");
    const expires = String(ctx.expires);
    return {
      toSign: [Buffer.from(`GET/realtime${expires}`, "utf8")],
      finish(macs: Buffer[]) {
        const signature = oneMac("bitmex", "hmac-sha256", macs).toString("hex");
        return {
          fields: [
            ["api-key", ctx.apiKeyId],
            ["api-expires", expires],
            ["api-signature", signature],
          ],
          message: JSON.stringify({ op: "authKeyExpires", args: [ctx.apiKeyId, ctx.expires, signature] }),
          signature,
          timestamp: expires,
        };
      },
    };
  },
} satisfies Dialect;

/**
 * POST /position/transferMargin moves isolated margin between a position and the account's own balance (a
 * margin change, like setting leverage), unless it names `targetAccountId`: then the margin goes to a position
 * of a paired account (BitMEX swagger.json: "AccountId for the position that the margin would be transfered
 * to"), a move of funds between accounts. A JSON body custos cannot read counts as naming it.
 */
function marginTransferClass(req: ExchangeRequest, params: Params): EndpointClass {
  const unreadableJson = req.body.trimStart().startsWith("{") && parseJson(req.body) === undefined;
  return unreadableJson || params.values("targetAccountId").length > 0 ? "transfer" : "trade";
}

function routes(cls: EndpointClass, list: string[]): Array<[string, EndpointClass]> {
  return list.map((r) => [r, cls]);
}

/** A request's parameters wherever BitMEX might read them, parsed once per reading. */
class Params {
  private readonly query: URLSearchParams;
  private readonly form: URLSearchParams;
  private readonly json: unknown;

  constructor(req: ExchangeRequest) {
    this.query = new URLSearchParams(req.query);
    // The body is read both as JSON and as a form: the Content-Type that decides between them is
    // not signed and custos does not see it.
    this.form = new URLSearchParams(req.body);
    this.json = req.body.trimStart().startsWith("{") ? parseJson(req.body) : undefined;
  }

  /** Every value the parameter has: query, form, JSON body. */
  values(name: string): unknown[] {
    const out: unknown[] = [...this.query.getAll(name), ...this.form.getAll(name)];
    if (isObject(this.json) && Object.hasOwn(this.json, name)) out.push(this.json[name]);
    return out;
  }
}

function invalid(message: string): never {
  throw new CustosError("INVALID_ARGUMENT", `bitmex: ${message}`);
}
