import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { cpSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import { CustosClient } from "../../src/client/custos-client.js";
import { type AuditBody, auditEvents, type ChildService, devOfficerClient, importSecret, spawnService, tempDir } from "../helpers/harness.js";

const SECRET = Buffer.from("failover-test-secret-0123456789abcdef0123456789abcdef");
const KEY = "shared";

/**
 * Replicas of one deployment, as far as the client can tell before the PostgreSQL store is
 * wired in: independent services whose PKI is one (the first data dir's, copied before the
 * others start) and which hold the same key id with the same secret.
 */
async function startReplica(pkiFrom?: string): Promise<ChildService> {
  const dir = tempDir();
  if (pkiFrom) cpSync(join(pkiFrom, "pki"), join(dir, "pki"), { recursive: true });
  const svc = await spawnService(dir);
  const custody = devOfficerClient(svc.conn);
  try {
    await importSecret(custody, KEY, SECRET);
  } finally {
    custody.close();
  }
  return svc;
}

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

/** sha256 of every payload with an allowed raw-sign audit event, across the replicas' data dirs. */
async function auditedPayloads(dirs: string[]): Promise<Set<string>> {
  const hashes = new Set<string>();
  for (const dir of dirs) {
    for (const e of (await auditEvents(dir)) as Array<AuditBody & { payloadSha256?: string }>) {
      if (e.kind === "sign" && e.outcome === "allowed" && e.payloadSha256) hashes.add(e.payloadSha256);
    }
  }
  return hashes;
}

describe("the TypeScript client fails over between replicas", () => {
  const replicas: ChildService[] = [];

  before(async () => {
    replicas.push(await startReplica());
    replicas.push(await startReplica(replicas[0]?.dir));
    replicas.push(await startReplica(replicas[0]?.dir));
  });
  after(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
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
        if ((await auditedCount(a)) >= 100) break;
        await new Promise((r) => setTimeout(r, 20));
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
      const lost = await assertAuditedAfter(signed, killedAt, [a.dir, b.dir]);
      t.diagnostic(`answered by the killed replica and never audited (its unwritten batch died with it): ${lost}`);
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
      const lost = await assertAuditedAfter(signed, killedAt, [b.dir, c.dir]);
      t.diagnostic(`answered by the killed replica and never audited (its unwritten batch died with it): ${lost}`);
    } finally {
      client.close();
    }
  });
});

async function auditedCount(svc: ChildService): Promise<number> {
  return (await auditedPayloads([svc.dir])).size;
}

/**
 * Every signature received once the killed replica could no longer answer (200 ms after the
 * SIGKILL) has its audit event on a replica; sign events are written in batches, so this polls.
 * Returns how many earlier signatures have none: the killed replica's unwritten batch (custos
 * answers before the batch is written; see the report of this branch and SECURITY.md §6).
 */
async function assertAuditedAfter(signed: Signed[], killedAt: number, dirs: string[]): Promise<number> {
  const digest = (s: Signed): string => createHash("sha256").update(s.payload).digest("hex");
  const wanted = signed.filter((s) => s.at > killedAt + 200).map(digest);
  assert.ok(wanted.length > 0);
  let audited = new Set<string>();
  for (const deadline = performance.now() + 5_000; performance.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
    audited = await auditedPayloads(dirs);
    if (wanted.every((h) => audited.has(h))) break;
  }
  const missing = wanted.filter((h) => !audited.has(h)).length;
  assert.equal(missing, 0, `${missing} of ${wanted.length} signatures answered by the surviving replica have no audit event`);
  return signed.map(digest).filter((h) => !audited.has(h)).length;
}
