/**
 * Typed errors with stable codes. Callers (and tests) switch on `code`, never on the
 * message. Transports map codes to wire statuses from one table (error-table.ts: gRPC and HTTP).
 */

/** Every reason custos can deny or fail a request with. */
export type CustosErrorCode =
  // identity and access
  | "UNAUTHENTICATED" // no or unusable client certificate
  | "UNKNOWN_CLIENT" // certificate valid, identity not registered
  | "ADDRESS_NOT_ALLOWED" // peer address outside the client's CIDR allowlist
  | "NO_GRANT" // client may not use this key
  | "ROLE_NOT_ALLOWED" // e.g. a trading client calling an admin method
  | "RATE_LIMITED"
  // keys
  | "KEY_NOT_FOUND"
  | "KEY_EXISTS"
  | "VERSION_NOT_FOUND"
  | "VERSION_NOT_USABLE" // destroyed, pending, or older than the key allows
  | "KEY_NOT_ACTIVE"
  | "KEY_FROZEN" // a freeze stops every sign with the key until a quorum thaws it
  | "CLIENT_FROZEN"
  // governance
  | "GOVERNANCE_NOT_INITIALISED" // no officer set yet: every proposal is refused
  | "GOVERNANCE_EXISTS"
  | "NOT_AN_OFFICER" // caller's certificate is not an active officer's
  | "PROPOSAL_NOT_FOUND"
  | "PROPOSAL_CLOSED" // executed, rejected, expired or failed: no more votes
  | "DIGEST_MISMATCH" // the vote signs another digest than the proposal's
  | "BAD_SIGNATURE" // the vote's Ed25519 signature does not verify with the officer's key
  | "PRECONDITION_FAILED" // the change does not fit the current state (e.g. a rotation in flight)
  // officer console and passkeys
  | "NONCE_INVALID" // a WebAuthn challenge or enrollment nonce that is unknown, expired, already used or bound to something else
  | "PASSKEY_INVALID" // a passkey registration whose attestation does not verify
  | "SESSION_EXPIRED" // the console session ended: log in again
  | "CSRF_REJECTED" // a state-changing console request without a matching CSRF token or from another origin
  // exchange requests
  | "POLICY_DENIED" // the key's policy refuses this request (the rule id travels with it)
  | "NO_DIALECT" // an exchange request for a key whose exchange custos has no dialect for
  | "UNKNOWN_EXCHANGE" // a new key names no exchange custos reads, no alias of one and not "raw"
  | "NO_API_KEY_ID" // an exchange request for a key version imported without the exchange's API key id
  | "EXCHANGE_UNAVAILABLE" // SendExchangeRequest: no connection, a timeout or a reset; never retried (the request may have arrived)
  | "EXCHANGE_RESPONSE_TOO_LARGE" // SendExchangeRequest: the exchange's response exceeded egress.maxResponseBytes and was cut off
  // requests
  | "INVALID_ARGUMENT"
  | "MALFORMED_REQUEST" // the message does not decode as the method's request type
  | "PAYLOAD_TOO_LARGE"
  | "ENVELOPE_INVALID" // import envelope failed to unwrap or does not match the wrapping key
  // HSM
  | "HSM_UNAVAILABLE" // session lost, token logged out, device error: retry later
  | "HSM_KEY_SIZE" // key length outside the mechanism's range
  | "HSM_UNSUPPORTED" // the HSM lacks what the operation needs (e.g. unwrapping an Ed25519 private key)
  | "HSM_ERROR" // any other PKCS#11 failure
  // audit log
  | "AUDIT_REWOUND" // the database's audit chain is shorter than, or differs from, its last signed checkpoint
  | "AUDIT_CHECKPOINT_INVALID" // a checkpoint that does not verify with the HSM's checkpoint key
  // store and everything else
  | "STORE_ERROR"
  | "INTERNAL";

export class CustosError extends Error {
  override readonly name: string = "CustosError";
  readonly code: CustosErrorCode;
  /** True when the same call may succeed later without any change (HSM reconnect, rate). */
  readonly retryable: boolean;
  /** Set where the refusal was logged, so the caller's ErrorInfo names the same request. */
  requestId?: string;
  /** Set where the refusal was audited, so the transport does not audit it a second time. */
  audited?: boolean;

  constructor(code: CustosErrorCode, message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options?.retryable ?? false;
  }
}

/** Marks a refusal as audited where it was decided (the transport then does not audit it again); returns it. */
export function markAudited<E>(e: E): E {
  if (e instanceof CustosError) e.audited = true;
  return e;
}

export function isCustosError(e: unknown): e is CustosError {
  return e instanceof CustosError;
}
