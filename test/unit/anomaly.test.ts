import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { CONFIG_FILE, embeddedConfig, loadConfig } from "../../src/config/config.js";
import { CustosError } from "../../src/errors.js";
import { AnomalyDetector, DEFAULT_ANOMALY_SETTINGS, bothObservers, type AnomalyFinding, type AnomalySettings } from "../../src/monitoring/anomaly.js";
import type { SignObserver } from "../../src/signing/sign-service.js";

/** The anomaly model on a fake clock: each `tick` is one interval of counted requests. */

const INTERVAL = 10_000;
const ALPHA = "spiffe://custos/engine/alpha";
const BETA = "spiffe://custos/engine/beta";

/** A detector on a fake clock; `tick(traffic)` counts the interval's requests, advances the clock and evaluates. */
function harness(overrides: Partial<AnomalySettings> = {}) {
  let now = 1_700_000_000_000;
  const raised: AnomalyFinding[] = [];
  const detector = new AnomalyDetector({ ...DEFAULT_ANOMALY_SETTINGS, intervalMs: INTERVAL, ...overrides }, (f) => raised.push(f), { clock: () => now });
  let maxScore = 0;
  return {
    detector,
    raised,
    maxScore: () => maxScore,
    /** traffic: [client, key, class, count] rows for this interval. */
    tick(traffic: Array<[string, string, string, number]>, elapsed = INTERVAL): AnomalyFinding[] {
      for (const [client, key, cls, count] of traffic) for (let i = 0; i < count; i++) detector.record(client, key, cls);
      now += elapsed;
      const found = detector.evaluate();
      for (const s of detector.scores()) maxScore = Math.max(maxScore, s.score);
      return found;
    },
  };
}

/** Deterministic pseudo-random numbers (mulberry32), so the jitter is the same on every run. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A Poisson-distributed count (Knuth), the natural jitter of independent requests. */
function poisson(rand: () => number, mean: number): number {
  const limit = Math.exp(-mean);
  let k = 0;
  for (let p = rand(); p > limit; p *= rand()) k++;
  return k;
}

