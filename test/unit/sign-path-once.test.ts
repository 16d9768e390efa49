import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { PassThrough } from "node:stream";
import { AuditLog } from "../../src/audit/audit-log.js";
import type { CustosError } from "../../src/errors.js";
import type { Dialect } from "../../src/exchanges/dialect.js";
import { dialectFor } from "../../src/exchanges/registry.js";
import { createLogger } from "../../src/log.js";
import type { KeyPolicy } from "../../src/policy/policy.js";
import { nextRequestId } from "../../src/request-id.js";
import { AccessDirectory } from "../../src/signing/directory.js";
import { SignService, type ExchangeSignRequest, type SignDecision } from "../../src/signing/sign-service.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { FakeHsm } from "./fake-hsm.js";

/*
 * The sign path reads each exchange request once, judges it against one fetch of the key's
 * policy, and ends every decision, allowed or refused, in one tail: one audit row, one
 * observation, one decision-log line (with the one request-id scheme for refusals).
 */

const ALPHA = "spiffe://custos/engine/alpha";
const caller = { identity: ALPHA, ip: "10.1.2.3" };
const NOW = "2025-01-01T00:00:00.000Z";

/** Counts policy look-ups; everything else is the real directory. */
class CountingDirectory extends AccessDirectory {
  policyLookups = 0;
  override policy(keyId: string): KeyPolicy {
    this.policyLookups++;
    return super.policy(keyId);
  }
}

let store: SqliteStore;
let audit: AuditLog;
let directory: CountingDirectory;
let signer: SignService;
const observed: string[] = [];
const logged: SignDecision[] = [];

before(async () => {
  store = new SqliteStore(":memory:");
  const hsm = new FakeHsm();
  await store.clients.upsertClient({ identity: ALPHA, name: "alpha", role: "trader", cidrs: ["10.0.0.0/8"], createdAt: NOW });
  await store.keys.createKey(
    {
      id: "binance",
      exchange: "binance",
      environment: "testnet",
      label: "binance",
      apiKeyId: "pub-binance",
      algorithm: "hmac-sha256",
      maxAgeDays: 45,
      createdAt: NOW,
    },
    { keyId: "binance", version: 1, objectId: "custos:binance:v1", state: "active", createdAt: NOW, activatedAt: NOW, retireAt: null },
  );
  await store.keys.setPolicy("binance", JSON.stringify({ maxQuantity: { "*": 1 } }), NOW);
  await store.clients.addGrant(ALPHA, "binance");
  hsm.put("custos:binance:v1", randomBytes(32));
  directory = new CountingDirectory();
  await directory.reload(store);
  audit = await AuditLog.open(store, createLogger("info", new PassThrough()), { flushIntervalMs: 3_600_000 });
  const unlimited = { perSecond: 1_000_000, burst: 1_000_000 };
  signer = new SignService(
    directory,
    hsm,
    audit,
    { observe: (outcome, reason, _s, _client, key, cls) => observed.push(`${outcome} ${reason} ${key} ${cls}`) },
    { maxPayloadBytes: 64 * 1024, clientRate: unlimited, keyRate: unlimited, decisionLog: { allowedToo: true, decided: (d) => logged.push(d) } },
  );
});

after(async () => {
  await audit.close();
  await store.close();
});

const order = (quantity: string): ExchangeSignRequest => ({
  keyId: "binance",
  version: 0,
  request: { method: "POST", path: "/fapi/v1/order", query: `symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=${quantity}&price=42000`, body: "" },
  timestampMs: 0,
  nonce: "",
  expires: 0,
  recvWindowMs: 0,
  passphrase: "",
});

/** Counts calls to the dialect's readers during `run`, then restores them. */
async function countingReads(d: Dialect, run: () => Promise<unknown>): Promise<Record<string, number>> {
  const counts: Record<string, number> = { read: 0, classify: 0, symbols: 0, orders: 0, schemaMisfit: 0, prepare: 0 };
  const target = d as unknown as Record<string, (...a: unknown[]) => unknown>;
  const originals = Object.fromEntries(Object.keys(counts).map((k) => [k, target[k]!]));
  for (const k of Object.keys(counts)) {
    target[k] = (...a: unknown[]) => {
      counts[k]!++;
      return originals[k]!.apply(d, a);
    };
  }
  try {
    await run().catch(() => undefined);
  } finally {
    Object.assign(target, originals);
  }
  return counts;
}

describe("the sign path: one read, one policy look-up, one decision tail", () => {
  it("reads an allowed Binance order once and looks its key's policy up once", async () => {
    const before = directory.policyLookups;
    const reads = await countingReads(dialectFor("binance")!, () => signer.signExchange(caller, order("0.5")));
    assert.deepEqual(reads, { read: 1, classify: 0, symbols: 0, orders: 0, schemaMisfit: 0, prepare: 0 });
    assert.equal(directory.policyLookups - before, 1);
  });

  it("reads a refused order once, and looks the policy up once", async () => {
    const before = directory.policyLookups;
    const reads = await countingReads(dialectFor("binance")!, () => signer.signExchange(caller, order("2")));
    assert.deepEqual(reads, { read: 1, classify: 0, symbols: 0, orders: 0, schemaMisfit: 0, prepare: 0 });
    assert.equal(directory.policyLookups - before, 1);
  });

  it("ends an allowed and a refused decision in the same tail: one audit row, one observation, one log line each", async () => {
    await audit.flush();
    const seq = (await store.audit.lastAudit())?.seq ?? 0;
    observed.length = 0;
    logged.length = 0;
    await signer.signExchange(caller, order("0.5"));
    const refusal = await signer.signExchange(caller, order("2")).then(
      () => assert.fail("an order above the key's limit was signed"),
      (e: unknown) => e as CustosError,
    );
    assert.equal(refusal.code, "POLICY_DENIED");
    assert.deepEqual(observed, ["allowed OK binance trade", "denied POLICY_DENIED binance trade"]);
    assert.deepEqual(
      logged.map((d) => [d.event, d.outcome, d.reason, d.requestId === undefined]),
      [
        ["sign.request", "allowed", "OK", true],
        ["sign.request", "denied", "POLICY_DENIED", false],
      ],
    );
    assert.equal(logged[1]!.requestId, refusal.requestId);
    await audit.flush();
    const rows = (await store.audit.readAudit(seq, 10)).map((e) => JSON.parse(e.body) as { kind: string; outcome: string; details?: Record<string, string> });
    assert.deepEqual(
      rows.map((r) => [r.kind, r.outcome, r.details?.class, r.details?.rule]),
      [
        ["sign.request", "allowed", "trade", undefined],
        ["sign.request", "denied", "trade", "max-quantity:BTCUSDT"],
      ],
    );
  });

  it("names refusals with the one request-id scheme: r<pid>-<counter>, base 36, never repeated", () => {
    const ids = Array.from({ length: 1_000 }, () => nextRequestId());
    for (const id of ids) assert.match(id, new RegExp(`^r${process.pid.toString(36)}-[0-9a-z]+$`));
    assert.equal(new Set(ids).size, ids.length);
  });
});
