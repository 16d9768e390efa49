/**
 * The audit writer thread: serialises, chains and inserts the events the event loop hands
 * over, on its own store connection, so none of that costs the sign path. It keeps no chain
 * state: every batch arrives with the head it must continue, and the head it produced goes
 * back only after the insert committed.
 */
import { parentPort, workerData } from "node:worker_threads";
import { openStore, type StoreLocation } from "../store/open-store.js";
import { chainRows, type ChainHead } from "./chain-writer.js";
import { decodeEvents, type EncodedEvents } from "./event-batch.js";

export type AuditWorkerRequest = { id: number; batch: EncodedEvents; head: ChainHead };
export type AuditWorkerReply = { id: number; head: ChainHead } | { id: number; error: string };

const store = openStore((workerData as { store: StoreLocation }).store);

async function append(req: AuditWorkerRequest): Promise<ChainHead> {
  const next = chainRows(decodeEvents(req.batch), req.head);
  const last = await store.audit.lastAudit();
  if (last && last.seq > req.head.seq) {
    // An earlier attempt committed but its answer was lost (the thread died in between):
    // the same events give the same rows, so acknowledge it if the head matches.
    if (last.seq === next.head.seq && last.hash === next.head.hash) return next.head;
    throw new Error(`audit chain head moved to ${last.seq}, expected ${req.head.seq}`);
  }
  await store.audit.appendAudit(next.rows);
  return next.head;
}

parentPort!.on("message", (req: AuditWorkerRequest) => {
  append(req).then(
    (head) => parentPort!.postMessage({ id: req.id, head } satisfies AuditWorkerReply),
    (e: unknown) => parentPort!.postMessage({ id: req.id, error: e instanceof Error ? e.message : String(e) } satisfies AuditWorkerReply),
  );
});
