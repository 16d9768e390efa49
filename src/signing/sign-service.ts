import type { NonceSource } from "../replication/nonce-counter.js";
import type { AuditLog } from "../audit/audit-log.js";
import { boundText } from "../audit/bounded-text.js";
import { systemClock, type Clock } from "../clock.js";
import { CustosError } from "../errors.js";
import type { Signer } from "../hsm/hsm.js";
import type { SigningAlgorithm } from "../hsm/algorithms.js";
import type { ExchangeRequest, SigningContext } from "../exchanges/dialect.js";
import type { Destination } from "../egress/destinations.js";
import { EgressError, type Egress, type ExchangeReply } from "../egress/http-egress.js";
import { dialectFor } from "../exchanges/registry.js";
import { apiKeyIdOf, type KeyVersionRecord, type KeyWithVersions } from "../keys/model.js";
import { readStrict } from "../exchanges/strict-parse.js";
import { nextRequestId } from "../request-id.js";
import {
  PolicyDenied,
  checkExchangeScope,
  checkParameterSchema,
  checkRequest,
  checkSessionLogin,
  checkSignatureMayLeave,
  checkTiming,
  checkUntimed,
  checkWebSocketSignatureMayLeave,
  type KeyPolicy,
} from "../policy/policy.js";
import { addressAllowed, type AccessDirectory } from "./directory.js";
import { SignDecisions, type Decision, type SignDecisionLog, type SignObserver } from "./sign-decisions.js";
import { RateLimiter, type RateLimit } from "./rate-limiter.js";
import type { ExchangeSendResult, ExchangeSignRequest, ExchangeSignResult, WebSocketAuthSignRequest, WebSocketAuthSignResult } from "./sign-types.js";

export type { SignDecision, SignDecisionLog, SignObserver } from "./sign-decisions.js";
export type { ExchangeSendResult, ExchangeSignRequest, ExchangeSignResult, WebSocketAuthSignRequest, WebSocketAuthSignResult } from "./sign-types.js";

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

export interface SignServiceOptions {
  maxPayloadBytes: number;
  clientRate: RateLimit;
  keyRate: RateLimit;
  /** Where sign decisions are logged (denials and failures always, allowed ones if it asks). */
  decisionLog?: SignDecisionLog;
  /** Rate limits, timestamps and grace periods read it (default: the system clock). */
  clock?: Clock;
  /**
   * No signature without its audit record: while the oldest unwritten record is older than
   * this (the store is down), every sign is refused (UNAVAILABLE, AUDIT_BACKLOG). Default 5 s.
   */
  maxUnwrittenAuditSeconds?: number;
  /**
   * Replicas: the deployment-wide client and key limits (src/replication/shared-rate-limit.ts)
   * instead of this process's own buckets, and the shared counter for the nonces custos picks.
   */
  shared?: { clientLimiter: Limiter; keyLimiter: Limiter; nonces: NonceSource };
  /** Where SendExchangeRequest sends what it signed (absent: SendExchangeRequest is refused). */
  egress?: Egress;
  /**
   * Told the API passphrase a signed request for the key's active version carried (OKX, Bitget), for
   * the exchange-side permission check, which holds it in memory only; never logged or stored here.
   */
  passphraseSeen?: (key: { id: string; exchange: string }, version: number, passphrase: string) => void;
}

/** How far an exchange request got, for its audit row when it is refused. */
interface Progress {
  version: number;
  endpointClass: string;
}

/** A rate limiter as the sign path uses it: never waits. */
export interface Limiter {
  take(name: string): boolean;
  /** Monotonic milliseconds of the name's last request, if any. */
  lastRequest(name: string): number | undefined;
}

/**
 * The sign path: identity → network → limits → key → grant → HSM → audit. Each step
 * denies on any doubt; every decision, allowed or denied, leaves an audit event.
 */
export class SignService {
  private readonly clientLimiter: Limiter;
  private readonly keyLimiter: Limiter;
  private readonly clock: Clock;

  constructor(
    private readonly directory: AccessDirectory,
    private readonly hsm: Signer,
    private readonly audit: AuditLog,
    observer: SignObserver,
    private readonly opts: SignServiceOptions,
  ) {
    const clock = (this.clock = opts.clock ?? systemClock);
    this.clientLimiter = opts.shared?.clientLimiter ?? new RateLimiter(opts.clientRate, () => clock.monotonic());
    this.keyLimiter = opts.shared?.keyLimiter ?? new RateLimiter(opts.keyRate, () => clock.monotonic());
    this.decisions = new SignDecisions(audit, directory, observer, opts.decisionLog);
  }
  /** The one tail every decision ends in: audit, metrics, log. */
  private readonly decisions: SignDecisions;

