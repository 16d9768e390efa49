import { sha256 } from "../audit/sha256.js";
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
 * Kraken Futures (derivatives) REST (docs.kraken.com/api/docs/guides/futures-rest, "Authentication"):
 *
 *   1. concatenate postData + Nonce + endpointPath
 *   2. SHA-256 the result
 *   3. base64-decode api_secret            (done once, at import: secretEncoding "base64")
 *   4. HMAC-SHA-512 of step 2 keyed with step 3   (the HSM)
 *   5. base64-encode step 4 → Authent
 *
 * Headers APIKey and Authent, and Nonce (optional). endpointPath is the URL path without the
 * "/derivatives" prefix (/derivatives/api/v3/orderbook signs as /api/v3/orderbook; /api/history/...
 * is signed as is) — Kraken's samples (CryptoFacilities REST-v3-Python sign_message, krakenfx/api-go
 * derivatives.Sign) strip exactly that prefix. Since 2024-02-20 postData is the url-encoded parameters
 * exactly as they appear in the request; the official sample concatenates query and body (postUrl +
 * postBody), so both are signed here as sent.
 */

const DERIVATIVES = "/derivatives";
/** Printable ASCII a WHATWG URL keeps as is in a query (no space, ", #, ', <, >): anything else is re-encoded on the way out, so the sent bytes would not be the signed bytes. */
const QUERY_SAFE = /^[\x21\x24-\x26\x28-\x3b\x3d\x3f-\x7e]*$/;
/** Plain segments only: no "..", "%2F" or empty segment for a client to normalise after classification. */
const PATH = /^(\/[A-Za-z0-9_-]+)+$/;
const V3 = "/derivatives/api/v3/";
const HISTORY = /^\/api\/history\/v[23]\/([a-z-]+)$/;
/** The challenge is "a UUID string" (docs); nothing else may reach the REST-equivalent signature. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const ROUTES = new Map<string, EndpointClass>([
  ...routes("trade", [
    "POST sendorder",
    "POST editorder",
    "POST cancelorder",
    "POST cancelallorders",
    "POST cancelallordersafter",
    "PUT leveragepreferences",
    "PUT pnlpreferences",
    "PUT self-trade-strategy",
  ]),
  ...routes("read", ["GET openorders", "GET recentorders", "GET fills", "GET orders/status", "POST orders/status"]),
  ...routes("account", [
    "GET accounts",
    "GET openpositions",
    "GET notifications",
    "GET leveragepreferences",
    "GET pnlpreferences",
    "GET self-trade-strategy",
    "GET unwindqueue",
    "GET feeschedules/volumes",
    "GET transfers",
    "GET subaccounts",
    "GET initialmargin",
    "GET initialmargin/maxordersize",
    "GET assignmentprogram/current",
    "GET assignmentprogram/history",
  ]),
  ...routes("transfer", ["POST transfer", "POST transfer/subaccount"]),
  // "Initiate withdrawal to Spot wallet": funds leave the futures venue, and it needs a Withdrawal API key.
  ...routes("withdraw", ["POST withdrawal"]),
]);

/** What a signed route can do with any method: the most sensitive class any method of it has. */
const SENSITIVITY: readonly EndpointClass[] = ["read", "account", "trade", "unknown", "key-management", "transfer", "withdraw"];
const ROUTE_CLASS_ANY_METHOD = new Map<string, EndpointClass>();
for (const [methodAndRoute, cls] of ROUTES) {
  const route = methodAndRoute.slice(methodAndRoute.indexOf(" ") + 1);
  const known = ROUTE_CLASS_ANY_METHOD.get(route);
  if (known === undefined || SENSITIVITY.indexOf(cls) > SENSITIVITY.indexOf(known)) ROUTE_CLASS_ANY_METHOD.set(route, cls);
}

const HISTORY_CLASSES = new Map<string, EndpointClass>([
  ["orders", "read"],
  ["executions", "read"],
  ["triggers", "read"],
  ["account-log", "account"],
  ["accountlogcsv", "account"],
  ["positions", "account"],
]);

