import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { PassThrough } from "node:stream";
import { describe, it } from "node:test";
import { destinationFor, type Destination } from "../../src/egress/destinations.js";
import type { Egress, ExchangeReply, OutgoingRequest } from "../../src/egress/http-egress.js";
import { ExchangePermissionChecker, WAITING_FOR_PASSPHRASE } from "../../src/exchange-permissions/checker.js";
import type { KeyVersionRecord, KeyWithVersions } from "../../src/keys/model.js";
import { createLogger } from "../../src/log.js";
import { FakeHsm } from "./fake-hsm.js";

/*
 * The checker's use of a caller's passphrase (OKX), with the egress, store and audit log faked: it
 * waits until one arrives, checks at once when it does, uses it only for the version it came with,
 * and drops it on rotation; the passphrase reaches no audit record or log line.
 */

const PASS = "Okx-Unit-Passphrase!7";
const at = "2025-01-01T00:00:00.000Z";

function version(v: number, state: KeyVersionRecord["state"]): KeyVersionRecord {
  return { keyId: "okx", version: v, objectId: `custos:okx:v${v}`, state, createdAt: at, activatedAt: at, retireAt: null, apiKeyId: `okx-api-${v}` };
}

function setup() {
  const hsm = new FakeHsm();
  hsm.put("custos:okx:v1", randomBytes(32));
  hsm.put("custos:okx:v2", randomBytes(32));
  const key: KeyWithVersions = {
    id: "okx",
    exchange: "okx",
    environment: "mainnet",
    label: "okx",
    apiKeyId: "okx-api-1",
    algorithm: "hmac-sha256",
    maxAgeDays: 45,
    createdAt: at,
    versions: [version(1, "active")],
  };
  const sent: OutgoingRequest[] = [];
  const egress: Egress = {
    route: (exchange, environment, path): Destination => destinationFor(exchange, environment, path),
    send: async (_e: string, _d: Destination, request: OutgoingRequest): Promise<ExchangeReply> => {
      sent.push(request);
      const body = { code: "0", msg: "", data: [{ uid: "1", perm: "read_only,trade", ip: "203.0.113.7" }] };
      return { status: 200, headers: [], body: Buffer.from(JSON.stringify(body)), roundTripUs: 1 };
    },
  };
  const records: Array<{ details?: Record<string, unknown> }> = [];
  let logText = "";
  const sink = new PassThrough();
  sink.on("data", (d: Buffer) => (logText += d.toString()));
  const checker = new ExchangePermissionChecker({
    hsm,
    egress,
    now: () => Date.parse("2025-06-01T00:00:00Z"),
    keys: {
      getKey: async () => key,
      listKeys: async () => [key],
      // The store every replica reads: the key record carries the last verdict.
      setExchangePermissions: async (_id, v) => void (key.exchangePermissions = v),
    },
    policy: () => ({}),
    audit: { recordNow: async (r: { details?: Record<string, unknown> }) => void records.push(r) } as never,
    freeze: async () => undefined,
    logger: createLogger("debug", sink),
    intervalMs: 1,
  });
  const until = async (n: number) => {
    const deadline = Date.now() + 2_000;
    while (records.length < n) {
      if (Date.now() > deadline) assert.fail(`expected ${n} audit records, got ${records.length}`);
      await new Promise((r) => setImmediate(r));
    }
  };
  return { key, sent, records, checker, until, logs: () => logText };
}

describe("the permission check with a caller's passphrase (OKX)", () => {
  it("waits without one, checks once the first request carries it, and sends it only as OK-ACCESS-PASSPHRASE", async () => {
    const { sent, records, checker, until, logs } = setup();
    await checker.check("okx", "import");
    assert.deepEqual(records[0]!.details, { trigger: "import", verified: false, why: WAITING_FOR_PASSPHRASE });
    assert.equal(checker.verdict("okx"), `not verified: ${WAITING_FOR_PASSPHRASE}`);
    assert.equal(sent.length, 0);

    checker.callerPassphrase({ id: "okx", exchange: "okx" }, 1, PASS);
    await until(2);
    assert.deepEqual([records[1]!.details?.trigger, records[1]!.details?.verified, records[1]!.details?.unsafe], ["passphrase", true, ""]);
    assert.equal(new Map(sent[0]!.headers).get("OK-ACCESS-PASSPHRASE"), PASS);
    // The same passphrase again starts no second check.
    checker.callerPassphrase({ id: "okx", exchange: "okx" }, 1, PASS);
    await checker.stop();
    assert.equal(sent.length, 1);
    assert.equal(JSON.stringify(records).includes(PASS), false);
    assert.equal(logs().includes(PASS), false);
  });

  it("drops the passphrase on rotation: the new version's check waits for its own", async () => {
    const { key, sent, records, checker, until } = setup();
    checker.callerPassphrase({ id: "okx", exchange: "okx" }, 1, PASS);
    await until(1);
    key.versions = [version(1, "retiring"), version(2, "active")];
    await checker.check("okx", "rotation");
    assert.deepEqual([records[1]!.details?.trigger, records[1]!.details?.why], ["rotation", WAITING_FOR_PASSPHRASE]);
    // Back to version 1 would be a bug: the held one was for it, and is gone.
    await checker.check("okx", "periodic");
    assert.equal(records[2]!.details?.why, WAITING_FOR_PASSPHRASE);
    assert.equal(sent.length, 1);
  });

  it("records its verdict in the store, and a periodic check without the passphrase leaves another replica's verified verdict", async () => {
    const { key, sent, records, checker } = setup();
    await checker.check("okx", "import");
    assert.deepEqual(key.exchangePermissions, { verdict: `not verified: ${WAITING_FOR_PASSPHRASE}`, checkedAt: "2025-06-01T00:00:00.000Z" });
    // Another replica, whose callers send the passphrase, found the key safe later.
    key.exchangePermissions = { verdict: "safe", checkedAt: "2025-06-01T00:05:00.000Z" };
    assert.equal(checker.verdict("okx", key.exchangePermissions), "safe", "the newer verdict of any replica");
    await checker.check("okx", "periodic");
    assert.equal(records[1]!.details?.why, WAITING_FOR_PASSPHRASE, "the check itself is audited as it went");
    assert.deepEqual(key.exchangePermissions, { verdict: "safe", checkedAt: "2025-06-01T00:05:00.000Z" }, "not overwritten by a replica that cannot see");
    assert.equal(checker.verdict("okx", key.exchangePermissions), "safe");
    // A rotation makes the old verdict stale: the new version waits for its own passphrase.
    key.versions = [version(1, "retiring"), version(2, "active")];
    key.exchangePermissions = { verdict: "safe", checkedAt: "2025-05-31T00:00:00.000Z" };
    await checker.check("okx", "rotation");
    assert.equal(key.exchangePermissions?.verdict, `not verified: ${WAITING_FOR_PASSPHRASE}`);
    assert.equal(sent.length, 0);
  });

  it("ignores passphrases for exchanges whose checks need none", async () => {
    const { sent, records, checker } = setup();
    checker.callerPassphrase({ id: "bn", exchange: "binance" }, 1, PASS);
    await checker.stop();
    assert.deepEqual([sent.length, records.length], [0, 0]);
  });
});
