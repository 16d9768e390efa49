/** Limits in requests per second with a burst allowance. */
export interface RateLimit {
  perSecond: number;
  burst: number;
}

/** A token bucket refilled lazily from a monotonic clock: O(1), no timers. */
class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly limit: RateLimit,
    now: number,
  ) {
    this.tokens = limit.burst;
    this.last = now;
  }

  /** When a request last came (the limiter's clock). */
  get lastRequest(): number {
    return this.last;
  }

  take(now: number): boolean {
    this.tokens = Math.min(this.limit.burst, this.tokens + ((now - this.last) / 1000) * this.limit.perSecond);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** One bucket per name (client identity or key id), created on first use. */
export class RateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly limit: RateLimit,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** When `name` last made a request, on the limiter's clock; undefined if never. */
  lastRequest(name: string): number | undefined {
    return this.buckets.get(name)?.lastRequest;
  }

  take(name: string): boolean {
    const now = this.clock();
    let bucket = this.buckets.get(name);
    if (!bucket) this.buckets.set(name, (bucket = new TokenBucket(this.limit, now)));
    return bucket.take(now);
  }
}
