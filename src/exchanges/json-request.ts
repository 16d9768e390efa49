import { CustosError } from "../errors.js";
import type { EndpointClass, ExchangeRequest, PreparedRequest, RequestReading, SigningContext, StrictReading } from "./dialect.js";
import { isObject } from "./facts.js";
import { parseJsonStrict } from "./strict-parse.js";

/*
 * Request parsing shared by the dialects whose private REST requests carry JSON bodies and sign
 * the percent-decoded query (Bitget, Gate, KuCoin Futures).
 */

/**
 * Printable ASCII that an HTTP client sends as is, less "+": a raw "+" may be read as a space by
 * the server, so a literal plus must come as %2B. Anything else must arrive percent-encoded.
 */
export const QUERY_SAFE = /^[\x21\x24-\x26\x28-\x2a\x2c-\x3b\x3d\x3f-\x7e]*$/;

/** Path, query and header values a JSON-body dialect can sign unambiguously; else INVALID_ARGUMENT. */
export function checkRequest(req: ExchangeRequest, ctx: SigningContext): void {
  if (!req.path.startsWith("/") || !/^[\x21-\x7e]+$/.test(req.path) || /[?#]/.test(req.path))
    throw new CustosError("INVALID_ARGUMENT", "path must start with / and carry no query");
  if (!QUERY_SAFE.test(req.query)) throw new CustosError("INVALID_ARGUMENT", "query must be percent-encoded printable ASCII (a literal + as %2B)");
  // header values: no control characters, no header injection
  if (!/^[\x21-\x7e]+$/.test(ctx.apiKeyId)) throw new CustosError("INVALID_ARGUMENT", "the API key id must be printable ASCII");
  if (!Number.isSafeInteger(ctx.timestamp) || ctx.timestamp < 0) throw new CustosError("INVALID_ARGUMENT", "timestamp must be whole milliseconds");
}

/** The query string as signed: percent-escapes decoded, order and separators untouched. */
export function unencoded(query: string): string {
  try {
    return decodeURIComponent(query);
  } catch (e) {
    throw new CustosError("INVALID_ARGUMENT", "query string has a malformed percent-escape", { cause: e });
  }
}

/** Every value of parameter `name` in the query, percent-escapes decoded. */
export function queryValues(query: string, name: string): string[] {
  const out: string[] = [];
  if (query === "") return out;
  for (const pair of query.split("&")) {
    const eq = pair.indexOf("=");
    const key = unencoded(eq < 0 ? pair : pair.slice(0, eq));
    if (key === name) out.push(unencoded(eq < 0 ? "" : pair.slice(eq + 1)));
  }
  return out;
}

/** The JSON body, undefined when empty; INVALID_ARGUMENT when it is not JSON or repeats a key. */
export function parseBody(body: string): unknown {
  if (body.trim() === "") return undefined;
  return parseJsonStrict(body);
}

/** Every `field` value anywhere in the body: over-reporting only makes the allowlist stricter. */
export function collectSymbols(value: unknown, field: string, out: string[], depth = 0): void {
  if (depth > 32) throw new CustosError("INVALID_ARGUMENT", "request body is nested too deeply");
  if (Array.isArray(value)) {
    for (const v of value) collectSymbols(v, field, out, depth + 1);
  } else if (isObject(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (k === field) addSymbol(v, out);
      collectSymbols(v, field, out, depth + 1);
    }
  }
}

function addSymbol(v: unknown, out: string[]): void {
  if (typeof v === "string") out.push(v);
  else if (typeof v === "number" || typeof v === "boolean") out.push(String(v));
  else if (Array.isArray(v)) for (const x of v) addSymbol(x, out);
}

/**
 * A decimal quantity (JSON number or numeric string), absolute. Anything else is NaN, which
 * fails every `quantity <= max` check: an order custos cannot measure is never under a limit.
 */
export function quantity(v: unknown): number {
  if (typeof v === "number") return Number.isFinite(v) ? Math.abs(v) : NaN;
  if (typeof v === "string" && /^[+-]?(?:\d+\.?\d*|\.\d+)$/.test(v)) return Math.abs(Number(v));
  return NaN;
}

/** An order a request places or resizes: its symbol and size (NaN or ∞ when unmeasurable). */
export type OrderFact = { symbol: string; quantity: number };

/** One row of a dialect's endpoint table, from the exchange's API reference. */
export interface Route {
  readonly methods: readonly ExchangeRequest["method"][] | "any";
  readonly path: RegExp;
  readonly cls: EndpointClass;
  /** Orders the endpoint places or resizes, read from the parsed JSON body. */
  readonly orders?: (body: unknown) => OrderFact[];
}

/** The first route that matches the request's method and path (first match wins). */
export function routeOf(routes: readonly Route[], req: ExchangeRequest): Route | undefined {
  return routes.find((r) => (r.methods === "any" || r.methods.includes(req.method)) && r.path.test(req.path));
}

/** A JSON-body dialect's readers, taking the body parsed once. */
interface JsonReaders {
  classify(req: ExchangeRequest): EndpointClass;
  symbols(req: ExchangeRequest, body: unknown): string[];
  orders(req: ExchangeRequest, body: unknown): OrderFact[];
  prepare(req: ExchangeRequest, ctx: SigningContext): PreparedRequest;
}

/**
 * One reading of a JSON-body request: the body parsed once (the sign path's strict parse reused
 * when given), class, symbols and orders from it. These dialects bind the path: no schema to fit.
 */
export function readJsonRequest(d: JsonReaders, req: ExchangeRequest, strict?: StrictReading): RequestReading {
  const body = strict?.json ? strict.json.value : parseBody(req.body);
  return {
    endpointClass: d.classify(req),
    symbols: d.symbols(req, body),
    orders: d.orders(req, body),
    schemaMisfit: undefined,
    prepare: (ctx) => d.prepare(req, ctx),
  };
}
