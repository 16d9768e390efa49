import { CustosError } from "../errors.js";
import type { EndpointClass, ExchangeRequest } from "../exchanges/dialect.js";
import { PROTECTED_CLASSES } from "../exchanges/param-schema.js";

/**
 * A key's request policy, changed only by a `set_policy` proposal. Everything is optional:
 * the empty policy is the default — sign trades, reads and account queries; refuse
 * withdrawals, transfers, key management, unknown endpoints and raw payloads.
 */
export interface KeyPolicy {
  /** Endpoint classes that may be signed (default trade, read, account). */
  allowClasses?: EndpointClass[];
  /** Method + path rules, first match wins, checked before the classes. */
  rules?: PathRule[];
  /** When set, every symbol a request names must be in it. */
  symbols?: string[];
  /** Largest order quantity per symbol ("*" for any other symbol). */
  maxQuantity?: Record<string, number>;
  /** How far a caller-supplied timestamp, nonce or expiry may be ahead of custos's clock (default 5 s). */
  maxSkewMs?: number;
  /** Largest expiry from now (default 60 s) and receive window (default 10 s). */
  maxExpirySeconds?: number;
  maxRecvWindowMs?: number;
  /** Raw `Sign` on a key that has a dialect: bypasses every content rule. Default false. */
  allowRawSign?: boolean;
  /**
   * Requests signed without the nonce an exchange makes optional (Kraken Futures REST, as
   * ccxt sends them). Such a signature stays valid until the key rotates. Default false.
   */
  allowUntimedRequests?: boolean;
  /**
   * The officers attest, by the quorum that sets this policy, that the key's scope at the
   * exchange grants no withdrawal or transfer rights. Required before custos signs anything
   * for an exchange where every signature doubles as a session login (Deribit): custos cannot
   * see what such a session does, so only the exchange-side scope bounds it. Default false.
   */
  exchangeScopeExcludesFunds?: boolean;
  /**
   * The key's signatures never leave custos: only SendExchangeRequest (custos signs and sends the
   * request itself) uses it; Sign, SignExchangeRequest and WebSocket logins are refused (rule
   * `egress-only`). With the exchange's IP whitelist set to custos's egress addresses, a signature
   * cannot be used from anywhere else. Default false.
   */
  egressOnly?: boolean;
  /**
   * For an egressOnly key: private WebSocket logins are signed after all (only logins: never Sign,
   * SignExchangeRequest or WebSocket API requests). A login hands the logged-in socket to the caller,
   * who can then do on it whatever the key's exchange-side scope allows, unseen by custos. Default false.
   */
  egressOnlyAllowsWebSocketLogin?: boolean;
  /**
   * Freeze the key (actor `custos`) when custos reads from the exchange that the key may withdraw or
   * transfer, or is bound to no IP (src/exchange-permissions). Default false: flagged only.
   */
  freezeOnUnsafeExchangePermissions?: boolean;
}

export interface PathRule {
  /** Named in denials and audit events as "rule:<id>". */
  id: string;
  effect: "allow" | "deny";
  /** Any method when absent; "WS" for Binance WebSocket API requests. */
  method?: string;
  /**
   * Glob on the path: `*` matches within a segment, `**` across segments. For method "WS" the
   * WebSocket API method name (e.g. "order.place", "order.*").
   */
  path: string;
}

export const DEFAULT_ALLOWED_CLASSES: readonly EndpointClass[] = ["trade", "read", "account"];
export const DEFAULT_MAX_SKEW_MS = 5_000;
export const DEFAULT_MAX_EXPIRY_SECONDS = 60;
export const DEFAULT_MAX_RECV_WINDOW_MS = 10_000;

/** A refusal by policy: the rule that decided travels to the caller and the audit log. */
export class PolicyDenied extends CustosError {
  constructor(
    readonly rule: string,
    message: string,
  ) {
    super("POLICY_DENIED", message);
  }
}

