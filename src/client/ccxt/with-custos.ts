/**
 * The ccxt drop-in: a ccxt exchange without its secret signs its private REST requests
 * through custos.
 *
 * ccxt's `sign()` is synchronous and custos is a network call, so the adapter works in two
 * steps. (1) `sign()` runs ccxt's own code with a placeholder secret and a hooked `hmac()` that
 * returns a unique token instead of a MAC: ccxt lays out the request exactly as with the real
 * secret, the signature still a token. (2) `fetch()` (async) sends that request — method, path,
 * query, body, and the timestamp/nonce/expiry ccxt chose — to custos's `SignExchangeRequest`,
 * which applies the key's policy and signs in the HSM; the adapter reads the signature off
 * custos's answer, puts it where ccxt put the token, and sends only if the result is byte for
 * byte the request custos signed. ccxt's clock, order ids and formatting stay ccxt's, so the
 * request equals what ccxt would send with the plaintext secret.
 *
 * ccxt is not imported here: the exchange is duck-typed, users bring their own ccxt.
 */
import { status as grpcStatus } from "@grpc/grpc-js";
import { randomBytes } from "node:crypto";
import { CustosClient, type ExchangeRequestInput, type SignedRequest } from "../custos-client.js";
import { CcxtCustosError } from "./errors.js";
import { requestShapeFor, ShapeError, type CcxtRequest, type RequestShape } from "./request-shapes.js";
import { retryableErrorClass, transientKind } from "./unavailable.js";

/** The parts of a ccxt `Exchange` the adapter uses. */
export interface CcxtExchangeLike {
  id: string;
  secret?: string | undefined;
  password?: string | undefined;
  // biome-ignore lint/suspicious/noExplicitAny: ccxt's own untyped signatures, overridden as declared
  sign(path: any, api?: any, method?: string, params?: any, headers?: any, body?: any): any;
  // biome-ignore lint/suspicious/noExplicitAny: ccxt's own untyped signatures, overridden as declared
  fetch(url: any, method?: string, headers?: any, body?: any): Promise<any>;
  // biome-ignore lint/suspicious/noExplicitAny: ccxt's own untyped signatures, overridden as declared
  hmac: (request: any, secret: any, hash: any, digest?: any) => any;
}

/** What signs: a `CustosClient` or its stream session (anything with `signExchangeRequest`). */
export interface ExchangeRequestSigner {
  signExchangeRequest(input: ExchangeRequestInput): Promise<SignedRequest>;
}

export interface WithCustosOptions {
  /** The custos key holding this exchange account's secret. */
  keyId: string;
  /** A client to sign with; or `dataDir` to open one from DIR/connection.json. */
  client?: ExchangeRequestSigner;
  dataDir?: string;
  /** Pin a key version (default: the active one). */
  version?: number;
  /**
   * Throw refusals as this error class (e.g. `ccxt.PermissionDenied`) so a bot's existing ccxt
   * error handling sees them; the adapter's `CcxtCustosError` is the `cause`. Not used when custos
   * cannot sign now (unreachable, HSM unavailable, rate limited): those are always ccxt's
   * retryable `ExchangeNotAvailable` / `RateLimitExceeded`, see `unavailableErrorClass`.
   */
  errorClass?: new (
    message: string,
  ) => Error;
  /**
   * The error class for "custos cannot sign now" (default: the bot's `ccxt.ExchangeNotAvailable`,
   * or `ccxt.RateLimitExceeded` when custos's rate limit refused; a `CcxtCustosError` with
   * `CUSTOS_UNAVAILABLE` as the `cause`). Only if ccxt cannot be imported is the
   * `CcxtCustosError` itself thrown.
   */
  unavailableErrorClass?: new (
    message: string,
  ) => Error;
  /**
   * Kraken Futures: sign exactly what ccxt sends, with no Nonce. By default custos adds its own
   * increasing Nonce (and the Authent covers it), so a captured request cannot be replayed
   * later; without one it stays valid until the key rotates, which is why the key's policy must
   * also set `allowUntimedRequests`. `NOT_SUPPORTED` on exchanges whose requests always carry a
   * nonce or timestamp.
   */
  omitOptionalNonce?: boolean;
}

/** The base64 of a fixed text: valid as any exchange's secret encoding, never a real secret. */
const PLACEHOLDER_SECRET = Buffer.from("custos holds this API secret; ccxt never sees it.").toString("base64");
const PLACEHOLDER_KEYS = [Buffer.from(PLACEHOLDER_SECRET, "utf8"), Buffer.from(PLACEHOLDER_SECRET, "base64")];
/** ccxt insists on a password where the exchange has one; KuCoin's lives in the custos key. */
const PLACEHOLDER_PASSWORD = "custos holds this key's passphrase";
/** Tokens built with sign()'s placeholder MACs that fetch() has not sent yet (bounded: sign() may be called alone). */
const MAX_PENDING = 1024;

