import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { AuditLog, verifyAuditChain } from "../../src/audit/audit-log.js";
import { WorkerChainWriter } from "../../src/audit/worker-chain-writer.js";
import { CustosError } from "../../src/errors.js";
import { createLogger } from "../../src/log.js";
import { PgStore } from "../../src/store/postgres/pg-store.js";
import { startPostgres } from "../helpers/postgres.js";

const cluster = await startPostgres();
after(() => cluster.close());

const PER_WRITER = 1_500;

/** Runs the audit writer process to completion; rejects on a non-zero exit or after 120 s. */
function writerProcess(url: string, writer: string, count: number): Promise<void> {
  const script = fileURLToPath(new URL("../helpers/audit-writer-process.js", import.meta.url));
  const child = spawn(process.execPath, [script, writer, String(count)], {
    env: { ...process.env, CUSTOS_POSTGRES_URL: url },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`writer ${writer} did not finish in 120 s: ${output}`));
    }, 120_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (code === 0 && output.includes("done")) resolve();
      else reject(new Error(`writer ${writer} exited ${code}: ${output}`));
    });
  });
}

/**
 * Records events in chunks of 50, each flushed before the next, at least `min` of them and on
 * until `done()` (at most 60 s and 100,000 events); returns how many.
 */
async function recordUntil(log: AuditLog, writer: string, min: number, done: () => boolean): Promise<number> {
  const deadline = Date.now() + 60_000;
  let i = 0;
  while ((i < min || !done()) && Date.now() < deadline && i < 100_000) {
    log.record({ kind: "test.append", actor: writer, outcome: "ok", details: { i } });
    if (++i % 50 === 0) await log.flush();
  }
  await log.close();
  return i;
}

test("three writers (two stores in this process, one other process) append concurrently to one gap-free chain", async () => {
  const url = await cluster.createDatabase("chain_three_writers");
  const a = await PgStore.open(url);
  const b = await PgStore.open(url);
  const logger = createLogger("silent");
  // A: the service's path (a writer thread with its own connection); B: on this thread, through its store.
  const logA = await AuditLog.open(a, logger, { flushIntervalMs: 5, maxBatch: 50, writer: new WorkerChainWriter({ backend: "postgres", url }) });
  const logB = await AuditLog.open(b, logger, { flushIntervalMs: 5, maxBatch: 50 });
  let childDone = false;
  const child = writerProcess(url, "c", PER_WRITER).finally(() => (childDone = true));
  // This process's writers keep writing while the other process does.
  const [countA, countB] = await Promise.all([recordUntil(logA, "a", PER_WRITER, () => childDone), recordUntil(logB, "b", PER_WRITER, () => childDone), child]);
  const counts = new Map([
    ["a", countA],
    ["b", countB],
    ["c", PER_WRITER],
  ]);
  const total = countA + countB + PER_WRITER;

  const check = await verifyAuditChain(a);
  assert.equal(check.ok, true, JSON.stringify(check));
  assert.equal(check.lastSeq, total);
  assert.equal(await a.audit.countAudit(check.lastSeq), total, "no gap");
  const rows = await a.audit.readAudit(0, total + 1);
  const seen = new Map<string, number[]>();
  for (const r of rows) {
    const body = JSON.parse(r.body) as { actor: string; seq: number; details: { i: number } };
    assert.equal(body.seq, r.seq, "each body carries its own seq");
    seen.set(body.actor, [...(seen.get(body.actor) ?? []), body.details.i]);
  }
  for (const [writer, count] of counts) assert.deepEqual(seen.get(writer), [...Array(count).keys()], `writer ${writer}: every event once, in its order`);
  // The other process's batches landed between this process's: the writers really were concurrent.
  const actors = rows.map((r) => (JSON.parse(r.body) as { actor: string }).actor);
  const firstC = actors.indexOf("c");
  const lastC = actors.lastIndexOf("c");
  const between = new Set(actors.slice(firstC, lastC));
  assert.ok(between.has("a") && between.has("b"), "events of a and b between the other process's first and last");
  await a.close();
  await b.close();
});

test("a row that would extend an already extended event is refused by the unique prev_hash, whatever its seq", async () => {
  const url = await cluster.createDatabase("chain_fork");
  const store = await PgStore.open(url);
  const log = await AuditLog.open(store, createLogger("silent"), { flushIntervalMs: 3_600_000 });
  await log.recordNow({ kind: "test.append", actor: "a", outcome: "ok" });
  await log.recordNow({ kind: "test.append", actor: "a", outcome: "ok" });
  const [first] = await store.audit.readAudit(0, 1);
  await assert.rejects(
    store.audit.appendAudit([{ seq: 3, body: "{}", prevHash: first!.hash, hash: "f".repeat(64) }]),
    (e: unknown) => e instanceof CustosError && e.code === "STORE_ERROR",
  );
  assert.equal((await verifyAuditChain(store)).ok, true);
  await log.close();
  await store.close();
});