/** What the dialect read from the request, for the content rules. */
export interface RequestFacts {
  endpointClass: EndpointClass;
  symbols: string[];
  orders: Array<{ symbol: string; quantity: number }>;
}

/** Content rules: path rules, classes, symbols, quantities. Throws PolicyDenied naming the rule. */
/**
 * `req` is a REST request, or a WebSocket API request as `{ method: "WS", path: "<ws method>" }`
 * (e.g. "order.place"), so path rules can name either.
 */
export function checkRequest(policy: KeyPolicy, req: Pick<ExchangeRequest, "path"> & { method: string }, facts: RequestFacts): void {
  for (const rule of policy.rules ?? []) {
    if (rule.method && rule.method.toUpperCase() !== req.method) continue;
    if (!globMatch(rule.path, req.path)) continue;
    if (rule.effect === "deny") throw new PolicyDenied(`rule:${rule.id}`, `${req.method} ${req.path} is denied by rule ${rule.id}`);
    checkContent(policy, facts); // an allow rule skips the class check only
    return;
  }
  const allowed = policy.allowClasses ?? DEFAULT_ALLOWED_CLASSES;
  if (!allowed.includes(facts.endpointClass)) {
    throw new PolicyDenied(`class:${facts.endpointClass}`, `${facts.endpointClass} requests are not allowed for this key`);
  }
  checkContent(policy, facts);
}

/**
 * A private WebSocket login (Bybit auth, OKX/Bitget login, Binance session.logon, …) authorizes
 * a session whose later requests custos never sees. It is checked as a `trade` request against
 * the key's path rules (`{ "method": "WS", "path": "auth" }`, or "session.logon") and classes,
 * and a key whose policy bounds symbols or order sizes refuses it (rule `session-login`): those
 * bounds could not hold on the session. An allow rule naming the login lifts that refusal.
 */
export function checkSessionLogin(policy: KeyPolicy, login: { path: string }, opts: { fullApiSession?: boolean } = {}): void {
  for (const rule of policy.rules ?? []) {
    if (rule.method && rule.method.toUpperCase() !== "WS") continue;
    if (!globMatch(rule.path, login.path)) continue;
    if (rule.effect === "deny") throw new PolicyDenied(`rule:${rule.id}`, `the WebSocket login is denied by rule ${rule.id}`);
    return;
  }
  // A login whose session can call every private method (Deribit public/auth) needs an allow rule naming it.
  if (opts.fullApiSession) {
    throw new PolicyDenied(
      "session-login",
      "this exchange's login hands over a session for every private method the key's scope allows; allow it with a WS path rule to accept that",
    );
  }
  const allowed = policy.allowClasses ?? DEFAULT_ALLOWED_CLASSES;
  if (!allowed.includes("trade"))
    throw new PolicyDenied("class:trade", "a WebSocket login opens a trading session, and trade requests are not allowed for this key");
  if (policy.symbols || policy.maxQuantity) {
    throw new PolicyDenied(
      "session-login",
      "the key's symbol or size limits cannot hold on a logged-in WebSocket session; allow the login with a path rule to accept that",
    );
  }
}

function checkContent(policy: KeyPolicy, facts: RequestFacts): void {
  if (policy.symbols) {
    const outside = facts.symbols.find((s) => !policy.symbols!.includes(s));
    if (outside !== undefined) throw new PolicyDenied("symbols", `symbol ${outside} is not in the key's allowlist`);
    // An order whose instrument the dialect cannot name (e.g. OKX instIdCode) is outside every allowlist.
    if (facts.orders.some((o) => o.symbol === ""))
      throw new PolicyDenied("symbols", "the order names no instrument custos can read, so it cannot be in the key's allowlist");
  }
  if (policy.maxQuantity) {
    for (const o of facts.orders) {
      const max = policy.maxQuantity[o.symbol] ?? policy.maxQuantity["*"];
      if (max !== undefined && !(o.quantity <= max))
        throw new PolicyDenied(`max-quantity:${o.symbol}`, `order quantity ${o.quantity} ${o.symbol} exceeds ${max}`);
    }
  }
}

