import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { afterEach, it } from "node:test";
import { AuditLog, type AuditEvent } from "../../src/audit/audit-log.js";
import { StoreChainWriter, type ChainHead, type ChainWriter } from "../../src/audit/chain-writer.js";
import type { EncodedEvents } from "../../src/audit/event-batch.js";
import { CustosError } from "../../src/errors.js";
import { createLogger } from "../../src/log.js";
import { AccessDirectory } from "../../src/signing/directory.js";
import { SignDecisions } from "../../src/signing/sign-decisions.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";

/**
 * A signature is answered once its audit record is written (audit.acknowledge "written", the
 * default): a crash after the answer cannot lose the record. Signs of one moment share one write;
 * a store that refuses writes lets signatures go out on the queue (the backlog bound still
 * applies); a write that hangs past the bound refuses the signatures it holds.
 */

/** The store's writer, holding each append until released, or failing it. */
class GatedWriter implements ChainWriter {
  readonly appends: number[] = [];
  private held: Array<() => void> = [];
  hold = false;
  failing = false;
  constructor(private readonly inner: ChainWriter) {}
  async append(batch: EncodedEvents, head: ChainHead): Promise<ChainHead> {
    this.appends.push(batch.count);
    if (this.failing) throw new CustosError("STORE_ERROR", "connection refused");
    if (this.hold) await new Promise<void>((r) => this.held.push(r));
    return this.inner.append(batch, head);
  }
  release(): void {
    const held = this.held;
    this.held = [];
    for (const r of held) r();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

const SIGNED: AuditEvent = { kind: "sign", actor: "spiffe://custos/engine/alpha", outcome: "allowed", key: "k", version: 1 };
let store: SqliteStore;
let audit: AuditLog;
let writer: GatedWriter;
let clockMs = 1_000;

async function open(opts: { acknowledge?: "written" | "queued"; flushIntervalMs?: number } = {}): Promise<void> {
  store = new SqliteStore(":memory:");
  writer = new GatedWriter(new StoreChainWriter(store));
  audit = await AuditLog.open(store, createLogger("info", new PassThrough()), {
    flushIntervalMs: opts.flushIntervalMs ?? 3_600_000,
    writer,
    clock: () => clockMs,
    maxUnwrittenSeconds: 5,
    ...(opts.acknowledge ? { acknowledge: opts.acknowledge } : {}),
  });
}

afterEach(async () => {
  writer.hold = false;
  writer.failing = false;
  writer.release();
  await audit.close();
  await store.close();
});

/** Whether `p` has settled after every pending turn of the event loop ran. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  return done;
}

const stored = async () => (await store.audit.lastAudit())?.seq ?? 0;

it("answers a signature only once its record is in the store", async () => {
  await open();
  writer.hold = true;
  const answered = audit.recordSigned(SIGNED);
  assert.ok(answered, "a promise to wait for");
  assert.equal(await settled(answered), false, "not answered while the write is held");
  assert.equal(await stored(), 0);
  writer.release();
  await answered;
  assert.equal(await stored(), 1, "the record is stored before the answer");
});

it("gathers the signatures of one moment into one write, and the next ones behind it", async () => {
  await open();
  writer.hold = true;
  const first = Array.from({ length: 50 }, () => audit.recordSigned(SIGNED));
  assert.equal(await settled(Promise.all(first)), false);
  assert.deepEqual(writer.appends, [50], "one write for the 50 signs of one turn");
  // While that write is in flight, the next signs gather behind it.
  const second = Array.from({ length: 30 }, () => audit.recordSigned(SIGNED));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(writer.appends, [50], "no second write while one is in flight");
  writer.hold = false;
  writer.release();
  await Promise.all(first);
  await Promise.all(second);
  assert.deepEqual(writer.appends, [50, 30]);
  assert.equal(await stored(), 80);
});

it("lets signatures go out on the queue while the store refuses writes, and waits again once it takes them", async () => {
  await open();
  writer.failing = true;
  // The write fails: the waiting signature is answered (the backlog bound, checked before signing, limits this).
  await audit.recordSigned(SIGNED);
  assert.equal(audit.recordSigned(SIGNED), undefined, "while the store refuses, nothing to wait for");
  assert.equal(await stored(), 0);
  writer.failing = false;
  await audit.flush();
  assert.equal(await stored(), 2, "the outage's records are written once the store takes them");
  writer.hold = true;
  const answered = audit.recordSigned(SIGNED);
  assert.ok(answered, "waits for the write again");
  assert.equal(await settled(answered), false);
  writer.release();
  await answered;
  assert.equal(await stored(), 3);
});

it("refuses the signatures a hanging write holds once the backlog bound passes (AUDIT_BACKLOG)", async () => {
  await open({ flushIntervalMs: 5 });
  writer.hold = true;
  const answered = audit.recordSigned(SIGNED);
  assert.ok(answered);
  clockMs += 4_000;
  assert.equal(await settled(answered), false, "within the bound it waits");
  clockMs += 1_500;
  // The log's timer does not hold the process open (as in custos, where the server does).
  const alive = setInterval(() => undefined, 1_000);
  await assert.rejects(answered, (e: unknown) => e instanceof CustosError && e.code === "AUDIT_BACKLOG");
  clearInterval(alive);
  writer.hold = false;
  writer.release();
  await audit.flush();
  assert.equal(await stored(), 1, "the record itself is still written: the chain says the signature was made");
});

it("answers at once with audit.acknowledge = queued", async () => {
  await open({ acknowledge: "queued" });
  writer.hold = true;
  assert.equal(audit.recordSigned(SIGNED), undefined);
  assert.equal(await stored(), 0);
  writer.hold = false;
  writer.release();
  await audit.flush();
  assert.equal(await stored(), 1);
});

it("observes an allowed sign (metrics, anomaly detection) once its record is written, and a refused one never as allowed", async () => {
  await open({ flushIntervalMs: 5 });
  const observed: string[] = [];
  const decisions = new SignDecisions(audit, new AccessDirectory(), { observe: (outcome, reason) => observed.push(`${outcome}:${reason}`) }, undefined);
  const caller = { identity: "spiffe://custos/engine/alpha", ip: "127.0.0.1" };
  const decision = { kind: "sign" as const, key: "k", version: 1, endpointClass: "raw" };
  writer.hold = true;
  const answered = decisions.allowed(caller, performance.now(), decision);
  assert.ok(answered);
  assert.equal(await settled(answered), false);
  assert.deepEqual(observed, [], "not observed while its record waits: the latency metric includes the write");
  writer.hold = false;
  writer.release();
  await answered;
  assert.deepEqual(observed, ["allowed:OK"]);

  // A write that hangs past the bound: the signature is refused, and never counted as allowed.
  writer.hold = true;
  const refused = decisions.allowed(caller, performance.now(), decision);
  clockMs += 6_000;
  const alive = setInterval(() => undefined, 1_000);
  await assert.rejects(refused!, (e: unknown) => e instanceof CustosError && e.code === "AUDIT_BACKLOG");
  clearInterval(alive);
  assert.deepEqual(observed, ["allowed:OK"]);
});
