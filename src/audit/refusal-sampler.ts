import type { AuditEvent } from "./audit-log.js";

/** How refusals are sampled so a flood of them cannot fill the disk with audit rows. */
export interface RefusalSampling {
  /** Length of a counting window. */
  windowMs: number;
  /** Refusals recorded one by one per source and window; the rest are counted. */
  individualPerSource: number;
  /** Sources tracked per window; refusals from further sources are counted per kind and reason only. */
  maxSources: number;
}

export const DEFAULT_REFUSAL_SAMPLING: RefusalSampling = { windowMs: 10_000, individualPerSource: 10, maxSources: 1_000 };

/** The audit kind of a row that counts refusals not recorded one by one. */
export const AGGREGATE_KIND = "refusal.aggregate";

interface Source {
  actor: string;
  peer: string | undefined;
  kind: string;
  reason: string;
  /** The gRPC method, for refusals the transport decided (`details.rpc`). */
  rpc: string | undefined;
  outcome: AuditEvent["outcome"];
  seen: number;
  counted: number;
}

/**
 * Decides which refusals are audited one by one and counts the others. A source is a
 * (client identity, peer address, event kind, reason, gRPC method if named) in one window; its first refusals are
 * recorded in full, the rest leave one `refusal.aggregate` row per source at the end of the
 * window (`details.count`, `details.refused`, `details.from`/`to`). Every refusal is thus
 * audited, individually or in a count, and a window writes at most
 * maxSources × (individualPerSource + 1) rows plus one per (kind, reason) beyond that.
 */
export class RefusalSampler {
  private sources = new Map<string, Source>();
  private windowStart: number;

  constructor(
    private readonly sampling: RefusalSampling = DEFAULT_REFUSAL_SAMPLING,
    private readonly now: () => number = Date.now,
  ) {
    this.windowStart = now();
  }

  /** True if `event` is to be recorded in full; otherwise it was counted. */
  admit(event: AuditEvent): boolean {
    const ended = this.now() - this.windowStart >= this.sampling.windowMs;
    if (ended && this.sources.size === 0) this.windowStart = this.now();
    const reason = event.reason ?? "";
    const rpc = typeof event.details?.rpc === "string" ? event.details.rpc : undefined;
    let id = `${event.actor}\n${event.peer ?? ""}\n${event.kind}\n${reason}\n${rpc ?? ""}`;
    let source = this.sources.get(id);
    if (!source && this.sources.size >= this.sampling.maxSources) {
      // Past the cap, sources merge per kind and reason: a bounded set (both are custos's own names).
      id = `*\n*\n${event.kind}\n${reason}\n${rpc ?? ""}`;
      source = this.sources.get(id);
      const merged = { actor: "*", peer: undefined, kind: event.kind, reason, rpc, outcome: event.outcome };
      source ??= this.add(id, { ...merged, seen: this.sampling.individualPerSource, counted: 0 });
    }
    source ??= this.add(id, { actor: event.actor, peer: event.peer, kind: event.kind, reason, rpc, outcome: event.outcome, seen: 0, counted: 0 });
    if (source.seen < this.sampling.individualPerSource) {
      source.seen++;
      return true;
    }
    source.counted++;
    return false;
  }

  /**
   * The aggregate rows of the window, if it has ended (or `force`, at shutdown), and a new
   * window. Sources that only had individual records leave no row.
   */
  drain(force = false): AuditEvent[] {
    const now = this.now();
    if (!force && now - this.windowStart < this.sampling.windowMs) return [];
    const from = new Date(this.windowStart).toISOString();
    const to = new Date(now).toISOString();
    const rows: AuditEvent[] = [];
    for (const s of this.sources.values()) {
      if (s.counted === 0) continue;
      rows.push({
        kind: AGGREGATE_KIND,
        actor: s.actor,
        outcome: s.outcome,
        reason: s.reason,
        ...(s.peer ? { peer: s.peer } : {}),
        details: { refused: s.kind, ...(s.rpc ? { rpc: s.rpc } : {}), count: s.counted, from, to },
      });
    }
    this.sources = new Map();
    this.windowStart = now;
    return rows;
  }

  private add(id: string, source: Source): Source {
    this.sources.set(id, source);
    return source;
  }
}