describe("AnomalyDetector", () => {
  it("raises nothing over 2000 intervals of normal traffic: steady, Poisson jitter, a quiet client, a stable mix", () => {
    const h = harness();
    const rand = prng(7);
    for (let i = 0; i < 2_000; i++) {
      const trades = poisson(rand, 40);
      h.tick([
        [ALPHA, "steady", "trade", 25],
        [ALPHA, "jitter", "trade", poisson(rand, 60)],
        // A mixed client: 70 % trades, 30 % reads, each request independently.
        [BETA, "mixed", "trade", Math.round(trades * 0.7)],
        [BETA, "mixed", "read", trades - Math.round(trades * 0.7)],
        // Quiet: a request now and then, sometimes three at once.
        [BETA, "quiet", "account", rand() < 0.1 ? (rand() < 0.2 ? 3 : 1) : 0],
      ]);
    }
    assert.deepEqual(h.raised, []);
    assert.ok(h.maxScore() < DEFAULT_ANOMALY_SETTINGS.threshold, `max score ${h.maxScore()}`);
    assert.ok(h.maxScore() > 0, "the model does score this traffic");
  });

  it("raises one rate anomaly for a burst, for that client and key only, once per episode", () => {
    const h = harness();
    const rand = prng(11);
    const normal = (): Array<[string, string, string, number]> => [
      [ALPHA, "k1", "trade", poisson(rand, 20)],
      [BETA, "k1", "trade", poisson(rand, 20)],
    ];
    for (let i = 0; i < 60; i++) assert.deepEqual(h.tick(normal()), []);
    const burst = h.tick([...normal().slice(1), [ALPHA, "k1", "trade", 500]]);
    assert.equal(burst.length, 1);
    assert.deepEqual([burst[0]!.client, burst[0]!.key, burst[0]!.signal], [ALPHA, "k1", "rate"]);
    assert.ok(burst[0]!.score >= DEFAULT_ANOMALY_SETTINGS.threshold && burst[0]!.count === 500);
    assert.ok(burst[0]!.expected > 10 && burst[0]!.expected < 30, `expected ${burst[0]!.expected}`);
    assert.equal(burst[0]!.freeze, false, "no automatic freeze unless configured");
    // The burst goes on: still scored, not raised again in the same episode.
    assert.deepEqual(h.tick([...normal().slice(1), [ALPHA, "k1", "trade", 500]]), []);
    const scores = [...h.detector.scores()];
    assert.ok(scores.find((s) => s.client === ALPHA)!.score >= DEFAULT_ANOMALY_SETTINGS.threshold);
    assert.ok(scores.find((s) => s.client === BETA)!.score < DEFAULT_ANOMALY_SETTINGS.threshold);
    // Back to normal, then a new burst: a new episode.
    for (let i = 0; i < 5; i++) assert.deepEqual(h.tick(normal()), []);
    assert.equal(h.tick([...normal().slice(1), [ALPHA, "k1", "trade", 800]]).length, 1);
    assert.equal(h.raised.length, 2);
  });

  it("warm-up: a new baseline learns but does not alarm; the same burst after warm-up does", () => {
    const h = harness({ warmupIntervals: 10 });
    // A quiet client's first requests, then a burst, all inside its warm-up.
    assert.deepEqual(h.tick([[ALPHA, "new", "trade", 1]]), []);
    assert.deepEqual(h.tick([[ALPHA, "new", "trade", 3]]), []);
    assert.deepEqual(h.tick([[ALPHA, "new", "trade", 300]]), []);
    assert.equal(Math.max(...[...h.detector.scores()].map((s) => s.score)), 0, "no score during warm-up");
    for (let i = 0; i < 20; i++) h.tick([[ALPHA, "new", "trade", 2]]);
    assert.deepEqual(h.raised, []);
    assert.equal(h.tick([[ALPHA, "new", "trade", 300]]).length, 1);
  });

  it("a quiet client's handful of requests stays under the variance floor", () => {
    const h = harness({ warmupIntervals: 5 });
    for (let i = 0; i < 50; i++) h.tick(i % 10 === 0 ? [[ALPHA, "k", "trade", 1]] : []);
    // Ten requests in one interval where it usually sends one every ten: unusual, not alarming.
    assert.deepEqual(h.tick([[ALPHA, "k", "trade", 10]]), []);
    assert.ok(h.maxScore() < DEFAULT_ANOMALY_SETTINGS.threshold);
    // Fifty is.
    assert.equal(h.tick([[ALPHA, "k", "trade", 50]]).length, 1);
  });

  it("scores an endpoint-mix shift at an unchanged rate: a pure trader starts calling account and read", () => {
    const h = harness();
    const rand = prng(3);
    for (let i = 0; i < 60; i++) assert.deepEqual(h.tick([[ALPHA, "k", "trade", poisson(rand, 30)]]), []);
    const found = h.tick([
      [ALPHA, "k", "trade", 4],
      [ALPHA, "k", "account", 20],
      [ALPHA, "k", "read", 6],
    ]);
    assert.equal(found.length, 1);
    assert.equal(found[0]!.signal, "mix");
    assert.equal(found[0]!.endpointClass, "account");
    assert.ok(found[0]!.rateScore < 1, `30 requests is this client's usual rate (rate score ${found[0]!.rateScore})`);
    assert.ok(found[0]!.mixScore >= DEFAULT_ANOMALY_SETTINGS.threshold);
  });

  it("the same burst does not score as a mix shift when its mix is the usual one", () => {
    const h = harness();
    for (let i = 0; i < 60; i++)
      h.tick([
        [ALPHA, "k", "trade", 20],
        [ALPHA, "k", "read", 10],
      ]);
    const [f] = h.tick([
      [ALPHA, "k", "trade", 200],
      [ALPHA, "k", "read", 100],
    ]);
    assert.equal(f?.signal, "rate");
    assert.ok(f!.mixScore < 1, `mix score ${f!.mixScore}`);
  });

  it("asks for a freeze only past autoFreezeThreshold, once per episode", () => {
    const h = harness({ warmupIntervals: 5, autoFreezeThreshold: 50 });
    for (let i = 0; i < 20; i++)
      h.tick([
        [ALPHA, "k", "trade", 20],
        [BETA, "k", "trade", 20],
      ]);
    const mild = h.tick([
      [ALPHA, "k", "trade", 20 + 9 * 5],
      [BETA, "k", "trade", 20],
    ]);
    assert.deepEqual(
      mild.map((f) => [f.client, f.freeze]),
      [[ALPHA, false]],
    );
    // Worse in the same episode: no second alarm, but the freeze is asked for.
    const severe = h.tick([
      [ALPHA, "k", "trade", 2_000],
      [BETA, "k", "trade", 20],
    ]);
    assert.deepEqual(
      severe.map((f) => [f.client, f.freeze]),
      [[ALPHA, true]],
    );
    assert.deepEqual(
      h.tick([
        [ALPHA, "k", "trade", 2_000],
        [BETA, "k", "trade", 20],
      ]),
      [],
    );
  });

  it("scales a late interval to the configured length: twice the time, twice the requests, no alarm", () => {
    const h = harness({ warmupIntervals: 5 });
    for (let i = 0; i < 30; i++) h.tick([[ALPHA, "k", "trade", 100]]);
    assert.deepEqual(h.tick([[ALPHA, "k", "trade", 200]], 2 * INTERVAL), []);
    assert.equal(h.tick([[ALPHA, "k", "trade", 400]], 2 * INTERVAL).length, 1);
  });

  it("observes sign decisions of registered clients only, and both observers see each decision", () => {
    const h = harness({ warmupIntervals: 0 });
    const seen: string[] = [];
    const metrics: SignObserver = { observe: (o, r, _s, c, k, cls) => void seen.push(`${o}/${r}/${c}/${k}/${cls}`) };
    const observer = bothObservers(metrics, h.detector);
    observer.observe("allowed", "OK", 0.001, ALPHA, "k", "trade");
    observer.observe("denied", "UNKNOWN_CLIENT", 0.001, "", "", "raw");
    assert.deepEqual(seen, [`allowed/OK/${ALPHA}/k/trade`, "denied/UNKNOWN_CLIENT///raw"]);
    h.tick([]);
    assert.deepEqual(
      [...h.detector.scores()].map((s) => [s.client, s.key]),
      [[ALPHA, "k"]],
    );
  });
});

