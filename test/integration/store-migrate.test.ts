import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { AuditLog, verifyAuditChain } from "../../src/audit/audit-log.js";
import { CustosError } from "../../src/errors.js";
import { createLogger } from "../../src/log.js";
import { moveSqliteToPostgres, STORE_TABLES } from "../../src/store/migrate-to-postgres.js";
import { PgStore } from "../../src/store/postgres/pg-store.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import type { Store } from "../../src/store/store.js";
import { startPostgres } from "../helpers/postgres.js";

const cluster = await startPostgres();
const dir = mkdtempSync(join(tmpdir(), "custos-move-"));
after(() => {
  cluster.close();
  rmSync(dir, { recursive: true, force: true });
});

const at = (minute: number) => new Date(Date.UTC(2026, 11, 1, 12, minute)).toISOString();

/** A row in every table, through the store's own methods, and an audit chain of 1,234 events with a checkpoint. */
async function fill(s: Store): Promise<void> {
  await s.keys.createKey(
    { id: "k1", exchange: "binance", environment: "mainnet", label: "main", apiKeyId: "api-1", algorithm: "hmac-sha256", maxAgeDays: 90, createdAt: at(0) },
    {
      keyId: "k1",
      version: 1,
      objectId: "custos:k1:v1",
      state: "active",
      createdAt: at(0),
      activatedAt: at(0),
      apiKeyId: "api-1",
      retireAt: null,
      signedPassphrase: null,
    },
  );
  await s.keys.rotateKey(
    "k1",
    {
      keyId: "k1",
      version: 2,
      objectId: "custos:k1:v2",
      state: "active",
      createdAt: at(1),
      activatedAt: at(1),
      apiKeyId: "api-2",
      retireAt: null,
      signedPassphrase: "c2lnbmVk",
    },
    at(30),
  );
  await s.keys.setKeyFrozen("k1", { at: at(2), reason: "drill" });
  await s.keys.setPolicy("k1", '{"maxNotional":"1000"}', at(3));
  await s.clients.setClientAccess(
    {
      identity: "spiffe://custos/engine/a",
      name: "a",
      role: "trader",
      cidrs: ["10.0.0.0/8"],
      createdAt: at(0),
      canFreeze: true,
      frozenAt: null,
      frozenReason: null,
    },
    ["k1"],
  );
  const officer = (id: string) => ({
    id,
    displayName: id,
    identity: `spiffe://custos/officer/${id}`,
    publicKeyPem: `pem-${id}\n`,
    fingerprint: `fp-${id}`,
    status: "active" as const,
    createdAt: at(0),
  });
  await s.governance.initGovernance(2, [officer("alice"), officer("bob")], at(0));
  await s.governance.addPasskey({
    id: "cred",
    officerId: "alice",
    publicKey: "cose",
    counter: 7,
    transports: ["usb"],
    aaguid: "00",
    label: "key",
    createdAt: at(0),
    lastUsedAt: at(4),
  });
  await s.governance.createProposal({
    id: "p1",
    kind: "set_threshold",
    target: "governance",
    canonical: "{}",
    digest: "d1",
    proposer: "alice",
    state: "pending",
    step: null,
    envelope: '{"e":1}',
    createdAt: at(5),
    expiresAt: at(59),
    executedAt: null,
    failure: null,
  });
  await s.governance.addVote({
    proposalId: "p1",
    officerId: "bob",
    decision: "approve",
    digest: "d1",
    signature: "sig",
    at: at(6),
    credentialKind: "passkey",
    credentialId: "cred",
  });
  await s.console.spendToken("enroll:n1", at(50), at(0));
  await s.console.putConsoleSession(
    { idHash: "h1", officerId: "alice", scope: "officer", csrf: "csrf", credentialId: "cred", createdAt: at(0), expiresAt: at(15) },
    10,
    at(0),
  );
  await s.console.putChallenge("login:127.0.0.1:c1", "v1", at(5), [{ prefix: "login:", max: 10 }], at(0));
  const log = await AuditLog.open(s, createLogger("silent"), { flushIntervalMs: 3_600_000 });
  for (let i = 0; i < 1_234; i++) log.record({ kind: "sign", actor: "spiffe://custos/engine/a", outcome: "allowed", key: "k1", details: { i } });
  await log.close();
  const head = (await s.audit.lastAudit())!;
  await s.audit.appendCheckpoint({ seq: head.seq, hash: head.hash, at: at(7), keyFingerprint: "sha256:f", signature: "c2ln" });
}

