import type { ChainHead, ChainWriter } from "./chain-writer.js";
import type { EncodedEvents } from "./event-batch.js";

/** Batches of at most this many events are written on the event loop. */
export const INLINE_MAX_EVENTS = 4;

/**
 * Chooses, per batch, where it is written. A signature is answered once its record is written
 * (audit.acknowledge "written"): a lone sign's batch of one event costs two thread wake-ups on
 * the writer thread, several times the write itself, so small batches are written on the event
 * loop through the service's own store connection. Large batches (load: many signs share one
 * write) go to the writer thread, which keeps their serialising and hashing off the loop. Both
 * continue the chain's stored head under its lock (appendChained), so they extend one chain.
 */
export class AdaptiveChainWriter implements ChainWriter {
  constructor(
    private readonly inline: ChainWriter,
    private readonly thread: ChainWriter,
  ) {}

  append(batch: EncodedEvents, head: ChainHead): Promise<ChainHead> {
    return (batch.count <= INLINE_MAX_EVENTS ? this.inline : this.thread).append(batch, head);
  }

  async close(): Promise<void> {
    await Promise.all([this.inline.close(), this.thread.close()]);
  }
}
