import type { Logger } from "pino";
import type { StoreSlice, StoredAuditEvent } from "../store/store.js";
import { setImmediate as nextTurn } from "node:timers/promises";
import { GENESIS_HASH, checkChain, type ChainCheck } from "./chain.js";
import { StoreChainWriter, type ChainHead, type ChainWriter } from "./chain-writer.js";
import { EventBatchWriter, type EncodedEvents } from "./event-batch.js";
import { boundStrings } from "./bounded-text.js";
import { CustosError } from "../errors.js";
import { DEFAULT_REFUSAL_SAMPLING, RefusalSampler, type RefusalSampling } from "./refusal-sampler.js";

/** The longest string value in an audit event's details (its other strings: MAX_TEXT_CHARS). */
export const MAX_DETAIL_CHARS = 1024;

/** Events handed to the chain writer at a time, with a yield between slices. */
const SLICE = 500;

export { canonicalJson } from "./chain.js";

/** What happened. Payloads appear only as digests; secrets and envelopes never. */
export interface AuditEvent {
  kind: string; // "sign", "key.import", "client.add", "grant", "connection.refused", …
  actor: string; // client identity, or "system"
  outcome: "allowed" | "denied" | "ok" | "failed";
  reason?: string | undefined;
  key?: string | undefined;
  version?: number | undefined;
  payloadSha256?: string | undefined;
  peer?: string | undefined;
  details?: Record<string, string | number | boolean> | undefined;
}

/** An event as the chain stores it (its canonical JSON body): the event, its seq and time. */
export type AuditRecord = AuditEvent & { seq: number; at: string };

export interface AuditLogOptions {
  /** Batched events are written at least this often (the issue asks for ≤ 1 s). */
  flushIntervalMs?: number;
  /** A queue this long is handed to the writer at once, without waiting for the timer. */
  maxBatch?: number;
  /** Who serialises, chains and stores events (default: this thread, through the store). */
  writer?: ChainWriter;
  /** How refusals recorded with recordRefusal() are sampled and counted. */
  refusalSampling?: RefusalSampling;
  /** Monotonic milliseconds the flush lag is measured on (default performance.now; tests advance their own). */
  clock?: () => number;
  /**
   * When a signature may be answered (`audit.acknowledge`): "written" (default) once its record is
   * in the store, so a crash loses no record of a signature already returned; "queued" at once.
   */
  acknowledge?: Acknowledge;
  /**
   * How long a signature waits for its record before it is refused (AUDIT_BACKLOG): the same
   * bound as `audit.maxUnwrittenSeconds`. Default 5 s.
   */
  maxUnwrittenSeconds?: number;
}

/** When a signature may be answered: once its audit record is written, or as soon as it is queued. */
export type Acknowledge = "written" | "queued";

/** A signature waiting for its record: released once `ticket` events are written. */
interface Waiter {
  ticket: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * The hash-chained audit log. Sign decisions are queued and written in batches (at least
 * every second and on shutdown); administrative events are awaited until durable. A
 * failed write keeps the queue and retries: nothing is dropped and the chain never forks.
 */
export class AuditLog {
  /** Sealed slices of at most SLICE events, oldest first; removed only once written. */
  private readonly slices: EncodedEvents[] = [];
  /** The slice being filled. */
  private readonly open = new EventBatchWriter();
  private queued = 0;
  private seq: number;
  private hash: string;
  private flushing: Promise<void> | undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly maxBatch: number;
  lastFlushMs = 0;
  /** The clock's time when the oldest unwritten event was queued; undefined when none waits. */
  private pendingSince: number | undefined;
  private readonly clock: () => number;
  /** Called after each successful write with its duration (the flush latency metric). */
  onFlush: ((seconds: number) => void) | undefined;

  private readonly writer: ChainWriter;
  private readonly refusals: RefusalSampler;

  /** Events ever queued, and ever written: a signature waits until `written` passes its ticket. */
  private recorded = 0;
  private written = 0;
  /** Signatures waiting for their records, in ticket order. */
  private waiters: Waiter[] = [];
  /** The last write failed: signatures are answered on the queue (bounded by maxUnwrittenSeconds) until one succeeds. */
  private storeFailing = false;
  private flushSoon = false;
  private readonly acknowledge: Acknowledge;
  private readonly maxUnwrittenMs: number;

