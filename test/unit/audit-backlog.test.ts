import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { PassThrough } from "node:stream";
import { after, before, it } from "node:test";
import { AuditLog } from "../../src/audit/audit-log.js";
import { StoreChainWriter, type ChainHead, type ChainWriter } from "../../src/audit/chain-writer.js";
import type { EncodedEvents } from "../../src/audit/event-batch.js";
import { CustosError } from "../../src/errors.js";
import { createLogger } from "../../src/log.js";
import { AccessDirectory } from "../../src/signing/directory.js";
import { SignService } from "../../src/signing/sign-service.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { FakeHsm } from "./fake-hsm.js";

/**
 * No signature without its audit record beyond a bound: while the store cannot take audit
 * records, custos keeps signing only until the oldest unwritten one is older than
 * maxUnwrittenAuditSeconds, then refuses (AUDIT_BACKLOG), and signs again once they are written.
 */
const ALPHA = "spiffe://custos/engine/alpha";
const NOW = "2026-01-01T00:00:00.000Z";
const SECRET = randomBytes(32);
const PAYLOAD = Buffer.from("symbol=BTCUSDT&side=BUY&quantity=1");

/** The store's writer, with an outage switch. */
class FlakyWriter implements ChainWriter {
  down = false;
  constructor(private readonly inner: ChainWriter) {}
  append(batch: EncodedEvents, head: ChainHead): Promise<ChainHead> {
    return this.down ? Promise.reject(new CustosError("STORE_ERROR", "connection refused")) : this.inner.append(batch, head);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

let store: SqliteStore;
let audit: AuditLog;
let writer: FlakyWriter;
let signer: SignService;
let monotonicMs = 1_000;

before(async () => {
  store = new SqliteStore(":memory:");
  await store.clients.upsertClient({ identity: ALPHA, name: "alpha", role: "trader", cidrs: ["10.0.0.0/8"], createdAt: NOW });
  const key = {
    id: "k",
    exchange: "custom",
    environment: "testnet" as const,
    label: "k",
    apiKeyId: "pub",
    algorithm: "hmac-sha256" as const,
    maxAgeDays: 45,
    createdAt: NOW,
  };
  await store.keys.createKey(key, { keyId: "k", version: 1, objectId: "custos:k:v1", state: "active", createdAt: NOW, activatedAt: NOW });
  await store.clients.addGrant(ALPHA, "k");
  const hsm = new FakeHsm();
  hsm.put("custos:k:v1", SECRET);
  const directory = new AccessDirectory();
  await directory.reload(store);
  writer = new FlakyWriter(new StoreChainWriter(store));
  audit = await AuditLog.open(store, createLogger("info", new PassThrough()), { flushIntervalMs: 3_600_000, writer, clock: () => monotonicMs });
  const unlimited = { perSecond: 1_000_000, burst: 1_000_000 };
  signer = new SignService(
    directory,
    hsm,
    audit,
    { observe() {} },
    { maxPayloadBytes: 1024, clientRate: unlimited, keyRate: unlimited, maxUnwrittenAuditSeconds: 5 },
  );
});
after(async () => {
  await audit.close();
  await store.close();
});

const sign = () => signer.sign({ identity: ALPHA, ip: "10.0.0.1" }, { keyId: "k", version: 0, payload: PAYLOAD });
const refusedWith = (code: string) => (e: unknown) => e instanceof CustosError && e.code === code;

it("signs through a store outage until the oldest unwritten record is older than the bound, then refuses with AUDIT_BACKLOG", async () => {
  writer.down = true;
  const first = await sign();
  assert.deepEqual(first.signature, createHmac("sha256", SECRET).update(PAYLOAD).digest());
  await assert.rejects(audit.flush(), refusedWith("STORE_ERROR"));
  monotonicMs += 4_900;
  await sign(); // 4.9 s: within the bound
  monotonicMs += 200;
  await assert.rejects(sign(), refusedWith("AUDIT_BACKLOG"));
  await assert.rejects(sign(), refusedWith("AUDIT_BACKLOG"));
  assert.equal((await store.audit.lastAudit())?.seq ?? 0, 0, "nothing written during the outage");
});

it("signs again once the backlog is written, and every decision of the outage is in the chain", async () => {
  writer.down = false;
  await audit.flush();
  assert.equal(audit.lagSeconds, 0);
  await sign();
  await audit.flush();
  const rows = (await store.audit.readAudit(0, 100)).map((r) => JSON.parse(r.body) as { kind: string; outcome: string; reason?: string });
  assert.deepEqual(
    rows.map((r) => [r.kind, r.outcome, r.reason ?? ""]),
    [
      ["sign", "allowed", ""],
      ["sign", "allowed", ""],
      ["sign", "failed", "AUDIT_BACKLOG"],
      ["sign", "failed", "AUDIT_BACKLOG"],
      ["sign", "allowed", ""],
    ],
  );
});