/** Caller-chosen timing: nothing signed now may become valid only later (a pre-signed replay). */
export function checkTiming(policy: KeyPolicy, now: number, caller: { timestampMs?: number; nonceMs?: number; expires?: number; recvWindowMs?: number }): void {
  const skew = policy.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
  if (caller.timestampMs !== undefined && caller.timestampMs > now + skew) {
    throw new PolicyDenied("timestamp-skew", `timestamp is ${caller.timestampMs - now} ms ahead of custos's clock (allowed ${skew} ms)`);
  }
  if (caller.nonceMs !== undefined && caller.nonceMs > now + skew) {
    throw new PolicyDenied("nonce-skew", `nonce is ${caller.nonceMs - now} ms ahead of custos's clock (allowed ${skew} ms)`);
  }
  if (caller.expires !== undefined) {
    const maxExpiry = policy.maxExpirySeconds ?? DEFAULT_MAX_EXPIRY_SECONDS;
    if (caller.expires * 1000 > now + maxExpiry * 1000 + skew) throw new PolicyDenied("expiry", `expiry is more than ${maxExpiry} s ahead`);
  }
  if (caller.recvWindowMs !== undefined && caller.recvWindowMs > (policy.maxRecvWindowMs ?? DEFAULT_MAX_RECV_WINDOW_MS)) {
    throw new PolicyDenied("recv-window", `receive window ${caller.recvWindowMs} ms exceeds ${policy.maxRecvWindowMs ?? DEFAULT_MAX_RECV_WINDOW_MS} ms`);
  }
}

/**
 * Where the signature does not bind the path (Binance, Bybit), a request signed for one endpoint
 * is valid at every endpoint whose parameters it satisfies. It is signed only when all its
 * parameters fit the claimed endpoint's schema (`misfit` undefined) — unless the policy allows
 * every class a carried signature could reach (then there is nothing left to protect).
 */
export function checkParameterSchema(policy: KeyPolicy, misfit: string | undefined): void {
  if (misfit === undefined) return;
  const allowed = policy.allowClasses ?? DEFAULT_ALLOWED_CLASSES;
  if (PROTECTED_CLASSES.every((c) => allowed.includes(c))) return;
  throw new PolicyDenied(
    "param-schema",
    `${misfit}: the exchange's signature does not cover the path, so custos signs only parameters the claimed endpoint takes`,
  );
}

/** Deribit-style exchanges: every signature is also a login, so the exchange-side scope must be attested. */
export function checkExchangeScope(policy: KeyPolicy, exchange: string): void {
  if (!policy.exchangeScopeExcludesFunds) {
    throw new PolicyDenied(
      "exchange-scope",
      `every ${exchange} signature is also a valid login: the key's policy must attest (exchangeScopeExcludesFunds) that its ${exchange} scope grants no withdrawal or transfer rights`,
    );
  }
}

/** A signature that would be returned to the caller: refused for keys whose signatures never leave custos. */
export function checkSignatureMayLeave(policy: KeyPolicy, what: string): void {
  if (policy.egressOnly) {
    throw new PolicyDenied("egress-only", `the key's signatures never leave custos (egressOnly): ${what} is refused, use SendExchangeRequest`);
  }
}

/**
 * A WebSocket login or API request's signature would be returned to the caller: refused for egressOnly
 * keys, except a login (`isLogin`) when the policy sets egressOnlyAllowsWebSocketLogin.
 */
export function checkWebSocketSignatureMayLeave(policy: KeyPolicy, isLogin: boolean): void {
  if (isLogin && policy.egressOnlyAllowsWebSocketLogin) return;
  checkSignatureMayLeave(policy, isLogin ? "a WebSocket login" : "a WebSocket API request");
}

