import { Worker } from "node:worker_threads";
import { CustosError } from "../../errors.js";
import { decodeOutcomes, encodeJobs, type FromSigner, type SignJob, type ToSigner } from "./sign-batch.js";

/**
 * The event-loop side of `dispatch: "worker"`. Sign jobs made during one turn of the event
 * loop go to the signing thread as one transferred buffer (setImmediate), so the per-message
 * cost of crossing threads is shared by every call of that turn.
 */
export class WorkerDispatch {
  private worker: Worker;
  private queue: SignJob[] = [];
  private readonly pending = new Map<number, { resolve: (sig: Buffer) => void; reject: (e: unknown) => void }>();
  /** Object ids the thread knows by index (kept across thread restarts and resets). */
  private readonly keyIndex = new Map<string, number>();
  private nextId = 0;
  private scheduled = false;
  /** One batch at a time: jobs arriving while the thread signs wait and go as the next batch. */
  private batchInFlight = false;
  private closed = false;

  constructor(private readonly init: { modulePath: string; tokenLabel: string }) {
    this.worker = this.spawn();
  }

  private spawn(): Worker {
    const w = new Worker(new URL("./sign-worker.js", import.meta.url), { workerData: this.init });
    w.on("message", (reply: FromSigner) => {
      this.batchInFlight = false;
      // Jobs queued while the thread was busy go now, as one batch.
      if (this.queue.length > 0 && !this.scheduled) this.flush();
      for (const o of decodeOutcomes(reply.batch)) {
        const p = this.pending.get(o.id);
        if (!p) continue;
        this.pending.delete(o.id);
        if ("signature" in o) p.resolve(o.signature as Buffer);
        else p.reject(Object.assign(new Error(reply.errors?.[o.id] ?? "sign failed"), { code: o.ckr }));
      }
      if (this.pending.size === 0) this.worker.unref();
    });
    w.on("exit", () => {
      // Fail what was in flight; a new thread serves the next calls.
      for (const p of this.pending.values()) p.reject(new CustosError("HSM_UNAVAILABLE", "signing thread stopped", { retryable: true }));
      this.pending.clear();
      this.queue = [];
      this.batchInFlight = false;
      if (!this.closed) {
        this.worker = this.spawn();
        for (const [objectId, index] of this.keyIndex) this.post({ type: "key", index, objectId });
      }
    });
    w.unref();
    return w;
  }

  private post(msg: ToSigner, transfer?: ArrayBuffer[]): void {
    this.worker.postMessage(msg, transfer);
  }

  sign(objectId: string, mechanism: number, macBytes: number, data: Uint8Array): Promise<Buffer> {
    const id = (this.nextId = (this.nextId + 1) >>> 0); // u32, as the batch format carries it
    let keyIndex = this.keyIndex.get(objectId);
    if (keyIndex === undefined) {
      keyIndex = this.keyIndex.size;
      this.keyIndex.set(objectId, keyIndex);
      this.post({ type: "key", index: keyIndex, objectId });
    }
    this.queue.push({ id, keyIndex, mechanism, macBytes, data });
    this.worker.ref(); // unanswered signs keep the process alive; an idle thread does not
    if (!this.scheduled && !this.batchInFlight) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    if (this.queue.length === 0) return;
    this.batchInFlight = true;
    const batch = encodeJobs(this.queue);
    this.queue = [];
    this.post({ type: "sign", batch }, [batch]);
  };

  get inFlight(): number {
    return this.pending.size;
  }

  /** Drops the thread's session and handles (after the main thread reopened its own). */
  reset(): void {
    this.post({ type: "reset" });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.worker.terminate();
  }
}
