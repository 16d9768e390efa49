import type { AuditLog } from "../audit/audit-log.js";
import { sha256Hex } from "../audit/sha256.js";
import { boundText } from "../audit/bounded-text.js";
import { systemClock, type Clock } from "../clock.js";
import { CustosError, type CustosErrorCode } from "../errors.js";
import type { Signer } from "../hsm/hsm.js";
import type { SigningAlgorithm } from "../hsm/algorithms.js";
import type { ExchangeRequest, SignedExchangeRequest, SignedWebSocketAuth, SigningContext, WebSocketAuthInput } from "../exchanges/dialect.js";
import { dialectFor } from "../exchanges/registry.js";
import { apiKeyIdOf, type KeyVersionRecord, type KeyWithVersions } from "../keys/model.js";
import { checkStrictRequest } from "../exchanges/strict-parse.js";
import {
  PolicyDenied,
  checkExchangeScope,
  checkParameterSchema,
  checkRequest,
  checkSessionLogin,
  checkTiming,
  checkUntimed,
  type RequestFacts,
} from "../policy/policy.js";
import { addressAllowed, type AccessDirectory } from "./directory.js";
import { RateLimiter, type RateLimit } from "./rate-limiter.js";

/** Who is calling, as established by the transport (mTLS) — never by the request body. */
export interface CallerContext {
  /** Identity from the verified client certificate, or null if it had none usable. */
  identity: string | null;
  /** Peer IP address. */
  ip: string | null;
}

export interface SignRequest {
  keyId: string;
  /** 0 = the active version. */
  version: number;
  payload: Uint8Array;
}

export interface SignResult {
  signature: Buffer;
  version: number;
  apiKeyId: string;
}

/** Observes each decision (metrics, anomaly detection); kept abstract so the domain imports no metrics library. */
export interface SignObserver {
  /**
   * `client` and `key` are "" unless they name a registered client and an existing key (so
   * callers cannot mint metric series); `endpointClass` is the exchange request's class,
   * "raw" for raw payloads, "ws-auth" for WebSocket logins, "" if refused before classification.
   */
  observe(outcome: "allowed" | "denied" | "failed", reason: CustosErrorCode | "OK", seconds: number, client: string, key: string, endpointClass: string): void;
}

export interface SignServiceOptions {
  maxPayloadBytes: number;
  clientRate: RateLimit;
  keyRate: RateLimit;
  /** Where sign decisions are logged (denials and failures always, allowed ones if it asks). */
  decisionLog?: SignDecisionLog;
  /** Rate limits, timestamps and grace periods read it (default: the system clock). */
  clock?: Clock;
}

/** One sign decision, as logged: ids, outcome and reason, and the payload only as its SHA-256. */
export interface SignDecision {
  event: string;
  outcome: "allowed" | "denied" | "failed";
  reason: CustosErrorCode | "OK";
  client: string;
  key: string;
  version?: number;
  rule?: string;
  /** Also in the caller's google.rpc.ErrorInfo, for refusals. */
  requestId?: string;
  payloadSha256?: string;
}

/** Kept abstract so the domain imports no logging library. */
export interface SignDecisionLog {
  /** Allowed decisions are logged only when this is true (tens of thousands a second otherwise). */
  readonly allowedToo: boolean;
  decided(d: SignDecision): void;
}

let requestCounter = 0;
/** Ids of refused requests: process-unique, short, and no secret in them. */
const nextRequestId = (): string => `r${process.pid.toString(36)}-${(++requestCounter).toString(36)}`;

/**
 * The sign path: identity → network → limits → key → grant → HSM → audit. Each step
 * denies on any doubt; every decision, allowed or denied, leaves an audit event.
 */
export class SignService {
  private readonly clientLimiter: RateLimiter;
  private readonly keyLimiter: RateLimiter;
  private readonly clock: Clock;

