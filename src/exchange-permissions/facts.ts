import type { ExchangeRequest } from "../exchanges/dialect.js";

/** A fact custos read from the exchange, or "unknown" where the exchange does not expose it. */
export type Fact = boolean | "unknown";

/** What the exchange says about one API key: custos's facts, whatever the exchange calls them. */
export interface PermissionFacts {
  /** The key may withdraw funds off the exchange. */
  withdrawals: Fact;
  /** The key may move funds between accounts (sub-accounts, universal or internal transfers). */
  transfers: Fact;
  /** The key is bound to an IP allowlist at the exchange. */
  ipRestricted: Fact;
  /** The allowlist, when the exchange returns it (no secrets: addresses only). */
  ips?: string[];
}

/**
 * How custos reads one exchange's API-key permissions: the request it signs and sends itself
 * (always a read; never a caller's), and the parser of the exchange's answer. `login` probes sign
 * the exchange's login instead of a REST request (Deribit: the scope a login grants).
 */
export interface PermissionProbe {
  readonly exchange: string;
  readonly kind: "rest" | "login";
  /** The request (for `login`, the path the signed login fields are sent to as a GET query). */
  readonly request: ExchangeRequest;
  /**
   * `caller`: the exchange wants the key's API passphrase in clear with every request (OKX, Bitget),
   * which custos does not store; the check uses the one a caller last sent with its own request for
   * the key's active version, held in memory only (passphrases.ts), and waits until one arrives.
   */
  readonly passphrase?: "caller";
  /**
   * The answer → facts; throws PermissionParseError when the answer is not the documented shape or an
   * error. `apiKeyId` is the key version's exchange API key id (BitMEX lists every key of the account).
   */
  parse(status: number, body: unknown, apiKeyId?: string): PermissionFacts;
}

/** The exchange's answer was an error or not the documented shape: nothing is concluded from it. */
export class PermissionParseError extends Error {}

/** Why the facts flag a key (empty: nothing unsafe was seen). An unknown fact never flags: it is reported as unverified. */
export function unsafeReasons(f: PermissionFacts): string[] {
  const reasons: string[] = [];
  if (f.withdrawals === true) reasons.push("withdrawals");
  if (f.transfers === true) reasons.push("transfers");
  if (f.ipRestricted === false) reasons.push("no-ip-restriction");
  return reasons;
}

/** Facts the exchange did not expose, by name. */
export function unverified(f: PermissionFacts): string[] {
  return (["withdrawals", "transfers", "ipRestricted"] as const).filter((k) => f[k] === "unknown");
}

/** A JSON object, or a parse error naming what was expected. */
export function objectAt(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new PermissionParseError(`${what} is not an object`);
  return value as Record<string, unknown>;
}

/** A boolean field, or a parse error. */
export function booleanAt(o: Record<string, unknown>, name: string): boolean {
  const v = o[name];
  if (typeof v !== "boolean") throw new PermissionParseError(`${name} is not a boolean`);
  return v;
}

/** A string field, or a parse error. */
export function stringAt(o: Record<string, unknown>, name: string): string {
  const v = o[name];
  if (typeof v !== "string") throw new PermissionParseError(`${name} is not a string`);
  return v;
}

/** A list of strings, or a parse error. */
export function stringsAt(o: Record<string, unknown>, name: string): string[] {
  const v = o[name];
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw new PermissionParseError(`${name} is not a list of strings`);
  return v;
}

/** A comma-separated list, trimmed, without empty entries. */
export function commaList(text: string): string[] {
  return text
    .split(",")
    .map((x) => x.trim())
    .filter((x) => x !== "");
}

/** Refuses a non-2xx answer: an exchange's error body is not a permission set. */
export function requireOk(status: number): void {
  if (status < 200 || status > 299) throw new PermissionParseError(`the exchange answered HTTP ${status}`);
}
