import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { AuditLog } from "../../audit/audit-log.js";
import type { Hsm } from "../../hsm/hsm.js";
import type { SignObserver } from "../../signing/sign-service.js";

export interface GovernanceSnapshot {
  keys: Array<{ id: string; daysUntilDue: number }>;
  pendingProposals: number;
  frozenKeys: number;
  frozenClients: number;
}

/** Prometheus metrics. Labels carry outcomes and reason codes only — never payloads or key material. */
export class Metrics implements SignObserver {
  readonly registry = new Registry();
  private readonly signs = new Counter({
    name: "custos_sign_requests_total",
    help: "Sign decisions by outcome (allowed, denied, failed) and reason code",
    labelNames: ["outcome", "reason"] as const,
    registers: [this.registry],
  });
  private readonly latency = new Histogram({
    name: "custos_sign_duration_seconds",
    help: "Time from request decoded to signature (or denial), by outcome",
    labelNames: ["outcome"] as const,
    buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25],
    registers: [this.registry],
  });
  private readonly errors = new Counter({
    name: "custos_errors_total",
    help: "Failed (not denied) sign requests by error code",
    labelNames: ["code"] as const,
    registers: [this.registry],
  });
  // Label children are resolved once; the sign path only calls inc/observe.
  private readonly children = new Map<string, { count: { inc(): void }; hist: { observe(v: number): void } }>();

  constructor(hsm: Hsm, audit: () => AuditLog | undefined) {
    collectDefaultMetrics({ register: this.registry, prefix: "custos_process_" });
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(read());
        },
      });
    gauge("custos_hsm_sessions", "HSM sessions open", () => hsm.status().sessions);
    gauge("custos_hsm_sessions_in_use", "HSM sessions leased right now", () => hsm.status().sessionsInUse);
    gauge("custos_hsm_session_waiters", "Operations waiting for an HSM session", () => hsm.status().waiters);
    gauge("custos_hsm_ready", "1 if the HSM sessions are open and logged in", () => (hsm.status().ready ? 1 : 0));
    gauge("custos_audit_queue_depth", "Audit events waiting to be written", () => audit()?.queueDepth ?? 0);
  }

  /**
   * Key and governance gauges, read at scrape time: days until each key's rotation is due
   * (negative when overdue), pending proposals, frozen keys and clients.
   */
  watchGovernance(snapshot: () => Promise<GovernanceSnapshot>): void {
    let last: Promise<GovernanceSnapshot> | undefined;
    // One read per scrape, shared by the gauges below.
    const read = () => (last ??= snapshot().finally(() => setImmediate(() => (last = undefined))));
    new Gauge({
      name: "custos_key_days_until_due",
      help: "Days until the key's active version is due for rotation (negative: overdue)",
      labelNames: ["key"] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const k of (await read()).keys) this.labels(k.id).set(k.daysUntilDue);
      },
    });
    const simple = (name: string, help: string, pick: (s: GovernanceSnapshot) => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        async collect() {
          this.set(pick(await read()));
        },
      });
    simple("custos_proposals_pending", "Proposals waiting for their quorum", (s) => s.pendingProposals);
    simple("custos_keys_frozen", "Keys frozen (no signing until a quorum thaws them)", (s) => s.frozenKeys);
    simple("custos_clients_frozen", "Trading clients frozen", (s) => s.frozenClients);
  }

  observe(outcome: "allowed" | "denied" | "failed", reason: string, seconds: number): void {
    const id = outcome + "/" + reason;
    let c = this.children.get(id);
    if (!c) {
      c = { count: this.signs.labels(outcome, reason), hist: this.latency.labels(outcome) };
      this.children.set(id, c);
    }
    c.count.inc();
    c.hist.observe(seconds);
    if (outcome === "failed") this.errors.labels(reason).inc();
  }
}
