import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { PassThrough } from "node:stream";
import { AuditLog, verifyAuditChain } from "../../src/audit/audit-log.js";
import { CustosError, type CustosErrorCode } from "../../src/errors.js";
import { buildEnvelope, type ImportEnvelope } from "../../src/hsm/envelope.js";
import { CustodyService, reconcileOrphans, type ImportKeyInput } from "../../src/keys/custody-service.js";
import type { KeyRecord, KeyVersionRecord } from "../../src/keys/model.js";
import { createLogger } from "../../src/log.js";
import { AccessDirectory } from "../../src/signing/directory.js";
import type { CallerContext } from "../../src/signing/sign-service.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { FakeHsm } from "./fake-hsm.js";

const IMPORTER = "spiffe://custos/admin/bootstrap"; // admin and configured importer
const OTHER_ADMIN = "spiffe://custos/admin/other"; // admin, not an importer
const TRADER = "spiffe://custos/engine/alpha";
const IP = "127.0.0.1";
const NOW = "2025-01-01T00:00:00.000Z";

/** A SQLite store whose createKey can be made to fail (the write after the HSM unwrap). */
class FailingStore extends SqliteStore {
  failCreateKey = false;
  override async createKey(key: KeyRecord, first: KeyVersionRecord): Promise<void> {
    if (this.failCreateKey) throw new CustosError("STORE_ERROR", "database write failed", { retryable: true });
    return super.createKey(key, first);
  }
}

async function fixture() {
  const store = new FailingStore(":memory:");
  const hsm = new FakeHsm("sha256");
  const audit = await AuditLog.open(store, createLogger("info", new PassThrough()), { flushIntervalMs: 3_600_000 });
  const directory = new AccessDirectory();
  for (const [identity, role] of [
    [IMPORTER, "admin"],
    [OTHER_ADMIN, "admin"],
    [TRADER, "trader"],
  ] as const) {
    await store.upsertClient({ identity, name: identity, role, cidrs: ["127.0.0.0/8"], createdAt: NOW });
  }
  await directory.reload(store);
  const custody = new CustodyService(store, hsm, audit, directory, [TRADER], [IMPORTER]);
  const envelopeOf = (secret: Buffer): ImportEnvelope => buildEnvelope(secret, hsm.wrappingKey());
  const input = (overrides: Partial<ImportKeyInput> = {}): ImportKeyInput => ({
    keyId: "binance-main",
    exchange: "binance",
    environment: "testnet",
    label: "main account",
    apiKeyId: "pub-123",
    algorithm: "hmac-sha256",
    maxAgeDays: 45,
    envelope: envelopeOf(randomBytes(32)),
    ...overrides,
  });
  /** Audit bodies written since `afterSeq` (flushing first: denials are only queued). */
  const events = async (afterSeq = 0) => {
    await audit.flush();
    return (await store.readAudit(afterSeq, 1_000)).map((e) => JSON.parse(e.body) as Record<string, unknown>);
  };
  const close = async () => {
    await audit.close();
    await store.close();
  };
  return { store, hsm, audit, directory, custody, envelopeOf, input, events, close };
}

const as = (identity: string | null, ip: string | null = IP): CallerContext => ({ identity, ip });
const hasCode = (code: CustosErrorCode) => (e: unknown) => e instanceof CustosError && e.code === code;
const unwraps = (hsm: FakeHsm) => hsm.calls.filter((c) => c.startsWith("unwrap:"));

