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
    assert.equal(await first.console.spendToken("enroll:a", at(10), at(0)), true);
    assert.equal(await first.console.spendToken("enroll:a", at(10), at(1)), false);
    assert.equal(await first.console.spendToken("enroll:b", at(10), at(1)), true, "another token");
    await first.close();
    const second = new SqliteStore(file);
    try {
      assert.equal(await second.console.spendToken("enroll:a", at(10), at(2)), false);
    } finally {
      await second.close();
    }
  });

  it("forgets a token only after it expired (the token itself is refused as too old by then)", async () => {
    const store = new SqliteStore(join(dir, "expiry.db"));
    try {
      assert.equal(await store.console.spendToken("enroll:c", at(10), at(0)), true);
      assert.equal(await store.console.spendToken("enroll:c", at(10), at(10)), false, "still spent at its expiry");
      assert.equal(await store.console.spendToken("enroll:c", at(30), at(11)), true, "forgotten once expired");
    } finally {
      await store.close();
    }
  });

  it("keeps a WebAuthn challenge until it is taken once or expires, and bounds how many are outstanding", async () => {
    const store = new SqliteStore(join(dir, "challenges.db"));
    try {
      const two = (prefix: string) => [{ prefix, max: 2 }];
      assert.equal(await store.console.putChallenge("login:c1", "true", at(5), two("login:"), at(0)), true);
      assert.equal(await store.console.takeChallenge("login:c1", at(1)), "true");
      assert.equal(await store.console.takeChallenge("login:c1", at(1)), undefined, "single use");
      assert.equal(await store.console.putChallenge("login:c2", "true", at(5), two("login:"), at(0)), true);
      assert.equal(await store.console.takeChallenge("login:c2", at(5)), undefined, "expired at its expiry");
      assert.equal(await store.console.putChallenge("approve:n1", '{"officerId":"alice"}', at(15), two("approve:"), at(10)), true);
      assert.equal(await store.console.putChallenge("approve:n2", "{}", at(15), two("approve:"), at(10)), true);
      assert.equal(await store.console.putChallenge("approve:n3", "{}", at(15), two("approve:"), at(10)), false, "at most 2 outstanding");
      assert.equal(await store.console.putChallenge("approve:n3", "{}", at(30), two("approve:"), at(16)), true, "expired ones no longer count");
      assert.equal(await store.console.takeChallenge("approve:n3", at(17)), "{}");
    } finally {
      await store.close();
    }
  });

  it("counts outstanding challenges per key prefix: a full pool of one kind or source leaves the others open", async () => {
    const store = new SqliteStore(join(dir, "pools.db"));
    const limits = (source: string) => [
      { prefix: "login:", max: 5 },
      { prefix: `login:${source}:`, max: 2 },
    ];
    try {
      assert.equal(await store.console.putChallenge("login:aa:b1:c1", "true", at(5), limits("aa"), at(0)), true);
      assert.equal(await store.console.putChallenge("login:aa:b2:c2", "true", at(5), limits("aa"), at(0)), true);
      assert.equal(await store.console.putChallenge("login:aa:b3:c3", "true", at(5), limits("aa"), at(0)), false, "source aa holds its 2");
      assert.equal(
        await store.console.putChallenge("login:ab:b1:c4", "true", at(5), limits("ab"), at(0)),
        true,
        "a source whose tag extends aa's is another source",
      );
      assert.equal(await store.console.putChallenge("login:ac:b1:c5", "true", at(5), limits("ac"), at(0)), true);
      assert.equal(await store.console.putChallenge("login:ad:b1:c6", "true", at(5), limits("ad"), at(0)), true);
      assert.equal(await store.console.putChallenge("login:ae:b1:c7", "true", at(5), limits("ae"), at(0)), false, "all logins: 5");
      assert.equal(
        await store.console.putChallenge("register:r1", '"alice"', at(5), [{ prefix: "register:", max: 5 }], at(0)),
        true,
        "registrations have their own pool",
      );
      assert.equal(await store.console.takeChallenge("login:aa:b1:c1", at(1)), "true");
      assert.equal(await store.console.putChallenge("login:aa:b3:c3", "true", at(5), limits("aa"), at(1)), true, "a taken challenge frees its place");
    } finally {
      await store.close();
    }
  });

  it("keeps console sessions by id hash, bounded in number, until they expire", async () => {
    const store = new SqliteStore(join(dir, "sessions.db"));
    const session = (idHash: string, expiresAt: string) => ({
      idHash,
      officerId: "alice",
      scope: "officer" as const,
      csrf: "csrf",
      credentialId: null,
      createdAt: at(0),
      expiresAt,
    });
    try {
      assert.equal(await store.console.putConsoleSession(session("h1", at(15)), 2, at(0)), true);
      assert.equal(await store.console.putConsoleSession(session("h2", at(15)), 2, at(0)), true);
      assert.equal(await store.console.putConsoleSession(session("h3", at(15)), 2, at(1)), false, "at most 2 live");
      assert.deepEqual(await store.console.getConsoleSession("h1"), session("h1", at(15)));
      await store.console.deleteConsoleSession("h1");
      assert.equal(await store.console.getConsoleSession("h1"), undefined);
      assert.equal(await store.console.putConsoleSession(session("h3", at(30)), 2, at(15)), true, "h2 expired and was forgotten");
      assert.equal(await store.console.getConsoleSession("h2"), undefined);
    } finally {
      await store.close();
    }
  });
});
