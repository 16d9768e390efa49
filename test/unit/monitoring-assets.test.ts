import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import type { AuditLog } from "../../src/audit/audit-log.js";
import { Metrics } from "../../src/transport/http/metrics.js";
import { ALERT_RULES, DASHBOARD, alertRules, assetMetricNames, dashboardQueries, isExported } from "../helpers/monitoring-assets.js";
import { FakeHsm } from "./fake-hsm.js";

/** The Grafana dashboard and the Prometheus rules name only metrics custos really exports (custos_*, and the unprefixed process_* / nodejs_* defaults). */

/** A Metrics registry wired the way the service wires it, on fakes. */
async function exportedTypes(): Promise<Map<string, string>> {
  const m = new Metrics(new FakeHsm(), () => ({ queueDepth: 0, lagSeconds: 0 }) as unknown as AuditLog);
  m.watchGovernance(async () => ({ keys: [{ id: "k1", daysUntilDue: 3, ageDays: 42 }], pendingProposals: 0, frozenKeys: 0, frozenClients: 0 }));
  m.watchAnomalies(() => [{ client: "c", key: "k1", score: 1 }]);
  return new Map((await m.registry.getMetricsAsJSON()).map((x) => [x.name, String(x.type)]));
}

describe("monitoring assets", () => {
  it("every metric in the dashboard and the alert rules is exported by Metrics", async () => {
    const types = await exportedTypes();
    const { dashboard, rules } = assetMetricNames();
    assert.ok(dashboard.size >= 15, `dashboard uses ${dashboard.size} metrics`);
    assert.ok(rules.size >= 6, `rules use ${rules.size} metrics`);
    const missing = [...dashboard, ...rules].filter((n) => !isExported(n, types));
    assert.deepEqual(missing, []);
  });

  it("the check catches a name that is not exported (a renamed or misspelt metric)", async () => {
    const types = await exportedTypes();
    assert.equal(isExported("custos_sign_duration_seconds_bucket", types), true);
    assert.equal(isExported("custos_sign_requests_total_bucket", types), false, "a counter has no buckets");
    assert.equal(isExported("custos_sign_request_total", types), false);
    assert.equal(isExported("custos_audit_flush_seconds", types), false);
    assert.equal(isExported("nodejs_eventloop_lag_p99_seconds", types), true);
    assert.equal(isExported("custos_process_nodejs_eventloop_lag_p99_seconds", types), false, "the old prefixed name is gone");
  });

  it("process panels and rules use the standard unprefixed names, scoped to custos instances by custos_build_info", () => {
    const { dashboard, rules } = assetMetricNames();
    for (const n of ["nodejs_eventloop_lag_p99_seconds", "process_resident_memory_bytes", "custos_build_info"]) assert.ok(dashboard.has(n), n);
    assert.ok(rules.has("nodejs_eventloop_lag_p99_seconds"));
    const d = JSON.parse(readFileSync(DASHBOARD, "utf8")) as unknown;
    const rulesText = alertRules(readFileSync(ALERT_RULES, "utf8")).map((r) => r.expr);
    // Other Node.js services export the same names: every query on them is joined to custos_build_info.
    for (const q of [...dashboardQueries(d), ...rulesText].filter((x) => /\b(?:process|nodejs)_/.test(x)))
      assert.match(q, /and on \(job, instance\) custos_build_info/, q);
  });

  it("the rules alert on anomalies, overdue keys, an unavailable HSM and audit flush lag, each with a severity", () => {
    const rules = alertRules(readFileSync(ALERT_RULES, "utf8"));
    const byName = new Map(rules.map((r) => [r.alert, r]));
    assert.equal(byName.size, rules.length, "alert names are unique");
    for (const r of rules) {
      assert.ok(r.expr.length > 0, `${r.alert} has an expr`);
      assert.ok(["critical", "warning", "info"].includes(r.severity ?? ""), `${r.alert} severity ${r.severity}`);
    }
    assert.match(byName.get("CustosSigningAnomaly")?.expr ?? "", /custos_anomalies_total/);
    assert.match(byName.get("CustosKeyOverdue")?.expr ?? "", /custos_key_days_until_due < 0/);
    assert.match(byName.get("CustosHsmUnavailable")?.expr ?? "", /custos_hsm_ready == 0/);
    assert.match(byName.get("CustosAuditFlushLag")?.expr ?? "", /custos_audit_flush_lag_seconds/);
    assert.equal(byName.get("CustosHsmUnavailable")?.severity, "critical");
  });

  it("the dashboard is a Grafana dashboard: unique panel ids, every panel with a query on a Prometheus datasource", () => {
    const d = JSON.parse(readFileSync(DASHBOARD, "utf8")) as {
      uid: string;
      panels: Array<{ id: number; type: string; title: string; targets?: Array<{ expr: string }> }>;
    };
    assert.equal(d.uid, "custos-overview");
    const ids = d.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length);
    for (const p of d.panels.filter((x) => x.type !== "row"))
      assert.ok((p.targets ?? []).every((t) => t.expr.includes("custos_")) && p.targets!.length > 0, p.title);
    const queries = dashboardQueries(d).join("\n");
    for (const needed of [
      "custos_anomaly_score",
      "custos_key_age_days",
      "custos_audit_flush_duration_seconds_bucket",
      "custos_hsm_session_waiters",
      "client, key",
    ]) {
      assert.ok(queries.includes(needed), needed);
    }
  });
});
