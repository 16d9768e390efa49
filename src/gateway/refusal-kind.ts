import { status as grpcStatus } from "@grpc/grpc-js";
import type { SendRefusal } from "./custos-sender.js";

/**
 * How a refusal from custos reaches the bot:
 *   - denied: custos will not send this (policy, grant, frozen key, unknown key, egressOnly rules …):
 *     the exchange's permission error, so ccxt raises PermissionDenied and a bot does not retry;
 *   - invalid: custos could not read the request: the exchange's bad-request error (ccxt BadRequest);
 *   - unavailable: custos, its HSM or the exchange cannot be reached now: HTTP 503 (ccxt
 *     ExchangeNotAvailable, a NetworkError bots retry);
 *   - rate-limited: custos's rate limit: HTTP 429 (ccxt RateLimitExceeded / DDoSProtection).
 */
export type RefusalKind = "denied" | "invalid" | "unavailable" | "rate-limited";

const UNAVAILABLE_REASONS = new Set(["HSM_UNAVAILABLE", "STORE_ERROR", "UNAVAILABLE", "DEADLINE_EXCEEDED"]);

/** The kind of a refusal, from custos's gRPC status and reason. Anything unknown fails closed as unavailable (nothing was sent by the gateway). */
export function refusalKind(r: SendRefusal): RefusalKind {
  if (r.reason === "RATE_LIMITED" || r.code === grpcStatus.RESOURCE_EXHAUSTED) return "rate-limited";
  if (UNAVAILABLE_REASONS.has(r.reason)) return "unavailable";
  switch (r.code) {
    case grpcStatus.PERMISSION_DENIED:
    case grpcStatus.FAILED_PRECONDITION:
    case grpcStatus.NOT_FOUND:
    case grpcStatus.UNAUTHENTICATED:
      return "denied";
    case grpcStatus.INVALID_ARGUMENT:
      return "invalid";
    default:
      return "unavailable";
  }
}
