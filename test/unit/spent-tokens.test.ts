import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";

/** Single-use tokens (console enrollment nonces) in the SQLite store: spent once, across restarts. */
describe("store: spent single-use tokens", () => {
  const dir = mkdtempSync(join(tmpdir(), "custos-spent-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const at = (minute: number) => new Date(Date.UTC(2026, 10, 24, 12, minute)).toISOString();

  it("spends a token once; a second store on the same file (a restart, another replica) sees it spent", async () => {
    const file = join(dir, "custos.db");
    const first = new SqliteStore(file);
    assert.equal(await first.spendToken("enroll:a", at(10), at(0)), true);
    assert.equal(await first.spendToken("enroll:a", at(10), at(1)), false);
    assert.equal(await first.spendToken("enroll:b", at(10), at(1)), true, "another token");
    await first.close();
    const second = new SqliteStore(file);
    try {
      assert.equal(await second.spendToken("enroll:a", at(10), at(2)), false);
    } finally {
      await second.close();
    }
  });

  it("forgets a token only after it expired (the token itself is refused as too old by then)", async () => {
    const store = new SqliteStore(join(dir, "expiry.db"));
    try {
      assert.equal(await store.spendToken("enroll:c", at(10), at(0)), true);
      assert.equal(await store.spendToken("enroll:c", at(10), at(10)), false, "still spent at its expiry");
      assert.equal(await store.spendToken("enroll:c", at(30), at(11)), true, "forgotten once expired");
    } finally {
      await store.close();
    }
  });
});
