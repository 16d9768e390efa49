import type { SigningAlgorithm } from "../hsm/algorithms.js";

/**
 * What an exchange endpoint does, as far as custody is concerned. The default policy signs
 * `trade`, `read` and `account` requests and refuses the rest: a stolen trading-engine
 * certificate must not be able to move funds or keys.
 */
export type EndpointClass = "trade" | "read" | "account" | "transfer" | "withdraw" | "key-management" | "unknown";

/** A private REST request exactly as the engine will send it (custos never reorders it). */
export interface ExchangeRequest {
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** Path without host or query, e.g. "/fapi/v1/order". */
  path: string;
  /** The exact query string without "?", or "" (custos appends its own parameters after it). */
  query: string;
  /** The exact body as sent (UTF-8), or "". */
  body: string;
}

/** Values custos chose (or the caller supplied and the policy accepted) for this request. */
export interface SigningContext {
  /** Milliseconds since the epoch. */
  timestamp: number;
  /** Seconds since the epoch, for exchanges that sign an expiry (BitMEX `api-expires`). */
  expires: number;
  /** A nonce, for exchanges that use one instead of (or besides) a timestamp. */
  nonce: string;
  /** Milliseconds, for exchanges that take a receive window (Binance, Bybit). */
  recvWindow?: number | undefined;
  /** The exchange's public API key id of the key version that signs. */
  apiKeyId: string;
  /** The API passphrase (OKX, Bitget: sent in clear, never signed), when the key has one. */
  passphrase?: string | undefined;
  /**
   * KuCoin Futures: the signing key version's KC-API-PASSPHRASE value, base64(HMAC-SHA256(secret,
   * passphrase)), fixed by the quorum at import or rotation (never from the caller).
   */
  signedPassphrase?: string;
  /** The API key's version at the exchange, as the caller stated it (KuCoin "2" / "3"). */
  apiKeyVersion?: string;
  /** The signing key's algorithm, for dialects that take more than one (Binance: HMAC or Ed25519). */
  keyAlgorithm?: SigningAlgorithm;
}

/** What the engine attaches to the request: everything but the secret. */
export interface SignedExchangeRequest {
  /** Headers to set, in order. */
  headers: Array<[string, string]>;
  /** Query parameters custos appended (e.g. timestamp, signature), in the order sent. */
  params: Array<[string, string]>;
  /** The final query string to send (without "?"). */
  query: string;
  /** The final body to send. */
  body: string;
  /** The signature as the exchange expects it (hex or base64). */
  signature: string;
  /** The timestamp, nonce or expiry used, exactly as sent. */
  timestamp: string;
}

/**
 * The bytes to sign and how to turn the HSM's MACs into a signed request. Every REST dialect
 * signs one message (`toSign` has one entry), built only from the request and custos's own
 * values; `finish` receives one MAC per entry, in order.
 */
export interface PreparedRequest {
  toSign: Buffer[];
  finish(macs: Buffer[]): SignedExchangeRequest;
}

/** What a private WebSocket's login/auth step needs, for `SignWebSocketAuth`. */
export interface WebSocketAuthInput {
  /** Server-sent challenge (Kraken Futures), if the exchange uses one. */
  challenge?: string;
  /** Channel and event (Gate signs each private subscription). */
  channel?: string;
  event?: string;
  /**
   * A WebSocket API request to sign instead of a login (Binance: e.g. "order.place"), with its
   * parameters as the engine will send them (custos adds apiKey, timestamp and signature).
   */
  request?: WebSocketApiRequest;
}

export interface WebSocketApiRequest {
  method: string;
  params: Array<[string, string]>;
}

/** The bytes to sign and how to build the auth message fields from the MACs. */
export interface PreparedWebSocketAuth {
  toSign: Buffer[];
  finish(macs: Buffer[]): SignedWebSocketAuth;
}

export interface SignedWebSocketAuth {
  /** The fields of the exchange's login/auth message, by the names its docs use. */
  fields: Array<[string, string]>;
  /** The complete JSON message to send, when the exchange's format is fixed. */
  message: string;
  signature: string;
  /** The timestamp, nonce or expiry used, as sent. */
  timestamp: string;
}

/**
 * What the exchange's signature verification covers, from its API documentation: a part that
 * is not bound can be changed after signing without invalidating the signature. SECURITY.md
 * has the same table; test/unit/exchanges/binding.test.ts checks each entry against the
 * dialect's actual string to sign.
 */
export interface SignatureBinding {
  /** The HTTP method. */
  readonly method: boolean;
  /** The path (which endpoint). When false, `schemaMisfit` must be implemented. */
  readonly path: boolean;
  readonly query: boolean;
  readonly body: boolean;
  /** The API key id (a header or parameter). */
  readonly apiKey: boolean;
  /** The timestamp or expiry custos sets (or checked from the caller). */
  readonly timestamp: boolean;
  /** The nonce, where the exchange uses one ("n/a" where it has none). */
  readonly nonce: boolean | "n/a";
  /** Headers covered by the signature, by name (empty when none is). */
  readonly headers: readonly string[];
  /** No signed string includes the host: none of the exchanges signs it. */
  readonly host: false;
}