  constructor(
    private readonly directory: AccessDirectory,
    private readonly hsm: Signer,
    private readonly audit: AuditLog,
    private readonly observer: SignObserver,
    private readonly opts: SignServiceOptions,
  ) {
    const clock = (this.clock = opts.clock ?? systemClock);
    this.clientLimiter = new RateLimiter(opts.clientRate, () => clock.monotonic());
    this.keyLimiter = new RateLimiter(opts.keyRate, () => clock.monotonic());
  }

  async sign(caller: CallerContext, req: SignRequest): Promise<SignResult> {
    const started = performance.now();
    let version = req.version;
    try {
      const { key, v } = this.authorize(caller, req.keyId, req.version, req.payload.byteLength);
      version = v.version;
      // Raw bytes bypass every content rule: refused for a key custos can read requests for.
      if (dialectFor(key.exchange) && !this.directory.policy(key.id).allowRawSign) {
        throw new PolicyDenied("raw-sign", `raw payloads are not signed with ${key.exchange} keys unless the key's policy allows it; use SignExchangeRequest`);
      }
      const signature = await this.hsm.sign(v.objectId, key.algorithm, req.payload);
      // The payload is audited as its SHA-256 (computed by the audit writer).
      this.audit.record({ kind: "sign", actor: caller.identity ?? "unknown", outcome: "allowed", key: req.keyId, version, peer: caller.ip || undefined }, req.payload);
      this.observer.observe("allowed", "OK", (performance.now() - started) / 1000, caller.identity ?? "", key.id, "raw");
      if (this.opts.decisionLog?.allowedToo) this.logAllowed("sign", caller, key.id, version, req.payload);
      return { signature, version: v.version, apiKeyId: apiKeyIdOf(key, v) };
    } catch (e) {
      throw this.refused(e, caller, { kind: "sign", key: req.keyId, version }, started, req.payload);
    }
  }

  /** When a client last called to sign (since this process started), from its rate limiter. */
  clientLastSeen(identity: string): Date | undefined {
    const at = this.clientLimiter.lastRequest(identity);
    return at === undefined ? undefined : new Date(this.clock.now() - (this.clock.monotonic() - at));
  }

  /**
   * Signs a private REST request the way the key's exchange documents it. custos owns the
   * timestamp, nonce and expiry unless the caller supplies them (then no later than its clock
   * plus the policy's skew), and the key's policy decides what may be signed.
   */
  async signExchange(caller: CallerContext, req: ExchangeSignRequest): Promise<ExchangeSignResult> {
    const started = performance.now();
    let version = req.version;
    let facts: RequestFacts | undefined;
    try {
      const { key, v } = this.authorize(caller, req.keyId, req.version, req.request.query.length + req.request.body.length);
      version = v.version;
      const dialect = dialectFor(key.exchange);
      if (!dialect) throw new CustosError("NO_DIALECT", `custos has no request dialect for ${key.exchange}; use Sign`);
      if (dialect.algorithm !== key.algorithm && !dialect.otherAlgorithms?.includes(key.algorithm)) {
        throw new CustosError("PRECONDITION_FAILED", `${key.exchange} signs with ${dialect.algorithm}, the key is ${key.algorithm}`);
      }
      if (req.omitNonce) {
        if (!dialect.optionalNonce) throw new CustosError("INVALID_ARGUMENT", `${key.exchange} requests always carry a nonce or timestamp: omit_nonce is for Kraken Futures`);
        if (req.nonce) throw new CustosError("INVALID_ARGUMENT", "omit_nonce and a nonce together");
        checkUntimed(this.directory.policy(key.id));
      }
      const policy = this.directory.policy(key.id);
      const ctx = this.signingContext(key, v, req, dialect.nonceIsTime === true);
      // One reading of the request for every dialect: a name repeated in the query, form or JSON is refused.
      checkStrictRequest(req.request);
      facts = { endpointClass: dialect.classify(req.request), symbols: dialect.symbols(req.request), orders: dialect.orders(req.request) };
      checkRequest(policy, req.request, facts);
      // Decide on what the exchange verifies: where the signature does not bind the path, on the parameters.
      if (!dialect.binding.path) checkParameterSchema(policy, dialect.schemaMisfit ? dialect.schemaMisfit(req.request) : "custos has no parameter schemas");
      if (dialect.signaturesAreLogins) checkExchangeScope(policy, key.exchange);
      const prepared = dialect.prepare(req.request, ctx);
      const toSign = prepared.toSign;
      // Every REST dialect signs one message: no array copies on that path.
      const macs = toSign.length === 1 ? [await this.hsm.sign(v.objectId, key.algorithm, toSign[0]!)] : await this.signEach(v.objectId, key.algorithm, toSign);
      const signed = prepared.finish(macs) as ExchangeSignResult;
      this.audit.record(
        { kind: "sign.request", actor: caller.identity ?? "unknown", outcome: "allowed", key: req.keyId, version, peer: caller.ip || undefined, details: { method: req.request.method, path: req.request.path, class: facts.endpointClass } },
        requestBytes(req.request),
      );
      this.observer.observe("allowed", "OK", (performance.now() - started) / 1000, caller.identity ?? "", key.id, facts.endpointClass);
      if (this.opts.decisionLog?.allowedToo) this.logAllowed("sign.request", caller, key.id, version, requestBytes(req.request));
      // The dialect's fresh result object gains the version fields in place (no copy per call).
      signed.version = v.version;
      signed.apiKeyId = ctx.apiKeyId;
      signed.endpointClass = facts.endpointClass;
      return signed;
    } catch (e) {
      const details = { method: req.request.method, path: req.request.path, ...(facts ? { class: facts.endpointClass } : {}) };
      throw this.refused(e, caller, { kind: "sign.request", key: req.keyId, version, details }, started, requestBytes(req.request));
    }
  }

