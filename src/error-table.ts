import { CustosError, type CustosErrorCode } from "./errors.js";

/*
 * The one table from error codes to wire statuses, read by the gRPC edge
 * (transport/grpc/status.ts) and the officer console (transport/http/console/console.ts) alike.
 * Kept free of transport libraries: gRPC codes are the numbers of google.rpc.Code.
 */

/** google.rpc.Code numbers (the same values as grpc-js's `status`; a unit test checks they agree). */
export const GrpcCode = {
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcCode = (typeof GrpcCode)[keyof typeof GrpcCode];

/** How one error code is answered on each transport. */
export interface WireStatus {
  readonly grpc: GrpcCode;
  readonly http: number;
  /** False when the message may carry internal detail: the client then gets a generic one. */
  readonly expose: boolean;
}

const G = GrpcCode;
const entry = (grpc: GrpcCode, http: number, expose = true): WireStatus => ({ grpc, http, expose });

/**
 * Every code in the union has an entry (the `Record` type makes a missing one a compile error).
 * HTTP statuses follow the gRPC status, except where the console long answered otherwise
 * (unknown client 404; a failed precondition that is a conflict with current state 409).
 */
export const ERROR_TABLE: Readonly<Record<CustosErrorCode, WireStatus>> = {
  UNAUTHENTICATED: entry(G.UNAUTHENTICATED, 401),
  UNKNOWN_CLIENT: entry(G.UNAUTHENTICATED, 404),
  ADDRESS_NOT_ALLOWED: entry(G.PERMISSION_DENIED, 403),
  NO_GRANT: entry(G.PERMISSION_DENIED, 403),
  ROLE_NOT_ALLOWED: entry(G.PERMISSION_DENIED, 403),
  RATE_LIMITED: entry(G.RESOURCE_EXHAUSTED, 429),
  KEY_NOT_FOUND: entry(G.NOT_FOUND, 404),
  KEY_EXISTS: entry(G.ALREADY_EXISTS, 409),
  VERSION_NOT_FOUND: entry(G.NOT_FOUND, 404),
  VERSION_NOT_USABLE: entry(G.FAILED_PRECONDITION, 409),
  KEY_NOT_ACTIVE: entry(G.FAILED_PRECONDITION, 409),
  KEY_FROZEN: entry(G.FAILED_PRECONDITION, 409),
  CLIENT_FROZEN: entry(G.FAILED_PRECONDITION, 409),
  GOVERNANCE_NOT_INITIALISED: entry(G.FAILED_PRECONDITION, 409),
  GOVERNANCE_EXISTS: entry(G.ALREADY_EXISTS, 409),
  NOT_AN_OFFICER: entry(G.PERMISSION_DENIED, 403),
  PROPOSAL_NOT_FOUND: entry(G.NOT_FOUND, 404),
  PROPOSAL_CLOSED: entry(G.FAILED_PRECONDITION, 409),
  DIGEST_MISMATCH: entry(G.FAILED_PRECONDITION, 409),
  BAD_SIGNATURE: entry(G.PERMISSION_DENIED, 403),
  PRECONDITION_FAILED: entry(G.FAILED_PRECONDITION, 409),
  NONCE_INVALID: entry(G.FAILED_PRECONDITION, 409),
  PASSKEY_INVALID: entry(G.PERMISSION_DENIED, 403),
  SESSION_EXPIRED: entry(G.UNAUTHENTICATED, 401),
  CSRF_REJECTED: entry(G.PERMISSION_DENIED, 403),
  POLICY_DENIED: entry(G.PERMISSION_DENIED, 403),
  NO_DIALECT: entry(G.FAILED_PRECONDITION, 409),
  UNKNOWN_EXCHANGE: entry(G.INVALID_ARGUMENT, 400),
  NO_API_KEY_ID: entry(G.FAILED_PRECONDITION, 409),
  EXCHANGE_UNAVAILABLE: entry(G.UNAVAILABLE, 503),
  EXCHANGE_RESPONSE_TOO_LARGE: entry(G.UNAVAILABLE, 503),
  INVALID_ARGUMENT: entry(G.INVALID_ARGUMENT, 400),
  MALFORMED_REQUEST: entry(G.INVALID_ARGUMENT, 400),
  PAYLOAD_TOO_LARGE: entry(G.INVALID_ARGUMENT, 413),
  ENVELOPE_INVALID: entry(G.INVALID_ARGUMENT, 400, false),
  HSM_UNAVAILABLE: entry(G.UNAVAILABLE, 503, false),
  HSM_KEY_SIZE: entry(G.FAILED_PRECONDITION, 409, false),
  HSM_UNSUPPORTED: entry(G.FAILED_PRECONDITION, 409),
  HSM_ERROR: entry(G.INTERNAL, 500, false),
  AUDIT_REWOUND: entry(G.FAILED_PRECONDITION, 409, false),
  AUDIT_CHECKPOINT_INVALID: entry(G.FAILED_PRECONDITION, 409, false),
  STORE_ERROR: entry(G.UNAVAILABLE, 503, false),
  INTERNAL: entry(G.INTERNAL, 500, false),
};

/** What a client may read when the code's message is not exposed. */
const GENERIC: Partial<Record<CustosErrorCode, string>> = {
  ENVELOPE_INVALID: "import envelope does not open with this service's wrapping key",
  HSM_UNAVAILABLE: "HSM unavailable; retry later",
  HSM_KEY_SIZE: "key length is outside what the HSM accepts for this algorithm",
  STORE_ERROR: "store unavailable; retry later",
};

/** A thrown value as every transport answers it: its reason, its statuses and a client-safe message. */
export interface DescribedError {
  reason: CustosErrorCode;
  grpc: GrpcCode;
  http: number;
  message: string;
}

/** Any thrown value → its table entry; anything but a CustosError is INTERNAL with a generic message. */
export function describeCustosError(e: unknown): DescribedError {
  const err = e instanceof CustosError ? e : undefined;
  const reason: CustosErrorCode = err?.code ?? "INTERNAL";
  const wire = ERROR_TABLE[reason] ?? ERROR_TABLE.INTERNAL;
  const message = err && wire.expose ? err.message : (GENERIC[reason] ?? "internal error");
  return { reason, grpc: wire.grpc, http: wire.http, message };
}
