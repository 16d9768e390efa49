import { CustosError, type CustosErrorCode } from "../errors.js";

/** The code an audit record gives a failure: a typed error's own, INTERNAL for anything else. */
export function codeOf(e: unknown): CustosErrorCode {
  return e instanceof CustosError ? e.code : "INTERNAL";
}
