import { Worker } from "node:worker_threads";
import { CustosError } from "../errors.js";
import type { AuditWorkerReply, AuditWorkerRequest } from "./audit-worker.js";
import type { ChainHead, ChainWriter } from "./chain-writer.js";
import type { EncodedEvents } from "./event-batch.js";
import type { StoreLocation } from "../store/open-store.js";

/**
 * Hands batches to the audit writer thread (src/audit/audit-worker.ts), which owns its own
 * connection to the same store (for SQLite, the same file in WAL mode). The sign path's share of auditing shrinks to
 * encoding an event (event-batch.ts); the copy to the thread is one byte buffer per slice.
 */
export class WorkerChainWriter implements ChainWriter {
  private worker: Worker;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (h: ChainHead) => void; reject: (e: unknown) => void }>();
  private closed = false;

  constructor(private readonly store: StoreLocation) {
    this.worker = this.spawn();
  }

  private spawn(): Worker {
    const w = new Worker(new URL("./audit-worker.js", import.meta.url), { workerData: { store: this.store } });
    w.on("message", (reply: AuditWorkerReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) this.worker.unref();
      if ("head" in reply) p.resolve(reply.head);
      else p.reject(new CustosError("STORE_ERROR", `audit write failed: ${reply.error}`, { retryable: true }));
    });
    w.on("error", () => undefined); // surfaces as "exit" below
    w.on("exit", () => {
      // Batches in flight were not acknowledged: their events stay queued and are retried.
      for (const p of this.pending.values()) p.reject(new CustosError("STORE_ERROR", "audit writer thread stopped", { retryable: true }));
      this.pending.clear();
      if (!this.closed) this.worker = this.spawn();
    });
    w.unref();
    return w;
  }

  append(batch: EncodedEvents, head: ChainHead): Promise<ChainHead> {
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref(); // an unanswered batch keeps the process alive; an idle thread does not
      this.worker.postMessage({ id, batch, head } satisfies AuditWorkerRequest);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.worker.terminate();
  }
}
