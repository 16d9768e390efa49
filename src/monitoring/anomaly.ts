import type { SignObserver } from "../signing/sign-service.js";

/**
 * Anomaly detection on signing traffic: per (client, key), an online baseline of the request
 * rate and of the endpoint mix, scored once per interval. Pure domain code: no timers it cannot
 * be told about, no I/O; the clock is injected and `evaluate()` is called by whoever owns the
 * schedule (the service's interval timer, or a test).
 *
 * Model, per (client, key) cell, at the end of each interval of `intervalMs`:
 * - n = requests in the interval (scaled to exactly one interval if the timer ran late);
 * - rate score = (n − mean) / sqrt(max(variance, mean, varianceFloor)), upward only: an
 *   EWMA mean and variance (half-life `halfLifeIntervals`), a Poisson floor (sqrt(mean)) and
 *   an absolute floor, so a quiet or very regular client does not alarm on a handful of calls;
 * - mix score = max over endpoint classes c of (n_c − n·p_c) / sqrt(max(n·p_c·(1−p_c), varianceFloor)),
 *   with p_c the EWMA share of class c: the same requests, more of an unusual kind;
 * - score = max(rate, mix). No score during the first `warmupIntervals` of a cell.
 * The interval's count is folded into the rate baseline winsorised at mean + threshold·sd, so a
 * burst does not teach the baseline that bursts are normal; shares are bounded, folded as is.
 */

/** Endpoint classes the mix model keeps apart; any other class counts as "other". */
export const TRAFFIC_CLASSES = ["trade", "read", "account", "transfer", "withdraw", "key-management", "unknown", "raw", "ws-auth", "other"] as const;
export type TrafficClass = (typeof TRAFFIC_CLASSES)[number];
const CLASS_INDEX = new Map<string, number>(TRAFFIC_CLASSES.map((c, i) => [c, i]));
const OTHER = TRAFFIC_CLASSES.length - 1;

/** The model's parameters (config section `anomaly`). */
export interface AnomalySettings {
  /** Length of one counting interval. */
  intervalMs: number;
  /** Intervals after which an old observation weighs half as much in the baseline. */
  halfLifeIntervals: number;
  /** Intervals a new (client, key) baseline only learns, never alarms. */
  warmupIntervals: number;
  /** Score at which an anomaly is raised. */
  threshold: number;
  /** Smallest variance (in requests² per interval) a score divides by. */
  varianceFloor: number;
  /** Score at which the client is frozen at once; absent = never (the default). */
  autoFreezeThreshold?: number;
}

/** 10 s intervals, a 5-minute half-life and warm-up, an alarm at 8 "standard deviations". */
export const DEFAULT_ANOMALY_SETTINGS: Readonly<AnomalySettings> = Object.freeze({
  intervalMs: 10_000,
  halfLifeIntervals: 30,
  warmupIntervals: 30,
  threshold: 8,
  varianceFloor: 4,
});

/** One anomaly: the first interval of an episode whose score passed the threshold. */
export interface AnomalyFinding {
  client: string;
  /** "" for requests naming a key that does not exist. */
  key: string;
  /** Which part of the model scored highest. */
  signal: "rate" | "mix";
  score: number;
  rateScore: number;
  mixScore: number;
  /** Requests in the interval, and the baseline's expectation. */
  count: number;
  expected: number;
  /** For a mix anomaly: the class that rose most above its share. */
  endpointClass?: TrafficClass;
  /** The score also passed `autoFreezeThreshold`: freeze the client. */
  freeze: boolean;
  /** End of the interval (ms since the epoch, from the injected clock). */
  at: number;
}

/** The current score of one (client, key) baseline, for the metrics gauge. */
export interface AnomalyScore {
  client: string;
  key: string;
  score: number;
}

class Cell {
  readonly counts = new Float64Array(TRAFFIC_CLASSES.length);
  total = 0;
  intervals = 0;
  mean = 0;
  variance = 0;
  readonly shares = new Float64Array(TRAFFIC_CLASSES.length);
  sharesKnown = false;
  score = 0;
  /** An anomaly was raised in this episode; cleared once the score falls below threshold / 2. */
  alarmed = false;
  freezeRaised = false;
  constructor(
    readonly client: string,
    readonly key: string,
  ) {}
}

export interface AnomalyDetectorOptions {
  /** Milliseconds since the epoch; `Date.now` unless a test drives time. */
  clock?: () => number;
}

/**
 * Counts sign decisions per (client, key) and endpoint class — O(1), no allocation once a
 * pair has been seen — and scores them per interval against each pair's own baseline.
 */
