/** Why the ccxt adapter did not send a request. */
export type CcxtCustosErrorCode =
  | "SIGNING_REFUSED" // custos refused (policy denial, no grant, frozen key …): retrying will not help
  | "CUSTOS_UNAVAILABLE" // custos could not sign now (unreachable, HSM unavailable, rate limited): retry
  | "SIGNED_REQUEST_MISMATCH" // custos signed other bytes than ccxt would send: nothing is sent
  | "NOT_SUPPORTED" // an exchange or a ccxt code path the adapter does not cover (e.g. ccxt pro WebSocket login)
  | "SECRET_ON_EXCHANGE"; // the exchange object carries a secret: custos holds it, ccxt must not

/**
 * The adapter's error, with a stable `code` to switch on. A refusal carries custos's `reason`
 * (e.g. "POLICY_DENIED") and, for policy denials, the `rule` that denied (e.g. "class:withdraw").
 */
export class CcxtCustosError extends Error {
  override readonly name: string = "CcxtCustosError";

  constructor(
    readonly code: CcxtCustosErrorCode,
    message: string,
    readonly details: { reason?: string; rule?: string; grpcCode?: number } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
  }

  /** custos's reason code for a refusal (e.g. "POLICY_DENIED", "NO_GRANT", "UNAVAILABLE"). */
  get reason(): string | undefined {
    return this.details.reason;
  }

  /** The policy rule that denied the request, when custos named one. */
  get rule(): string | undefined {
    return this.details.rule;
  }
}
