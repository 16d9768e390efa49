import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import type { AuditEvent } from "../../src/audit/audit-log.js";
import { DEFERRED_DIGEST_MAX_BYTES, EventBatchWriter, decodeEvents } from "../../src/audit/event-batch.js";

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("audit event batches", () => {
  it("a sign event comes back field for field, its payload as the SHA-256 node:crypto computes", () => {
    const w = new EventBatchWriter();
    const payload = Buffer.from("symbol=BTCUSDT&side=BUY&timestamp=1700000000000");
    const before = Date.now();
    w.add({ kind: "sign", actor: "spiffe://custos/engine/alpha", outcome: "allowed", key: "binance-main", version: 3, peer: "10.0.0.7" }, payload);
    const [e] = decodeEvents(w.take());
    assert.deepEqual(e!.event, {
      kind: "sign",
      actor: "spiffe://custos/engine/alpha",
      outcome: "allowed",
      key: "binance-main",
      version: 3,
      peer: "10.0.0.7",
      payloadSha256: sha256(payload),
    });
    const at = Date.parse(e!.at);
    assert.ok(at >= before && at <= Date.now(), "at is the time of add()");
    assert.equal(e!.at, new Date(at).toISOString());
  });

  it("carries exchange-request events and their string details in the compact form, in field order", () => {
    const w = new EventBatchWriter();
    const payload = Buffer.from("POST /fapi/v1/order?symbol=BTCUSDT\n");
    w.add(
      {
        kind: "sign.request",
        actor: "a",
        outcome: "denied",
        reason: "POLICY_DENIED",
        key: "k",
        version: 2,
        peer: "::1",
        details: { method: "POST", path: "/fapi/v1/order", rule: "class:withdraw", note: "" },
      },
      payload,
    );
    const [e] = decodeEvents(w.take());
    assert.deepEqual(e!.event, {
      kind: "sign.request",
      actor: "a",
      outcome: "denied",
      reason: "POLICY_DENIED",
      key: "k",
      version: 2,
      payloadSha256: sha256(payload),
      peer: "::1",
      details: { method: "POST", path: "/fapi/v1/order", rule: "class:withdraw", note: "" },
    });
  });

  it("keeps absent fields absent and empty strings empty", () => {
    const w = new EventBatchWriter();
    w.add({ kind: "sign", actor: "unknown", outcome: "denied", reason: "KEY_NOT_FOUND", key: "" }, new Uint8Array(0));
    w.add({ kind: "sign", actor: "unknown", outcome: "failed", reason: "HSM_UNAVAILABLE" });
    const [a, b] = decodeEvents(w.take()).map((q) => q.event);
    assert.deepEqual(a, { kind: "sign", actor: "unknown", outcome: "denied", reason: "KEY_NOT_FOUND", key: "", payloadSha256: sha256(new Uint8Array(0)) });
    assert.deepEqual(b, { kind: "sign", actor: "unknown", outcome: "failed", reason: "HSM_UNAVAILABLE" });
    for (const e of [a, b]) for (const k of ["version", "peer"]) assert.ok(!(k in e!), `${k} absent`);
  });

  it("digests payloads above the deferral size at once, with the same result", () => {
    const w = new EventBatchWriter(256); // also forces the buffer to grow
    const big = randomBytes(DEFERRED_DIGEST_MAX_BYTES + 1);
    const small = randomBytes(DEFERRED_DIGEST_MAX_BYTES);
    w.add({ kind: "sign", actor: "a", outcome: "allowed", key: "k", version: 1 }, big);
    w.add({ kind: "sign", actor: "a", outcome: "allowed", key: "k", version: 1 }, small);
    const [x, y] = decodeEvents(w.take());
    assert.equal(x!.event.payloadSha256, sha256(big));
    assert.equal(y!.event.payloadSha256, sha256(small));
  });

  it("carries other events (details, non-ASCII) as they were, in recording order", () => {
    const w = new EventBatchWriter(64);
    const events: AuditEvent[] = [];
    for (let i = 0; i < 300; i++) {
      const e: AuditEvent =
        i % 3 === 0
          ? {
              kind: "key.import",
              actor: "spiffe://custos/admin/ö",
              outcome: "ok",
              key: `k${i}`,
              version: 1,
              details: { exchange: "binance", n: i, ok: true, label: "Grüße 👋" },
            }
          : { kind: "sign", actor: `spiffe://custos/engine/é${i}`, outcome: i % 2 ? "allowed" : "denied", key: `k${i}`, version: i, peer: "::1" };
      events.push(e);
      w.add(e);
    }
    assert.equal(w.count, 300);
    const back = decodeEvents(w.take()).map((q) => q.event);
    assert.deepEqual(back, events);
    assert.equal(w.count, 0, "take() starts a new batch");
    assert.deepEqual(decodeEvents(w.take()), []);
  });

  it("a caller-supplied digest and a payload together keep the caller's digest out of doubt", () => {
    const w = new EventBatchWriter();
    const payload = Buffer.from("abc");
    w.add({ kind: "sign", actor: "a", outcome: "allowed", payloadSha256: "0".repeat(64) }, payload);
    // An explicit payload always wins: the digest is of the bytes actually signed.
    assert.equal(decodeEvents(w.take())[0]!.event.payloadSha256, sha256(payload));
  });

  it("refuses a batch whose count does not match, or that is corrupt", () => {
    const w = new EventBatchWriter();
    w.add({ kind: "sign", actor: "a", outcome: "allowed" });
    const batch = w.take();
    assert.throws(() => decodeEvents({ ...batch, count: 2 }), /1 events decoded, 2 expected/);
    const bad = Uint8Array.from(batch.bytes);
    bad[0] = 9;
    assert.throws(() => decodeEvents({ bytes: bad, count: 1 }), /unknown entry tag/);
  });
});