export class AnomalyDetector implements SignObserver {
  private readonly cells = new Map<string, Map<string, Cell>>();
  private readonly alpha: number;
  private readonly clock: () => number;
  private lastEvaluated: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly settings: AnomalySettings,
    private readonly onAnomaly: (finding: AnomalyFinding) => void,
    opts: AnomalyDetectorOptions = {},
  ) {
    // EWMA weight whose influence halves every halfLifeIntervals intervals.
    this.alpha = 1 - 0.5 ** (1 / settings.halfLifeIntervals);
    this.clock = opts.clock ?? Date.now;
    this.lastEvaluated = this.clock();
  }

  /** The sign path's hook: counts a decision of a registered client (`client` "" is ignored). */
  observe(_outcome: string, _reason: string, _seconds: number, client: string, key: string, endpointClass: string): void {
    if (client) this.record(client, key, endpointClass);
  }

  /** Counts one request of `client` with `key` in the current interval. */
  record(client: string, key: string, endpointClass: string): void {
    let byKey = this.cells.get(client);
    if (byKey === undefined) this.cells.set(client, (byKey = new Map()));
    let cell = byKey.get(key);
    if (cell === undefined) byKey.set(key, (cell = new Cell(client, key)));
    cell.counts[CLASS_INDEX.get(endpointClass) ?? OTHER]!++;
    cell.total++;
  }

  /**
   * Closes the current interval: scores every baseline, raises each new anomaly through
   * `onAnomaly` (once per episode; again once the score has fallen below half the threshold)
   * and folds the interval into the baselines. Returns the anomalies raised.
   */
  evaluate(): AnomalyFinding[] {
    const now = this.clock();
    // Counts are per interval: a late timer's longer interval is scaled down (never up by more than 2).
    const elapsed = Math.max(now - this.lastEvaluated, this.settings.intervalMs / 2);
    this.lastEvaluated = now;
    const scale = this.settings.intervalMs / elapsed;
    const found: AnomalyFinding[] = [];
    for (const byKey of this.cells.values()) {
      for (const cell of byKey.values()) {
        const finding = this.score(cell, scale, now);
        if (finding) found.push(finding);
      }
    }
    for (const f of found) this.onAnomaly(f);
    return found;
  }

  /** Current scores (0 during warm-up), for the `custos_anomaly_score` gauge. */
  *scores(): Iterable<AnomalyScore> {
    for (const byKey of this.cells.values()) for (const c of byKey.values()) yield { client: c.client, key: c.key, score: c.score };
  }

  /** Evaluates every `intervalMs` until `stop()`; the timer does not keep the process alive. */
  start(): void {
    if (this.timer) return;
    this.lastEvaluated = this.clock();
    this.timer = setInterval(() => this.evaluate(), this.settings.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private score(cell: Cell, scale: number, now: number): AnomalyFinding | undefined {
    const { threshold, varianceFloor, warmupIntervals, autoFreezeThreshold } = this.settings;
    const n = cell.total * scale;
    const sd = Math.sqrt(Math.max(cell.variance, cell.mean, varianceFloor));
    const warm = cell.intervals >= warmupIntervals;
    const rateScore = warm ? Math.max(0, (n - cell.mean) / sd) : 0;
    let mixScore = 0;
    let mixClass = OTHER;
    if (warm && cell.sharesKnown && n > 0) {
      for (let c = 0; c < TRAFFIC_CLASSES.length; c++) {
        const p = cell.shares[c]!;
        const z = (cell.counts[c]! * scale - n * p) / Math.sqrt(Math.max(n * p * (1 - p), varianceFloor));
        if (z > mixScore) [mixScore, mixClass] = [z, c];
      }
    }
    const score = Math.max(rateScore, mixScore);
    const expected = cell.mean;
    this.learn(cell, n, sd);
    cell.score = score;

    if (score < threshold / 2) cell.alarmed = cell.freezeRaised = false;
    const raise = score >= threshold && !cell.alarmed;
    const freeze = autoFreezeThreshold !== undefined && score >= autoFreezeThreshold && !cell.freezeRaised;
    if (!raise && !freeze) return undefined;
    if (score >= threshold) cell.alarmed = true;
    if (freeze) cell.freezeRaised = true;
    const signal = mixScore > rateScore ? "mix" : "rate";
    return {
      client: cell.client,
      key: cell.key,
      signal,
      score,
      rateScore,
      mixScore,
      count: n,
      expected,
      ...(signal === "mix" ? { endpointClass: TRAFFIC_CLASSES[mixClass]! } : {}),
      freeze,
      at: now,
    };
  }

  /** Folds the interval into the baseline (West's incremental EWMA variance) and resets its counts. */
  private learn(cell: Cell, n: number, sd: number): void {
    const a = this.alpha;
    if (cell.intervals === 0) {
      cell.mean = n;
    } else {
      // Winsorised: a burst moves the baseline as far as a threshold-sized step, no further.
      const x = Math.min(n, cell.mean + this.settings.threshold * sd);
      const diff = x - cell.mean;
      const incr = a * diff;
      cell.mean += incr;
      cell.variance = (1 - a) * (cell.variance + diff * incr);
    }
    if (cell.total > 0) {
      for (let c = 0; c < TRAFFIC_CLASSES.length; c++) {
        const share = cell.counts[c]! / cell.total;
        cell.shares[c] = cell.sharesKnown ? cell.shares[c]! + a * (share - cell.shares[c]!) : share;
      }
      cell.sharesKnown = true;
    }
    cell.intervals++;
    cell.counts.fill(0);
    cell.total = 0;
  }
}

/** Both observers, in order: one call each per decision, no allocation. */
export function bothObservers(first: SignObserver, second: SignObserver): SignObserver {
  return {
    observe(outcome, reason, seconds, client, key, endpointClass) {
      first.observe(outcome, reason, seconds, client, key, endpointClass);
      second.observe(outcome, reason, seconds, client, key, endpointClass);
    },
  };
}
