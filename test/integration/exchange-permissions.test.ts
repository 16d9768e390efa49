import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { unary } from "../../src/client/connection.js";
import type { ExchangeRequest } from "../../src/gen/custos/v1/signer.js";
import { status } from "@grpc/grpc-js";
import {
  auditEvents,
  envelopeFor,
  expectDenied,
  importSecret,
  proposeAndApprove,
  startInProcess,
  tempDir,
  type AuditBody,
  type InProcessService,
} from "../helpers/harness.js";
import { SAFE_BINANCE_RESTRICTIONS, StandInBinance, StandInBybit, standInTls } from "../helpers/stand-in-exchange.js";

/**
 * The exchange-side half of the hybrid, verified, through the real service (SoftHSM2, gRPC over mTLS,
 * SQLite): custos signs and sends the permission queries itself to HTTPS stand-ins that verify the
 * signature and API key as Binance and Bybit document, audits the facts, flags unsafe keys in the
 * metrics and freezes them when their policy asks.
 */

const SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
const BYBIT_SECRET = "bybit-stand-in-secret-0123456789abcdef";
const API = { safe: "bn-api-safe", withdraw: "bn-api-withdraw", transfer: "bn-api-transfer", down: "bn-api-down", rotated: "bn-api-rotated" };
const ORDER = "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01";

function order(keyId: string): ExchangeRequest {
  return {
    keyId,
    version: 0,
    method: "POST",
    path: "/fapi/v1/order",
    query: ORDER,
    queryParams: [],
    body: Buffer.from(""),
    timestampMs: "0",
    nonce: "",
    expires: "0",
    recvWindowMs: 0,
    passphrase: "",
    apiKeyVersion: "",
    omitNonce: false,
  };
}

