/**
 * The audit writer thread: serialises, chains and inserts the events the event loop hands
 * over, on its own store connection, so none of that costs the sign path. It keeps no chain
 * state: each batch continues the chain's stored head, read under the chain's lock in the
 * insert's own transaction (appendChained), so on PostgreSQL every replica's writer extends the
 * one chain; the head it produced goes back only after the insert committed.
 */
import { parentPort, workerData } from "node:worker_threads";
import { openStore, type StoreLocation } from "../store/open-store.js";
import type { Store } from "../store/store.js";
import { chainRows, continueFrom, type ChainHead } from "./chain-writer.js";
import { decodeEvents, type EncodedEvents } from "./event-batch.js";

export type AuditWorkerRequest = { id: number; batch: EncodedEvents; head: ChainHead };
export type AuditWorkerReply = { id: number; head: ChainHead } | { id: number; error: string };

const location = (workerData as { store: StoreLocation }).store;
/** Opened on first use and again after a failed open (PostgreSQL down at start): the batch fails and is retried. */
let opening: Promise<Store> | undefined;

function store(): Promise<Store> {
  opening ??= openStore(location).catch((e: unknown) => {
    opening = undefined;
    throw e;
  });
  return opening;
}

async function append(req: AuditWorkerRequest): Promise<ChainHead> {
  const events = decodeEvents(req.batch);
  let head: ChainHead = req.head;
  await (await store()).audit.appendChained((stored) => {
    const from = continueFrom(stored, req.head);
    if (from.seq > req.head.seq) {
      // An earlier attempt committed but its answer was lost (the thread died in between): the
      // same events from the same head give the same rows, so acknowledge it if they are the head.
      const again = chainRows(events, req.head).head;
      if (again.seq === from.seq && again.hash === from.hash) {
        head = again;
        return [];
      }
    }
    const next = chainRows(events, from);
    head = next.head;
    return next.rows;
  });
  return head;
}

parentPort!.on("message", (req: AuditWorkerRequest) => {
  append(req).then(
    (head) => parentPort!.postMessage({ id: req.id, head } satisfies AuditWorkerReply),
    (e: unknown) => parentPort!.postMessage({ id: req.id, error: e instanceof Error ? e.message : String(e) } satisfies AuditWorkerReply),
  );
});
