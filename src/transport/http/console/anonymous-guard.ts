import { isIPv4, isIPv6 } from "node:net";
import type { AuditEvent } from "../../../audit/audit-log.js";
import { sha256Hex } from "../../../audit/sha256.js";
import type { ChallengeOwner } from "../../../governance/passkey.js";
import type { RateLimit } from "../../../signing/rate-limiter.js";

/**
 * What the console does about callers it does not know yet (login, enrollment): limits per
 * source, challenges bound to source and browser, and failures audited as counts per source
 * and interval instead of one synchronous row each.
 */

/** Per source: 10 anonymous requests at once, then one every 2 s (an officer's login takes 2, an enrollment 1). */
export const DEFAULT_ANONYMOUS_RATE: RateLimit = { perSecond: 0.5, burst: 10 };
/** Anonymous failures are written to the audit log once per source and interval. */
export const DEFAULT_FAILURE_INTERVAL_MS = 60_000;

/**
 * The source a request counts against: the IPv4 address, or the /64 of an IPv6 address (one
 * host usually holds a whole /64, so per-address limits would not bind). Without a proxy in
 * front this is the TCP peer; behind one, every caller shares the proxy's source.
 */
export function sourceOf(ip: string | undefined): string {
  const addr = (ip ?? "").replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, "");
  if (isIPv4(addr)) return addr;
  if (!isIPv6(addr)) return "unknown";
  const [head = "", tail = ""] = addr.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = addr.includes("::") ? [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => (g.includes(".") ? "0" : String(parseInt(g, 16).toString(16))))
    .join(":")}::/64`;
}

/** The opaque tags a login challenge is bound to: hashes, so neither address nor cookie is stored. */
export function challengeOwner(source: string, browserCookie: string): ChallengeOwner {
  return { source: sha256Hex(`source\n${source}`).slice(0, 24), browser: sha256Hex(`browser\n${browserCookie}`).slice(0, 24) };
}

/**
 * A token bucket per source, lazily refilled; at most `maxSources` are kept (least recently
 * used dropped first), so many sources cannot grow it without bound.
 */
export class SourceRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; last: number }>();

  constructor(
    private readonly limit: RateLimit,
    private readonly now: () => number,
    private readonly maxSources = 10_000,
  ) {}

  take(source: string): boolean {
    const now = this.now();
    const b = this.buckets.get(source) ?? { tokens: this.limit.burst, last: now };
    this.buckets.delete(source); // re-inserted below: Map order is then least recently used first
    b.tokens = Math.min(this.limit.burst, b.tokens + (Math.max(0, now - b.last) / 1000) * this.limit.perSecond);
    b.last = now;
    const allowed = b.tokens >= 1;
    if (allowed) b.tokens -= 1;
    if (this.buckets.size >= this.maxSources) this.buckets.delete(this.buckets.keys().next().value!);
    this.buckets.set(source, b);
    return allowed;
  }
}

/**
 * Anonymous failures (bad enrollment tokens, logins that do not verify, rate-limited
 * requests), counted per source and outcome, and written as one `console.anonymous_failures`
 * audit event per source each interval (and at close). At most `maxSources` sources are
 * counted by name per interval; the rest are counted under "other".
 */
export class AnonymousFailures {
  private counts = new Map<string, Map<string, number>>();
  private since: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly record: (event: AuditEvent) => void,
    private readonly now: () => number,
    private readonly intervalMs = DEFAULT_FAILURE_INTERVAL_MS,
    private readonly maxSources = 1_000,
  ) {
    this.since = now();
  }

  start(): void {
    this.timer ??= setInterval(() => this.flush(), this.intervalMs);
    this.timer.unref();
  }

  /** Counts one failure: `what` is the endpoint (login, enroll, anonymous), `reason` the error code. */
  note(source: string, what: string, reason: string): void {
    const name = this.counts.has(source) || this.counts.size < this.maxSources ? source : "other";
    const bySource = this.counts.get(name) ?? new Map<string, number>();
    this.counts.set(name, bySource);
    const key = `${what}.${reason}`;
    bySource.set(key, (bySource.get(key) ?? 0) + 1);
  }

  /** Writes what was counted since the last flush, one event per source. */
  flush(): void {
    const from = new Date(this.since).toISOString();
    const to = new Date((this.since = this.now())).toISOString();
    const counts = this.counts;
    this.counts = new Map();
    for (const [source, bySource] of counts) {
      const total = [...bySource.values()].reduce((a, b) => a + b, 0);
      const details = { from, to, total, ...Object.fromEntries(bySource) };
      this.record({ kind: "console.anonymous_failures", actor: "unknown", outcome: "denied", peer: source, details });
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.flush();
  }
}
