import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Progress } from "../../src/cli/progress.js";

/** Progress lines of long CLI work (e.g. `custos audit verify`), on a fake clock and stream. */
describe("CLI progress", () => {
  function run(isTTY: boolean) {
    let now = 1_000_000;
    const written: string[] = [];
    const progress = new Progress("verifying audit events", 1_000_000, { isTTY, write: (s: string) => written.push(s) > 0 }, () => now);
    return { progress, written, advance: (ms: number) => (now += ms) };
  }

  it("without a terminal: nothing in the first second, then a line every 5 seconds with rate and time left", () => {
    const { progress, written, advance } = run(false);
    advance(900);
    progress.update(90_000);
    assert.deepEqual(written, []);
    advance(1_100); // 2 s in
    progress.update(200_000);
    assert.deepEqual(written, ["verifying audit events: 200,000 of 1,000,000 (100,000/s, about 8 s left)\n"]);
    advance(4_000);
    progress.update(600_000);
    assert.equal(written.length, 1, "not again within 5 s");
    advance(1_000);
    progress.update(700_000);
    assert.equal(written.length, 2);
    progress.done();
    assert.equal(written.length, 2, "no newline needed");
  });

  it("on a terminal: one line redrawn in place, ended by done()", () => {
    const { progress, written, advance } = run(true);
    advance(1_000);
    progress.update(100_000);
    advance(50);
    progress.update(105_000);
    advance(100);
    progress.update(115_000);
    assert.equal(written.length, 2, "at most 10 redraws a second");
    assert.ok(written.every((w) => w.startsWith("\r") && w.endsWith("\x1b[K")));
    progress.done();
    assert.equal(written.at(-1), "\n");
  });
});