describe("CustodyService.importKey", () => {
  it("imports: the HSM holds the secret, the store the record, the trader the grant", async () => {
    const f = await fixture();
    const secret = randomBytes(40);
    const key = await f.custody.importKey(as(IMPORTER), f.input({ envelope: f.envelopeOf(secret) }));
    assert.equal(key.id, "binance-main");
    assert.deepEqual(
      key.versions.map((v) => [v.version, v.state, v.objectId]),
      [[1, "active", "custos:binance-main:v1"]],
    );
    assert.deepEqual(f.hsm.objects.get("custos:binance-main:v1"), secret, "the envelope opened to the original secret");
    assert.ok(f.directory.key("binance-main"), "directory reloaded");
    assert.equal(f.directory.hasGrant(TRADER, "binance-main"), true, "auto-granted");

    const [e] = await f.events();
    assert.equal(e!.kind, "key.import");
    assert.equal(e!.outcome, "ok");
    assert.equal(e!.actor, IMPORTER);
    assert.match(String((e!.details as Record<string, unknown>).envelopeSha256), /^[0-9a-f]{64}$/);
    await f.close();
  });

  const callers: Array<{ name: string; caller: CallerContext; code: CustosErrorCode }> = [
    { name: "a trader", caller: as(TRADER), code: "ROLE_NOT_ALLOWED" },
    { name: "an administrator who is not a configured importer", caller: as(OTHER_ADMIN), code: "ROLE_NOT_ALLOWED" },
    { name: "no identity", caller: as(null), code: "UNAUTHENTICATED" },
    { name: "an unknown identity", caller: as("spiffe://custos/admin/mallory"), code: "UNKNOWN_CLIENT" },
    { name: "the importer from outside its CIDRs", caller: as(IMPORTER, "10.0.0.1"), code: "ADDRESS_NOT_ALLOWED" },
  ];
  for (const c of callers) {
    it(`refuses ${c.name} with ${c.code}, audited, before any HSM call`, async () => {
      const f = await fixture();
      await assert.rejects(f.custody.importKey(c.caller, f.input()), hasCode(c.code));
      assert.deepEqual(f.hsm.calls, []);
      assert.equal(await f.store.getKey("binance-main"), undefined);
      const [e] = await f.events();
      assert.deepEqual([e!.kind, e!.outcome, e!.reason], ["key.import", "denied", c.code]);
      await f.close();
    });
  }

  it("checks the role before the request: a trader without an envelope → ROLE_NOT_ALLOWED", async () => {
    const f = await fixture();
    await assert.rejects(f.custody.importKey(as(TRADER), f.input({ envelope: undefined, keyId: "" })), hasCode("ROLE_NOT_ALLOWED"));
    await f.close();
  });

  const invalid: Array<[string, Partial<ImportKeyInput>]> = [
    ["missing envelope", { envelope: undefined }],
    ["empty key id", { keyId: "" }],
    ["key id starting with a dash", { keyId: "-main" }],
    ["key id with a space", { keyId: "binance main" }],
    ["key id with a slash", { keyId: "a/b" }],
    ["65-character key id", { keyId: "k".repeat(65) }],
    ["upper-case exchange", { exchange: "Binance" }],
    ["empty exchange", { exchange: "" }],
    ["exchange with a dot", { exchange: "binance.com" }],
    ["unknown environment", { environment: "production" as ImportKeyInput["environment"] }],
    ["unsupported algorithm", { algorithm: "hmac-md5" as ImportKeyInput["algorithm"] }],
    ["algorithm in the wrong case", { algorithm: "HMAC-SHA256" as ImportKeyInput["algorithm"] }],
    ["max age 0", { maxAgeDays: 0 }],
    ["max age 3651", { maxAgeDays: 3651 }],
    ["fractional max age", { maxAgeDays: 1.5 }],
    ["NaN max age", { maxAgeDays: Number.NaN }],
    ["over-long api key id", { apiKeyId: "x".repeat(257) }],
  ];
  for (const [name, overrides] of invalid) {
    it(`refuses ${name} with INVALID_ARGUMENT and never asks the HSM to unwrap`, async () => {
      const f = await fixture();
      await assert.rejects(f.custody.importKey(as(IMPORTER), f.input(overrides)), hasCode("INVALID_ARGUMENT"));
      assert.deepEqual(unwraps(f.hsm), []);
      assert.equal(f.hsm.objects.size, 0);
      const [e] = await f.events();
      assert.deepEqual([e!.outcome, e!.reason], ["denied", "INVALID_ARGUMENT"]);
      await f.close();
    });
  }

  it("accepts the boundary values", async () => {
    const f = await fixture();
    await f.custody.importKey(as(IMPORTER), f.input({ keyId: "k".repeat(64), exchange: "x".repeat(32), maxAgeDays: 3650, apiKeyId: "x".repeat(256) }));
    await f.custody.importKey(as(IMPORTER), f.input({ keyId: "K1.a_b-c", exchange: "okx", environment: "mainnet", algorithm: "hmac-sha512", maxAgeDays: 1 }));
    assert.equal((await f.store.listKeys()).length, 2);
    await f.close();
  });

  it("refuses an existing key id with KEY_EXISTS before unwrapping", async () => {
    const f = await fixture();
    await f.custody.importKey(as(IMPORTER), f.input());
    const before = f.hsm.objects.get("custos:binance-main:v1");
    await assert.rejects(f.custody.importKey(as(IMPORTER), f.input()), hasCode("KEY_EXISTS"));
    assert.equal(unwraps(f.hsm).length, 1);
    assert.equal(f.hsm.objects.get("custos:binance-main:v1"), before, "the first secret is untouched");
    await f.close();
  });

  it("two concurrent imports of one key id: one wins, and its secret survives", async () => {
    const f = await fixture();
    const secrets = [randomBytes(32), randomBytes(32)];
    const results = await Promise.allSettled(secrets.map((s) => f.custody.importKey(as(IMPORTER), f.input({ envelope: f.envelopeOf(s) }))));
    assert.deepEqual(results.map((r) => r.status).sort(), ["fulfilled", "rejected"]);
    const loser = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    assert.ok(hasCode("KEY_EXISTS")(loser.reason));
    const winner = results.findIndex((r) => r.status === "fulfilled");
    // The loser must not roll back (destroy) the object the winner recorded.
    assert.deepEqual(f.hsm.objects.get("custos:binance-main:v1"), secrets[winner]);
    assert.ok(await f.store.getKey("binance-main"));
    await f.close();
  });

  it("refuses an envelope made for another wrapping key with ENVELOPE_INVALID; nothing recorded", async () => {
    const f = await fixture();
    const foreign = buildEnvelope(randomBytes(32), new FakeHsm("sha256").wrappingKey());
    await assert.rejects(f.custody.importKey(as(IMPORTER), f.input({ envelope: foreign })), hasCode("ENVELOPE_INVALID"));
    assert.equal(await f.store.getKey("binance-main"), undefined);
    assert.equal(f.hsm.objects.size, 0);
    const [e] = await f.events();
    assert.deepEqual([e!.outcome, e!.reason], ["denied", "ENVELOPE_INVALID"]);
    await f.close();
  });

  it("an HSM outage during unwrap → HSM_UNAVAILABLE, audited, nothing recorded", async () => {
    const f = await fixture();
    f.hsm.down = true;
    await assert.rejects(f.custody.importKey(as(IMPORTER), f.input()), hasCode("HSM_UNAVAILABLE"));
    assert.equal(await f.store.getKey("binance-main"), undefined);
    const [e] = await f.events();
    assert.deepEqual([e!.outcome, e!.reason], ["denied", "HSM_UNAVAILABLE"]);
    await f.close();
  });

  it("a store failure after the unwrap destroys the HSM object (roll back)", async () => {
    const f = await fixture();
    f.store.failCreateKey = true;
    await assert.rejects(f.custody.importKey(as(IMPORTER), f.input()), hasCode("STORE_ERROR"));
    assert.deepEqual(f.hsm.calls, ["unwrap:custos:binance-main:v1", "destroy:custos:binance-main:v1"]);
    assert.equal(f.hsm.objects.size, 0, "no HSM object without its record");
    assert.equal(await f.store.getKey("binance-main"), undefined);
    assert.equal(f.directory.key("binance-main"), undefined);

    // And the same import succeeds once the store is back.
    f.store.failCreateKey = false;
    await f.custody.importKey(as(IMPORTER), f.input());
    assert.ok(f.hsm.objects.has("custos:binance-main:v1"));
    await f.close();
  });

  it("never writes the secret or the envelope into the audit log", async () => {
    const f = await fixture();
    const secret = Buffer.from("SUPER-SECRET-API-SECRET-0123456789abcdef");
    const envelope = f.envelopeOf(secret);
    await f.custody.importKey(as(IMPORTER), f.input({ envelope }));
    await f.audit.flush();
    const bodies = (await f.store.readAudit(0, 100)).map((e) => e.body).join("\n");
    for (const form of [secret.toString("utf8"), secret.toString("hex"), secret.toString("base64"), envelope.wrappedKey.toString("base64"), envelope.wrappedKey.toString("hex")]) {
      assert.ok(!bodies.includes(form));
    }
    await f.close();
  });
});

