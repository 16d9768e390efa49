import { CustosError } from "../errors.js";
import { algorithmSpec, type SigningAlgorithm } from "../hsm/algorithms.js";

/*
 * Small readers shared by the dialects: what a request names (symbols, sizes) for the policy,
 * and the check on what the HSM handed back.
 */

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** JSON, or undefined when it does not parse. */
export function parseJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

/** Upper case so a per-symbol limit cannot be dodged by spelling the instrument differently. */
export function symbolOf(v: unknown): string {
  return (typeof v === "string" ? v : JSON.stringify(v)).toUpperCase();
}

/** The largest quantity named, or NaN (refused by any limit) when none is or one is not a number. */
export function largestQuantity(values: unknown[]): number {
  if (values.length === 0) return NaN;
  return Math.max(...values.map(quantityOf));
}

/** A number or numeric string (exponent allowed), absolute (BitMEX once signed orderQty for the side); else NaN. */
export function quantityOf(v: unknown): number {
  if (typeof v === "number") return Number.isFinite(v) ? Math.abs(v) : NaN;
  if (typeof v === "string" && /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(v)) return Math.abs(Number(v));
  return NaN;
}

/** The single MAC a dialect asked the HSM for, of the algorithm's length; anything else is a bug. */
export function oneMac(exchange: string, algorithm: SigningAlgorithm, macs: Buffer[]): Buffer {
  const bytes = algorithmSpec(algorithm).macBytes;
  if (macs.length !== 1 || macs[0]!.length !== bytes) {
    throw new CustosError("INTERNAL", `${exchange}: expected one ${bytes}-byte MAC, got ${macs.length} (this is a bug)`);
  }
  return macs[0]!;
}