  async sign(caller: CallerContext, req: SignRequest): Promise<SignResult> {
    const started = performance.now();
    let version = req.version;
    try {
      const { key, v } = this.authorize(caller, req.keyId, req.version, req.payload.byteLength);
      version = v.version;
      const policy = this.directory.policy(key.id);
      checkSignatureMayLeave(policy, "Sign");
      // Raw bytes bypass every content rule: refused for a key custos can read requests for.
      if (dialectFor(key.exchange) && !policy.allowRawSign) {
        throw new PolicyDenied("raw-sign", `raw payloads are not signed with ${key.exchange} keys unless the key's policy allows it; use SignExchangeRequest`);
      }
      const signature = await this.hsm.sign(v.objectId, key.algorithm, req.payload);
      // The payload is audited as its SHA-256 (computed by the audit writer).
      await this.decisions.allowed(caller, started, { kind: "sign", key: req.keyId, version, endpointClass: "raw", payload: req.payload });
      return { signature, version: v.version, apiKeyId: apiKeyIdOf(key, v) };
    } catch (e) {
      throw this.decisions.refused(caller, started, { kind: "sign", key: req.keyId, version, endpointClass: "raw", payload: req.payload }, e);
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
    const progress: Progress = { version: req.version, endpointClass: "" };
    const request = req.request;
    try {
      const { signed, version } = await this.signRequest(caller, req, progress, undefined);
      const details = exchangeDetails(request, progress.endpointClass);
      const endpointClass = progress.endpointClass;
      await this.decisions.allowed(caller, started, { kind: "sign.request", key: req.keyId, version, endpointClass, details, payload: requestBytes(request) });
      return signed;
    } catch (e) {
      const details = exchangeDetails(request, progress.endpointClass);
      const decision: Decision = {
        kind: "sign.request",
        key: req.keyId,
        version: progress.version,
        endpointClass: progress.endpointClass,
        details,
        payload: requestBytes(request),
      };
      throw this.decisions.refused(caller, started, decision, e);
    }
  }

  /**
   * SendExchangeRequest: signs like {@link signExchange} (same checks, same policy) and sends the
   * request to the exchange host custos's table names for the key's exchange, environment and path;
   * the signature never leaves custos. Two linked rows (`sendId`): `sign.send`, the decision with
   * the request's digest and destination, queued before the request leaves and written while it
   * is in flight; and `sign.send.result`, the exchange's HTTP status and the round trip, or why
   * the send failed. The answer waits for the first row, as a returned signature does.
   */
  async sendExchange(caller: CallerContext, req: ExchangeSignRequest): Promise<ExchangeSendResult> {
    const started = performance.now();
    const progress: Progress = { version: req.version, endpointClass: "" };
    const request = req.request;
    let destination: Destination | undefined;
    let signed: ExchangeSignResult;
    let exchange: string;
    let egress: Egress;
    try {
      if (!this.opts.egress) throw new CustosError("PRECONDITION_FAILED", "this custos sends no exchange requests (no egress)");
      egress = this.opts.egress;
      // The destination is fixed (and the path checked) before anything is signed.
      const route = (key: KeyWithVersions) => (destination = egress.route(key.exchange, key.environment, request.path, request.query));
      ({ signed, exchange } = await this.signRequest(caller, req, progress, route));
    } catch (e) {
      const details: Record<string, string | number | boolean> = exchangeDetails(request, progress.endpointClass);
      if (destination) details.origin = destination.origin;
      const decision: Decision = {
        kind: "sign.send",
        key: req.keyId,
        version: progress.version,
        endpointClass: progress.endpointClass,
        details,
        payload: requestBytes(request),
      };
      throw this.decisions.refused(caller, started, decision, e);
    }
    const origin = destination!.origin;
    const sendId = nextRequestId();
    const decision = (kind: Decision["kind"], details: Decision["details"], payload?: Uint8Array): Decision => ({
      kind,
      key: req.keyId,
      version: progress.version,
      endpointClass: progress.endpointClass,
      details,
      payload,
    });
    const out = { method: request.method, path: request.path, query: signed.query, headers: signed.headers, body: signed.body };
    const sentAt = performance.now();
    // Handed to the egress first, recorded in the same turn, before any byte is on the wire: undici
    // writes a request on a reused keep-alive socket in the next check phase (setImmediate), just
    // ahead of the record's group-commit write scheduled here, so that write runs while the
    // exchange works on the request and the round trip hides it instead of adding to it.
    const replied = egress.send(exchange, destination!, out);
    const written = this.decisions.sending(
      caller,
      decision("sign.send", { ...exchangeDetails(request, progress.endpointClass), origin, sendId }, requestBytes(request)),
    );
    let reply: ExchangeReply;
    try {
      reply = await replied;
    } catch (e) {
      const details: Record<string, string | number | boolean> = { sendId, origin };
      if (e instanceof EgressError) {
        details.egressFailure = e.failure;
        details.mayHaveArrived = e.mayHaveArrived;
        details.roundTripUs = Math.round((performance.now() - sentAt) * 1000);
      }
      await written?.catch(() => undefined);
      // A request that was signed for sending is audited row by row, never sampled away.
      throw this.decisions.refused(caller, started, { ...decision("sign.send.result", details), unsampled: true }, e);
    }
    // The exchange has the request: its answer goes back even if the record's write hangs past
    // the backlog bound (AUDIT_BACKLOG refuses signatures, not answers an exchange acted on).
    await written?.catch(() => undefined);
    this.decisions.answered(caller, started, decision("sign.send.result", { sendId, origin, status: reply.status, roundTripUs: reply.roundTripUs }));
    return { ...reply, version: progress.version, endpointClass: progress.endpointClass };
  }

  /**
   * The exchange request path shared by SignExchangeRequest and SendExchangeRequest: identity,
   * grant, limits, dialect, policy, HSM. `route` (SendExchangeRequest) fixes the destination before
   * the HSM signs; without it the signature is returned, which an egressOnly key refuses.
   */
  private async signRequest(
    caller: CallerContext,
    req: ExchangeSignRequest,
    progress: Progress,
    route: ((key: KeyWithVersions) => void) | undefined,
  ): Promise<{ signed: ExchangeSignResult; version: number; exchange: string }> {
    const request = req.request;
    const { key, v } = this.authorize(caller, req.keyId, req.version, request.query.length + request.body.length);
    progress.version = v.version;
    const dialect = dialectFor(key.exchange);
    if (!dialect) throw new CustosError("NO_DIALECT", `custos has no request dialect for ${key.exchange}; use Sign`);
    if (dialect.algorithm !== key.algorithm && !dialect.otherAlgorithms?.includes(key.algorithm)) {
      throw new CustosError("PRECONDITION_FAILED", `${key.exchange} signs with ${dialect.algorithm}, the key is ${key.algorithm}`);
    }
    // The key's policy, fetched once: every check of this request judges the same one.
    const policy = this.directory.policy(key.id);
    if (route) route(key);
    else checkSignatureMayLeave(policy, "SignExchangeRequest");
    if (req.omitNonce) {
      if (!dialect.optionalNonce)
        throw new CustosError("INVALID_ARGUMENT", `${key.exchange} requests always carry a nonce or timestamp: omit_nonce is for Kraken Futures`);
      if (req.nonce) throw new CustosError("INVALID_ARGUMENT", "omit_nonce and a nonce together");
      checkUntimed(policy);
    }
    // A time-like nonce custos picks must rise across every replica: drawn from the shared counter.
    const shared = this.opts.shared;
    const owned = shared && dialect.nonceIsTime && !req.nonce && !req.omitNonce ? await shared.nonces.next(key.id, this.clock.now()) : undefined;
    const ctx = this.signingContext(policy, key, v, req, dialect.nonceIsTime === true, owned);
    // One strict reading for every dialect (a name repeated in the query, form or JSON is
    // refused), handed to the dialect: class, symbols, orders and schema fit from one read.
    const reading = dialect.read(request, readStrict(request));
    progress.endpointClass = reading.endpointClass;
    checkRequest(policy, request, reading);
    // Decide on what the exchange verifies: where the signature does not bind the path, on the parameters.
    if (!dialect.binding.path) checkParameterSchema(policy, dialect.schemaMisfit ? reading.schemaMisfit : "custos has no parameter schemas");
    if (dialect.signaturesAreLogins) checkExchangeScope(policy, key.exchange);
    const prepared = reading.prepare(ctx);
    const toSign = prepared.toSign;
    // Every REST dialect signs one message: no array copies on that path.
    const macs = toSign.length === 1 ? [await this.hsm.sign(v.objectId, key.algorithm, toSign[0]!)] : await this.signEach(v.objectId, key.algorithm, toSign);
    const signed = prepared.finish(macs) as ExchangeSignResult;
    if (req.passphrase && v.state === "active") this.opts.passphraseSeen?.(key, v.version, req.passphrase);
    // The dialect's fresh result object gains the version fields in place (no copy per call).
    signed.version = v.version;
    signed.apiKeyId = ctx.apiKeyId;
    signed.endpointClass = reading.endpointClass;
    return { signed, version: v.version, exchange: key.exchange };
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
      const isLogin = !wsRequest || wsRequest.method === "session.logon";
      checkWebSocketSignatureMayLeave(policy, isLogin);
      if (dialect.signaturesAreLogins) checkExchangeScope(policy, key.exchange);
      if (isLogin) {
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
      const ctx = this.signingContext(policy, key, v, { ...req, ...(recvWindowMs !== undefined ? { recvWindowMs } : {}) }, dialect.nonceIsTime === true);
      const prepared = dialect.websocketAuth(req.input, ctx);
      const signed = prepared.finish(await this.signEach(v.objectId, key.algorithm, prepared.toSign));
      if (req.passphrase && v.state === "active") this.opts.passphraseSeen?.(key, v.version, req.passphrase);
      // A login is audited without details; a WebSocket API request with its method and class.
      const details = wsRequest ? { ...what, ...(endpointClass ? { class: endpointClass } : {}) } : undefined;
      const decision: Decision = { kind: "sign.ws_auth", key: req.keyId, version, endpointClass: "ws-auth", details, payload: prepared.toSign[0] };
      await this.decisions.allowed(caller, started, decision);
      return { ...signed, version: v.version, apiKeyId: ctx.apiKeyId };
    } catch (e) {
      const details = { ...what, ...(endpointClass ? { class: endpointClass } : {}) };
      throw this.decisions.refused(caller, started, { kind: "sign.ws_auth", key: req.keyId, version, endpointClass: "ws-auth", details }, e);
    }
  }

  /**
   * Timestamp, nonce and expiry for an exchange request or WebSocket login: custos's clock
   * unless the caller chose them, and then no later than the key policy allows.
   */
  private signingContext(
    policy: KeyPolicy,
    key: KeyWithVersions,
    v: KeyVersionRecord,
    req: { timestampMs: number; nonce: string; expires: number; recvWindowMs?: number; passphrase: string; apiKeyVersion?: string; omitNonce?: boolean },
    nonceIsTime = false,
    /** A nonce custos drew from the replicas' shared counter (not checked against the skew: custos picked it). */
    ownedNonce?: string,
  ): SigningContext {
    const apiKeyId = apiKeyIdOf(key, v);
    // Every dialect sends the exchange's API key id: without one the exchange could only refuse the request.
    if (!apiKeyId) {
      throw new CustosError(
        "NO_API_KEY_ID",
        `key ${key.id} has no exchange API key id: set it with \`custos key set-api-key-id --key ${key.id} --api-key-id ID\``,
      );
    }
    const now = this.clock.now();
    const nonceTime = req.nonce && nonceIsTime ? nonceAsTime(req.nonce) : undefined;
    checkTiming(policy, now, {
      ...(req.timestampMs ? { timestampMs: req.timestampMs } : {}),
      ...(nonceTime !== undefined ? { nonceMs: nonceTime } : {}),
      ...(req.expires ? { expires: req.expires } : {}),
      ...(req.recvWindowMs ? { recvWindowMs: req.recvWindowMs } : {}),
    });
    return {
      timestamp: req.timestampMs || now,
      expires: req.expires || Math.floor(now / 1000) + DEFAULT_EXPIRY_SECONDS,
      nonce: req.omitNonce ? "" : req.nonce || ownedNonce || this.nextNonce(now),
      apiKeyId,
      keyAlgorithm: key.algorithm,
      ...(req.recvWindowMs ? { recvWindow: req.recvWindowMs } : {}),
      ...(req.passphrase ? { passphrase: req.passphrase } : {}),
      // KuCoin: the version's own passphrase header, approved with its secret (never the caller's).
      ...(v.signedPassphrase ? { signedPassphrase: v.signedPassphrase } : {}),
      ...(req.apiKeyVersion ? { apiKeyVersion: req.apiKeyVersion } : {}),
    };
  }

  /** Nonces custos chooses: milliseconds, strictly increasing (Kraken Futures requires it). */
  private nextNonce(now: number): string {
    this.lastNonce = Math.max(now, this.lastNonce + 1);
    return String(this.lastNonce);
  }
  private lastNonce = 0;

  /** audit backlog → identity → network → size → client limit → key → grant → key limit → version. */
  private authorize(caller: CallerContext, keyId: string, requestedVersion: number, size: number): { key: KeyWithVersions; v: KeyVersionRecord } {
    // audit: records that cannot be written bound how long custos signs without them
    if (this.audit.lagSeconds > (this.opts.maxUnwrittenAuditSeconds ?? 5)) {
      throw new CustosError("AUDIT_BACKLOG", "audit records cannot be written (store unavailable); signing resumes when they are", { retryable: true });
    }
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

/** An exchange request's audit details: method, path, and its class once read. */
function exchangeDetails(r: ExchangeRequest, endpointClass: string): Record<string, string> {
  return endpointClass ? { method: r.method, path: r.path, class: endpointClass } : { method: r.method, path: r.path };
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
    throw new PolicyDenied(
      "nonce-format",
      "a nonce must be a time custos can check: milliseconds, microseconds or nanoseconds since the epoch (13, 16 or 19 digits); omit it and custos sets one",
    );
  }
  return Number(nonce.slice(0, 13));
}
