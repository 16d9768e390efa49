import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Metrics } from "../../src/transport/http/metrics.js";
import { FakeHsm } from "./fake-hsm.js";

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
    assert.equal(sample(text, 'custos_sign_requests_total{outcome="failed",reason="HSM_UNAVAILABLE"}'), 2);
    assert.equal(sample(text, 'custos_sign_requests_total{outcome="denied",reason="NO_GRANT"}'), 1);
    assert.equal(sample(text, 'custos_sign_duration_seconds_count{outcome="failed"}'), 3);
    // 30 µs falls in the 50 µs bucket, not in the 25 µs one.
    assert.equal(sample(text, 'custos_sign_duration_seconds_bucket{le="0.000025",outcome="allowed"}'), 0);
    assert.equal(sample(text, 'custos_sign_duration_seconds_bucket{le="0.00005",outcome="allowed"}'), 1);
  });
});