type BatchItem = Record<string, unknown>;

/**
 * Kraken Futures REST with `APIKey` / `Nonce` / `Authent`. The signature is an HMAC-SHA512 over a
 * SHA-256 digest, so `toSign` holds the 32-byte digest, not the text. Symbols are reported in upper case.
 */
export const krakenfutures = {
  exchange: "krakenfutures",
  /** postData + Nonce + endpointPath: the method is not signed, so `classify` reads a path by its most sensitive method. */
  binding: { method: false, path: true, query: true, body: true, apiKey: false, timestamp: false, nonce: true, headers: ["Nonce"], host: false },
  nonceIsTime: true,
  algorithm: "hmac-sha512",
  secretEncoding: "base64",
  optionalNonce: true,

  /** One reading: query, form and batch instructions parsed once for class, symbols and orders. */
  read(req: ExchangeRequest): RequestReading {
    const params = new Params(req);
    return {
      endpointClass: krakenfutures.classify(req, params),
      symbols: krakenfutures.symbols(req, params),
      orders: krakenfutures.orders(req, params),
      schemaMisfit: undefined,
      prepare: (ctx) => krakenfutures.prepare(req, ctx),
    };
  },

  classify(req: ExchangeRequest, params = new Params(req)): EndpointClass {
    if (req.path.startsWith("/api/auth/")) return "key-management";
    const history = HISTORY.exec(req.path);
    if (history) return (req.method === "GET" && HISTORY_CLASSES.get(history[1]!)) || "unknown";
    if (!req.path.startsWith(V3)) return "unknown";
    const route = req.path.slice(V3.length);
    if (route === "apikey" || route.startsWith("apikey/")) return "key-management";
    // A batch is a trade only when every instruction in it is one this dialect can read.
    if (route === "batchorder") return req.method === "POST" && params.batch() !== null ? "trade" : "unknown";
    if (!ROUTES.has(`${req.method} ${route}`)) return "unknown";
    // The method is not signed: a signature for GET leveragepreferences is valid for PUT too.
    return ROUTE_CLASS_ANY_METHOD.get(route) ?? "unknown";
  },

  symbols(req: ExchangeRequest, params = new Params(req)): string[] {
    const named = params.values("symbol");
    for (const item of params.batch() ?? []) if (Object.hasOwn(item, "symbol")) named.push(item.symbol);
    return [...new Set(named.map(symbolOf))];
  },

  orders(req: ExchangeRequest, params = new Params(req)): OrderFact[] {
    if (req.method !== "POST" || !req.path.startsWith(V3)) return [];
    const route = req.path.slice(V3.length);
    if (route === "sendorder" || route === "editorder") {
      const sizes = params.values("size");
      // An edit that leaves the size alone places no new quantity.
      if (route === "editorder" && sizes.length === 0) return [];
      return forSymbols(params.values("symbol"), largestQuantity(sizes));
    }
    if (route !== "batchorder") return [];
    return (params.batch() ?? []).flatMap((item) => {
      if (item.order === "cancel" || (item.order === "edit" && !Object.hasOwn(item, "size"))) return [];
      return forSymbols(Object.hasOwn(item, "symbol") ? [item.symbol] : [], largestQuantity([item.size]));
    });
  },

  prepare(req: ExchangeRequest, ctx: SigningContext): PreparedRequest {
    if (!PATH.test(req.path)) invalid(`path ${JSON.stringify(req.path)} is not a plain REST path`);
    if (!QUERY_SAFE.test(req.query)) invalid("the query must be percent-encoded printable ASCII");
    // The nonce is optional ("" sends none); when present it is an integer that keeps increasing.
    if (!/^\d{0,32}$/.test(ctx.nonce)) invalid("nonce must be a decimal integer (or empty for none)");
    if (!/^[\x21-\x7e]+$/.test(ctx.apiKeyId)) invalid("api key must be printable ASCII without spaces");
    const endpointPath = req.path.startsWith(`${DERIVATIVES}/`) ? req.path.slice(DERIVATIVES.length) : req.path;
    const digest = sha256().update(`${req.query}${req.body}${ctx.nonce}${endpointPath}`, "utf8").digest();
    return {
      toSign: [digest],
      finish(macs: Buffer[]) {
        const authent = oneMac("krakenfutures", "hmac-sha512", macs).toString("base64");
        const headers: Array<[string, string]> = [["APIKey", ctx.apiKeyId]];
        if (ctx.nonce !== "") headers.push(["Nonce", ctx.nonce]);
        headers.push(["Authent", authent]);
        return { headers, params: [], query: req.query, body: req.body, signature: authent, timestamp: ctx.nonce };
      },
    };
  },

  /**
   * The signed challenge for private feeds. `toSign` is the SHA-256 digest of the challenge; the fields go
   * into each subscribe/unsubscribe, whose feed the engine chooses, so `message` is "" (and `timestamp`
   * too: nothing time-based is signed).
   */
  websocketAuth(input: WebSocketAuthInput, ctx: SigningContext): PreparedWebSocketAuth {
    const challenge = input.challenge;
    if (challenge === undefined || challenge === "") invalid("a private feed needs the server's challenge");
    if (!UUID.test(challenge)) invalid("the challenge must be the UUID the server sent");
    if (!/^[\x21-\x7e]+$/.test(ctx.apiKeyId)) invalid("api key must be printable ASCII without spaces");
    return {
      toSign: [sha256().update(challenge, "utf8").digest()],
      finish(macs: Buffer[]) {
        const signed = oneMac("krakenfutures", "hmac-sha512", macs).toString("base64");
        return {
          fields: [
            ["api_key", ctx.apiKeyId],
            ["original_challenge", challenge],
            ["signed_challenge", signed],
          ],
          message: "",
          signature: signed,
          timestamp: "",
        };
      },
    };
  },
} satisfies Dialect;