/** An order a request places or resizes: its symbol and size (NaN or ∞ when custos cannot measure it). */
export interface OrderFact {
  symbol: string;
  quantity: number;
}

/**
 * The sign path's strict reading of a request (strict-parse.ts `readStrict`), handed to the dialect
 * so the query and body are parsed once per request.
 */
export interface StrictReading {
  /** The query's pairs, decoded; no name twice. */
  readonly query: ReadonlyArray<[string, string]>;
  /** A form body's pairs (absent for an empty or JSON body). */
  readonly form?: ReadonlyArray<[string, string]>;
  /** A JSON body's value (absent for an empty or form body). */
  readonly json?: { readonly value: unknown };
}

/**
 * One reading of a REST request by its dialect: everything the key's policy judges, and the
 * signing step built on the same reading (nothing is parsed again).
 */
export interface RequestReading {
  readonly endpointClass: EndpointClass;
  /** Instrument symbols the request names (query or body), for symbol allowlists. */
  readonly symbols: string[];
  /** Orders the request places (symbol and quantity), for per-symbol quantity limits. */
  readonly orders: OrderFact[];
  /**
   * Where the signature does not bind the path: undefined when every parameter fits the claimed
   * endpoint's schema, else why not (see `Dialect.schemaMisfit`). Undefined where the path is bound.
   */
  readonly schemaMisfit: string | undefined;
  /** The bytes to sign for this request, after the policy allowed it. */
  prepare(ctx: SigningContext): PreparedRequest;
}

/** One exchange's signing rules (from its official API documentation). Pure: no I/O, no clock. */
export interface Dialect {
  /** Lower-case exchange id, as keys are imported with (e.g. "binance", "krakenfutures"). */
  readonly exchange: string;
  /** The HMAC this exchange signs with. */
  readonly algorithm: SigningAlgorithm;
  /** Other key algorithms the exchange accepts (Binance: Ed25519, generated in the HSM). */
  readonly otherAlgorithms?: readonly SigningAlgorithm[];
  /** How the exchange's secret is turned into HMAC key bytes at import (e.g. base64-decoded). */
  readonly secretEncoding: "utf8" | "base64";
  /**
   * Every REST signature is also a valid login (Deribit: `ts\nnonce\nMETHOD\nURI\nBODY\n` is a
   * `public/auth` signature with free-form data), and a login's session can call every private
   * method the key's exchange-side scope allows. Such keys sign only when their policy attests
   * that scope moves no funds, and logins only under an allow rule naming them.
   */
  readonly signaturesAreLogins?: boolean;
  /** The exchange reads the nonce as a time (Kraken Futures): a caller's nonce must be one custos can check. */
  readonly nonceIsTime?: boolean;
  /** The exchange accepts REST requests without a nonce (Kraken Futures): `omitNonce` may ask for that. */
  readonly optionalNonce?: boolean;
  /** What the exchange's REST signature covers. */
  readonly binding: SignatureBinding;
  /**
   * The sign path's one reading of a request: class, symbols, orders and schema fit together, and
   * `prepare` from the same parse. `strict` is the sign path's strict reading of the query and body.
   * The single-purpose readers below answer the same questions one at a time (tests, tools).
   */
  read(req: ExchangeRequest, strict?: StrictReading): RequestReading;
  classify(req: ExchangeRequest): EndpointClass;
  /**
   * Where the signature does not bind the path (`binding.path` false): undefined when every
   * parameter the request carries is one the claimed endpoint documents (its schema), else
   * why not — an endpoint without a schema included. The signature is then usable at any
   * endpoint whose parameters fit, so the policy refuses (rule `param-schema`).
   */
  schemaMisfit?(req: ExchangeRequest): string | undefined;
  /** The same for WebSocket API requests, whose signature does not bind the method (Binance). */
  websocketSchemaMisfit?(request: WebSocketApiRequest): string | undefined;
  /** Instrument symbols the request names (query or body), for symbol allowlists. */
  symbols(req: ExchangeRequest): string[];
  /** Orders the request places (symbol and quantity), for per-symbol quantity limits. */
  orders(req: ExchangeRequest): OrderFact[];
  prepare(req: ExchangeRequest, ctx: SigningContext): PreparedRequest;
  /**
   * The private WebSocket login/auth signature, for exchanges that sign one with the key's
   * HMAC secret (absent where the WebSocket needs no signature or another key type).
   */
  websocketAuth?(input: WebSocketAuthInput, ctx: SigningContext): PreparedWebSocketAuth;
  /**
   * What a WebSocket API request does (class, symbols, orders), for the key's policy; present
   * where `websocketAuth` signs such requests (Binance).
   */
  websocketRequestFacts?(request: WebSocketApiRequest): {
    endpointClass: EndpointClass;
    symbols: string[];
    orders: Array<{ symbol: string; quantity: number }>;
  };
}
