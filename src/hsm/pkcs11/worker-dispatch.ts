import { Worker } from "node:worker_threads";
import { CustosError } from "../../errors.js";

export interface SignJob {
  id: number;
  objectId: string;
  mechanism: number;
  macBytes: number;
  data: Uint8Array;
}

export type SignOutcome = { id: number; signature: Uint8Array } | { id: number; ckr: number; message: string };
export type WorkerMessage = { type: "sign"; jobs: SignJob[] } | { type: "reset" };

/**
 * The event-loop side of `dispatch: "worker"`. Sign jobs made during one turn of the event
 * loop go to the signing thread as one message (setImmediate), so the per-message cost of
 * crossing threads is shared by every call of that turn.
 */
export class WorkerDispatch {
  private worker: Worker;
  private queue: SignJob[] = [];
  private readonly pending = new Map<number, { resolve: (sig: Buffer) => void; reject: (e: unknown) => void }>();
  private nextId = 0;
  private scheduled = false;
  private closed = false;

  constructor(private readonly init: { modulePath: string; tokenLabel: string }) {
    this.worker = this.spawn();
  }

  private spawn(): Worker {
    const w = new Worker(new URL("./sign-worker.js", import.meta.url), { workerData: this.init });
    w.on("message", (outcomes: SignOutcome[]) => {
      for (const o of outcomes) {
        const p = this.pending.get(o.id);
        if (!p) continue;
        this.pending.delete(o.id);
        if (this.pending.size === 0) this.worker.unref();
        if ("signature" in o) p.resolve(Buffer.from(o.signature.buffer, o.signature.byteOffset, o.signature.byteLength));
        else p.reject(Object.assign(new Error(o.message), { code: o.ckr }));
      }
    });
    w.on("exit", () => {
      // Fail what was in flight; a new thread serves the next calls.
      for (const p of this.pending.values()) p.reject(new CustosError("HSM_UNAVAILABLE", "signing thread stopped", { retryable: true }));
      this.pending.clear();
      if (!this.closed) this.worker = this.spawn();
    });
    w.unref();
    return w;
  }

  sign(objectId: string, mechanism: number, macBytes: number, data: Uint8Array): Promise<Buffer> {
    const id = ++this.nextId;
    this.queue.push({ id, objectId, mechanism, macBytes, data });
    this.worker.ref(); // unanswered signs keep the process alive; an idle thread does not
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const jobs = this.queue;
    this.queue = [];
    this.worker.postMessage({ type: "sign", jobs } satisfies WorkerMessage);
  };

  get inFlight(): number {
    return this.pending.size;
  }

  /** Drops the thread's session and handles (after the main thread reopened its own). */
  reset(): void {
    this.worker.postMessage({ type: "reset" } satisfies WorkerMessage);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.worker.terminate();
  }
}
