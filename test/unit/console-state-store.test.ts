import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";

/** The officer console's state in the SQLite store: spent tokens, WebAuthn challenges, sessions. */
describe("store: the officer console's state", () => {
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

  it("keeps a WebAuthn challenge until it is taken once or expires, and bounds how many are outstanding", async () => {
    const store = new SqliteStore(join(dir, "challenges.db"));
    try {
      assert.equal(await store.putChallenge("login:c1", "true", at(5), 2, at(0)), true);
      assert.equal(await store.takeChallenge("login:c1", at(1)), "true");
      assert.equal(await store.takeChallenge("login:c1", at(1)), undefined, "single use");
      assert.equal(await store.putChallenge("login:c2", "true", at(5), 2, at(0)), true);
      assert.equal(await store.takeChallenge("login:c2", at(5)), undefined, "expired at its expiry");
      assert.equal(await store.putChallenge("approve:n1", '{"officerId":"alice"}', at(15), 2, at(10)), true);
      assert.equal(await store.putChallenge("approve:n2", "{}", at(15), 2, at(10)), true);
      assert.equal(await store.putChallenge("approve:n3", "{}", at(15), 2, at(10)), false, "at most 2 outstanding");
      assert.equal(await store.putChallenge("approve:n3", "{}", at(30), 2, at(16)), true, "expired ones no longer count");
      assert.equal(await store.takeChallenge("approve:n3", at(17)), "{}");
    } finally {
      await store.close();
    }
  });

  it("keeps console sessions by id hash, bounded in number, until they expire", async () => {
    const store = new SqliteStore(join(dir, "sessions.db"));
    const session = (idHash: string, expiresAt: string) => ({ idHash, officerId: "alice", scope: "officer" as const, csrf: "csrf", credentialId: null, createdAt: at(0), expiresAt });
    try {
      assert.equal(await store.putConsoleSession(session("h1", at(15)), 2, at(0)), true);
      assert.equal(await store.putConsoleSession(session("h2", at(15)), 2, at(0)), true);
      assert.equal(await store.putConsoleSession(session("h3", at(15)), 2, at(1)), false, "at most 2 live");
      assert.deepEqual(await store.getConsoleSession("h1"), session("h1", at(15)));
      await store.deleteConsoleSession("h1");
      assert.equal(await store.getConsoleSession("h1"), undefined);
      assert.equal(await store.putConsoleSession(session("h3", at(30)), 2, at(15)), true, "h2 expired and was forgotten");
      assert.equal(await store.getConsoleSession("h2"), undefined);
    } finally {
      await store.close();
    }
  });
});