describe("custos reads each key's permissions from its exchange", () => {
  let svc: InProcessService;
  const binance = new StandInBinance(new Map(Object.values(API).map((k) => [k, SECRET])));
  const bybit = new StandInBybit(new Map([["by-api-open", BYBIT_SECRET]]));
  binance.apiRestrictions.set(API.withdraw, { ...SAFE_BINANCE_RESTRICTIONS, enableWithdrawals: true });
  binance.apiRestrictions.set(API.transfer, { ...SAFE_BINANCE_RESTRICTIONS, permitsUniversalTransfer: true });
  binance.apiRestrictions.set(API.down, { ...SAFE_BINANCE_RESTRICTIONS, enableWithdrawals: true });
  bybit.apiKeyInfo.set("by-api-open", { ips: ["*"] });

  const send = (keyId: string) => unary(svc.signer, "sendExchangeRequest", order(keyId));
  const setPolicy = async (keyId: string, policy: unknown) => {
    const p = await proposeAndApprove(svc.custody, { kind: { $case: "setPolicy", setPolicy: { keyId, policyJson: JSON.stringify(policy) } }, ttlSeconds: 0 });
    assert.equal(p.state, "executed", p.failure);
  };
  /** Polls the audit chain for the `n`th key.exchange_permissions record of a key with this trigger. */
  const checked = async (key: string, trigger: string, n = 1): Promise<AuditBody> => {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const found = (await auditEvents(svc.dir)).filter((e) => e.kind === "key.exchange_permissions" && e.key === key && e.details?.trigger === trigger);
      if (found.length >= n) return found[n - 1]!;
      if (Date.now() > deadline) assert.fail(`no ${trigger} permission check of ${key} was audited`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const metric = async (name: string, key: string): Promise<number | undefined> => {
    const text = (await svc.service.http.inject({ method: "GET", url: "/metrics" })).body;
    const line = text.split("\n").find((l) => l.startsWith(`${name}{key="${key}"}`));
    return line === undefined ? undefined : Number(line.split(" ").at(-1));
  };
  const listed = async (keyId: string) => (await unary(svc.custody, "listKeys", {})).keys.find((k) => k.keyId === keyId)?.exchangePermissions;
  const frozen = async (keyId: string) => (await unary(svc.custody, "listKeys", {})).keys.find((k) => k.keyId === keyId)?.frozen;

  before(async () => {
    const tls = await standInTls();
    const caFile = join(tempDir("custos-permissions-ca-"), "exchange-ca.pem");
    writeFileSync(caFile, tls.caPem);
    const [binanceUrl, bybitUrl] = [await binance.start({ tls }), await bybit.start({ tls })];
    svc = await startInProcess((c) => {
      c.egress = {
        ...c.egress,
        hosts: { binance: { "/fapi/": binanceUrl, "/sapi/": binanceUrl }, bybit: { "/": bybitUrl } },
        trustedCaFile: caFile,
        responseTimeoutMs: 2_000,
        permissionChecks: true,
        // Every housekeeping run checks every key; the timer itself stays out of the way.
        permissionCheckIntervalMs: 1,
      };
      c.governance.housekeepingMs = 3_600_000;
    });
  });
  after(async () => {
    await svc?.stop();
    await Promise.all([binance.stop(), bybit.stop()]);
  });

  it("reads a safe key's restrictions after its import, signed as Binance verifies them: audited, not flagged, signing", async () => {
    await importSecret(svc.custody, "bn-safe", Buffer.from(SECRET), { exchange: "binance", apiKeyId: API.safe });
    const e = await checked("bn-safe", "import");
    assert.deepEqual(
      [e.actor, e.outcome, e.details?.verified, e.details?.status, e.details?.withdrawals, e.details?.transfers, e.details?.ipRestricted, e.details?.unsafe],
      ["custos", "ok", true, 200, "false", "false", "true", ""],
    );
    const query = binance.received.find((r) => r.target.startsWith("/sapi/v1/account/apiRestrictions?") && r.headers["x-mbx-apikey"] === API.safe)!;
    assert.deepEqual(query.outcome, { status: 200 });
    assert.match(query.target, /^\/sapi\/v1\/account\/apiRestrictions\?timestamp=\d+&signature=[0-9a-f]{64}$/);
    assert.equal(await metric("custos_key_exchange_permissions_unsafe", "bn-safe"), 0);
    assert.ok((await metric("custos_key_exchange_permissions_checked_timestamp_seconds", "bn-safe"))! > Date.now() / 1000 - 60);
    assert.equal(await listed("bn-safe"), "safe");
    assert.equal((await send("bn-safe")).status, 200);
  });

  it("flags a key that may withdraw, and freezes it once its policy asks: signing refused KEY_FROZEN, the freeze audited by custos", async () => {
    await importSecret(svc.custody, "bn-withdraw", Buffer.from(SECRET), { exchange: "binance", apiKeyId: API.withdraw });
    const e = await checked("bn-withdraw", "import");
    assert.deepEqual([e.details?.withdrawals, e.details?.unsafe], ["true", "withdrawals"]);
    assert.equal(await metric("custos_key_exchange_permissions_unsafe", "bn-withdraw"), 1);
    assert.equal(await listed("bn-withdraw"), "unsafe: withdrawals");
    // Flagged only: without the policy field the key keeps signing.
    assert.equal(await frozen("bn-withdraw"), false);
    assert.equal((await send("bn-withdraw")).status, 200);

    await setPolicy("bn-withdraw", { freezeOnUnsafeExchangePermissions: true });
    await checked("bn-withdraw", "policy");
    const deadline = Date.now() + 5_000;
    while (!(await frozen("bn-withdraw"))) {
      if (Date.now() > deadline) assert.fail("the key was never frozen");
      await new Promise((r) => setTimeout(r, 50));
    }
    await expectDenied(send("bn-withdraw"), status.FAILED_PRECONDITION, "KEY_FROZEN");
    const freeze = (await auditEvents(svc.dir)).find((x) => x.kind === "freeze" && x.key === "bn-withdraw")!;
    assert.deepEqual([freeze.actor, freeze.outcome], ["custos", "ok"]);
  });

  it("flags a key that may transfer, and a Bybit key bound to no IP", async () => {
    await importSecret(svc.custody, "bn-transfer", Buffer.from(SECRET), { exchange: "binance", apiKeyId: API.transfer });
    assert.equal((await checked("bn-transfer", "import")).details?.unsafe, "transfers");
    await importSecret(svc.custody, "by-open", Buffer.from(BYBIT_SECRET), { exchange: "bybit", apiKeyId: "by-api-open" });
    const e = await checked("by-open", "import");
    assert.deepEqual([e.details?.verified, e.details?.ipRestricted, e.details?.unsafe], [true, "false", "no-ip-restriction"]);
    assert.equal(bybit.received.find((r) => r.target === "/v5/user/query-api")?.outcome.status, 200);
    assert.equal(await metric("custos_key_exchange_permissions_unsafe", "by-open"), 1);
  });

  it("audits a check the exchange does not answer as failed, freezes nothing, and the key keeps signing", async () => {
    binance.fault = "reset";
    try {
      await importSecret(svc.custody, "bn-down", Buffer.from(SECRET), { exchange: "binance", apiKeyId: API.down });
      const e = await checked("bn-down", "import");
      assert.deepEqual([e.outcome, e.reason, e.details?.verified, e.details?.egressFailure], ["failed", "EXCHANGE_UNAVAILABLE", false, "connection-reset"]);
      // The policy would freeze an unsafe key: the exchange being down is no evidence either way.
      await setPolicy("bn-down", { freezeOnUnsafeExchangePermissions: true });
      assert.equal((await checked("bn-down", "policy")).outcome, "failed");
    } finally {
      binance.fault = "none";
    }
    assert.equal(await frozen("bn-down"), false);
    assert.equal(await listed("bn-down"), "check failed: EXCHANGE_UNAVAILABLE");
    assert.equal(await metric("custos_key_exchange_permissions_unsafe", "bn-down"), undefined);
    assert.equal((await send("bn-down")).status, 200);
  });

  it("checks again after a rotation, with the new version's API key, and on the periodic run", async () => {
    await importSecret(svc.custody, "bn-rot", Buffer.from(SECRET), { exchange: "binance", apiKeyId: API.safe });
    await checked("bn-rot", "import");
    binance.apiRestrictions.set(API.rotated, { ...SAFE_BINANCE_RESTRICTIONS, ipRestrict: false });
    const envelope = await envelopeFor(svc.custody, Buffer.from(SECRET));
    const p = await proposeAndApprove(svc.custody, {
      kind: { $case: "rotateKey", rotateKey: { keyId: "bn-rot", envelope, apiKeyId: API.rotated, graceSeconds: 3600, signedPassphrase: "" } },
      ttlSeconds: 0,
    });
    assert.equal(p.state, "executed", p.failure);
    const e = await checked("bn-rot", "rotation");
    assert.deepEqual([e.details?.version, e.details?.ipRestricted, e.details?.unsafe], [2, "false", "no-ip-restriction"]);
    assert.equal(await metric("custos_key_exchange_permissions_unsafe", "bn-rot"), 1);

    // The exchange-side setting is fixed; the next periodic run clears the flag.
    binance.apiRestrictions.delete(API.rotated);
    await svc.service.housekeeping();
    assert.equal((await checked("bn-rot", "periodic")).details?.unsafe, "");
    assert.equal(await metric("custos_key_exchange_permissions_unsafe", "bn-rot"), 0);
  });
});
