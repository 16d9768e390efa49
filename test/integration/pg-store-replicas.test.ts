import assert from "node:assert/strict";
import { after, test } from "node:test";
import pg from "pg";
import { CustosError, type CustosErrorCode } from "../../src/errors.js";
import type { ProposalRecord } from "../../src/governance/model.js";
import type { KeyRecord, KeyVersionRecord } from "../../src/keys/model.js";
import { PgStore } from "../../src/store/postgres/pg-store.js";
import { startPostgres } from "../helpers/postgres.js";

/**
 * What the contract suite cannot show with one store: two PgStores on one database (two
 * replicas' pools) racing for the same rows, and a store outliving a PostgreSQL restart.
 */
const cluster = await startPostgres();
after(() => cluster.close());
let n = 0;

/** Two stores (separate pools) on one fresh database, opened at the same moment (both run the migrations). */
async function twoReplicas(): Promise<[PgStore, PgStore, string]> {
  const url = await cluster.createDatabase(`replicas_${++n}`);
  const [a, b] = await Promise.all([PgStore.open(url), PgStore.open(url)]);
  return [a, b, url];
}

const at = (minute: number) => new Date(Date.UTC(2026, 11, 2, 9, minute)).toISOString();
const key = (id: string): KeyRecord => ({
  id,
  exchange: "binance",
  environment: "testnet",
  label: id,
  apiKeyId: "",
  algorithm: "hmac-sha256",
  maxAgeDays: 90,
  createdAt: at(0),
});
const version = (keyId: string, tag: string): KeyVersionRecord => ({
  keyId,
  version: 1,
  objectId: `custos:${keyId}:v1:${tag}`,
  state: "active",
  createdAt: at(0),
  activatedAt: at(0),
  apiKeyId: null,
  retireAt: null,
  signedPassphrase: null,
});
const codeOf = (r: PromiseSettledResult<unknown>): CustosErrorCode | "ok" | "other" =>
  r.status === "fulfilled" ? "ok" : r.reason instanceof CustosError ? r.reason.code : "other";

test("two replicas opening a fresh database together migrate it once", async () => {
  const [a, b, url] = await twoReplicas();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const { rows } = await client.query<{ version: number }>("SELECT version FROM schema_version ORDER BY version");
  await client.end();
  // Each migration once, in order (src/store/postgres/migrations.ts has two).
  assert.deepEqual(
    rows.map((r) => r.version),
    [1, 2],
  );
  await Promise.all([a.close(), b.close()]);
});

test("the same key created through two replicas at once: one is created, the other is KEY_EXISTS", async () => {
  const [a, b] = await twoReplicas();
  for (let round = 0; round < 20; round++) {
    const id = `k-${round}`;
    const results = await Promise.allSettled([a.keys.createKey(key(id), version(id, "a")), b.keys.createKey(key(id), version(id, "b"))]);
    assert.deepEqual(results.map(codeOf).sort(), ["KEY_EXISTS", "ok"], `round ${round}`);
    assert.equal((await a.keys.getKey(id))!.versions.length, 1, "the loser left no version behind");
  }
  await Promise.all([a.close(), b.close()]);
});

test("a proposal moved by two replicas at once moves once (compare-and-set)", async () => {
  const [a, b] = await twoReplicas();
  for (let round = 0; round < 20; round++) {
    const p: ProposalRecord = {
      id: `p-${round}`,
      kind: "set_threshold",
      target: "governance",
      canonical: "{}",
      digest: `d-${round}`,
      proposer: "alice",
      state: "pending",
      step: null,
      envelope: "{}",
      createdAt: at(1),
      expiresAt: at(59),
      executedAt: null,
      failure: null,
    };
    await a.governance.createProposal(p);
    const won = await Promise.all([
      a.governance.updateProposal(p.id, "pending", { state: "executing" }),
      b.governance.updateProposal(p.id, "pending", { state: "executing" }),
    ]);
    assert.deepEqual(won.sort(), [false, true], `round ${round}`);
    const marked = await Promise.allSettled([a.governance.markExecuted(p.id, at(2)), b.governance.markExecuted(p.id, at(3))]);
    assert.deepEqual(marked.map(codeOf).sort(), ["PRECONDITION_FAILED", "ok"], `round ${round}: executed once`);
  }
  await Promise.all([a.close(), b.close()]);
});

test("transactions of two replicas run one after the other, never interleaved", async () => {
  const [a, b] = await twoReplicas();
  const order: string[] = [];
  const run = (store: PgStore, name: string) =>
    store.transaction(async (tx) => {
      order.push(`${name}:start`);
      await tx.keys.createKey(key(name), version(name, name));
      // Long enough for the other replica's transaction to have begun, were it not waiting.
      await new Promise((resolve) => setTimeout(resolve, 20));
      order.push(`${name}:end`);
    });
  await Promise.all([run(a, "a1"), run(b, "b1"), run(a, "a2"), run(b, "b2")]);
  for (let i = 0; i < order.length; i += 2) {
    const name = order[i]!.split(":")[0];
    assert.deepEqual([order[i], order[i + 1]], [`${name}:start`, `${name}:end`], order.join(" "));
  }
  assert.equal((await b.keys.listKeys()).length, 4);
  await Promise.all([a.close(), b.close()]);
});

test("console bounds hold for the deployment: two replicas together store at most maxLive sessions", async () => {
  const [a, b] = await twoReplicas();
  const session = (i: number) => ({
    idHash: `h${i}`,
    officerId: "alice",
    scope: "officer" as const,
    csrf: "c",
    credentialId: null,
    createdAt: at(0),
    expiresAt: at(30),
  });
  const stored = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).console.putConsoleSession(session(i), 5, at(1))));
  assert.equal(stored.filter(Boolean).length, 5);
  await Promise.all([a.close(), b.close()]);
});

test("a PostgreSQL restart: calls fail with a retryable STORE_ERROR while it is down, and succeed again without reopening the store", async () => {
  const url = await cluster.createDatabase("restart");
  const store = await PgStore.open(url);
  await store.clients.upsertClient({ identity: "id:a", name: "a", role: "trader", cidrs: [], createdAt: at(0) });
  cluster.stopServer();
  try {
    await assert.rejects(store.clients.getClient("id:a"), (e: unknown) => e instanceof CustosError && e.code === "STORE_ERROR" && e.retryable);
    await assert.rejects(
      store.transaction(async () => undefined),
      (e: unknown) => e instanceof CustosError && e.code === "STORE_ERROR",
    );
  } finally {
    cluster.startServer();
  }
  assert.equal((await store.clients.getClient("id:a"))?.name, "a");
  await store.transaction(async (tx) => tx.clients.upsertClient({ identity: "id:b", name: "b", role: "trader", cidrs: [], createdAt: at(1) }));
  assert.equal((await store.clients.listClients()).length, 2);
  await store.close();
});

test("opening an unreachable database is a STORE_ERROR that names the setting and hides the password", async () => {
  const down = await startPostgres();
  const url = down.url.replace("postgres@", "postgres:s3cret-pw@");
  down.close();
  await assert.rejects(PgStore.open(url, { setting: "CUSTOS_POSTGRES_URL" }), (e: unknown) => {
    assert.ok(e instanceof CustosError && e.code === "STORE_ERROR");
    assert.match(e.message, /CUSTOS_POSTGRES_URL/);
    assert.ok(!e.message.includes("s3cret-pw"), e.message);
    return true;
  });
});
