import { CustosError } from "../../errors.js";

/**
 * Reads a proposal's signed parameters back with their types. They were written by the kind's
 * own `content()` and are covered by the digest, so a mismatch is a bug, never user input.
 */
export class ParamReader {
  constructor(
    private readonly raw: Record<string, unknown>,
    private readonly kind: string,
  ) {}

  string(name: string): string {
    const v = this.raw[name];
    if (typeof v !== "string") throw this.bad(name, "a string");
    return v;
  }

  optionalString(name: string): string | undefined {
    const v = this.raw[name];
    if (v === undefined) return undefined;
    if (typeof v !== "string") throw this.bad(name, "a string");
    return v;
  }

  integer(name: string): number {
    const v = this.raw[name];
    if (typeof v !== "number" || !Number.isSafeInteger(v)) throw this.bad(name, "an integer");
    return v;
  }

  /** Absent reads as false (proposals made before the field existed). */
  flag(name: string): boolean {
    const v = this.raw[name];
    if (v === undefined) return false;
    if (typeof v !== "boolean") throw this.bad(name, "a boolean");
    return v;
  }

  strings(name: string): string[] {
    const v = this.raw[name];
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) throw this.bad(name, "a list of strings");
    return v.map(String);
  }

  /** Any JSON value (a policy document, checked by its own validator). */
  json(name: string): unknown {
    if (!(name in this.raw)) throw this.bad(name, "present");
    return this.raw[name];
  }

  private bad(name: string, what: string): CustosError {
    return new CustosError("INTERNAL", `${this.kind} parameter ${name} is not ${what} (this is a bug)`);
  }
}
