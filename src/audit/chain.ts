import { createHash } from "node:crypto";
import type { StoredAuditEvent } from "../store/store.js";

/** prev_hash of the first event. */
export const GENESIS_HASH = "0".repeat(64);

/** Each event's hash covers the previous hash and the event's canonical JSON body. */
export function chainHash(prevHash: string, body: string): string {
  return createHash("sha256").update(prevHash).update("\n").update(body).digest("hex");
}

export type ChainCheck =
  | { ok: true; events: number; lastHash: string }
  | { ok: false; events: number; brokenAt: number; problem: string };

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
