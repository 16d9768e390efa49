import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import type { Logger } from "pino";
import { describeCustosError } from "../../error-table.js";
import { CustosError, type CustosErrorCode } from "../../errors.js";
import { Any } from "../../gen/google/protobuf/any.js";
import { ErrorInfo, Status } from "../../gen/google/rpc/status.js";

export const REASON_HEADER = "custos-reason";
/** For POLICY_DENIED: the id of the rule that denied (also in ErrorInfo.metadata.rule). */
export const RULE_HEADER = "custos-rule";
export const ERROR_DOMAIN = "custos.dev";

/**
 * Status code, reason and client-safe message for any thrown value, from the one error table
 * (src/error-table.ts): codes whose message is not exposed, and every non-CustosError, answer with
 * a generic message; the detail goes to the log with the request id, never to the client (no CKR_* names on the wire).
 */
export function describeError(e: unknown): { code: status; reason: CustosErrorCode; message: string } {
  const { grpc, reason, message } = describeCustosError(e);
  // GrpcCode holds google.rpc.Code numbers, which are grpc-js's `status` values.
  return { code: grpc as number as status, reason, message };
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
