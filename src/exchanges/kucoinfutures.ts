/**
 * KuCoin Futures REST signing for API keys of version 2 and 3, from the official documentation
 * (https://www.kucoin.com/docs-new/authentication; https://www.kucoin.com/docs/basic-info/connection-method/authentication/signing-a-message):
 *
 *   KC-API-SIGN       = base64(HMAC-SHA256(secret, timestamp + METHOD + endpoint + body))
 *   KC-API-PASSPHRASE = base64(HMAC-SHA256(secret, passphrase))        (key versions 2 and 3)
 *
 * `endpoint` is the path with "?" + query string when there is one, signed without URL encoding
 * ("/api/v1/sub/api-key?…&passphrase=abc%21%40%2311" signs "…&passphrase=abc!@#11");
 * `timestamp` is milliseconds and equals KC-API-TIMESTAMP.
 *
 * The HSM signs ONE message per request, the request string. KC-API-PASSPHRASE is fixed per key
 * version: the officer's CLI computes it while it wraps the secret, the quorum approves it with
 * the import or rotation, and it is stored with the version (`ctx.signedPassphrase`). Taking the
 * passphrase from the caller and HMACing it here would be an HMAC oracle: a "passphrase" of
 * timestamp + "POST/api/v1/withdrawals" + body would come back as that withdrawal's KC-API-SIGN.
 * So a request carrying a passphrase is refused, and custos never HMACs caller bytes for it.
 *
 * No `websocketAuth`: the private WebSocket is opened with a token from POST /api/v1/bullet-private,
 * an ordinary signed REST request (`prepare`); nothing sent on the socket is signed.
 */
import { CustosError } from "../errors.js";
import type { Dialect, EndpointClass, ExchangeRequest, PreparedRequest, RequestReading, SigningContext, StrictReading } from "./dialect.js";
import { isObject } from "./facts.js";
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
  "{symbol}": "(?<symbol>[A-Za-z0-9]+)",
  // order ids and clientOids: letters, digits, "_" and "-"
  "{id}": "[A-Za-z0-9_-]+",
};
/** A path template from the reference, e.g. "/orders/{id}", under /api/v1 (or v2, v3). */
const tpl = (p: string): RegExp => new RegExp(`^/api/v[1-3]${p.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{[a-z]+\}/g, (m) => SEGMENTS[m] ?? m)}$`);
/** The path and everything below it. */
const family = (p: string): RegExp => new RegExp(`^/api/v[1-3]${p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?:/.*)?$`);

const GET: readonly Method[] = ["GET"];
const POST: readonly Method[] = ["POST"];
const DELETE: readonly Method[] = ["DELETE"];

/**
 * `size` is in lots of the contract. `closeOrder: true` closes the position and needs no size;
 * `qty` / `valueQty` (base / quote amounts) are not lots, so they count as unmeasurable (NaN).
 */
function order(o: Record<string, unknown>): OrderFact {
  const symbol = typeof o.symbol === "string" ? o.symbol : "";
  const forms = [o.size, o.qty, o.valueQty].filter((v) => v !== undefined).length;
  if (forms === 0 && o.closeOrder === true) return { symbol, quantity: 0 };
  // One size form only: with two, custos could measure one while KuCoin uses the other.
  if (forms > 1) throw new CustosError("INVALID_ARGUMENT", "kucoinfutures: an order names one of size, qty and valueQty");
  return { symbol, quantity: quantity(o.size) };
}
const single = (body: unknown): OrderFact[] => (isObject(body) ? [order(body)] : []);
const many = (body: unknown): OrderFact[] => (Array.isArray(body) ? body.map((o) => order(isObject(o) ? o : {})) : single(body));

/**
 * Endpoint table, first match wins. Paths from the Futures sections of the reference
 * (https://www.kucoin.com/docs/rest/futures-trading/…, https://www.kucoin.com/docs-new);
 * anything not listed, copy trading included, is `unknown`.
 */