  private constructor(
    store: StoreSlice<"audit">,
    private readonly logger: Logger,
    last: StoredAuditEvent | undefined,
    opts: AuditLogOptions,
  ) {
    this.writer = opts.writer ?? new StoreChainWriter(store);
    this.seq = last?.seq ?? 0;
    this.hash = last?.hash ?? GENESIS_HASH;
    this.maxBatch = opts.maxBatch ?? 5_000;
    this.clock = opts.clock ?? (() => performance.now());
    this.refusals = new RefusalSampler(opts.refusalSampling ?? DEFAULT_REFUSAL_SAMPLING);
    this.acknowledge = opts.acknowledge ?? "written";
    this.maxUnwrittenMs = (opts.maxUnwrittenSeconds ?? 5) * 1000;
    this.timer = setInterval(() => {
      this.recordAggregates(false);
      this.refuseOverdueWaiters();
      void this.flush().catch(() => undefined);
    }, opts.flushIntervalMs ?? 250);
    this.timer.unref();
  }

  static async open(store: StoreSlice<"audit">, logger: Logger, opts: AuditLogOptions = {}): Promise<AuditLog> {
    return new AuditLog(store, logger, await store.audit.lastAudit(), opts);
  }

  /** The last event this log wrote (durably): what a checkpoint attests. */
  get head(): ChainHead {
    return { seq: this.seq, hash: this.hash };
  }

  get queueDepth(): number {
    return this.queued;
  }

  /** How long the oldest event not yet written has waited (0 if none): the audit flush lag. */
  get lagSeconds(): number {
    return this.pendingSince === undefined ? 0 : (this.clock() - this.pendingSince) / 1000;
  }

  /**
   * Queues an event (sign path: no I/O here). `payload`, if given, is recorded as its
   * SHA-256 (`payloadSha256`); the bytes themselves are never stored.
   */
  record(event: AuditEvent, payload?: Uint8Array): void {
    this.open.add(bounded(event), payload);
    this.recorded++;
    if (this.queued++ === 0) this.pendingSince = this.clock();
    if (this.open.count >= SLICE) this.slices.push(this.open.take());
    if (this.queued >= this.maxBatch && !this.flushing) void this.flush().catch(() => undefined);
  }

  /**
   * Queues a signature's event and returns when the signature may be answered: once the event is
   * written (group commit: one write in flight, the next batch gathering behind it), or at once
   * when acknowledging on the queue or while the store refuses writes — then the backlog bound
   * (`maxUnwrittenSeconds`, checked before signing) limits how long. A write that neither lands nor
   * fails within that bound refuses the signature (AUDIT_BACKLOG): no signature leaves without its
   * record beyond the bound. Undefined when there is nothing to wait for (no promise per call).
   */
  recordSigned(event: AuditEvent, payload?: Uint8Array): Promise<void> | undefined {
    this.record(event, payload);
    if (this.acknowledge === "queued" || this.storeFailing) return undefined;
    const ticket = this.recorded;
    if (!this.flushSoon && !this.flushing) {
      // Every sign of this turn of the event loop joins one write.
      this.flushSoon = true;
      setImmediate(() => {
        this.flushSoon = false;
        void this.flush().catch(() => undefined);
      });
    }
    return new Promise((resolve, reject) => this.waiters.push({ ticket, resolve, reject }));
  }

  /** Signatures whose records are written go out. */
  private releaseWritten(): void {
    let n = 0;
    while (n < this.waiters.length && this.waiters[n]!.ticket <= this.written) this.waiters[n++]!.resolve();
    if (n > 0) this.waiters = this.waiters.slice(n);
  }

  /** The store refused a write: waiting signatures go out on the queue (the backlog bound still applies). */
  private releaseAll(): void {
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) w.resolve();
  }

