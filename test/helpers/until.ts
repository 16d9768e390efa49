import assert from "node:assert/strict";

/**
 * Polls `probe` every 25 ms until it returns a value (anything but undefined), for at most `ms`;
 * fails the test naming `what` otherwise. The condition, never a fixed sleep, is what a test waits for.
 */
export async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
