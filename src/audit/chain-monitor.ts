import type { StoreSlice } from "../store/store.js";
import { verifyAuditChain } from "./audit-log.js";
import { GENESIS_HASH } from "./chain.js";

/** The chain as far as this service has checked it. */
export type ChainVerification =
  | { state: "verified"; events: number }
  /** A check is still running: `events` verified so far. */
  | { state: "checking"; events: number }
  | { state: "broken"; events: number; brokenAt: number; reason: string };

/**
 * The audit chain's verification for the officer console, without stalling signing: the
 * first check walks the whole chain, later ones continue from the last verified event (the
 * chain only grows), each in pages with the event loop running in between. Concurrent
 * callers share one run; a caller waits at most `waitMs`, then sees how far it got. Once a
 * broken link is found it is reported until restart. `custos audit verify` re-checks every
 * link from the genesis.
 */
export class AuditChainMonitor {
  private verified = { seq: 0, hash: GENESIS_HASH, events: 0 };
  private inProgress = 0;
  private broken: Extract<ChainVerification, { state: "broken" }> | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly store: StoreSlice<"audit">,
    private readonly waitMs = 2_000,
  ) {}

  async check(): Promise<ChainVerification> {
    if (this.broken) return this.broken;
    this.running ??= this.run().finally(() => (this.running = undefined));
    let timer: NodeJS.Timeout | undefined;
    const waited = await Promise.race([
      this.running.then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(resolve, this.waitMs, false))),
    ]).finally(() => clearTimeout(timer));
    if (this.broken) return this.broken;
    return waited ? { state: "verified", events: this.verified.events } : { state: "checking", events: this.verified.events + this.inProgress };
  }

  private async run(): Promise<void> {
    const start = this.verified;
    this.inProgress = 0;
    const r = await verifyAuditChain(this.store, { from: start, onProgress: (events) => (this.inProgress = events) });
    this.inProgress = 0;
    if (r.ok) this.verified = { seq: r.lastSeq, hash: r.lastHash, events: start.events + r.events };
    else this.broken = { state: "broken", events: start.events + r.events, brokenAt: r.brokenAt, reason: r.problem };
  }
}