function routes(cls: EndpointClass, list: string[]): Array<[string, EndpointClass]> {
  return list.map((r) => [r, cls]);
}

/** A request's form parameters (query and body: Kraken reads either) and batch, parsed once per reading. */
class Params {
  private readonly query: URLSearchParams;
  private readonly form: URLSearchParams;
  private batchItems: BatchItem[] | null | undefined;

  constructor(req: ExchangeRequest) {
    this.query = new URLSearchParams(req.query);
    this.form = new URLSearchParams(req.body);
  }

  /** Every value a form parameter has, in the query and in the body. */
  values(name: string): unknown[] {
    return [...this.query.getAll(name), ...this.form.getAll(name)];
  }

  /** The batch's instructions (see `batchItems`), parsed on first use. */
  batch(): BatchItem[] | null {
    if (this.batchItems === undefined) this.batchItems = batchItems(this);
    return this.batchItems;
  }
}

/**
 * The instructions of a batchorder (`json={"batchOrder":[...]}`, in the body or the query), or null when
 * there is none, one does not parse, or an instruction is not send/edit/cancel.
 */
function batchItems(params: Params): BatchItem[] | null {
  const docs = params.values("json");
  if (docs.length === 0) return null;
  const items: BatchItem[] = [];
  for (const doc of docs) {
    const parsed = parseJson(doc as string);
    if (!isObject(parsed) || !Array.isArray(parsed.batchOrder)) return null;
    for (const item of parsed.batchOrder as unknown[]) {
      if (!isObject(item) || !["send", "edit", "cancel"].includes(item.order as string)) return null;
      items.push(item);
    }
  }
  return items;
}

function forSymbols(symbols: unknown[], quantity: number): Array<{ symbol: string; quantity: number }> {
  const distinct = [...new Set(symbols.map(symbolOf))];
  // "" = no symbol in the request (an edit names the order, not the instrument): only a "*" limit applies.
  return (distinct.length > 0 ? distinct : [""]).map((symbol) => ({ symbol, quantity }));
}

function invalid(message: string): never {
  throw new CustosError("INVALID_ARGUMENT", `krakenfutures: ${message}`);
}
