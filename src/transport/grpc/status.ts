import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import type { Logger } from "pino";
import { CustosError, type CustosErrorCode } from "../../errors.js";
import { Any } from "../../gen/google/protobuf/any.js";
import { ErrorInfo, Status } from "../../gen/google/rpc/status.js";

/**
 * The one table from error codes to gRPC statuses. Codes not named here, and every
 * non-CustosError, answer INTERNAL with a generic message; the detail goes to the log
 * with the request id, never to the client (no CKR_* names on the wire).
 */
const STATUS: Record<CustosErrorCode, { code: status; expose: boolean }> = {
  UNAUTHENTICATED: { code: status.UNAUTHENTICATED, expose: true },
  UNKNOWN_CLIENT: { code: status.UNAUTHENTICATED, expose: true },
  ADDRESS_NOT_ALLOWED: { code: status.PERMISSION_DENIED, expose: true },
  NO_GRANT: { code: status.PERMISSION_DENIED, expose: true },
  ROLE_NOT_ALLOWED: { code: status.PERMISSION_DENIED, expose: true },
  RATE_LIMITED: { code: status.RESOURCE_EXHAUSTED, expose: true },
  KEY_NOT_FOUND: { code: status.NOT_FOUND, expose: true },
  KEY_EXISTS: { code: status.ALREADY_EXISTS, expose: true },
  VERSION_NOT_FOUND: { code: status.NOT_FOUND, expose: true },
  VERSION_NOT_USABLE: { code: status.FAILED_PRECONDITION, expose: true },
  KEY_NOT_ACTIVE: { code: status.FAILED_PRECONDITION, expose: true },
  KEY_FROZEN: { code: status.FAILED_PRECONDITION, expose: true },
  CLIENT_FROZEN: { code: status.FAILED_PRECONDITION, expose: true },
  GOVERNANCE_NOT_INITIALISED: { code: status.FAILED_PRECONDITION, expose: true },
  GOVERNANCE_EXISTS: { code: status.ALREADY_EXISTS, expose: true },
  NOT_AN_OFFICER: { code: status.PERMISSION_DENIED, expose: true },
  PROPOSAL_NOT_FOUND: { code: status.NOT_FOUND, expose: true },
  PROPOSAL_CLOSED: { code: status.FAILED_PRECONDITION, expose: true },
  DIGEST_MISMATCH: { code: status.FAILED_PRECONDITION, expose: true },
  BAD_SIGNATURE: { code: status.PERMISSION_DENIED, expose: true },
  PRECONDITION_FAILED: { code: status.FAILED_PRECONDITION, expose: true },
  NONCE_INVALID: { code: status.FAILED_PRECONDITION, expose: true },
  PASSKEY_INVALID: { code: status.PERMISSION_DENIED, expose: true },
  SESSION_EXPIRED: { code: status.UNAUTHENTICATED, expose: true },
  CSRF_REJECTED: { code: status.PERMISSION_DENIED, expose: true },
  POLICY_DENIED: { code: status.PERMISSION_DENIED, expose: true },
  NO_DIALECT: { code: status.FAILED_PRECONDITION, expose: true },
  UNKNOWN_EXCHANGE: { code: status.INVALID_ARGUMENT, expose: true },
  NO_API_KEY_ID: { code: status.FAILED_PRECONDITION, expose: true },
  INVALID_ARGUMENT: { code: status.INVALID_ARGUMENT, expose: true },
  MALFORMED_REQUEST: { code: status.INVALID_ARGUMENT, expose: true },
  PAYLOAD_TOO_LARGE: { code: status.INVALID_ARGUMENT, expose: true },
  ENVELOPE_INVALID: { code: status.INVALID_ARGUMENT, expose: false },
  HSM_UNAVAILABLE: { code: status.UNAVAILABLE, expose: false },
  HSM_KEY_SIZE: { code: status.FAILED_PRECONDITION, expose: false },
  HSM_UNSUPPORTED: { code: status.FAILED_PRECONDITION, expose: true },
  HSM_ERROR: { code: status.INTERNAL, expose: false },
  AUDIT_REWOUND: { code: status.FAILED_PRECONDITION, expose: false },
  AUDIT_CHECKPOINT_INVALID: { code: status.FAILED_PRECONDITION, expose: false },
  STORE_ERROR: { code: status.UNAVAILABLE, expose: false },
  INTERNAL: { code: status.INTERNAL, expose: false },
};

const GENERIC: Partial<Record<CustosErrorCode, string>> = {
  ENVELOPE_INVALID: "import envelope does not open with this service's wrapping key",
  HSM_UNAVAILABLE: "HSM unavailable; retry later",
  HSM_KEY_SIZE: "key length is outside what the HSM accepts for this algorithm",
  STORE_ERROR: "store unavailable; retry later",
};

export const REASON_HEADER = "custos-reason";
/** For POLICY_DENIED: the id of the rule that denied (also in ErrorInfo.metadata.rule). */
export const RULE_HEADER = "custos-rule";
export const ERROR_DOMAIN = "custos.dev";

/** Status code, reason and client-safe message for any thrown value. */
export function describeError(e: unknown): { code: status; reason: CustosErrorCode; message: string } {
  const err = e instanceof CustosError ? e : undefined;
  const reason: CustosErrorCode = err?.code ?? "INTERNAL";
  const entry = STATUS[reason] ?? STATUS.INTERNAL;
  const message = err && entry.expose ? err.message : (GENERIC[reason] ?? "internal error");
  return { code: entry.code, reason, message };
}

/**
 * A ServiceError carrying the reason twice: as the `custos-reason` trailer (easy to read)
 * and as google.rpc.ErrorInfo in grpc-status-details-bin (the rich error model).
 */
export function toServiceError(e: unknown, log: Logger, fallbackRequestId: string): Partial<ServiceError> {
  const { code, reason, message } = describeError(e);
  // The sign path logs its refusals under their own id; the caller gets the same one.
  const requestId = e instanceof CustosError && e.requestId ? e.requestId : fallbackRequestId;
  if (code === status.INTERNAL || code === status.UNAVAILABLE) {
    log.error({ event: "rpc.error", requestId, reason, err: e }, "request failed");
  }
  const metadata = new Metadata();
  metadata.set(REASON_HEADER, reason);
  const rule = ruleOf(e);
  if (rule) metadata.set(RULE_HEADER, rule);
  const info = ErrorInfo.encode({ reason, domain: ERROR_DOMAIN, metadata: { requestId, ...(rule ? { rule } : {}) } }).finish();
  const details = Status.encode({
    code,
    message,
    details: [Any.fromPartial({ typeUrl: "type.googleapis.com/google.rpc.ErrorInfo", value: Buffer.from(info) })],
  }).finish();
  metadata.set("grpc-status-details-bin", Buffer.from(details));
  return { code, details: message, metadata };
}

/** The policy rule behind a denial, if it is one. */
export function ruleOf(e: unknown): string | undefined {
  const rule = (e as { rule?: unknown } | undefined)?.rule;
  return e instanceof CustosError && e.code === "POLICY_DENIED" && typeof rule === "string" ? rule : undefined;
}

/** The reason a client received (read from the trailer), for tests and the CLI. */
export function reasonOf(err: { metadata?: Metadata }): string | undefined {
  const v = err.metadata?.get(REASON_HEADER)[0];
  return typeof v === "string" ? v : v?.toString();
}