interface Attached {
  client: ExchangeRequestSigner;
  ownClient: CustosClient | undefined;
}
const attached = new WeakMap<object, Attached>();

/**
 * Makes `exchange` (a ccxt exchange constructed with `apiKey` and, for OKX and Bitget,
 * `password` — but no `secret`; KuCoin's passphrase is part of the custos key, so its
 * `password` is neither needed nor sent) sign its private REST requests through custos. Returns
 * the same object. Throws `CcxtCustosError` `SECRET_ON_EXCHANGE` if the exchange has a secret
 * and `NOT_SUPPORTED` for an exchange without a custos dialect.
 */
export function withCustos<E extends CcxtExchangeLike>(exchange: E, opts: WithCustosOptions): E {
  const shape = requestShapeFor(exchange.id);
  if (!shape) throw new CcxtCustosError("NOT_SUPPORTED", `withCustos does not cover ccxt exchange ${exchange.id}`);
  if (exchange.secret) throw new CcxtCustosError("SECRET_ON_EXCHANGE", `${exchange.id}: remove the secret from the exchange; custos holds it`);
  if (attached.has(exchange)) throw new CcxtCustosError("NOT_SUPPORTED", `${exchange.id}: withCustos was already applied`);
  if (opts.omitOptionalNonce && !shape.optionalNonce)
    throw new CcxtCustosError("NOT_SUPPORTED", `${exchange.id}: its requests always carry a nonce or timestamp (omitOptionalNonce is for krakenfutures)`);
  const ownClient = opts.client ? undefined : opts.dataDir ? CustosClient.fromDataDir(opts.dataDir) : undefined;
  const client = opts.client ?? ownClient;
  if (!client) throw new TypeError("withCustos needs a client or a dataDir");
  attached.set(exchange, { client, ownClient });

  // ccxt insists on a secret (checkRequiredCredentials); it only ever gets the placeholder.
  Object.defineProperty(exchange, "secret", {
    configurable: false,
    enumerable: true,
    get: () => PLACEHOLDER_SECRET,
    set: (v: unknown) => {
      if (v !== undefined && v !== PLACEHOLDER_SECRET)
        throw new CcxtCustosError("SECRET_ON_EXCHANGE", `${exchange.id}: custos holds the secret; do not set one`);
    },
  });

  // ccxt's KuCoin passphrase MAC is a placeholder token (hooked hmac below), bound to custos's header.
  if (shape.passphraseInKey && !exchange.password) exchange.password = PLACEHOLDER_PASSWORD;

  const tag = randomBytes(6).toString("hex");
  const tokenPattern = new RegExp(`custos${tag}mac\\d+z`, "g");
  let counter = 0;
  let frame: string[] | undefined;
  const pending = new Map<string, string[]>();

  const originalHmac = exchange.hmac;
  exchange.hmac = ((request: unknown, secret: unknown, hash: unknown, digest: unknown = "hex") => {
    if (!isPlaceholder(secret)) return originalHmac(request, secret, hash, digest); // e.g. a broker's own partner signature
    if (!frame)
      throw new CcxtCustosError(
        "NOT_SUPPORTED",
        `${exchange.id}: ccxt signed outside a REST request (e.g. a ccxt pro WebSocket login), which withCustos does not cover`,
      );
    if (digest !== "hex" && digest !== "base64")
      throw new CcxtCustosError("NOT_SUPPORTED", `${exchange.id}: ccxt wants a ${String(digest)} MAC, which withCustos cannot place`);
    const token = `custos${tag}mac${++counter}z`;
    frame.push(token);
    return token;
  }) as E["hmac"];

  const originalSign = exchange.sign;
  exchange.sign = function (this: unknown, ...args: unknown[]) {
    const outer = frame;
    const tokens: string[] = [];
    frame = tokens;
    let out: { url: string; headers?: Record<string, string>; body?: unknown };
    try {
      out = originalSign.apply(exchange, args as Parameters<E["sign"]>);
    } finally {
      frame = outer;
    }
    if (tokens.length === 0) return out;
    // A token ccxt hashed or dropped could never be replaced by custos's signature.
    const visible = [out.url, ...Object.values(out.headers ?? {}), typeof out.body === "string" ? out.body : ""].join("\n");
    for (const t of tokens)
      if (!visible.includes(t)) throw new CcxtCustosError("NOT_SUPPORTED", `${exchange.id}: ccxt used its signature in a way withCustos cannot place`);
    for (const t of tokens) pending.set(t, tokens);
    while (pending.size > MAX_PENDING) pending.delete(pending.keys().next().value!);
    return out;
  } as E["sign"];

  const originalFetch = exchange.fetch;
  exchange.fetch = (async (url: string, method = "GET", headers?: Record<string, string>, body?: unknown) => {
    const found = new Set([url, ...Object.values(headers ?? {}), typeof body === "string" ? body : ""].flatMap((s) => String(s).match(tokenPattern) ?? []));
    if (found.size === 0) return originalFetch.call(exchange, url, method, headers, body);
    const tokens = pending.get([...found][0]!);
    if (!tokens || found.size !== tokens.length || !tokens.every((t) => found.has(t))) {
      throw new CcxtCustosError("SIGNED_REQUEST_MISMATCH", `${exchange.id}: the request carries placeholders of another (or an unknown) signing`);
    }
    for (const t of tokens) pending.delete(t);
    const signed = await signThroughCustos(exchange, shape, opts, client, { url, method, headers, body: body as string | undefined }, tokens);
    return originalFetch.call(exchange, signed.url, method, signed.headers, signed.body);
  }) as E["fetch"];

  return exchange;
}