const ROUTES: readonly Route[] = [
  { methods: "any", path: family("/withdrawals"), cls: "withdraw" },
  { methods: "any", path: family("/withdrawal-list"), cls: "withdraw" },
  { methods: "any", path: family("/transfer-out"), cls: "transfer" },
  { methods: "any", path: family("/transfer-in"), cls: "transfer" },
  { methods: "any", path: family("/transfer-list"), cls: "transfer" },
  { methods: "any", path: family("/cancel/transfer-out"), cls: "transfer" },
  { methods: "any", path: family("/sub/api-key"), cls: "key-management" },
  { methods: POST, path: tpl("/orders"), cls: "trade", orders: single },
  { methods: POST, path: tpl("/orders/test"), cls: "trade", orders: single },
  { methods: POST, path: tpl("/st-orders"), cls: "trade", orders: single },
  { methods: POST, path: tpl("/orders/multi"), cls: "trade", orders: many },
  { methods: DELETE, path: tpl("/orders"), cls: "trade" },
  { methods: DELETE, path: tpl("/orders/multi-cancel"), cls: "trade" },
  { methods: DELETE, path: tpl("/orders/client-order/{id}"), cls: "trade" },
  { methods: DELETE, path: tpl("/orders/{id}"), cls: "trade" },
  { methods: DELETE, path: tpl("/stopOrders"), cls: "trade" },
  { methods: POST, path: tpl("/position/margin/auto-deposit-status"), cls: "trade" },
  { methods: POST, path: tpl("/position/margin/deposit-margin"), cls: "trade" },
  // moves isolated margin back to the futures account: a margin operation, not a withdrawal
  { methods: POST, path: tpl("/margin/withdrawMargin"), cls: "trade" },
  { methods: POST, path: tpl("/position/risk-limit-level/change"), cls: "trade" },
  { methods: POST, path: tpl("/changeCrossUserLeverage"), cls: "trade" },
  { methods: POST, path: tpl("/position/changeMarginMode"), cls: "trade" },
  { methods: POST, path: tpl("/position/switchPositionMode"), cls: "trade" },
  // The private WebSocket's token (KuCoin signs no WebSocket login): reads the account's streams.
  { methods: POST, path: tpl("/bullet-private"), cls: "read" },
  { methods: GET, path: tpl("/orders"), cls: "read" },
  { methods: GET, path: tpl("/orders/byClientOid"), cls: "read" },
  { methods: GET, path: tpl("/orders/{id}"), cls: "read" },
  { methods: GET, path: tpl("/stopOrders"), cls: "read" },
  { methods: GET, path: tpl("/recentDoneOrders"), cls: "read" },
  { methods: GET, path: tpl("/fills"), cls: "read" },
  { methods: GET, path: tpl("/recentFills"), cls: "read" },
  { methods: GET, path: tpl("/openOrderStatistics"), cls: "read" },
  { methods: GET, path: tpl("/account-overview"), cls: "account" },
  // What ccxt's loadMarkets reads with an API key: the account mode (classic or unified) and whether HF trading is open.
  { methods: GET, path: /^\/api\/ua\/v1\/account\/mode$/, cls: "account" },
  { methods: GET, path: tpl("/hf/accounts/opened"), cls: "account" },
  // Market data ccxt's loadMarkets signs when it has a key (currencies, cross and isolated margin symbols).
  { methods: GET, path: /^\/api\/v3\/(currencies|margin\/symbols)$/, cls: "read" },
  { methods: GET, path: /^\/api\/v1\/isolated\/symbols$/, cls: "read" },
  { methods: GET, path: tpl("/account-overview-all"), cls: "account" },
  { methods: GET, path: tpl("/transaction-history"), cls: "account" },
  { methods: GET, path: tpl("/position"), cls: "account" },
  { methods: GET, path: tpl("/positions"), cls: "account" },
  { methods: GET, path: tpl("/history-positions"), cls: "account" },
  { methods: GET, path: tpl("/funding-history"), cls: "account" },
  { methods: GET, path: tpl("/trade-fees"), cls: "account" },
  { methods: GET, path: tpl("/trade-statistics"), cls: "account" },
  { methods: GET, path: tpl("/position/getMarginMode"), cls: "account" },
  { methods: GET, path: tpl("/position/getPositionMode"), cls: "account" },
  { methods: GET, path: tpl("/getMaxOpenSize"), cls: "account" },
  { methods: GET, path: tpl("/getCrossUserLeverage"), cls: "account" },
  { methods: GET, path: tpl("/margin/maxWithdrawMargin"), cls: "account" },
  { methods: GET, path: tpl("/contracts/risk-limit/{symbol}"), cls: "account" },
];