  private async signEach(objectId: string, algorithm: SigningAlgorithm, data: Buffer[]): Promise<Buffer[]> {
    const macs: Buffer[] = [];
    for (const d of data) macs.push(await this.hsm.sign(objectId, algorithm, d));
    return macs;
  }

  /**
   * The key's exchange's private WebSocket login/auth message, or a WebSocket API request
   * (Binance), signed in the HSM. A request goes through the key's policy like a REST request,
   * matched by path rules as `{ "method": "WS", "path": "<ws method>" }`.
   */
  async signWebSocketAuth(caller: CallerContext, req: WebSocketAuthSignRequest): Promise<WebSocketAuthSignResult> {
    const started = performance.now();
    let version = req.version;
    const wsRequest = req.input.request;
    const what = wsRequest ? { method: "WS", path: wsRequest.method } : { method: "WS", path: "auth" };
    let endpointClass: string | undefined;
    try {
      const { key, v } = this.authorize(caller, req.keyId, req.version, 0);
      version = v.version;
      const dialect = dialectFor(key.exchange);
      if (!dialect?.websocketAuth) throw new CustosError("NO_DIALECT", `custos cannot sign a WebSocket login for ${key.exchange}`);
      let recvWindowMs: number | undefined;
      const policy = this.directory.policy(key.id);
      if (dialect.signaturesAreLogins) checkExchangeScope(policy, key.exchange);
      if (!wsRequest || wsRequest.method === "session.logon") {
        checkSessionLogin(policy, what, { fullApiSession: dialect.signaturesAreLogins === true });
      } else {
        if (!dialect.websocketRequestFacts) throw new CustosError("NO_DIALECT", `custos cannot sign ${key.exchange} WebSocket API requests`);
        const facts = dialect.websocketRequestFacts(wsRequest);
        endpointClass = facts.endpointClass;
        checkRequest(policy, what, facts);
        // The WebSocket API's signature covers the parameters, not the method name.
        checkParameterSchema(policy, dialect.websocketSchemaMisfit ? dialect.websocketSchemaMisfit(wsRequest) : "custos has no parameter schemas");
        const window = wsRequest.params.find(([k]) => k === "recvWindow")?.[1];
        if (window !== undefined) recvWindowMs = Number(window);
      }
      const ctx = this.signingContext(key, v, { ...req, ...(recvWindowMs !== undefined ? { recvWindowMs } : {}) }, dialect.nonceIsTime === true);
      const prepared = dialect.websocketAuth(req.input, ctx);
      const signed = prepared.finish(await this.signEach(v.objectId, key.algorithm, prepared.toSign));
      this.audit.record(
        { kind: "sign.ws_auth", actor: caller.identity ?? "unknown", outcome: "allowed", key: req.keyId, version, peer: caller.ip || undefined, ...(wsRequest ? { details: { ...what, ...(endpointClass ? { class: endpointClass } : {}) } } : {}) },
        prepared.toSign[0],
      );
      this.observer.observe("allowed", "OK", (performance.now() - started) / 1000, caller.identity ?? "", key.id, "ws-auth");
      if (this.opts.decisionLog?.allowedToo) this.logAllowed("sign.ws_auth", caller, key.id, version, prepared.toSign[0]);
      return { ...signed, version: v.version, apiKeyId: ctx.apiKeyId };
    } catch (e) {
      throw this.refused(e, caller, { kind: "sign.ws_auth", key: req.keyId, version, details: { ...what, ...(endpointClass ? { class: endpointClass } : {}) } }, started);
    }
  }

