import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import { signerClient, unary } from "../../src/client/connection.js";
import { EMBEDDED_CLIENT, LOOPBACK_CIDRS } from "../../src/config/config.js";
import { issueDevClient } from "../../src/config/embedded.js";
import { SignatureEncoding, type SignerClient } from "../../src/gen/custos/v1/signer.js";
import { auditEvents, expectDenied, importSecret, setGrants, startInProcess, type AuditBody, type InProcessService } from "../helpers/harness.js";
import { assetMetricNames, isExported, typesFromExposition } from "../helpers/monitoring-assets.js";

/**
 * Anomaly detection through the real service (SoftHSM2, gRPC over mTLS, SQLite): two trading
 * clients sign with one key; the test closes each interval itself (`anomalies.evaluate()`),
 * so nothing depends on timing. The configured interval is an hour: its timer never fires
 * during the test, and every interval the test closes counts as half an interval (×2).
 */

const BETA = "spiffe://custos/engine/beta";
const KEY = "k-anomaly";
// Distinctive payload bytes: they must appear in no log line.
const PAYLOAD = Buffer.from("symbol=BTCUSDT&side=SELL&quantity=3&SENTINEL-anomaly-51c2");
const RAW = SignatureEncoding.SIGNATURE_ENCODING_RAW;