describe("AnomalyDetector timer", () => {
  it("evaluates on its own interval once started, and not after stop()", (t) => {
    // The test moves the detector's timer (and its clock) instead of waiting for them.
    t.mock.timers.enable({ apis: ["setInterval"] });
    let now = 1_000_000;
    const raised: AnomalyFinding[] = [];
    const detector = new AnomalyDetector({ ...DEFAULT_ANOMALY_SETTINGS, intervalMs: 20, warmupIntervals: 0 }, (f) => void raised.push(f), { clock: () => now });
    const advance = (ms: number) => {
      now += ms;
      t.mock.timers.tick(ms);
    };
    detector.start();
    for (let i = 0; i < 100; i++) detector.record(ALPHA, "k", "trade");
    advance(19);
    assert.equal(raised.length, 0, "not before its interval");
    advance(1);
    detector.stop();
    assert.deepEqual(
      raised.map((f) => [f.client, f.signal]),
      [[ALPHA, "rate"]],
    );
    raised.length = 0;
    for (let i = 0; i < 100; i++) detector.record(BETA, "k", "trade");
    advance(1_000);
    assert.equal(raised.length, 0, "stopped: no evaluation");
  });
});

describe("anomaly configuration", () => {
  const MINIMAL = {
    tls: { caPath: "pki/ca.crt", certPath: "pki/server.crt", keyPath: "pki/server.key" },
    hsm: { modulePath: "/usr/lib/softhsm/libsofthsm2.so", tokenLabel: "custos", pinFile: "secrets/user.pin" },
  };
  const load = (anomaly: unknown) => {
    const dir = mkdtempSync(join(tmpdir(), "custos-anomaly-"));
    try {
      writeFileSync(join(dir, CONFIG_FILE), JSON.stringify({ ...MINIMAL, anomaly }));
      return loadConfig(dir).anomaly;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it("is on by default, with automatic freezing off, in both modes", () => {
    const dir = mkdtempSync(join(tmpdir(), "custos-anomaly-"));
    rmSync(dir, { recursive: true });
    assert.deepEqual(embeddedConfig(dir).anomaly, { enabled: true, ...DEFAULT_ANOMALY_SETTINGS });
    assert.deepEqual(load(undefined), { enabled: true, ...DEFAULT_ANOMALY_SETTINGS });
    assert.equal(load(undefined).autoFreezeThreshold, undefined);
  });

  it("merges given settings over the defaults", () => {
    assert.deepEqual(load({ threshold: 10, autoFreezeThreshold: 30 }), { enabled: true, ...DEFAULT_ANOMALY_SETTINGS, threshold: 10, autoFreezeThreshold: 30 });
    assert.equal(load({ enabled: false }).enabled, false);
  });

  const refused: Array<[string, unknown]> = [
    ["a misspelt setting", { treshold: 5 }],
    ["an interval of zero", { intervalMs: 0 }],
    ["a non-numeric threshold", { threshold: "8" }],
    ["a zero variance floor (a quiet client would alarm on its first request)", { varianceFloor: 0 }],
    ["an auto-freeze threshold below the alarm threshold", { threshold: 8, autoFreezeThreshold: 4 }],
    ["a non-boolean enabled", { enabled: "yes" }],
  ];
  for (const [name, anomaly] of refused) {
    it(`refuses ${name}`, () => {
      assert.throws(
        () => load(anomaly),
        (e: unknown) => e instanceof CustosError && e.code === "INVALID_ARGUMENT" && e.message.includes("anomaly."),
      );
    });
  }
});