  /** A write that hangs (no answer, no error) past the backlog bound refuses the signatures it holds. */
  private refuseOverdueWaiters(): void {
    if (this.waiters.length === 0 || this.lagSeconds * 1000 <= this.maxUnwrittenMs) return;
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) {
      w.reject(
        new CustosError("AUDIT_BACKLOG", "this signature's audit record could not be written in time; the signature was not returned", { retryable: true }),
      );
    }
  }

  /**
   * Queues a refusal: recorded in full, or, when its source (identity, peer, kind, reason)
   * floods, counted into a `refusal.aggregate` row at the end of the window (refusal-sampler.ts).
   */
  recordRefusal(event: AuditEvent, payload?: Uint8Array): void {
    if (this.refusals.admit(event)) this.record(event, payload);
  }

  private recordAggregates(force: boolean): void {
    for (const row of this.refusals.drain(force)) this.record(row);
  }

  /** Records an event and waits until it (and everything before it) is durable. */
  async recordNow(event: AuditEvent, payload?: Uint8Array): Promise<void> {
    this.record(event, payload);
    await this.flush();
  }

  /** Writes everything queued so far; concurrent callers share one write. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.queued === 0) return;
    this.flushing = this.writeBatch().finally(() => {
      this.flushing = undefined;
      // What queued up during the write goes next if it is already a full hand-off, or if
      // signatures wait for it (group commit), unless the store just refused a write.
      if (this.queued >= this.maxBatch || (this.waiters.length > 0 && !this.storeFailing)) void this.flush().catch(() => undefined);
    });
    await this.flushing;
  }

  /**
   * Writes what is queued now, slice by slice (at most SLICE events each) with a yield between
   * them, so a large backlog does not stall the event loop in one go. A slice leaves the queue
   * only once written; a failure leaves it, and everything after it, for the next flush.
   */
  private async writeBatch(): Promise<void> {
    const started = performance.now();
    const startedOnClock = this.clock();
    if (this.open.count > 0) this.slices.push(this.open.take());
    let remaining = this.slices.length;
    while (remaining > 0) {
      const slice = this.slices[0]!;
      let head: { seq: number; hash: string };
      try {
        head = await this.writer.append(slice, { seq: this.seq, hash: this.hash });
      } catch (e) {
        this.logger.error({ event: "audit.flush_failed", err: e, queued: this.queued }, "audit write failed; will retry");
        this.storeFailing = true;
        this.releaseAll();
        throw e;
      }
      this.storeFailing = false;
      this.slices.shift();
      this.queued -= slice.count;
      this.written += slice.count;
      this.releaseWritten();
      remaining--;
      this.seq = head.seq;
      this.hash = head.hash;
      if (remaining > 0) await new Promise((r) => setImmediate(r));
    }
    this.lastFlushMs = performance.now() - started;
    // What queued during the write is no older than the write.
    this.pendingSince = this.queued > 0 ? startedOnClock : undefined;
    this.onFlush?.(this.lastFlushMs / 1000);
  }

  /** Stops the timer and writes what is queued. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.recordAggregates(true);
    await this.flush();
    await this.writer.close();
  }
}

/**
 * The event with every caller-supplied string bounded and escaped (bounded-text.ts): a key id
 * of 60,000 characters or one with line breaks is stored as a prefix, its length and its
 * SHA-256. The same object when nothing changes, as on every ordinary sign.
 */
function bounded(event: AuditEvent): AuditEvent {
  const top = boundStrings(event);
  // Details get more room: some are custos's own lists (governance.init names every officer with its fingerprint).
  const details = event.details && boundStrings(event.details, MAX_DETAIL_CHARS);
  if (top === event && details === event.details) return event;
  return { ...top, ...(details ? { details } : {}) };
}

export interface VerifyOptions {
  /** Continue after an already verified event instead of starting at the genesis. */
  from?: { seq: number; hash: string };
  /** Events read and checked per step; the event loop runs between steps. Default 2,000. */
  pageSize?: number;
  /** After each step: events verified so far in this run, and the last one's seq. */
  onProgress?(events: number, seq: number): void;
  /** Each page of events, once its links are verified (cross-checks read the bodies here). */
  onPage?(events: readonly StoredAuditEvent[]): void;
}

/**
 * Reads the chain from the store and checks every link (what `custos audit verify` runs, and
 * the console from where it last stopped). Yields to the event loop after each page: on a
 * busy service a long chain must not stall signing while it is checked.
 */
export async function verifyAuditChain(store: StoreSlice<"audit">, opts: VerifyOptions = {}): Promise<ChainCheck & { lastSeq: number }> {
  let prevSeq = opts.from?.seq ?? 0;
  let prevHash = opts.from?.hash ?? GENESIS_HASH;
  let total = 0;
  for (;;) {
    const page = await store.audit.readAudit(prevSeq, opts.pageSize ?? 2_000);
    if (page.length === 0) return { ok: true, events: total, lastHash: prevHash, lastSeq: prevSeq };
    const result = checkChain(page, prevSeq, prevHash);
    if (!result.ok) return { ...result, events: total + result.events, lastSeq: prevSeq };
    total += page.length;
    opts.onPage?.(page);
    prevSeq = page[page.length - 1]!.seq;
    prevHash = result.lastHash;
    opts.onProgress?.(total, prevSeq);
    await nextTurn();
  }
}
