import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { rmSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import type { AuditRecord } from "../../src/audit/audit-log.js";
import { CustosClient } from "../../src/client/custos-client.js";
import { PgStore } from "../../src/store/postgres/pg-store.js";
import { type ChildService, devOfficerClient, importSecret, spawnService, tempDir } from "../helpers/harness.js";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";

const SECRET = Buffer.from("failover-test-secret-0123456789abcdef0123456789abcdef");
const KEY = "shared";

interface Signed {
  payload: string;
  signature: Buffer;
  at: number;
}

/** Signs until `stop()` says so or `maxCalls` calls were made, `inFlight` at a time; collects answers and failures. */
async function signUnder(
  call: (payload: string) => Promise<Uint8Array>,
  opts: { inFlight: number; maxCalls: number; stop: () => boolean },
): Promise<{ signed: Signed[]; failures: unknown[] }> {
  const signed: Signed[] = [];
  const failures: unknown[] = [];
  let issued = 0;
  const worker = async (): Promise<void> => {
    while (!opts.stop() && issued < opts.maxCalls) {
      const payload = `order-${issued++}-${Math.random()}`;
      try {
        signed.push({ payload, signature: Buffer.from(await call(payload)), at: performance.now() });
      } catch (e) {
        failures.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.inFlight }, worker));
  return { signed, failures };
}

/** Asserts every signature is the HMAC of its payload under the shared secret. */
function assertAllVerified(signed: Signed[]): void {
  for (const s of signed) assert.deepEqual(s.signature, createHmac("sha256", SECRET).update(s.payload).digest(), `wrong signature for ${s.payload}`);
}

/** The longest time between two consecutive answers after `since`, and the wait for the first one. */
function longestGap(signed: Signed[], since: number): number {
  const times = signed.map((s) => s.at).filter((t) => t >= since);
  let gap = times.length > 0 ? (times[0] as number) - since : Number.POSITIVE_INFINITY;
  for (let i = 1; i < times.length; i++) gap = Math.max(gap, (times[i] as number) - (times[i - 1] as number));
  return gap;
}

/** sha256 of every payload with an allowed raw-sign audit event in the deployment's one chain. */
async function auditedPayloads(url: string): Promise<Set<string>> {
  const store = await PgStore.open(url);
  try {
    const hashes = new Set<string>();
    for (const row of await store.audit.readAudit(0, 10_000_000)) {
      const e = JSON.parse(row.body) as AuditRecord;
      if (e.kind === "sign" && e.outcome === "allowed" && e.payloadSha256) hashes.add(e.payloadSha256);
    }
    return hashes;
  } finally {
    await store.close();
  }
}

/**
 * Every signature the client received has its audit event in the chain: custos answers a
 * signature only once its record is written (audit.acknowledge "written"), so a replica
 * SIGKILLed under load took no record of an answered signature with it.
 */
async function assertEveryAnswerAudited(signed: Signed[], url: string): Promise<void> {
  const digests = signed.map((s) => createHash("sha256").update(s.payload).digest("hex"));
  const audited = await auditedPayloads(url);
  const missing = digests.filter((h) => !audited.has(h)).length;
  assert.equal(missing, 0, `${missing} of ${digests.length} signatures the client received have no audit event`);
}

/**
 * Three replicas of one deployment: `custos serve` processes on one data dir (token, PKI, PINs)
 * and one PostgreSQL database, so they hold the same key and append to one audit chain.
 */
describe("the TypeScript client fails over between replicas", () => {
  const dir = tempDir("custos-failover-");
  const replicas: ChildService[] = [];
  let cluster: TestPostgres;

  before(async () => {
    cluster = await startPostgres();
    const env = { CUSTOS_POSTGRES_URL: cluster.url };
    replicas.push(await spawnService(dir, env));
    const custody = devOfficerClient((replicas[0] as ChildService).conn);
    try {
      await importSecret(custody, KEY, SECRET);
    } finally {
      custody.close();
    }
    replicas.push(await spawnService(dir, env));
    replicas.push(await spawnService(dir, env));
  });
  after(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    cluster?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const clientOf = (...rs: ChildService[]): CustosClient => {
    const first = replicas[0] as ChildService;
    const id = first.conn.client;
    assert.ok(id);
    return new CustosClient(
      rs.map((r) => r.conn.grpc),
      { caPath: first.conn.caPath, certPath: id.certPath, keyPath: id.keyPath },
      first.conn.serverName,
    );
  };

  it("a replica that refuses connections is skipped; a refusal by a live replica is not retried elsewhere", async () => {
    const [a, b] = replicas as [ChildService, ChildService];
    const first = replicas[0] as ChildService;
    const id = first.conn.client;
    assert.ok(id);
    const client = new CustosClient(["127.0.0.1:1", a.conn.grpc, b.conn.grpc], { caPath: first.conn.caPath, ...id }, first.conn.serverName);
    try {
      const r = await client.sign(KEY, Buffer.from("hello"));
      assert.deepEqual(Buffer.from(r.signature), createHmac("sha256", SECRET).update("hello").digest());
      assert.equal(client.activeAddress, a.conn.grpc);
      await assert.rejects(client.sign("no-such-key", Buffer.from("x")), (e: { code?: number }) => e.code !== undefined && e.code !== status.UNAVAILABLE);
      assert.equal(client.activeAddress, a.conn.grpc, "a refusal moved the client to another replica");
    } finally {
      client.close();
    }
  });

  it("unary: SIGKILL the replica in use under load: no failed call, no wrong signature, signing continues on the other within 2 s", async (t) => {
    const [a, b] = replicas as [ChildService, ChildService];
    const client = clientOf(a, b);
    let killedAt = Number.POSITIVE_INFINITY;
    let signedAfterKill = 0;
    try {
      const run = signUnder(
        async (payload) => {
          const r = await client.sign(KEY, Buffer.from(payload));
          if (performance.now() > killedAt) signedAfterKill++;
          return r.signature;
        },
        { inFlight: 4, maxCalls: 5_000, stop: () => signedAfterKill >= 300 },
      );
      // Kill once the load is going, and only while it is on the first replica.
      for (const deadline = performance.now() + 20_000; performance.now() < deadline && client.activeAddress === a.conn.grpc; ) {
        if ((await auditedPayloads(cluster.url)).size >= 100) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(client.activeAddress, a.conn.grpc);
      killedAt = performance.now();
      a.proc.kill("SIGKILL");
      const { signed, failures } = await run;
      assert.deepEqual(failures, [], "a call failed instead of failing over");
      assertAllVerified(signed);
      assert.ok(signedAfterKill >= 300, `only ${signedAfterKill} signatures after the kill`);
      const gap = longestGap(signed, killedAt);
      t.diagnostic(`${signed.length} signatures, ${signedAfterKill} after the kill; longest wait after it ${gap.toFixed(0)} ms`);
      assert.ok(gap < 2_000, `signing stalled ${gap.toFixed(0)} ms after the kill`);
      assert.equal(client.activeAddress, b.conn.grpc);
      await assertEveryAnswerAudited(signed, cluster.url);
    } finally {
      client.close();
    }
  });

  it("stream: SIGKILL the replica in use under load: the session re-opens on the other and re-sends what had no answer", async (t) => {
    const [, b, c] = replicas as [ChildService, ChildService, ChildService];
    const client = clientOf(b, c);
    const session = client.streamSession();
    let killedAt = Number.POSITIVE_INFINITY;
    let signedAfterKill = 0;
    let signedBeforeKill = 0;
    try {
      const run = signUnder(
        async (payload) => {
          const r = await session.sign(KEY, Buffer.from(payload));
          if (performance.now() > killedAt) signedAfterKill++;
          else signedBeforeKill++;
          return r.signature;
        },
        { inFlight: 32, maxCalls: 50_000, stop: () => signedAfterKill >= 1_000 },
      );
      for (const deadline = performance.now() + 20_000; signedBeforeKill < 1_000 && performance.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
      assert.ok(signedBeforeKill >= 1_000, "the stream never got going");
      killedAt = performance.now();
      b.proc.kill("SIGKILL");
      const { signed, failures } = await run;
      assert.deepEqual(failures, [], "a call failed instead of being re-sent");
      assert.equal(session.broken, false);
      assertAllVerified(signed);
      const gap = longestGap(signed, killedAt);
      t.diagnostic(`${signed.length} signatures, ${signedAfterKill} after the kill; longest wait after it ${gap.toFixed(0)} ms`);
      assert.ok(gap < 2_000, `signing stalled ${gap.toFixed(0)} ms after the kill`);
      assert.equal(client.activeAddress, c.conn.grpc);
      await assertEveryAnswerAudited(signed, cluster.url);
    } finally {
      client.close();
    }
  });
});
