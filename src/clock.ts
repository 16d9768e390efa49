/**
 * Time as custos reads it outside governance: injected, so tests advance it instead of sleeping.
 */
export interface Clock {
  /** Milliseconds since the epoch (timestamps, nonces, grace periods). */
  now(): number;
  /** Monotonic milliseconds (rate limits): never steps back when the wall clock is corrected. */
  monotonic(): number;
}

/** The process's own clocks: Date.now() and performance.now(). */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
};
