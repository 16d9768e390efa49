/**
 * custos unreachable (or its HSM, or its rate limit) is a passing condition, not a refusal: a bot
 * retries ccxt's `NetworkError` family and gives up on the rest. So the adapter raises those as
 * ccxt's `ExchangeNotAvailable` / `RateLimitExceeded` (both `NetworkError`s), from the ccxt the
 * bot brought, and keeps policy refusals non-retryable.
 */
import { status as grpcStatus } from "@grpc/grpc-js";
import type { CcxtCustosError } from "./errors.js";

type ErrorClass = new (message: string) => Error;

/** gRPC statuses and custos reasons that mean "try again later". */
const TRANSIENT_STATUS = new Set<number>([grpcStatus.UNAVAILABLE, grpcStatus.DEADLINE_EXCEEDED]);
const TRANSIENT_REASONS = new Set(["UNAVAILABLE", "DEADLINE_EXCEEDED", "HSM_UNAVAILABLE"]);

/** Whether custos's answer means it could not sign now (rather than that it would not). */
export function transientKind(e: CcxtCustosError): "unavailable" | "rate-limited" | undefined {
  if (e.reason === "RATE_LIMITED") return "rate-limited";
  if ((e.details.grpcCode !== undefined && TRANSIENT_STATUS.has(e.details.grpcCode)) || (e.reason !== undefined && TRANSIENT_REASONS.has(e.reason)))
    return "unavailable";
  return undefined;
}

let ccxtErrors: Promise<{ ExchangeNotAvailable?: ErrorClass; RateLimitExceeded?: ErrorClass } | undefined> | undefined;

/** ccxt's retryable error class for `kind`, from the bot's ccxt; undefined when ccxt cannot be loaded. */
export async function retryableErrorClass(kind: "unavailable" | "rate-limited"): Promise<ErrorClass | undefined> {
  // Loaded on first need: the adapter is duck-typed and custos does not depend on ccxt.
  ccxtErrors ??= import("ccxt").then(
    (m: { default?: Record<string, unknown> } & Record<string, unknown>) =>
      (m.default ?? m) as { ExchangeNotAvailable?: ErrorClass; RateLimitExceeded?: ErrorClass },
    () => undefined,
  );
  const errors = await ccxtErrors;
  return kind === "rate-limited" ? errors?.RateLimitExceeded : errors?.ExchangeNotAvailable;
}
