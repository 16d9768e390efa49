import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { PermissionObserver } from "../../exchange-permissions/checker.js";
import type { AuditLog } from "../../audit/audit-log.js";
import type { HsmHealth } from "../../hsm/hsm.js";
import type { AnomalyFinding, AnomalyScore } from "../../monitoring/anomaly.js";
import type { EgressObserver } from "../../egress/http-egress.js";
import type { SignObserver } from "../../signing/sign-service.js";
import { custosVersion } from "../../version.js";

export interface GovernanceSnapshot {
  /** Per key: days until its rotation is due, and the active version's age in whole days. */
  keys: Array<{ id: string; daysUntilDue: number; ageDays?: number }>;
  pendingProposals: number;
  frozenKeys: number;
  frozenClients: number;
}

/**
 * Prometheus metrics. Labels carry outcomes, reason codes, and the ids of registered clients
 * and existing keys (the sign path passes "" for anything else, so a caller cannot mint
 * series) — never payloads or key material.
 */
export class Metrics implements SignObserver, EgressObserver, PermissionObserver {
  readonly registry = new Registry();
  /** Every (outcome, reason, client, key) seen, with its count: the sign counter's series. */
  private readonly signCounts: SignCount[] = [];
  private readonly latency = new Histogram({
    name: "custos_sign_duration_seconds",
    help: "Time from request decoded to the answer (a signature once its audit record is written, an exchange's reply, or a denial), by outcome",
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
  private readonly auditFlush = new Histogram({
    name: "custos_audit_flush_duration_seconds",
    help: "Time to write one batch of queued audit events (chain, insert, commit)",
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  private readonly egressLatency = new Histogram({
    name: "custos_egress_duration_seconds",
    help: "Round trip of requests custos signed and sent (SendExchangeRequest), by exchange",
    labelNames: ["exchange"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  private readonly egressResponses = new Counter({
    name: "custos_egress_responses_total",
    help: "Requests custos sent to exchanges, by exchange and outcome (HTTP status class 2xx–5xx, or the failure: connect-timeout, connect-failed, response-timeout, connection-reset, response-too-large)",
    labelNames: ["exchange", "outcome"] as const,
    registers: [this.registry],
  });
  private readonly permissionsUnsafe = new Gauge({
    name: "custos_key_exchange_permissions_unsafe",
    help: "1 if the key's exchange-side settings, as custos last read them from the exchange, allow withdrawals or transfers or bind no IP; else 0",
    labelNames: ["key"] as const,
    registers: [this.registry],
  });
  private readonly permissionsChecked = new Gauge({
    name: "custos_key_exchange_permissions_checked_timestamp_seconds",
    help: "When custos last read the key's permissions from its exchange (Unix seconds)",
    labelNames: ["key"] as const,
    registers: [this.registry],
  });
  private readonly permissionsVerified = new Gauge({
    name: "custos_key_exchange_permissions_verified",
    help: "1 if custos's last check read the key's permissions from its exchange; 0 if it could not (not exposed by the exchange, waiting for a request carrying the passphrase, or the check failed)",
    labelNames: ["key"] as const,
    registers: [this.registry],
  });
  private readonly anomalies = new Counter({
    name: "custos_anomalies_total",
    help: "Anomalies raised on signing traffic, by client, key and signal (rate or mix)",
    labelNames: ["client", "key", "signal"] as const,
    registers: [this.registry],
  });
  // Series are resolved once, by client → key → reason (the reason fixes the outcome): the
  // sign path does three map look-ups, a number increment and one histogram observe.
  private readonly children = new Map<string, Map<string, Map<string, SignCount>>>();

  constructor(hsm: HsmHealth, audit: () => AuditLog | undefined) {
    const counts = this.signCounts;
    new Counter({
      name: "custos_sign_requests_total",
      help: 'Sign decisions by outcome (allowed, denied, failed), reason code, client and key ("": unregistered client or unknown key)',
      labelNames: ["outcome", "reason", "client", "key"] as const,
      registers: [this.registry],
      // The sign path bumps plain numbers (prom-client hashes the label set on every inc,
      // ~250 ns with a client URI); the counter takes them over at scrape time.
      collect() {
        this.reset();
        for (const c of counts) this.inc({ outcome: c.outcome, reason: c.reason, client: c.client, key: c.key }, c.n);
      },
    });
    // Unprefixed, as standard Node.js dashboards and alerts expect (process_cpu_seconds_total, nodejs_eventloop_lag_seconds, …).
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: "custos_build_info",
      help: "Always 1; labels say which custos build runs on which Node.js",
      labelNames: ["version", "node", "platform", "arch"] as const,
      registers: [this.registry],
    }).set({ version: custosVersion(), node: process.version, platform: process.platform, arch: process.arch }, 1);
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
    gauge("custos_audit_flush_lag_seconds", "Age of the oldest audit event not yet written (0: none waiting)", () => audit()?.lagSeconds ?? 0);
  }

  /** One audit batch written, in `seconds` (the audit log's `onFlush`). */
  observeAuditFlush(seconds: number): void {
    this.auditFlush.observe(seconds);
  }

  /** One request sent to an exchange (or failed on the way): its round trip and outcome. */
  egressed(exchange: string, outcome: string, seconds: number): void {
    this.egressLatency.labels(exchange).observe(seconds);
    this.egressResponses.labels(exchange, outcome).inc();
  }

  /** A key's exchange-side permissions read and judged (src/exchange-permissions). */
  exchangePermissionsChecked(keyId: string, unsafe: boolean, atSeconds: number): void {
    this.permissionsUnsafe.labels(keyId).set(unsafe ? 1 : 0);
    this.permissionsChecked.labels(keyId).set(atSeconds);
    this.permissionsVerified.labels(keyId).set(1);
  }

  /** A key's permission check could not read them from the exchange. */
  exchangePermissionsNotVerified(keyId: string): void {
    this.permissionsVerified.labels(keyId).set(0);
  }

  /** One anomaly raised by the detector. */
  anomalyRaised(f: Pick<AnomalyFinding, "client" | "key" | "signal">): void {
    this.anomalies.labels(f.client, f.key, f.signal).inc();
  }

  /** `custos_anomaly_score{client,key}`: each baseline's latest score, read at scrape time. */
  watchAnomalies(scores: () => Iterable<AnomalyScore>): void {
    new Gauge({
      name: "custos_anomaly_score",
      help: "Latest anomaly score of each client's traffic with each key (0 during warm-up)",
      labelNames: ["client", "key"] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const s of scores()) this.labels(s.client, s.key).set(s.score);
      },
    });
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
    new Gauge({
      name: "custos_key_age_days",
      help: "Whole days since the key's active version was activated",
      labelNames: ["key"] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const k of (await read()).keys) if (k.ageDays !== undefined) this.labels(k.id).set(k.ageDays);
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

  observe(outcome: "allowed" | "denied" | "failed", reason: string, seconds: number, client = "", key = ""): void {
    let byKey = this.children.get(client);
    if (byKey === undefined) this.children.set(client, (byKey = new Map()));
    let byReason = byKey.get(key);
    if (byReason === undefined) byKey.set(key, (byReason = new Map()));
    let c = byReason.get(reason);
    if (c === undefined) {
      c = { outcome, reason, client, key, n: 0, hist: this.latency.labels(outcome) };
      byReason.set(reason, c);
      this.signCounts.push(c);
    }
    c.n++;
    c.hist.observe(seconds);
    if (outcome === "failed") this.errors.labels(reason).inc();
  }
}

/** One series of custos_sign_requests_total: its labels, its count, its latency histogram child. */
interface SignCount {
  outcome: string;
  reason: string;
  client: string;
  key: string;
  n: number;
  hist: { observe(v: number): void };
}
