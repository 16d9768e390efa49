import type { StoreSlice, StoredAuditEvent } from "../store/store.js";
import { GENESIS_HASH, canonicalJson, chainHash } from "./chain.js";
import { decodeEvents, type EncodedEvents, type QueuedEvent } from "./event-batch.js";

export type { QueuedEvent } from "./event-batch.js";

export interface ChainHead {
  seq: number;
  hash: string;
}

/**
 * Decodes queued events, turns them into chained rows (canonical JSON body, SHA-256 link)
 * and stores them in one transaction. Returns the new head; on failure nothing is stored and the
 * caller keeps the events.
 */
export interface ChainWriter {
  append(batch: EncodedEvents, head: ChainHead): Promise<ChainHead>;
  close(): Promise<void>;
}

/** The rows that continue the chain at `head`. Pure. */
export function chainRows(batch: readonly QueuedEvent[], head: ChainHead): { rows: StoredAuditEvent[]; head: ChainHead } {
  let seq = head.seq;
  let hash = head.hash;
  const rows = batch.map(({ at, event }) => {
    const body = canonicalJson({ seq: seq + 1, at, ...event });
    const row = { seq: ++seq, body, prevHash: hash, hash: chainHash(hash, body) };
    hash = row.hash;
    return row;
  });
  return { rows, head: { seq, hash } };
}

/**
 * Where a batch continues the chain: its stored head, which other writers (replicas) may have
 * moved on since `written`, the head this writer last wrote. A stored head *behind* `written`
 * means the chain was shortened under a running custos: the batch then continues `written`, so
 * the gap stays in the chain, the checkpoint of this head disagrees with the database, and the
 * next start refuses it (a silent continuation would hide the deletion).
 */
export function continueFrom(stored: StoredAuditEvent | undefined, written: ChainHead): ChainHead {
  const head = { seq: stored?.seq ?? 0, hash: stored?.hash ?? GENESIS_HASH };
  return head.seq < written.seq ? written : head;
}

/**
 * Writes on the calling thread, through the store: the batch continues the chain's stored head
 * (read under the chain's lock), so other writers on the same store extend the same chain.
 */
export class StoreChainWriter implements ChainWriter {
  constructor(private readonly store: StoreSlice<"audit">) {}

  async append(batch: EncodedEvents, head: ChainHead): Promise<ChainHead> {
    const events = decodeEvents(batch);
    let written: ChainHead | undefined;
    await this.store.audit.appendChained((stored) => {
      const next = chainRows(events, continueFrom(stored, head));
      written = next.head;
      return next.rows;
    });
    return written!;
  }

  async close(): Promise<void> {}
}
