import assert from "node:assert/strict";
import { it } from "node:test";
import { AdaptiveChainWriter, INLINE_MAX_EVENTS } from "../../src/audit/adaptive-chain-writer.js";
import type { ChainHead, ChainWriter } from "../../src/audit/chain-writer.js";
import { EventBatchWriter, type EncodedEvents } from "../../src/audit/event-batch.js";

/** Records which writer got each batch (by its size). */
class Recording implements ChainWriter {
  readonly sizes: number[] = [];
  closed = false;
  async append(batch: EncodedEvents, head: ChainHead): Promise<ChainHead> {
    this.sizes.push(batch.count);
    return { seq: head.seq + batch.count, hash: head.hash };
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

function batchOf(n: number): EncodedEvents {
  const w = new EventBatchWriter();
  for (let i = 0; i < n; i++) w.add({ kind: "sign", actor: "a", outcome: "allowed", key: "k", version: 1 });
  return w.take();
}

it("writes batches of up to four events on the event loop and larger ones on the writer thread", async () => {
  assert.equal(INLINE_MAX_EVENTS, 4);
  const inline = new Recording();
  const thread = new Recording();
  const writer = new AdaptiveChainWriter(inline, thread);
  let head: ChainHead = { seq: 0, hash: "h" };
  for (const n of [1, 4, 5, 500, 2]) head = await writer.append(batchOf(n), head);
  assert.deepEqual(inline.sizes, [1, 4, 2]);
  assert.deepEqual(thread.sizes, [5, 500]);
  assert.equal(head.seq, 512);
  await writer.close();
  assert.deepEqual([inline.closed, thread.closed], [true, true]);
});
