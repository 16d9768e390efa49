import assert from "node:assert/strict";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import { unary } from "../../src/client/connection.js";
import { EMBEDDED_CLIENT } from "../../src/config/config.js";
import { SignatureEncoding } from "../../src/gen/custos/v1/signer.js";
import { expectDenied, importSecret, startInProcess, type InProcessService } from "../helpers/harness.js";

/** The HTTP side an operator scrapes and probes, and the log lines it ships. */
describe("health, readiness, metrics and logs", () => {
  let svc: InProcessService;
  const secret = randomBytes(48);
  before(async () => {
    svc = await startInProcess();
    await importSecret(svc.custody, "metrics-key", secret);
  });
  after(async () => svc.stop());

  const get = (path: string) => fetch(svc.conn.http + path);

  /** The value of one sample line, e.g. metric('custos_errors_total{code="INTERNAL"}'). */
  function sample(text: string, series: string): number | undefined {
    const line = text.split("\n").find((l) => l.startsWith(series + " "));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  }

  it("answers /healthz and /readyz with the HSM and store state", async () => {
    const health = await get("/healthz");
    assert.equal(health.status, 200);
    const ready = await get("/readyz");
    assert.equal(ready.status, 200);
    const body = (await ready.json()) as { status: string; hsm: { ready: boolean; dispatch: string; sessions: number }; store: { ok: boolean } };
    assert.equal(body.status, "ready");
    assert.equal(body.hsm.ready, true);
    assert.equal(body.hsm.dispatch, "worker", "SoftHSM2 defaults to the signing thread (with lone calls done inline)");
    assert.equal(body.hsm.sessions, svc.config.hsm.sessions);
    assert.equal(body.store.ok, true);
    assert.deepEqual((body as unknown as { keys: { overdue: unknown[] } }).keys.overdue, [], "a fresh key is not overdue");
  });

  it("reports an overdue key on /readyz without failing readiness, and days until due in /metrics", async () => {
    // A key activated 46 days ago with the default 45-day max age: written through the store
    // the service uses (a real key cannot be back-dated through the API).
    const store = new SqliteStore(svc.config.store.sqlitePath);
    const old = new Date(Date.now() - 46 * 86_400_000).toISOString();
    await store.keys.createKey(
      { id: "old-key", exchange: "binance", environment: "testnet", label: "old", apiKeyId: "x", algorithm: "hmac-sha256", maxAgeDays: 45, createdAt: old },
      { keyId: "old-key", version: 1, objectId: "custos:old-key:v1", state: "active", createdAt: old, activatedAt: old },
    );
    await store.close();
    const ready = await get("/readyz");
    assert.equal(ready.status, 200, "overdue keys do not fail readiness");
    const body = (await ready.json()) as { keys: { overdue: Array<{ id: string; dueAt: string }> } };
    assert.deepEqual(
      body.keys.overdue.map((k) => k.id),
      ["old-key"],
    );
    assert.equal(Date.parse(body.keys.overdue[0]!.dueAt), Date.parse(old) + 45 * 86_400_000);
    const text = await (await get("/metrics")).text();
    assert.equal(sample(text, 'custos_key_days_until_due{key="old-key"}'), -1);
    assert.equal(sample(text, 'custos_key_days_until_due{key="metrics-key"}'), 44);
    assert.equal(sample(text, "custos_proposals_pending"), 0);
    assert.equal(sample(text, "custos_keys_frozen"), 0);
    assert.equal(sample(text, "custos_clients_frozen"), 0);
  });

  it("counts sign decisions by outcome and reason, with latency histograms and HSM gauges", async () => {
    const payload = Buffer.from("symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.01");
    for (let i = 0; i < 5; i++)
      await unary(svc.signer, "sign", { keyId: "metrics-key", version: 0, payload, encoding: SignatureEncoding.SIGNATURE_ENCODING_HEX });
    for (let i = 0; i < 3; i++) {
      await expectDenied(unary(svc.signer, "sign", { keyId: "no-such-key", version: 0, payload, encoding: 0 }), status.NOT_FOUND, "KEY_NOT_FOUND");
    }
    const res = await get("/metrics");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /text\/plain/);
    const text = await res.text();
    // Labelled by client and key; a key id that does not exist is not a label value (key="").
    assert.equal(sample(text, `custos_sign_requests_total{outcome="allowed",reason="OK",client="${EMBEDDED_CLIENT}",key="metrics-key"}`), 5);
    assert.equal(sample(text, `custos_sign_requests_total{outcome="denied",reason="KEY_NOT_FOUND",client="${EMBEDDED_CLIENT}",key=""}`), 3);
    assert.ok(!text.includes("no-such-key"), "a caller-chosen key id never becomes a series");
    assert.equal(sample(text, 'custos_sign_duration_seconds_count{outcome="allowed"}'), 5);
    assert.equal(sample(text, 'custos_sign_duration_seconds_count{outcome="denied"}'), 3);
    assert.equal(sample(text, "custos_hsm_ready"), 1);
    assert.equal(sample(text, "custos_hsm_sessions"), svc.config.hsm.sessions);
    assert.equal(sample(text, "custos_hsm_sessions_in_use"), 0);
    assert.ok(sample(text, "custos_audit_queue_depth") !== undefined);
    // Labels carry outcomes, reason codes, client and key ids: no key material, no payload.
    assert.ok(!text.includes(payload.toString()));
    assert.ok(!text.includes(secret.toString("hex")));
  });

  it("logs JSON lines with stable fields and never the payload", async () => {
    const payload = Buffer.from("a-payload-that-must-not-be-logged-" + randomBytes(8).toString("hex"));
    await expectDenied(unary(svc.signer, "sign", { keyId: "no-such-key", version: 0, payload, encoding: 0 }), status.NOT_FOUND, "KEY_NOT_FOUND");
    const lines = svc
      .logs()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(lines.length > 0);
    for (const line of lines) {
      assert.equal(typeof line.time, "string");
      assert.ok(!Number.isNaN(Date.parse(line.time as string)), "time is ISO 8601");
      assert.equal(typeof line.level, "string", "level is a label, e.g. info");
      assert.equal(line.service, "custos");
    }
    assert.ok(!svc.logs().includes(payload.toString()));
    assert.ok(!svc.logs().includes(secret.toString("hex")) && !svc.logs().includes(secret.toString("base64")));
  });
});
