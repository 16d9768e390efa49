import type { KeyObject } from "node:crypto";
import type { StoreSlice, StoredAuditEvent } from "../store/store.js";
import { checkpointSignatureOk, type Checkpoint, type CheckpointSource } from "./checkpoint.js";
import { reachProblem } from "./rewind-check.js";

/** The audit event recording an operator's `--accept-audit-rewind`. */
export const REWIND_ACCEPTED = "audit.rewind_accepted";

/** What `custos audit verify` found about the checkpoints. */
export interface CheckpointReport {
  /** Distinct checkpoints found (one seen in the file, the database and the log counts once). */
  checked: number;
  /** The one with the highest seq the chain reaches. */
  newest?: Checkpoint & { sources: CheckpointSource[] };
  /** Checkpoints the chain no longer reaches because an operator accepted a rewind (audited at `acceptedAt`). */
  accepted: Array<{ checkpoint: Checkpoint; acceptedAt: number }>;
  /** One sentence each; verification fails if any. */
  problems: string[];
}

/** Collects the audited rewind acceptances while the chain is walked (verifyAuditChain's onPage). */
export class RewindAcceptances {
  /** `${seq}\n${hash}` of an accepted checkpoint → seq of the acceptance event. */
  readonly byCheckpoint = new Map<string, number>();

  observe(events: readonly StoredAuditEvent[]): void {
    for (const e of events) {
      if (!e.body.includes(`"${REWIND_ACCEPTED}"`)) continue;
      const body = JSON.parse(e.body) as { kind: string; details?: { checkpointSeq?: unknown; checkpointHash?: unknown } };
      if (body.kind !== REWIND_ACCEPTED) continue;
      this.byCheckpoint.set(`${String(body.details?.checkpointSeq)}\n${String(body.details?.checkpointHash)}`, e.seq);
    }
  }
}

/**
 * Checks every checkpoint found against a chain whose links are already verified: each must
 * verify with the checkpoint key, and the chain must still hold the event it attests. A
 * checkpoint the chain no longer reaches passes only if an operator's acceptance names it AND a
 * later checkpoint, signed after that acceptance, is reached: only a running custos holding the
 * checkpoint key can sign that one, so a database edit cannot forge an excuse.
 */
export async function verifyCheckpoints(
  store: StoreSlice<"audit">,
  found: ReadonlyArray<Checkpoint & { source: CheckpointSource }>,
  publicKey: KeyObject,
  acceptances: RewindAcceptances,
): Promise<CheckpointReport> {
  const distinct = new Map<string, Checkpoint & { sources: CheckpointSource[] }>();
  for (const c of found) {
    const seen = distinct.get(c.signature);
    if (seen) {
      if (!seen.sources.includes(c.source)) seen.sources.push(c.source);
    } else {
      distinct.set(c.signature, { seq: c.seq, hash: c.hash, at: c.at, keyFingerprint: c.keyFingerprint, signature: c.signature, sources: [c.source] });
    }
  }
  const databaseSeq = (await store.audit.lastAudit())?.seq ?? 0;
  const problems: string[] = [];
  const reached: Array<Checkpoint & { sources: CheckpointSource[] }> = [];
  const unreached: Array<{ c: Checkpoint & { sources: CheckpointSource[] }; problem: string }> = [];
  for (const c of distinct.values()) {
    const named = `checkpoint of event ${c.seq} signed at ${c.at} (${c.sources.join(", ")})`;
    if (!checkpointSignatureOk(c, publicKey)) {
      problems.push(`${named} does not verify with the checkpoint key`);
      continue;
    }
    const problem = await reachProblem(store, c, databaseSeq);
    if (problem) unreached.push({ c, problem: `${named}: ${problem}` });
    else reached.push(c);
  }
  const accepted: CheckpointReport["accepted"] = [];
  for (const { c, problem } of unreached) {
    const acceptedAt = acceptances.byCheckpoint.get(`${c.seq}\n${c.hash}`);
    const confirmed = acceptedAt !== undefined && reached.some((r) => r.seq >= acceptedAt && r.at > c.at);
    if (confirmed) accepted.push({ checkpoint: c, acceptedAt });
    else problems.push(problem);
  }
  const newest = reached.sort((a, b) => a.seq - b.seq).at(-1);
  return { checked: distinct.size, ...(newest ? { newest } : {}), accepted, problems };
}
