import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { AuditLog } from "../../src/audit/audit-log.js";
import { Metrics } from "../../src/transport/http/metrics.js";
import { FakeHsm } from "./fake-hsm.js";
import { REPO } from "../helpers/harness.js";

/** The value of one exposition line, e.g. sample(text, 'custos_errors_total{code="HSM_ERROR"}'). */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("Metrics", () => {
  it("counts failures by error code in custos_errors_total, and denials only as decisions", async () => {
    const m = new Metrics(new FakeHsm(), () => undefined);
    m.observe("failed", "HSM_UNAVAILABLE", 0.0001);
    m.observe("failed", "HSM_UNAVAILABLE", 0.0002);
    m.observe("failed", "INTERNAL", 0.0001);
    m.observe("denied", "NO_GRANT", 0.00001);
    m.observe("allowed", "OK", 0.00003);
    const text = await m.registry.metrics();
    assert.equal(sample(text, 'custos_errors_total{code="HSM_UNAVAILABLE"}'), 2);
    assert.equal(sample(text, 'custos_errors_total{code="INTERNAL"}'), 1);
    assert.equal(sample(text, 'custos_errors_total{code="NO_GRANT"}'), undefined, "a denial is a decision, not an error");
    assert.equal(sample(text, 'custos_sign_requests_total{outcome="failed",reason="HSM_UNAVAILABLE",client="",key=""}'), 2);
    assert.equal(sample(text, 'custos_sign_requests_total{outcome="denied",reason="NO_GRANT",client="",key=""}'), 1);
    assert.equal(sample(text, 'custos_sign_duration_seconds_count{outcome="failed"}'), 3);
    // 30 µs falls in the 50 µs bucket, not in the 25 µs one.
    assert.equal(sample(text, 'custos_sign_duration_seconds_bucket{le="0.000025",outcome="allowed"}'), 0);
    assert.equal(sample(text, 'custos_sign_duration_seconds_bucket{le="0.00005",outcome="allowed"}'), 1);
  });

  it("labels sign decisions by client and key, each pair and reason a series of its own", async () => {
    const m = new Metrics(new FakeHsm(), () => undefined);
    const alpha = "spiffe://custos/engine/alpha";
    for (let i = 0; i < 3; i++) m.observe("allowed", "OK", 0.0001, alpha, "k1");
    m.observe("allowed", "OK", 0.0001, alpha, "k2");
    m.observe("denied", "KEY_FROZEN", 0.0001, alpha, "k1");
    m.observe("denied", "UNKNOWN_CLIENT", 0.0001, "", "");
    const text = await m.registry.metrics();
    assert.equal(sample(text, `custos_sign_requests_total{outcome="allowed",reason="OK",client="${alpha}",key="k1"}`), 3);
    assert.equal(sample(text, `custos_sign_requests_total{outcome="allowed",reason="OK",client="${alpha}",key="k2"}`), 1);
    assert.equal(sample(text, `custos_sign_requests_total{outcome="denied",reason="KEY_FROZEN",client="${alpha}",key="k1"}`), 1);
    assert.equal(sample(text, 'custos_sign_requests_total{outcome="denied",reason="UNKNOWN_CLIENT",client="",key=""}'), 1);
    // The latency histogram stays by outcome only: client × key × buckets would be too many series.
    assert.equal(sample(text, 'custos_sign_duration_seconds_count{outcome="allowed"}'), 4);
  });

  it("exports key age and days until due, audit flush latency and lag, and anomaly scores and counts", async () => {
    let lag = 0;
    const m = new Metrics(new FakeHsm(), () => ({ queueDepth: 7, lagSeconds: lag }) as unknown as AuditLog);
    m.watchGovernance(async () => ({
      keys: [
        { id: "k1", daysUntilDue: -2, ageDays: 47 },
        { id: "k2", daysUntilDue: 30 },
      ],
      pendingProposals: 1,
      frozenKeys: 0,
      frozenClients: 2,
    }));
    m.watchAnomalies(() => [{ client: "c1", key: "k1", score: 12.5 }]);
    m.observeAuditFlush(0.003);
    m.observeAuditFlush(0.2);
    m.anomalyRaised({ client: "c1", key: "k1", signal: "rate" });
    lag = 1.5;
    const text = await m.registry.metrics();
    assert.equal(sample(text, 'custos_key_age_days{key="k1"}'), 47);
    assert.equal(sample(text, 'custos_key_age_days{key="k2"}'), undefined, "no age without an activated version");
    assert.equal(sample(text, 'custos_key_days_until_due{key="k1"}'), -2);
    assert.equal(sample(text, "custos_clients_frozen"), 2);
    assert.equal(sample(text, "custos_audit_queue_depth"), 7);
    assert.equal(sample(text, "custos_audit_flush_lag_seconds"), 1.5);
    assert.equal(sample(text, "custos_audit_flush_duration_seconds_count"), 2);
    assert.equal(sample(text, 'custos_audit_flush_duration_seconds_bucket{le="0.005"}'), 1);
    assert.equal(sample(text, 'custos_anomaly_score{client="c1",key="k1"}'), 12.5);
    assert.equal(sample(text, 'custos_anomalies_total{client="c1",key="k1",signal="rate"}'), 1);
  });

  it("exports prom-client's process and Node.js metrics under their standard names, and custos_build_info", async () => {
    const m = new Metrics(new FakeHsm(), () => undefined);
    const text = await m.registry.metrics();
    const names = new Set((await m.registry.getMetricsAsJSON()).map((x) => x.name));
    for (const standard of [
      "process_cpu_seconds_total",
      "process_resident_memory_bytes",
      "nodejs_eventloop_lag_seconds",
      "nodejs_eventloop_lag_p99_seconds",
      "nodejs_heap_size_used_bytes",
    ]) {
      assert.ok(names.has(standard), standard);
    }
    assert.deepEqual(
      [...names].filter((n) => n.startsWith("custos_process_")),
      [],
      "no custos prefix on the defaults",
    );
    const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string };
    assert.match(pkg.version, /^\d+\.\d+\.\d+/);
    const series = `custos_build_info{version="${pkg.version}",node="${process.version}",platform="${process.platform}",arch="${process.arch}"}`;
    assert.equal(sample(text, series), 1);
    assert.equal(text.split("\n").filter((l) => l.startsWith("custos_build_info{")).length, 1);
  });
});