  /**
   * Timestamp, nonce and expiry for an exchange request or WebSocket login: custos's clock
   * unless the caller chose them, and then no later than the key policy allows.
   */
  private signingContext(
    key: KeyWithVersions,
    v: KeyVersionRecord,
    req: { timestampMs: number; nonce: string; expires: number; recvWindowMs?: number; passphrase: string; apiKeyVersion?: string; omitNonce?: boolean },
    nonceIsTime = false,
  ): SigningContext {
    const apiKeyId = apiKeyIdOf(key, v);
    // Every dialect sends the exchange's API key id: without one the exchange could only refuse the request.
    if (!apiKeyId) {
      throw new CustosError("NO_API_KEY_ID", `key ${key.id} has no exchange API key id: set it with \`custos key set-api-key-id --key ${key.id} --api-key-id ID\``);
    }
    const now = this.clock.now();
    const nonceTime = req.nonce && nonceIsTime ? nonceAsTime(req.nonce) : undefined;
    checkTiming(this.directory.policy(key.id), now, {
      ...(req.timestampMs ? { timestampMs: req.timestampMs } : {}),
      ...(nonceTime !== undefined ? { nonceMs: nonceTime } : {}),
      ...(req.expires ? { expires: req.expires } : {}),
      ...(req.recvWindowMs ? { recvWindowMs: req.recvWindowMs } : {}),
    });
    return {
      timestamp: req.timestampMs || now,
      expires: req.expires || Math.floor(now / 1000) + DEFAULT_EXPIRY_SECONDS,
      nonce: req.omitNonce ? "" : req.nonce || this.nextNonce(now),
      apiKeyId,
      keyAlgorithm: key.algorithm,
      ...(req.recvWindowMs ? { recvWindow: req.recvWindowMs } : {}),
      ...(req.passphrase ? { passphrase: req.passphrase } : {}),
      // KuCoin: the version's own passphrase header, approved with its secret (never the caller's).
      ...(v.signedPassphrase ? { signedPassphrase: v.signedPassphrase } : {}),
      ...(req.apiKeyVersion ? { apiKeyVersion: req.apiKeyVersion } : {}),
    };
  }