/** API key versions whose passphrase is sent as its HMAC (version 1 sent it in clear). */
export type KucoinKeyVersion = "2" | "3";
const KEY_VERSIONS: readonly string[] = ["2", "3"];

/**
 * KuCoin Futures (`exchange: "kucoinfutures"`): base64 HMAC-SHA256 of the request; the passphrase
 * header is the key version's stored signed passphrase. Versions 2 and 3 sign alike and differ
 * only in the KC-API-KEY-VERSION header; the engine states its key's version per request
 * (`apiKeyVersion`), else the instance's default (2).
 */
export class KucoinFuturesDialect implements Dialect {
  readonly exchange = "kucoinfutures";
  /** timestamp + METHOD + endpoint (with query) + body; the key id travels unsigned. */
  readonly binding = {
    method: true,
    path: true,
    query: true,
    body: true,
    apiKey: false,
    timestamp: true,
    nonce: "n/a",
    headers: ["KC-API-TIMESTAMP"],
    host: false,
  } as const;
  readonly algorithm = "hmac-sha256" as const;
  readonly secretEncoding = "utf8" as const;

  constructor(readonly keyVersion: KucoinKeyVersion = "2") {}

  classify(req: ExchangeRequest): EndpointClass {
    return routeOf(ROUTES, req)?.cls ?? "unknown";
  }

  /** `symbol` in the query, anywhere in the JSON body, and in risk-limit paths. */
  symbols(req: ExchangeRequest, body: unknown = parseBody(req.body)): string[] {
    const out = queryValues(req.query, "symbol");
    collectSymbols(body, "symbol", out);
    const inPath = routeOf(ROUTES, req)?.path.exec(req.path)?.groups?.symbol;
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
    if (ctx.passphrase) throw new CustosError("INVALID_ARGUMENT", "the KuCoin passphrase is part of the key, not of the request: send none");
    const signedPassphrase = ctx.signedPassphrase;
    if (!signedPassphrase)
      throw new CustosError("PRECONDITION_FAILED", "this key version has no KuCoin passphrase: the key's passphrase is set at import or rotation");
    const timestamp = String(ctx.timestamp);
    const query = unencoded(req.query);
    const text = timestamp + req.method + req.path + (query === "" ? "" : `?${query}`) + req.body;
    const keyVersion = ctx.apiKeyVersion ?? this.keyVersion;
    // Version 1 sent the passphrase in clear, so it is refused rather than guessed at.
    if (!KEY_VERSIONS.includes(keyVersion))
      throw new CustosError("INVALID_ARGUMENT", `kucoinfutures API key version must be 2 or 3, not ${JSON.stringify(keyVersion)}`);
    return {
      toSign: [Buffer.from(text, "utf8")],
      finish(macs: Buffer[]) {
        if (macs.length !== 1 || macs[0]!.length !== 32) throw new CustosError("INTERNAL", "kucoinfutures expects one HMAC-SHA256 (this is a bug)");
        const signature = macs[0]!.toString("base64");
        const headers: Array<[string, string]> = [
          ["KC-API-KEY", ctx.apiKeyId],
          ["KC-API-SIGN", signature],
          ["KC-API-TIMESTAMP", timestamp],
          ["KC-API-PASSPHRASE", signedPassphrase],
          ["KC-API-KEY-VERSION", keyVersion],
        ];
        if (req.body !== "") headers.push(["Content-Type", "application/json"]);
        return { headers, params: [], query: req.query, body: req.body, signature, timestamp };
      },
    };
  }
}

/** The KuCoin Futures dialect for version-2 API keys (`new KucoinFuturesDialect("3")` for version 3). */
export const kucoinfutures: Dialect = new KucoinFuturesDialect("2");
