import type { AuditEvent, AuditLog } from "../audit/audit-log.js";
import { sha256Hex } from "../audit/sha256.js";
import { CustosError, type CustosErrorCode } from "../errors.js";
import { PolicyDenied } from "../policy/policy.js";
import { nextRequestId } from "../request-id.js";
import type { AccessDirectory } from "./directory.js";
import type { CallerContext } from "./sign-service.js";

/** Observes each decision (metrics, anomaly detection); kept abstract so the domain imports no metrics library. */
export interface SignObserver {
  /**
   * `client` and `key` are "" unless they name a registered client and an existing key (so
   * callers cannot mint metric series); `endpointClass` is the exchange request's class,
   * "raw" for raw payloads, "ws-auth" for WebSocket logins, "" if refused before classification.
   */
  observe(outcome: "allowed" | "denied" | "failed", reason: CustosErrorCode | "OK", seconds: number, client: string, key: string, endpointClass: string): void;
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

/** One sign decision as the decision tail records it. */
export interface Decision {
  kind: "sign" | "sign.request" | "sign.ws_auth" | "sign.send" | "sign.send.result";
  /** The key id as requested (audited as given; metrics name it only if the key exists). */
  key: string;
  /** The version decided on; the requested one (0 = active) if refused before it was resolved. */
  version: number;
  /** The metric's endpoint class: "raw", "ws-auth", or an exchange request's class ("" if refused before classification). */
  endpointClass: string;
  details?: Record<string, string | number | boolean> | undefined;
  /** What is audited and logged as its SHA-256. */
  payload?: Uint8Array | undefined;
  /** Audited row by row even under a flood of refusals (a request signed to be sent, whose send failed). */
  unsampled?: boolean;
}

/**
 * Where every sign decision ends, allowed or refused: the audit row (refusals sampled), the
 * observer (metrics, anomaly detection) and the decision log, with one request id per refusal.
 */
export class SignDecisions {
  constructor(
    private readonly audit: AuditLog,
    private readonly directory: AccessDirectory,
    private readonly observer: SignObserver,
    private readonly log: SignDecisionLog | undefined,
  ) {}

  /**
   * The one decision tail, allowed side: audits, observes (metrics, anomaly detection) and logs an
   * allowed sign. It runs on every signature: one object, no spreads. The caller awaits the result
   * before answering: the record is written first (AuditLog.recordSigned), or it rejects AUDIT_BACKLOG
   * (and the caller's refusal is what is observed). Observed once written, so the sign latency
   * metric measures the answer, the record's write included.
   */
  allowed(caller: CallerContext, started: number, d: Decision): Promise<void> | undefined {
    const written = this.audit.recordSigned(allowedEvent(caller, d), d.payload);
    if (written === undefined) {
      this.observeAllowed(caller, started, d);
      return undefined;
    }
    return written.then(() => this.observeAllowed(caller, started, d));
  }

  /**
   * SendExchangeRequest's decision row (`sign.send`), queued before the request leaves custos. The
   * promise settles once the row is written, as {@link allowed}'s; the exchange's answer is
   * observed and logged with the linked result row ({@link answered}).
   */
  sending(caller: CallerContext, d: Decision): Promise<void> | undefined {
    return this.audit.recordSigned(allowedEvent(caller, d), d.payload);
  }

  /**
   * The exchange answered a request custos sent: the linked `sign.send.result` row (queued), the
   * metric and the log. Called once the decision row is written, just before the answer.
   */
  answered(caller: CallerContext, started: number, d: Decision): void {
    this.audit.record(allowedEvent(caller, d), d.payload);
    this.observeAllowed(caller, started, d);
  }

  private observeAllowed(caller: CallerContext, started: number, d: Decision): void {
    this.observer.observe("allowed", "OK", (performance.now() - started) / 1000, caller.identity ?? "", d.key, d.endpointClass);
    if (this.log?.allowedToo) {
      const payload = d.payload ? { payloadSha256: sha256Hex(d.payload) } : {};
      this.log.decided({ event: d.kind, outcome: "allowed", reason: "OK", client: caller.identity ?? "", key: d.key, version: d.version, ...payload });
    }
  }

  /**
   * The one decision tail, refused or failed side: the same audit, observation and log for a
   * refusal (any thrown value, `undefined` included), and the error to throw, marked audited and
   * carrying the request id the log names.
   */
  refused(caller: CallerContext, started: number, d: Decision, error: unknown): CustosError {
    const seconds = (performance.now() - started) / 1000;
    const actor = caller.identity ?? "unknown";
    const peer = caller.ip || undefined;
    const log = this.log;
    const err = error instanceof CustosError ? error : new CustosError("INTERNAL", "sign failed", { cause: error });
    err.audited = true;
    const outcome = DENIALS.has(err.code) ? "denied" : "failed";
    const rule = err instanceof PolicyDenied ? err.rule : undefined;
    const details = d.details || rule ? { ...d.details, ...(rule ? { rule } : {}) } : undefined;
    // Sampled per client, address and reason: a flood of refusals is counted, not stored row by row.
    const event: AuditEvent = {
      kind: d.kind,
      actor,
      outcome,
      reason: err.code,
      key: d.key,
      version: d.version || undefined,
      peer,
      ...(details ? { details } : {}),
    };
    if (d.unsampled) this.audit.record(event, d.payload);
    else this.audit.recordRefusal(event, d.payload);
    // Metric labels name only registered clients and existing keys, so callers cannot mint series.
    const client = caller.identity && this.directory.client(caller.identity) ? caller.identity : "";
    this.observer.observe(outcome, err.code, seconds, client, this.directory.key(d.key) ? d.key : "", d.endpointClass);
    if (log) {
      err.requestId ??= nextRequestId();
      log.decided({
        event: d.kind,
        outcome,
        reason: err.code,
        client: caller.identity ?? "",
        key: d.key,
        ...(d.version ? { version: d.version } : {}),
        ...(rule ? { rule } : {}),
        requestId: err.requestId,
        ...(d.payload ? { payloadSha256: sha256Hex(d.payload) } : {}),
      });
    }
    return err;
  }
}

/** An allowed decision's audit event: one object, no spreads (it runs on every signature). */
function allowedEvent(caller: CallerContext, d: Decision): AuditEvent {
  const event: AuditEvent = {
    kind: d.kind,
    actor: caller.identity ?? "unknown",
    outcome: "allowed",
    key: d.key,
    version: d.version,
    peer: caller.ip || undefined,
  };
  if (d.details) event.details = d.details;
  return event;
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
// EXCHANGE_UNAVAILABLE and EXCHANGE_RESPONSE_TOO_LARGE are failures: custos signed and sent, the exchange did not answer usably.