/** Closes the custos client `withCustos` opened from a data dir (a passed-in client is the caller's). */
export function closeCustos(exchange: object): void {
  attached.get(exchange)?.ownClient?.close();
}

function isPlaceholder(secret: unknown): boolean {
  if (typeof secret === "string") return secret === PLACEHOLDER_SECRET;
  if (secret instanceof Uint8Array) return PLACEHOLDER_KEYS.some((k) => k.equals(secret));
  return false;
}

interface OutgoingRequest {
  url: string;
  method: string;
  headers: Record<string, string> | undefined;
  body: string | undefined;
}

async function signThroughCustos(
  exchange: CcxtExchangeLike,
  shape: RequestShape,
  opts: WithCustosOptions,
  client: ExchangeRequestSigner,
  out: OutgoingRequest,
  tokens: readonly string[],
): Promise<OutgoingRequest> {
  const refuse = (code: "SIGNED_REQUEST_MISMATCH" | "NOT_SUPPORTED", message: string): never => {
    throw wrap(new CcxtCustosError(code, `${exchange.id} ${out.method} ${message}`), opts);
  };
  const parts = /^([a-z][a-z0-9+.-]*:\/\/[^/?#]*)([^?#]*)(?:\?([^#]*))?$/i.exec(out.url);
  if (!parts) return refuse("NOT_SUPPORTED", `${out.url}: not an absolute URL`);
  const [, origin, path, query = ""] = parts as unknown as [string, string, string, string | undefined];
  const method = out.method.toUpperCase();
  if (method !== "GET" && method !== "POST" && method !== "PUT" && method !== "DELETE") return refuse("NOT_SUPPORTED", `${path}: method not signed by custos`);
  if (out.body !== undefined && typeof out.body !== "string") return refuse("NOT_SUPPORTED", `${path}: the body is not text`);
  const headerEntries = Object.entries(out.headers ?? {});
  const req: CcxtRequest = {
    method,
    origin: origin!,
    path: path!,
    query,
    body: out.body ?? "",
    header: (name) => headerEntries.find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1],
    // Never KuCoin's: its passphrase header comes from the key, and custos refuses one per request.
    password: shape.passphraseInKey ? undefined : exchange.password || undefined,
  };
  let fields: ReturnType<typeof shape.toCustos>;
  try {
    fields = shape.toCustos(req, tokens);
    if (opts.omitOptionalNonce) fields.omitNonce = true;
  } catch (e) {
    if (e instanceof ShapeError) return refuse("NOT_SUPPORTED", `${path}: ${e.message}`);
    throw e;
  }

  let signed: SignedRequest;
  try {
    signed = await client.signExchangeRequest({ keyId: opts.keyId, ...(opts.version ? { version: opts.version } : {}), ...fields });
  } catch (e) {
    const refused = refusal(e, `${exchange.id} ${method} ${path}`);
    const transient = transientKind(refused);
    if (!transient) throw wrap(refused, opts);
    const unavailable = new CcxtCustosError("CUSTOS_UNAVAILABLE", refused.message, refused.details, { cause: e });
    const retryable = opts.unavailableErrorClass ?? (await retryableErrorClass(transient));
    throw retryable ? wrap(unavailable, { ...opts, errorClass: retryable }) : unavailable;
  }

  // custos's view of the request; every token must be read off it at the place ccxt put it.
  // ccxt's Bybit v5 sends a bare "?" when it has no parameters; the signed query is empty either way.
  const bareQuestionMark = signed.query === "" && query === "" && out.url.endsWith("?");
  const custosUrl = `${origin}${fields.path}${signed.query === "" ? (bareQuestionMark ? "?" : "") : `?${signed.query}`}`;
  const custosHeaders = Object.entries(signed.headers);
  const custosHeader = (name: string) => custosHeaders.find(([k]) => k.toLowerCase() === name.toLowerCase());
  const values = new Map<string, string>();
  const bind = (template: string, actual: string | undefined, where: string) => {
    if (actual === undefined || !bindTokens(template, actual, tokens, values))
      refuse("SIGNED_REQUEST_MISMATCH", `${path}: custos signed another ${where} than ccxt built`);
  };
  const has = (s: string) => tokens.some((t) => s.includes(t));
  if (has(out.url)) bind(out.url, custosUrl, "URL");
  if (out.body !== undefined && has(out.body)) bind(out.body, signed.body, "body");
  for (const [name, value] of headerEntries) if (has(value)) bind(value, custosHeader(name)?.[1], `${name} header`);
  if (tokens.some((t) => !values.has(t))) refuse("SIGNED_REQUEST_MISMATCH", `${path}: custos's answer did not carry every signature ccxt needs`);

  const fill = (s: string) => tokens.reduce((acc, t) => acc.split(t).join(values.get(t)!), s);
  const url = fill(out.url);
  const body = out.body === undefined ? undefined : fill(out.body);
  const headers: Record<string, string> = Object.fromEntries(headerEntries.map(([k, v]) => [k, fill(v)]));
  // Send nothing but the bytes custos signed: URL, body and every header custos set.
  if (url !== custosUrl) refuse("SIGNED_REQUEST_MISMATCH", `${path}: custos signed query ${JSON.stringify(signed.query)}`);
  if ((body ?? "") !== signed.body) refuse("SIGNED_REQUEST_MISMATCH", `${path}: custos signed another body`);
  for (const [name, value] of custosHeaders) {
    const mine = headerEntries.find(([k]) => k.toLowerCase() === name.toLowerCase());
    if (!mine) {
      const extra = shape.extraHeaders?.[name.toLowerCase()];
      if (extra === "add") headers[name] = value;
      else if (extra !== "skip") refuse("SIGNED_REQUEST_MISMATCH", `${path}: custos set a ${name} header ccxt does not send`);
    } else if (headers[mine[0]] !== value) refuse("SIGNED_REQUEST_MISMATCH", `${path}: custos set ${name} to another value than ccxt`);
  }
  return { url, method: out.method, headers, body };
}

/** Binds each token in `template` to the text at its place in `actual`; false if they do not line up. */
function bindTokens(template: string, actual: string, tokens: readonly string[], values: Map<string, string>): boolean {
  const alternation = tokens.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|");
  const pieces = template.split(new RegExp(`(${alternation})`));
  let source = "^";
  const names: string[] = [];
  pieces.forEach((piece, i) => {
    if (i % 2 === 1) {
      names.push(piece);
      source += "([\\s\\S]+?)";
    } else {
      source += piece.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    }
  });
  const m = new RegExp(`${source}$`).exec(actual);
  if (!m) return false;
  for (const [i, name] of names.entries()) {
    const v = m[i + 1]!;
    if (values.has(name) && values.get(name) !== v) return false;
    values.set(name, v);
  }
  return true;
}

/** custos's error (gRPC status with reason/rule trailers, or a stream denial) as the adapter's. */
function refusal(e: unknown, what: string): CcxtCustosError {
  const err = e as { code?: unknown; details?: unknown; reason?: unknown; rule?: unknown; metadata?: { get(k: string): unknown[] }; message?: unknown };
  const grpcCode = typeof err.code === "number" ? err.code : undefined;
  const reason =
    typeof err.reason === "string" ? err.reason : (trailer(err, "custos-reason") ?? (grpcCode !== undefined ? grpcStatus[grpcCode] : undefined) ?? "UNKNOWN");
  const rule = typeof err.rule === "string" && err.rule ? err.rule : trailer(err, "custos-rule");
  const detail = typeof err.details === "string" ? err.details : typeof err.message === "string" ? err.message : "";
  return new CcxtCustosError(
    "SIGNING_REFUSED",
    `custos refused ${what}: ${reason}${rule ? ` (${rule})` : ""}${detail ? `: ${detail}` : ""}`,
    {
      reason,
      ...(rule ? { rule } : {}),
      ...(grpcCode !== undefined ? { grpcCode } : {}),
    },
    { cause: e },
  );
}

function trailer(err: { metadata?: { get(k: string): unknown[] } }, name: string): string | undefined {
  const v = typeof err.metadata?.get === "function" ? err.metadata.get(name)[0] : undefined;
  return v === undefined || v === "" ? undefined : String(v);
}

function wrap(e: CcxtCustosError, opts: WithCustosOptions): Error {
  if (!opts.errorClass) return e;
  const mapped = new opts.errorClass(e.message);
  Object.defineProperty(mapped, "cause", { value: e, enumerable: false, configurable: true, writable: true });
  return mapped;
}
