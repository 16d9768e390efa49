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
 * Writes on the calling thread, through the store: the batch continues the chain's stored head
 * (read under the chain's lock), so other writers on the same store extend the same chain.
 */
export class StoreChainWriter implements ChainWriter {
  constructor(private readonly store: StoreSlice<"audit">) {}

  async append(batch: EncodedEvents, _head: ChainHead): Promise<ChainHead> {
    const events = decodeEvents(batch);
    let head: ChainHead | undefined;
    await this.store.audit.appendChained((stored) => {
      const next = chainRows(events, { seq: stored?.seq ?? 0, hash: stored?.hash ?? GENESIS_HASH });
      head = next.head;
      return next.rows;
    });
    return head!;
  }

  async close(): Promise<void> {}
}