/** A request signed with no nonce at all (where the exchange allows that) needs the policy's consent. */
export function checkUntimed(policy: KeyPolicy): void {
  if (!policy.allowUntimedRequests) {
    throw new PolicyDenied("untimed-request", "a request without a nonce stays valid until the key rotates: the key's policy must set allowUntimedRequests");
  }
}

/** A stored policy (JSON) → KeyPolicy; shape errors are INVALID_ARGUMENT (checked at proposal time too). */
export function parsePolicy(json: string | undefined): KeyPolicy {
  if (!json) return {};
  const p = JSON.parse(json) as KeyPolicy;
  validatePolicy(p);
  return p;
}

const CLASSES: readonly EndpointClass[] = ["trade", "read", "account", "transfer", "withdraw", "key-management", "unknown"];

export function validatePolicy(p: unknown): asserts p is KeyPolicy {
  const bad = (m: string): never => {
    throw new CustosError("INVALID_ARGUMENT", `policy: ${m}`);
  };
  if (typeof p !== "object" || p === null || Array.isArray(p)) bad("must be a JSON object");
  const o = p as Record<string, unknown>;
  const known = new Set([
    "allowClasses",
    "rules",
    "symbols",
    "maxQuantity",
    "maxSkewMs",
    "maxExpirySeconds",
    "maxRecvWindowMs",
    "allowRawSign",
    "allowUntimedRequests",
    "exchangeScopeExcludesFunds",
    "egressOnly",
    "egressOnlyAllowsWebSocketLogin",
    "freezeOnUnsafeExchangePermissions",
  ]);
  for (const k of Object.keys(o)) if (!known.has(k)) bad(`unknown setting ${k}`);
  if (o.allowClasses !== undefined && !(Array.isArray(o.allowClasses) && o.allowClasses.every((c) => CLASSES.includes(c as EndpointClass))))
    bad(`allowClasses must list classes from ${CLASSES.join(", ")}`);
  if (o.rules !== undefined) {
    if (!Array.isArray(o.rules)) bad("rules must be a list");
    for (const r of o.rules as PathRule[]) {
      if (typeof r?.id !== "string" || !r.id || (r.effect !== "allow" && r.effect !== "deny") || typeof r.path !== "string")
        bad("each rule needs an id, effect allow|deny and a path");
      // A REST path, or with method "WS" a WebSocket API method (e.g. "order.*").
      const ws = typeof r.method === "string" && r.method.toUpperCase() === "WS";
      if (ws ? !/^[A-Za-z0-9_.*/]+$/.test(r.path) : !r.path.startsWith("/"))
        bad(ws ? "a WS rule's path is a WebSocket API method pattern, e.g. order.*" : "a rule's path starts with /");
    }
  }
  if (o.symbols !== undefined && !(Array.isArray(o.symbols) && o.symbols.every((s) => typeof s === "string"))) bad("symbols must be a list of strings");
  if (
    o.maxQuantity !== undefined &&
    !(typeof o.maxQuantity === "object" && o.maxQuantity !== null && Object.values(o.maxQuantity).every((v) => typeof v === "number" && v > 0))
  )
    bad("maxQuantity maps symbols to positive numbers");
  for (const k of ["maxSkewMs", "maxExpirySeconds", "maxRecvWindowMs"])
    if (o[k] !== undefined && !(typeof o[k] === "number" && (o[k] as number) >= 0)) bad(`${k} must be a non-negative number`);
  for (const k of [
    "allowRawSign",
    "allowUntimedRequests",
    "exchangeScopeExcludesFunds",
    "egressOnly",
    "egressOnlyAllowsWebSocketLogin",
    "freezeOnUnsafeExchangePermissions",
  ])
    if (o[k] !== undefined && typeof o[k] !== "boolean") bad(`${k} is true or false`);
}

/** `*` within one path segment, `**` across segments; everything else literal. */
export function globMatch(pattern: string, path: string): boolean {
  const re = pattern
    .split("**")
    .map((part) => part.split("*").map(escapeRegExp).join("[^/]*"))
    .join(".*");
  return new RegExp(`^${re}$`).test(path);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
}