  /** Audits and observes a refusal or failure; returns the error to throw. */
  private refused(e: unknown, caller: CallerContext, event: { kind: string; key: string; version: number; details?: Record<string, string> }, started: number, payload?: Uint8Array): CustosError {
    const err = e instanceof CustosError ? e : new CustosError("INTERNAL", "sign failed", { cause: e });
    err.audited = true;
    const outcome = DENIALS.has(err.code) ? "denied" : "failed";
    const rule = err instanceof PolicyDenied ? err.rule : undefined;
    const details = event.details || rule ? { ...event.details, ...(rule ? { rule } : {}) } : undefined;
    // Sampled per client, address and reason: a flood of refusals is counted, not stored row by row.
    this.audit.recordRefusal(
      { kind: event.kind, actor: caller.identity ?? "unknown", outcome, reason: err.code, key: event.key, version: event.version || undefined, peer: caller.ip || undefined, ...(details ? { details } : {}) },
      payload,
    );
    const client = caller.identity && this.directory.client(caller.identity) ? caller.identity : "";
    const endpointClass = event.kind === "sign" ? "raw" : event.kind === "sign.ws_auth" ? "ws-auth" : (event.details?.class ?? "");
    this.observer.observe(outcome, err.code, (performance.now() - started) / 1000, client, this.directory.key(event.key) ? event.key : "", endpointClass);
    if (this.opts.decisionLog) {
      err.requestId ??= nextRequestId();
      this.opts.decisionLog.decided({
        event: event.kind,
        outcome,
        reason: err.code,
        client: caller.identity ?? "",
        key: event.key,
        ...(event.version ? { version: event.version } : {}),
        ...(rule ? { rule } : {}),
        requestId: err.requestId,
        ...(payload ? { payloadSha256: sha256Hex(payload) } : {}),
      });
    }
    return err;
  }

  private logAllowed(event: string, caller: CallerContext, key: string, version: number, payload: Uint8Array | undefined): void {
    this.opts.decisionLog!.decided({ event, outcome: "allowed", reason: "OK", client: caller.identity ?? "", key, version, ...(payload ? { payloadSha256: sha256Hex(payload) } : {}) });
  }

  /** Nonces custos chooses: milliseconds, strictly increasing (Kraken Futures requires it). */
  private nextNonce(now: number): string {
    this.lastNonce = Math.max(now, this.lastNonce + 1);
    return String(this.lastNonce);
  }
  private lastNonce = 0;

  /** identity → network → size → client limit → key → grant → key limit → version. */
  private authorize(caller: CallerContext, keyId: string, requestedVersion: number, size: number): { key: KeyWithVersions; v: KeyVersionRecord } {
    // identity
    if (!caller.identity) throw new CustosError("UNAUTHENTICATED", "no client identity in the certificate");
    const client = this.directory.client(caller.identity);
    if (!client) throw new CustosError("UNKNOWN_CLIENT", "client identity is not registered");
    if (client.role !== "trader") throw new CustosError("ROLE_NOT_ALLOWED", `a ${client.role} identity cannot sign`);
    if (client.frozenAt) throw new CustosError("CLIENT_FROZEN", "client is frozen");
    // network
    if (!addressAllowed(client, caller.ip)) throw new CustosError("ADDRESS_NOT_ALLOWED", "address is not in the client's allowlist");
    // request shape
    if (size > this.opts.maxPayloadBytes) {
      throw new CustosError("PAYLOAD_TOO_LARGE", `payload exceeds ${this.opts.maxPayloadBytes} bytes`);
    }
    // limits: the client's bucket first; the key's only after the grant, so a client without
    // a grant cannot spend a key's budget, and unknown key ids create no buckets.
    if (!this.clientLimiter.take(caller.identity)) throw new CustosError("RATE_LIMITED", "client rate limit exceeded", { retryable: true });
    // key
    const key = this.directory.key(keyId);
    if (!key) throw new CustosError("KEY_NOT_FOUND", `no key ${JSON.stringify(boundText(keyId))}`);
    // grant
    if (!this.directory.hasGrant(caller.identity, key.id)) throw new CustosError("NO_GRANT", "client has no grant for this key");
    if (key.frozenAt) throw new CustosError("KEY_FROZEN", "key is frozen");
    if (!this.keyLimiter.take(key.id)) throw new CustosError("RATE_LIMITED", "key rate limit exceeded", { retryable: true });
    // version
    const v = requestedVersion === 0 ? this.directory.activeVersionOf(key) : key.versions.find((x) => x.version === requestedVersion);
    if (!v) {
      throw requestedVersion === 0
        ? new CustosError("KEY_NOT_ACTIVE", "key has no active version")
        : new CustosError("VERSION_NOT_FOUND", `key has no version ${requestedVersion}`);
    }
    if (v.state !== "active" && v.state !== "retiring") throw new CustosError("VERSION_NOT_USABLE", `version ${v.version} is ${v.state}`);
    // A retiring version signs until its grace period ends, even before the destroy job runs.
    if (v.state === "retiring" && v.retireAt && Date.parse(v.retireAt) <= this.clock.now()) {
      throw new CustosError("VERSION_NOT_USABLE", `version ${v.version}'s grace period has ended`);
    }
    return { key, v };
  }
}

