import canonicalizeModule from "canonicalize";
import type { StoredAuditEvent } from "../store/store.js";
import { sha256 } from "./sha256.js";

/** prev_hash of the first event. */
export const GENESIS_HASH = "0".repeat(64);

/** Each event's hash covers the previous hash and the event's canonical JSON body. */
export function chainHash(prevHash: string, body: string): string {
  return sha256().update(prevHash).update("\n").update(body).digest("hex");
}

export type ChainCheck = { ok: true; events: number; lastHash: string } | { ok: false; events: number; brokenAt: number; problem: string };

/**
 * Checks a run of events continuing a chain that ended at (`prevSeq`, `prevHash`).
 * Reports the first broken link: a gap in seq, a prev_hash that does not match, or a hash
 * that does not match its body.
 */
export function checkChain(events: readonly StoredAuditEvent[], prevSeq: number, prevHash: string): ChainCheck {
  let seq = prevSeq;
  let hash = prevHash;
  for (const [i, e] of events.entries()) {
    if (e.seq !== seq + 1) return { ok: false, events: i, brokenAt: e.seq, problem: `sequence jumps from ${seq} to ${e.seq}` };
    if (e.prevHash !== hash) return { ok: false, events: i, brokenAt: e.seq, problem: "prev_hash does not match the previous event" };
    if (chainHash(e.prevHash, e.body) !== e.hash) return { ok: false, events: i, brokenAt: e.seq, problem: "hash does not match the event body" };
    seq = e.seq;
    hash = e.hash;
  }
  return { ok: true, events: events.length, lastHash: hash };
}

// The package is CommonJS with an ESM-style .d.ts; at runtime the default import is the function.
const canonicalize = canonicalizeModule as unknown as (input: unknown) => string | undefined;

/**
 * RFC 8785 canonical JSON. Audit events are objects of strings, booleans and integers, with at
 * most one level of such objects nested (`details`); for those, JSON.stringify over the keys
 * in sorted order *is* the RFC 8785 form (its string and integer serialisation is
 * ECMAScript's), at a fraction of the general library's cost. The keys are sorted by
 * inserting them into a fresh object in order (JSON.stringify keeps insertion order for keys
 * that are not array indexes, and is fastest without a replacer). Anything else (arrays,
 * non-integer numbers, deeper nesting, numeric keys) goes through the library.
 */
export function canonicalJson(value: Record<string, unknown>): string {
  const sorted = sortedFlat(value, 1);
  return sorted === undefined ? (canonicalize(value) as string) : JSON.stringify(sorted);
}

/** `value` with keys in sorted order, if it has the simple shape above; else undefined. */
function sortedFlat(value: Record<string, unknown>, nesting: number): Record<string, unknown> | undefined {
  const keys = Object.keys(value).sort();
  const sorted: Record<string, unknown> = {};
  for (const k of keys) {
    const first = k.charCodeAt(0);
    if (first >= 48 && first <= 57) return undefined; // "0"…"9": could be an array index
    const v = value[k];
    if (typeof v === "string" || typeof v === "boolean" || (typeof v === "number" && Number.isSafeInteger(v))) {
      sorted[k] = v;
    } else if (nesting > 0 && typeof v === "object" && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype) {
      const inner = sortedFlat(v as Record<string, unknown>, nesting - 1);
      if (inner === undefined) return undefined;
      sorted[k] = inner;
    } else {
      return undefined;
    }
  }
  return sorted;
}