describe("reconcileOrphans", () => {
  async function withKey(f: Awaited<ReturnType<typeof fixture>>, id: string, state: KeyVersionRecord["state"]) {
    await f.store.createKey(
      { id, exchange: "binance", environment: "testnet", label: id, apiKeyId: "pub", algorithm: "hmac-sha256", maxAgeDays: 45, createdAt: NOW },
      { keyId: id, version: 1, objectId: `custos:${id}:v1`, state, createdAt: NOW, activatedAt: NOW },
    );
  }

  it("destroys custos objects without a live version record, audits each, keeps the rest", async () => {
    const f = await fixture();
    await withKey(f, "live", "active");
    await withKey(f, "old", "retiring");
    await withKey(f, "pending", "pending");
    await withKey(f, "gone", "destroyed");
    for (const id of ["custos:live:v1", "custos:old:v1", "custos:pending:v1", "custos:gone:v1", "custos:crashed:v1", "custos:live:v2", "other-app:key", "custosx:k:v1"]) {
      f.hsm.put(id, randomBytes(32));
    }

    const destroyed = await reconcileOrphans(f.store, f.hsm, f.audit);

    const orphans = ["custos:gone:v1", "custos:crashed:v1", "custos:live:v2"];
    assert.deepEqual([...destroyed].sort(), [...orphans].sort());
    assert.deepEqual([...f.hsm.objects.keys()].sort(), ["custos:live:v1", "custos:old:v1", "custos:pending:v1", "custosx:k:v1", "other-app:key"]);
    const events = await f.events();
    assert.deepEqual(
      events.map((e) => [e.kind, e.actor, e.outcome, (e.details as Record<string, unknown>).objectId]).sort(),
      orphans.map((id) => ["reconcile.destroy_orphan", "system", "ok", id]).sort(),
    );
    assert.equal((await verifyAuditChain(f.store)).ok, true);
    await f.close();
  });

  it("does nothing when every object is known", async () => {
    const f = await fixture();
    await withKey(f, "live", "active");
    f.hsm.put("custos:live:v1", randomBytes(32));
    assert.deepEqual(await reconcileOrphans(f.store, f.hsm, f.audit), []);
    assert.deepEqual(f.hsm.calls, []);
    assert.deepEqual(await f.events(), []);
    await f.close();
  });
});
