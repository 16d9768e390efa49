import type { AuditLog } from "../audit/audit-log.js";
import { CustosError, type CustosErrorCode } from "../errors.js";
import type { Hsm } from "../hsm/hsm.js";
import { apiKeyIdOf } from "../keys/model.js";
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

/** Observes each decision (metrics); kept abstract so the domain imports no metrics library. */
export interface SignObserver {
  observe(outcome: "allowed" | "denied" | "failed", reason: CustosErrorCode | "OK", seconds: number): void;
}

export interface SignServiceOptions {
  maxPayloadBytes: number;
  clientRate: RateLimit;
  keyRate: RateLimit;
}

/**
 * The sign path: identity → network → limits → key → grant → HSM → audit. Each step
 * denies on any doubt; every decision, allowed or denied, leaves an audit event.
 */
export class SignService {
  private readonly clientLimiter: RateLimiter;
  private readonly keyLimiter: RateLimiter;

  constructor(
    private readonly directory: AccessDirectory,
    private readonly hsm: Hsm,
    private readonly audit: AuditLog,
    private readonly observer: SignObserver,
    private readonly opts: SignServiceOptions,
  ) {
    this.clientLimiter = new RateLimiter(opts.clientRate);
    this.keyLimiter = new RateLimiter(opts.keyRate);
  }

  async sign(caller: CallerContext, req: SignRequest): Promise<SignResult> {
    const started = performance.now();
    let version = req.version;
    try {
      const result = await this.decide(caller, req);
      version = result.version;
      // The payload is audited as its SHA-256 (computed by the audit writer).
      this.audit.record({ kind: "sign", actor: caller.identity ?? "unknown", outcome: "allowed", key: req.keyId, version, peer: caller.ip || undefined }, req.payload);
      this.observer.observe("allowed", "OK", (performance.now() - started) / 1000);
      return result;
    } catch (e) {
      const err = e instanceof CustosError ? e : new CustosError("INTERNAL", "sign failed", { cause: e });
      const outcome = DENIALS.has(err.code) ? "denied" : "failed";
      this.audit.record(
        { kind: "sign", actor: caller.identity ?? "unknown", outcome, reason: err.code, key: req.keyId, version: version || undefined, peer: caller.ip || undefined },
        req.payload,
      );
      this.observer.observe(outcome, err.code, (performance.now() - started) / 1000);
      throw err;
    }
  }

  private async decide(caller: CallerContext, req: SignRequest): Promise<SignResult> {
    // identity
    if (!caller.identity) throw new CustosError("UNAUTHENTICATED", "no client identity in the certificate");
    const client = this.directory.client(caller.identity);
    if (!client) throw new CustosError("UNKNOWN_CLIENT", "client identity is not registered");
    if (client.role !== "trader") throw new CustosError("ROLE_NOT_ALLOWED", `a ${client.role} identity cannot sign`);
    if (client.frozenAt) throw new CustosError("CLIENT_FROZEN", "client is frozen");
    // network
    if (!addressAllowed(client, caller.ip)) throw new CustosError("ADDRESS_NOT_ALLOWED", "address is not in the client's allowlist");
    // request shape
    if (req.payload.byteLength > this.opts.maxPayloadBytes) {
      throw new CustosError("PAYLOAD_TOO_LARGE", `payload exceeds ${this.opts.maxPayloadBytes} bytes`);
    }
    // limits: the client's bucket first; the key's only after the grant, so a client without
    // a grant cannot spend a key's budget, and unknown key ids create no buckets.
    if (!this.clientLimiter.take(caller.identity)) throw new CustosError("RATE_LIMITED", "client rate limit exceeded", { retryable: true });
    // key
    const key = this.directory.key(req.keyId);
    if (!key) throw new CustosError("KEY_NOT_FOUND", `no key ${JSON.stringify(req.keyId)}`);
    // grant
    if (!this.directory.hasGrant(caller.identity, key.id)) throw new CustosError("NO_GRANT", "client has no grant for this key");
    if (key.frozenAt) throw new CustosError("KEY_FROZEN", "key is frozen");
    if (!this.keyLimiter.take(key.id)) throw new CustosError("RATE_LIMITED", "key rate limit exceeded", { retryable: true });
    // version
    const v = req.version === 0 ? this.directory.activeVersionOf(key) : key.versions.find((x) => x.version === req.version);
    if (!v) {
      throw req.version === 0
        ? new CustosError("KEY_NOT_ACTIVE", "key has no active version")
        : new CustosError("VERSION_NOT_FOUND", `key has no version ${req.version}`);
    }
    if (v.state !== "active" && v.state !== "retiring") throw new CustosError("VERSION_NOT_USABLE", `version ${v.version} is ${v.state}`);
    // A retiring version signs until its grace period ends, even before the destroy job runs.
    if (v.state === "retiring" && v.retireAt && Date.parse(v.retireAt) <= Date.now()) {
      throw new CustosError("VERSION_NOT_USABLE", `version ${v.version}'s grace period has ended`);
    }
    // hsm
    const signature = await this.hsm.sign(v.objectId, key.algorithm, req.payload);
    return { signature, version: v.version, apiKeyId: apiKeyIdOf(key, v) };
  }
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
  "PAYLOAD_TOO_LARGE",
]);

