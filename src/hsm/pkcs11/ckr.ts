import pkcs11js from "pkcs11js";
import { CustosError } from "../../errors.js";

/**
 * CKR_* return values → typed errors. One table; anything not named here is HSM_ERROR.
 * The CKR name goes into the message for logs; transports never send it to clients.
 */

/** The session, login or device is gone: reopen with backoff, callers retry later. */
const LOST: Record<number, string> = {
  0x05: "CKR_GENERAL_ERROR",
  0x30: "CKR_DEVICE_ERROR",
  0x31: "CKR_DEVICE_MEMORY",
  0x32: "CKR_DEVICE_REMOVED",
  0xb0: "CKR_SESSION_CLOSED",
  0xb3: "CKR_SESSION_HANDLE_INVALID",
  0xe0: "CKR_TOKEN_NOT_PRESENT",
  0x101: "CKR_USER_NOT_LOGGED_IN",
  0x190: "CKR_CRYPTOKI_NOT_INITIALIZED",
  0x1a0: "CKR_FUNCTION_REJECTED",
};

/** The object handle went stale (another process destroyed it, or a re-login happened). */
export const STALE_HANDLE = new Set([0x82 /* OBJECT_HANDLE_INVALID */, 0x60 /* KEY_HANDLE_INVALID */]);

/** The import envelope does not open with this wrapping key. */
const BAD_ENVELOPE: Record<number, string> = {
  0x20: "CKR_DATA_INVALID",
  0x21: "CKR_DATA_LEN_RANGE",
  0x40: "CKR_ENCRYPTED_DATA_INVALID",
  0x41: "CKR_ENCRYPTED_DATA_LEN_RANGE",
  0x110: "CKR_WRAPPED_KEY_INVALID",
  0x112: "CKR_WRAPPED_KEY_LEN_RANGE",
  0x7: "CKR_ARGUMENTS_BAD",
};

export const CKR_USER_ALREADY_LOGGED_IN = 0x100;
export const CKR_CRYPTOKI_ALREADY_INITIALIZED = 0x191;
export const CKR_KEY_SIZE_RANGE = 0x62;

/** The numeric CKR of a pkcs11js error, or undefined for non-PKCS#11 errors. */
export function ckrOf(e: unknown): number | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "number" ? code : undefined;
}

/** Every CKR_* constant pkcs11js knows, by value (for log messages). */
const NAMES = new Map<number, string>(
  Object.entries(pkcs11js)
    .filter(([k, v]) => k.startsWith("CKR_") && typeof v === "number")
    .map(([k, v]) => [v as number, k]),
);

export function ckrName(code: number): string {
  return NAMES.get(code) ?? `CKR_0x${code.toString(16)}`;
}

export function isSessionLost(e: unknown): boolean {
  const code = ckrOf(e);
  return code !== undefined && code in LOST;
}

/** Maps a failure of `operation` to a CustosError; `unwrapping` turns data errors into ENVELOPE_INVALID. */
export function toCustosError(e: unknown, operation: string, opts: { unwrapping?: boolean } = {}): CustosError {
  if (e instanceof CustosError) return e;
  const code = ckrOf(e);
  if (code === undefined) return new CustosError("HSM_ERROR", `${operation} failed`, { cause: e });
  const name = ckrName(code);
  if (code in LOST) return new CustosError("HSM_UNAVAILABLE", `${operation}: ${name}`, { cause: e, retryable: true });
  if (code === CKR_KEY_SIZE_RANGE) return new CustosError("HSM_KEY_SIZE", `${operation}: CKR_KEY_SIZE_RANGE`, { cause: e });
  if (opts.unwrapping && code in BAD_ENVELOPE) {
    return new CustosError("ENVELOPE_INVALID", `import envelope does not open (${name})`, { cause: e });
  }
  return new CustosError("HSM_ERROR", `${operation}: ${name}`, { cause: e });
}
