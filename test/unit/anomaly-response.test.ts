import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { describe, it } from "node:test";
import type { AuditEvent } from "../../src/audit/audit-log.js";
import { createLogger } from "../../src/log.js";
import type { AnomalyFinding } from "../../src/monitoring/anomaly.js";
import { respondToAnomalies } from "../../src/monitoring/anomaly-response.js";

const ALPHA = "spiffe://custos/engine/alpha";

function finding(overrides: Partial<AnomalyFinding> = {}): AnomalyFinding {
  return {
    client: ALPHA,
    key: "k1",
    signal: "rate",
    score: 42.123456,
    rateScore: 42.123456,
    mixScore: 0.5,
    count: 500,
    expected: 20.04,
    freeze: false,
    at: 0,
    ...overrides,
  };
}

function setup(freeze?: (client: string, reason: string) => Promise<boolean>) {
  const sink = new PassThrough();
  let text = "";
  sink.on("data", (d: Buffer) => (text += d.toString()));
  const events: AuditEvent[] = [];
  const counted: AnomalyFinding[] = [];
  const respond = respondToAnomalies({
    audit: { record: (e) => void events.push(e) },
    logger: createLogger("info", sink),
    counted: (f) => void counted.push(f),
    ...(freeze ? { freezeClient: freeze } : {}),
  });
  const lines = async () => {
    await new Promise((r) => setImmediate(r));
    return text
      .trim()
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  };
  /** The log lines once there are `n` (the freeze settles on a later turn), or whatever there is after 5 s. */
  const linesOnce = async (n: number) => {
    for (const deadline = Date.now() + 5_000; ; ) {
      const now = await lines();
      if (now.length >= n || Date.now() > deadline) return now;
    }
  };
  return { respond, events, counted, lines, linesOnce };
}

describe("respondToAnomalies", () => {
  it("audits the anomaly as custos, logs it at warn with the stable field names, counts it", async () => {
    const t = setup();
    t.respond(finding({ signal: "mix", endpointClass: "account" }));
    assert.deepEqual(t.events, [
      {
        kind: "anomaly",
        actor: "custos",
        outcome: "ok",
        key: "k1",
        details: { client: ALPHA, signal: "mix", score: 42.12, rateScore: 42.12, mixScore: 0.5, count: 500, expected: 20.04, endpointClass: "account" },
      },
    ]);
    const [line] = await t.lines();
    assert.equal(line!.level, "warn");
    assert.equal(line!.event, "anomaly");
    assert.equal(line!.client, ALPHA);
    assert.equal(line!.key, "k1");
    assert.equal(line!.score, 42.12);
    assert.equal(line!.freeze, false);
    assert.match(String(line!.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(t.counted.length, 1);
  });

  it("does not freeze when automatic freezing is off, even for a finding that asks", async () => {
    const t = setup();
    t.respond(finding({ freeze: true }));
    assert.equal(t.events.length, 1);
    assert.equal((await t.lines())[0]!.freeze, false);
  });

  it("freezes the client once when asked, however many of its keys cross together", async () => {
    const calls: Array<[string, string]> = [];
    let release: (frozen: boolean) => void = () => undefined;
    const t = setup((client, reason) => {
      calls.push([client, reason]);
      return new Promise<boolean>((r) => (release = r));
    });
    t.respond(finding({ freeze: true }));
    t.respond(finding({ key: "k2", freeze: true }));
    t.respond(finding({ client: "spiffe://custos/engine/beta", freeze: false }));
    assert.deepEqual(calls, [[ALPHA, "anomaly: rate score 42.12 on key k1"]]);
    release(true);
    const lines = await t.linesOnce(4);
    assert.deepEqual(
      lines.map((l) => l.event),
      ["anomaly", "anomaly", "anomaly", "anomaly.freeze"],
    );
    assert.equal(lines.at(-1)!.client, ALPHA);
  });

  it("logs a failed freeze at error and keeps going", async () => {
    const t = setup(async () => {
      throw new Error("store down");
    });
    t.respond(finding({ freeze: true }));
    const lines = await t.linesOnce(2);
    assert.deepEqual(
      lines.map((l) => [l.event, l.level]),
      [
        ["anomaly", "warn"],
        ["anomaly.freeze_failed", "error"],
      ],
    );
  });

  it("never throws into the detector's timer: a failing audit write is logged at error", async () => {
    const sink = new PassThrough();
    let text = "";
    sink.on("data", (d: Buffer) => (text += d.toString()));
    const respond = respondToAnomalies({
      audit: {
        record: () => {
          throw new Error("queue broken");
        },
      },
      logger: createLogger("info", sink),
    });
    assert.doesNotThrow(() => respond(finding()));
    await new Promise((r) => setImmediate(r));
    const lines = text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      lines.map((l) => [l.event, l.level]),
      [["anomaly.response_failed", "error"]],
    );
  });
});