/** The request as audited (its SHA-256): method, path, query and body as the engine gave them. */
function requestBytes(r: ExchangeRequest): Buffer {
  return Buffer.from(`${r.method} ${r.path}?${r.query}\n${r.body}`, "utf8");
}

/** Seconds until a custos-chosen expiry (BitMEX api-expires). */
const DEFAULT_EXPIRY_SECONDS = 30;

/**
 * A caller's nonce where the exchange reads nonces as times (Kraken Futures): milliseconds,
 * microseconds or nanoseconds since the epoch, told apart by their 13, 16 or 19 digits, with no
 * leading zero. Anything else is refused: a nonce custos cannot read as a time cannot be checked
 * against its clock, and a far-future one would outlive a freeze as a pre-signed request.
 */
function nonceAsTime(nonce: string): number {
  if (!/^[1-9](\d{12}|\d{15}|\d{18})$/.test(nonce)) {
    throw new PolicyDenied("nonce-format", "a nonce must be a time custos can check: milliseconds, microseconds or nanoseconds since the epoch (13, 16 or 19 digits); omit it and custos sets one");
  }
  return Number(nonce.slice(0, 13));
}

export interface ExchangeSignRequest {
  keyId: string;
  version: number;
  request: ExchangeRequest;
  /** 0 / "" = custos chooses. */
  timestampMs: number;
  nonce: string;
  expires: number;
  recvWindowMs: number;
  /** The key's API passphrase (OKX, Bitget; KuCoin's is fixed at import); never logged or stored. */
  passphrase: string;
  /** The API key's version at the exchange (KuCoin "2" / "3"); "" = the dialect's default. */
  apiKeyVersion?: string;
  /** Sign with no nonce where the exchange makes it optional; the key's policy must allow it. */
  omitNonce?: boolean;
}

export interface WebSocketAuthSignRequest {
  keyId: string;
  version: number;
  input: WebSocketAuthInput;
  timestampMs: number;
  nonce: string;
  expires: number;
  passphrase: string;
}

export interface WebSocketAuthSignResult extends SignedWebSocketAuth {
  version: number;
  apiKeyId: string;
}

export interface ExchangeSignResult extends SignedExchangeRequest {
  version: number;
  apiKeyId: string;
  endpointClass: string;
}

/** Codes that are decisions (the request was refused), as opposed to failures. */
const DENIALS = new Set<CustosErrorCode>([
  "UNAUTHENTICATED",
  "UNKNOWN_CLIENT",
  "ADDRESS_NOT_ALLOWED",
  "NO_GRANT",
  "ROLE_NOT_ALLOWED",
  "RATE_LIMITED",
  "KEY_NOT_FOUND",
  "VERSION_NOT_FOUND",
  "VERSION_NOT_USABLE",
  "KEY_NOT_ACTIVE",
  "KEY_FROZEN",
  "CLIENT_FROZEN",
  "INVALID_ARGUMENT",
  "MALFORMED_REQUEST",
  "PAYLOAD_TOO_LARGE",
  "POLICY_DENIED",
  "NO_DIALECT",
  "NO_API_KEY_ID",
  "PRECONDITION_FAILED",
]);