/** Everything the store hands the domain, read through its own methods. */
async function snapshot(s: Store) {
  return {
    keys: await s.keys.listKeys(),
    policy: await s.keys.getPolicy("k1"),
    clients: await s.clients.listClients(),
    grants: [...(await s.clients.listGrants())].map(([id, keys]) => [id, [...keys]]),
    governance: await s.governance.getGovernance(),
    officers: await s.governance.listOfficers(),
    passkeys: await s.governance.listPasskeys(),
    proposals: await s.governance.listProposals(),
    votes: await s.governance.listVotes("p1"),
    session: await s.console.getConsoleSession("h1"),
    audit: await s.audit.readAudit(0, 10_000),
    checkpoints: await s.audit.listCheckpoints(),
  };
}

test("a SQLite store moves to PostgreSQL whole and verbatim: every table, the audit chain with the same seq and hashes", async () => {
  const path = join(dir, "full.db");
  const sqlite = new SqliteStore(path);
  await fill(sqlite);
  const before = await snapshot(sqlite);
  await sqlite.close();

  const url = await cluster.createDatabase("move_full");
  const progress = new Map<string, number>();
  const report = await moveSqliteToPostgres(path, url, (table, done) => progress.set(table, done));
  for (const table of STORE_TABLES) assert.ok(report.rows[table] > 0, `${table} had a row to copy`);
  assert.equal(report.rows.audit_events, 1_234);
  assert.equal(progress.get("audit_events"), 1_234, "progress reported up to the last audit row");

  const pg = await PgStore.open(url);
  try {
    assert.deepEqual(await snapshot(pg), before);
    const chain = await verifyAuditChain(pg);
    assert.deepEqual(chain, { ok: true, events: 1_234, lastHash: before.audit.at(-1)!.hash, lastSeq: 1_234 });
    assert.deepEqual(report.auditHead, { seq: 1_234, hash: chain.lastHash });
    // Console state still behaves: the spent token stays spent, the challenge is taken once.
    assert.equal(await pg.console.spendToken("enroll:n1", at(50), at(1)), false);
    assert.equal(await pg.console.takeChallenge("login:127.0.0.1:c1", at(1)), "v1");
    // The moved chain continues where SQLite's ended.
    const log = await AuditLog.open(pg, createLogger("silent"), { flushIntervalMs: 3_600_000 });
    await log.recordNow({ kind: "service.start", actor: "system", outcome: "ok" });
    await log.close();
    assert.deepEqual(await verifyAuditChain(pg).then((r) => [r.ok, r.lastSeq]), [true, 1_235]);
  } finally {
    await pg.close();
  }
});

test("a target that is not empty is refused with PRECONDITION_FAILED and left as it was", async () => {
  const path = join(dir, "small.db");
  const sqlite = new SqliteStore(path);
  await sqlite.clients.upsertClient({ identity: "id:a", name: "a", role: "trader", cidrs: [], createdAt: at(0) });
  await sqlite.close();
  const url = await cluster.createDatabase("move_nonempty");
  const target = await PgStore.open(url);
  await target.clients.upsertClient({ identity: "id:other", name: "other", role: "trader", cidrs: [], createdAt: at(0) });
  await assert.rejects(moveSqliteToPostgres(path, url), (e: unknown) => e instanceof CustosError && e.code === "PRECONDITION_FAILED");
  assert.deepEqual(
    (await target.clients.listClients()).map((c) => c.identity),
    ["id:other"],
  );
  await target.close();
});
