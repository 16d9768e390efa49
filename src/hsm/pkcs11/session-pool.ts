import { CustosError } from "../../errors.js";

/**
 * A PKCS#11 session runs one operation at a time (concurrent use gives
 * CKR_OPERATION_ACTIVE), so every operation leases a session of its own.
 * Each pool belongs to one login generation; a recovered HSM gets a new pool, and
 * leases of the old one are dropped on release.
 */
export class SessionPool<S> {
  private readonly free: S[];
  private readonly all: S[];
  private readonly waiters: Array<{ resolve: (s: S) => void; reject: (e: Error) => void }> = [];
  private closed = false;

  constructor(
    sessions: readonly S[],
    private readonly maxWaiters: number,
  ) {
    this.all = [...sessions];
    this.free = [...sessions];
  }

  get sessions(): readonly S[] {
    return this.all;
  }

  get inUse(): number {
    return this.all.length - this.free.length;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** A free session now, or undefined (the sync path never waits). */
  tryLease(): S | undefined {
    return this.closed ? undefined : this.free.pop();
  }

  lease(): Promise<S> {
    if (this.closed) return Promise.reject(unavailable());
    const s = this.free.pop();
    if (s !== undefined) return Promise.resolve(s);
    if (this.waiters.length >= this.maxWaiters) {
      return Promise.reject(new CustosError("HSM_UNAVAILABLE", "HSM session queue is full", { retryable: true }));
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  release(s: S): void {
    if (this.closed) return;
    const next = this.waiters.shift();
    if (next) next.resolve(s);
    else this.free.push(s);
  }

  /** Swaps a leased session for a fresh one (or drops it if none could be opened). */
  replace(old: S, fresh: S | undefined): void {
    const i = this.all.indexOf(old);
    if (i >= 0) this.all.splice(i, 1);
    if (fresh === undefined || this.closed) return;
    this.all.push(fresh);
    this.release(fresh);
  }

  /** Fails every waiter; later releases are ignored. */
  close(): void {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.reject(unavailable());
    this.free.length = 0;
  }
}

function unavailable(): CustosError {
  return new CustosError("HSM_UNAVAILABLE", "HSM sessions are being reopened", { retryable: true });
}
