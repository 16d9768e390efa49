import type { Clock } from "../../src/clock.js";

/**
 * A Clock a test moves by hand, so nothing waits for time to pass. Frozen by default; with
 * `followRealTime` it runs with the system clock and `advance` adds to it (for a running
 * service whose other timers must keep moving).
 */
export class ManualClock implements Clock {
  private offset = 0;

  constructor(
    private readonly start = { now: Date.parse("2026-01-01T00:00:00Z"), monotonic: 1_000 },
    private readonly followRealTime = false,
  ) {}

  /** A clock that follows the system clock, plus whatever `advance` added. */
  static followingRealTime(): ManualClock {
    return new ManualClock({ now: 0, monotonic: 0 }, true);
  }

  now(): number {
    return (this.followRealTime ? Date.now() : this.start.now) + this.offset;
  }

  monotonic(): number {
    return (this.followRealTime ? performance.now() : this.start.monotonic) + this.offset;
  }

  /** Moves both clocks forward by `ms`. */
  advance(ms: number): void {
    this.offset += ms;
  }
}