describe("anomaly detection on signing traffic", () => {
  let svc: InProcessService;
  let beta: SignerClient;
  const sign = (client: SignerClient) => unary(client, "sign", { keyId: KEY, version: 0, payload: PAYLOAD, encoding: RAW }, { deadline: Date.now() + 20_000 });
  const signMany = (client: SignerClient, n: number) => Promise.all(Array.from({ length: n }, () => sign(client)));
  const anomalyEvents = async () => (await auditEvents(svc.dir)).filter((e) => e.kind === "anomaly");
  const scrape = async () => (await fetch(`${svc.conn.http}/metrics`)).text();
  const sample = (text: string, series: string) => {
    const line = text.split("\n").find((l) => l.startsWith(series + " "));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };

  /** Polls the audit log until `pick` finds something (sign decisions and anomalies are batched). */
  async function eventually<T>(pick: (events: AuditBody[]) => T | undefined, what: string): Promise<T> {
    for (let i = 0; i < 100; i++) {
      const hit = pick(await auditEvents(svc.dir));
      if (hit !== undefined) return hit;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail(`no ${what} in the audit log`);
  }

  before(async () => {
    svc = await startInProcess((c) => {
      c.anomaly = { enabled: true, intervalMs: 3_600_000, halfLifeIntervals: 10, warmupIntervals: 5, threshold: 8, varianceFloor: 4, autoFreezeThreshold: 20 };
    });
    await importSecret(svc.custody, KEY, randomBytes(32)); // granted to the dev client (embedded default)
    const p = await setGrants(svc.custody, BETA, { cidrs: LOOPBACK_CIDRS, keyIds: [KEY] });
    assert.equal(p.state, "executed", p.failure);
    beta = signerClient(svc.conn.grpc, { caPath: svc.conn.caPath, ...(await issueDevClient(svc.dir, "beta", BETA)) });
  });
  after(async () => {
    beta?.close();
    await svc.stop();
  });

  it("raises nothing for normal traffic from two clients, past the warm-up", async () => {
    const detector = svc.service.anomalies!;
    for (let i = 0; i < 12; i++) {
      // Each client: 2 to 4 signs per interval.
      await Promise.all([signMany(svc.signer, 2 + (i % 3)), signMany(beta, 4 - (i % 3))]);
      assert.deepEqual(detector.evaluate(), [], `interval ${i}`);
    }
    const scores = [...detector.scores()];
    assert.deepEqual(
      scores.map((s) => [s.client, s.key]).sort(),
      [
        [BETA, KEY],
        [EMBEDDED_CLIENT, KEY],
      ].sort(),
    );
    for (const s of scores) assert.ok(s.score < 8, `${s.client}: ${s.score}`);
    assert.deepEqual(await anomalyEvents(), []);
    const text = await scrape();
    assert.equal(sample(text, "custos_clients_frozen"), 0);
    assert.ok(!/^custos_anomalies_total\{/m.test(text), "no anomaly counted");
    assert.equal(sample(text, `custos_anomaly_score{client="${BETA}",key="${KEY}"}`), scores.find((s) => s.client === BETA)!.score);
    assert.ok((sample(text, `custos_sign_requests_total{outcome="allowed",reason="OK",client="${BETA}",key="${KEY}"}`) ?? 0) >= 36);
  });

  it("a burst from one client raises the anomaly and freezes exactly that client; the other still signs", async () => {
    const detector = svc.service.anomalies!;
    await Promise.all([signMany(svc.signer, 3), signMany(beta, 300)]);
    const found = detector.evaluate();
    assert.deepEqual(
      found.map((f) => [f.client, f.key, f.signal, f.freeze]),
      [[BETA, KEY, "rate", true]],
    );

    const anomaly = await eventually((events) => events.find((e) => e.kind === "anomaly"), "anomaly event");
    assert.deepEqual([anomaly.actor, anomaly.outcome, anomaly.key, anomaly.details?.client, anomaly.details?.signal], ["custos", "ok", KEY, BETA, "rate"]);
    assert.ok(Number(anomaly.details?.score) >= 20);
    const freeze = await eventually((events) => events.find((e) => e.kind === "freeze" && e.outcome === "ok"), "freeze event");
    assert.equal(freeze.actor, "custos");
    assert.equal(freeze.details?.target, `client:${BETA}`);

    // The freeze is durable once audited: beta is refused, the dev client is not.
    await expectDenied(sign(beta), status.FAILED_PRECONDITION, "CLIENT_FROZEN");
    const ok = await sign(svc.signer);
    assert.equal(ok.keyVersion, 1);
    const freezes = (await auditEvents(svc.dir)).filter((e) => e.kind === "freeze");
    assert.equal(freezes.length, 1, "only the bursting client is frozen");

    // The same episode raises nothing more while beta keeps hammering (now refused).
    await Promise.all(Array.from({ length: 50 }, () => sign(beta).catch(() => undefined)));
    assert.deepEqual(detector.evaluate(), []);
    assert.equal((await anomalyEvents()).length, 1);

    const text = await scrape();
    assert.equal(sample(text, `custos_anomalies_total{client="${BETA}",key="${KEY}",signal="rate"}`), 1);
    assert.equal(sample(text, "custos_clients_frozen"), 1);
    assert.ok((sample(text, `custos_anomaly_score{client="${BETA}",key="${KEY}"}`) ?? 0) >= 8);
    assert.ok((sample(text, `custos_sign_requests_total{outcome="denied",reason="CLIENT_FROZEN",client="${BETA}",key="${KEY}"}`) ?? 0) >= 1);

    // The warn line carries the stable fields, and no payload.
    const lines = svc
      .logs()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const warn = lines.find((l) => l.event === "anomaly");
    assert.deepEqual([warn?.level, warn?.client, warn?.key, warn?.signal, warn?.freeze], ["warn", BETA, KEY, "rate", true]);
    assert.ok(lines.some((l) => l.event === "freeze" && l.actor === "custos" && l.id === BETA));
    for (const form of ["SENTINEL-anomaly-51c2", PAYLOAD.toString("hex"), PAYLOAD.toString("base64")]) assert.ok(!svc.logs().includes(form), form);
  });

  it("exports every metric the shipped dashboard and alert rules name", async () => {
    const types = typesFromExposition(await scrape());
    const { dashboard, rules } = assetMetricNames();
    assert.deepEqual(
      [...dashboard, ...rules].filter((n) => !isExported(n, types)),
      [],
    );
  });
});
