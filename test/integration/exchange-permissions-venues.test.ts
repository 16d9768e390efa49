import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
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
import { standInTls } from "../helpers/stand-in-exchange.js";
import { StandInBitget, StandInBitmex, StandInDeribit, StandInGate, StandInKucoin } from "../helpers/stand-in-key-queries.js";
import { StandInOkx } from "../helpers/stand-in-okx.js";

/**
 * The exchange-side permission check for Deribit, KuCoin, OKX, Bitget, Gate and BitMEX (and Kraken
 * Futures, which exposes nothing) through the real service
 * (SoftHSM2, gRPC over mTLS, SQLite), against HTTPS stand-ins that verify each signature, API key and
 * passphrase as the exchange documents. OKX and Bitget want the key's passphrase in clear: custos
 * checks only once a caller's request has carried it, and the passphrase reaches no audit row, log
 * line or file.
 */

const DERIBIT_SECRET = "deribit-stand-in-client-secret-0123456789";
const KUCOIN_SECRET = "kucoin-stand-in-secret-0123456789abcdef";
const KUCOIN_PASSPHRASE = "Kc-Stand-In!4711";
const OKX_SECRET = "okx-stand-in-secret-0123456789abcdef0123";
const OKX_PASSPHRASE = "Okx-Pass!w0rd-Never-Stored";
const OKX_ROTATED_PASSPHRASE = "Okx-Rotated!Pass-0815";
const BITGET_SECRET = "bitget-stand-in-secret-0123456789abcdef";
const BITGET_PASSPHRASE = "Bitget-Pass!Memory-Only-42";
/** Gate and Kraken Futures sign with HMAC-SHA512: SoftHSM2 wants at least 64 bytes. */
const GATE_SECRET = "gate-stand-in-secret-0123456789abcdef0123456789abcdef0123456789ab";
const BITMEX_SECRET = "bitmex-stand-in-secret-0123456789abcdef0123";
const KRAKEN_SECRET = Buffer.alloc(64, 7);

function request(keyId: string, method: "GET" | "POST", path: string, passphrase: string): ExchangeRequest {
  return {
    keyId,
    version: 0,
    method,
    path,
    query: "",
    queryParams: [],
    body: Buffer.from(""),
    timestampMs: "0",
    nonce: "",
    expires: "0",
    recvWindowMs: 0,
    passphrase,
    apiKeyVersion: "",
    omitNonce: false,
  };
}

/** Every file under a directory, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

describe("custos reads Deribit, KuCoin, OKX and Bitget key permissions from stand-ins", () => {
  let svc: InProcessService;
  const deribit = new StandInDeribit(
    new Map([
      ["dr-safe", DERIBIT_SECRET],
      ["dr-wallet", DERIBIT_SECRET],
    ]),
  );
  deribit.scopes.set("dr-wallet", "connection mainaccount account:read trade:read_write wallet:read_write");
  const kucoin = new StandInKucoin(
    new Map([
      ["kc-api-safe", KUCOIN_SECRET],
      ["kc-api-withdraw", KUCOIN_SECRET],
    ]),
    new Map([
      ["kc-api-safe", KUCOIN_PASSPHRASE],
      ["kc-api-withdraw", KUCOIN_PASSPHRASE],
    ]),
  );
  kucoin.apiKeyInfo.set("kc-api-withdraw", { permission: "General,Futures,Withdrawal" });
  const okx = new StandInOkx(
    new Map([
      ["okx-api-1", OKX_SECRET],
      ["okx-api-2", OKX_SECRET],
    ]),
    new Map([
      ["okx-api-1", OKX_PASSPHRASE],
      ["okx-api-2", OKX_ROTATED_PASSPHRASE],
    ]),
  );
  okx.accountConfig.set("okx-api-1", { perm: "read_only,trade,withdraw", ip: "" });
  const bitget = new StandInBitget(new Map([["bg-api", BITGET_SECRET]]), new Map([["bg-api", BITGET_PASSPHRASE]]));
  bitget.accountInfo.set("bg-api", { authorities: ["coow", "cpow", "wwow"], ips: "203.0.113.7" });
  const gate = new StandInGate(
    new Map([
      ["gt-api-bound", GATE_SECRET],
      ["gt-api-open", GATE_SECRET],
    ]),
  );
  gate.ipWhitelist.set("gt-api-open", []);
  const bitmex = new StandInBitmex(new Map([["bm-api", BITMEX_SECRET]]));
  const bitmexKey = (id: string, permissions: string[], cidr: string) => ({
    id,
    secret: "",
    name: id,
    nonce: 0,
    cidr,
    cidrs: [],
    targetAccountId: 1,
    permissions,
    enabled: true,
    userId: 1,
    created: "2020-09-14T02:04:59.423Z",
  });
  bitmex.keys = [bitmexKey("another-key", ["order", "withdraw"], "0.0.0.0"), bitmexKey("bm-api", ["order", "orderCancel"], "203.0.113.7/32")];

  const setPolicy = async (keyId: string, policy: unknown) => {
    const p = await proposeAndApprove(svc.custody, { kind: { $case: "setPolicy", setPolicy: { keyId, policyJson: JSON.stringify(policy) } }, ttlSeconds: 0 });
    assert.equal(p.state, "executed", p.failure);
  };
  const checks = async (key: string, trigger: string) =>
    (await auditEvents(svc.dir)).filter((e) => e.kind === "key.exchange_permissions" && e.key === key && e.details?.trigger === trigger);
  /** Polls the audit chain for the `n`th key.exchange_permissions record of a key with this trigger. */
  const checked = async (key: string, trigger: string, n = 1): Promise<AuditBody> => {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const found = await checks(key, trigger);
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
  const listed = async (keyId: string) => (await unary(svc.custody, "listKeys", {})).keys.find((k) => k.keyId === keyId);
  const untilFrozen = async (keyId: string) => {
    const deadline = Date.now() + 5_000;
    while (!(await listed(keyId))?.frozen) {
      if (Date.now() > deadline) assert.fail(`${keyId} was never frozen`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  before(async () => {
    const tls = await standInTls();
    const caFile = join(tempDir("custos-permissions-ca-"), "exchange-ca.pem");
    writeFileSync(caFile, tls.caPem);
    const [deribitUrl, kucoinUrl, okxUrl, bitgetUrl, gateUrl, bitmexUrl] = await Promise.all(
      [deribit, kucoin, okx, bitget, gate, bitmex].map((s) => s.start({ tls })),
    );
    svc = await startInProcess((c) => {
      c.egress = {
        ...c.egress,
        hosts: {
          deribit: { "/": deribitUrl! },
          kucoinfutures: { "/": kucoinUrl!, "/api/v1/user/api-key": kucoinUrl! },
          okx: { "/": okxUrl! },
          bitget: { "/": bitgetUrl! },
          gate: { "/": gateUrl! },
          bitmex: { "/": bitmexUrl! },
        },
        trustedCaFile: caFile,
        responseTimeoutMs: 2_000,
        permissionChecks: true,
        permissionCheckIntervalMs: 1,
      };
      c.governance.housekeepingMs = 3_600_000;
    });
  });
  after(async () => {
    await svc?.stop();
    await Promise.all([deribit, kucoin, okx, bitget, gate, bitmex].map((s) => s.stop()));
  });

  it("Deribit: the wallet scope of a signed client_signature login; wallet:read_write is flagged, the IP restriction unverified", async () => {
    await importSecret(svc.custody, "dr-safe", Buffer.from(DERIBIT_SECRET), { exchange: "deribit", apiKeyId: "dr-safe" });
    await importSecret(svc.custody, "dr-wallet", Buffer.from(DERIBIT_SECRET), { exchange: "deribit", apiKeyId: "dr-wallet" });
    const safe = await checked("dr-safe", "import");
    assert.deepEqual(
      [
        safe.outcome,
        safe.details?.verified,
        safe.details?.withdrawals,
        safe.details?.transfers,
        safe.details?.ipRestricted,
        safe.details?.unsafe,
        safe.details?.unverified,
      ],
      ["ok", true, "false", "false", "unknown", "", "ipRestricted"],
    );
    const wallet = await checked("dr-wallet", "import");
    assert.deepEqual([wallet.details?.withdrawals, wallet.details?.transfers, wallet.details?.unsafe], ["true", "true", "withdrawals,transfers"]);
    const logins = deribit.received.filter((r) => r.target.startsWith("/api/v2/public/auth?"));
    assert.deepEqual(
      logins.map((r) => r.outcome.status),
      [200, 200],
    );
    assert.equal(await metric("custos_key_exchange_permissions_unsafe", "dr-wallet"), 1);
    assert.equal(await metric("custos_key_exchange_permissions_unsafe", "dr-safe"), 0);
    assert.equal((await listed("dr-wallet"))?.exchangePermissions, "unsafe: withdrawals,transfers");
  });

  it("KuCoin: the API-key query with the version's signed passphrase; a withdrawal permission freezes the key its policy asks to", async () => {
    await importSecret(svc.custody, "kc-safe", Buffer.from(KUCOIN_SECRET), {
      exchange: "kucoinfutures",
      apiKeyId: "kc-api-safe",
      apiPassphrase: KUCOIN_PASSPHRASE,
    });
    const e = await checked("kc-safe", "import");
    assert.deepEqual(
      [e.details?.verified, e.details?.withdrawals, e.details?.transfers, e.details?.ipRestricted, e.details?.ips, e.details?.unsafe],
      [true, "false", "false", "true", "203.**.7,198.**.2", ""],
    );
    assert.equal(kucoin.received.find((r) => r.headers["kc-api-key"] === "kc-api-safe")?.outcome.status, 200);
    assert.equal((await listed("kc-safe"))?.exchangePermissions, "safe");

    await importSecret(svc.custody, "kc-withdraw", Buffer.from(KUCOIN_SECRET), {
      exchange: "kucoinfutures",
      apiKeyId: "kc-api-withdraw",
      apiPassphrase: KUCOIN_PASSPHRASE,
    });
    assert.equal((await checked("kc-withdraw", "import")).details?.unsafe, "withdrawals");
    assert.equal((await listed("kc-withdraw"))?.frozen, false);
    await setPolicy("kc-withdraw", { freezeOnUnsafeExchangePermissions: true });
    await untilFrozen("kc-withdraw");
    const freeze = (await auditEvents(svc.dir)).find((x) => x.kind === "freeze" && x.key === "kc-withdraw")!;
    assert.deepEqual([freeze.actor, freeze.outcome], ["custos", "ok"]);
  });

  it("OKX: no check before a request carries the passphrase; the first one runs it; a rotation waits for the new key's", async () => {
    await importSecret(svc.custody, "okx-1", Buffer.from(OKX_SECRET), { exchange: "okx", apiKeyId: "okx-api-1" });
    const waiting = await checked("okx-1", "import");
    assert.deepEqual([waiting.outcome, waiting.details?.verified, waiting.details?.why], ["ok", false, "waiting for a request carrying the passphrase"]);
    assert.equal((await listed("okx-1"))?.exchangePermissions, "not verified: waiting for a request carrying the passphrase");
    assert.equal(await metric("custos_key_exchange_permissions_unsafe", "okx-1"), undefined);
    // Unverified is visible to monitoring (CustosKeyExchangePermissionsUnverified), not only in key list.
    assert.equal(await metric("custos_key_exchange_permissions_verified", "okx-1"), 0);
    assert.equal(okx.received.length, 0, "custos sent OKX nothing before it had a passphrase");

    const res = await unary(svc.signer, "sendExchangeRequest", request("okx-1", "GET", "/api/v5/account/balance", OKX_PASSPHRASE));
    assert.equal(res.status, 200);
    const e = await checked("okx-1", "passphrase");
    assert.deepEqual(
      [e.details?.verified, e.details?.withdrawals, e.details?.transfers, e.details?.ipRestricted, e.details?.unsafe],
      [true, "true", "true", "false", "withdrawals,transfers,no-ip-restriction"],
    );
    const config = okx.received.find((r) => r.target === "/api/v5/account/config")!;
    assert.deepEqual([config.outcome.status, config.headers["ok-access-passphrase"]], [200, OKX_PASSPHRASE]);
    assert.equal(await metric("custos_key_exchange_permissions_unsafe", "okx-1"), 1);
    assert.equal(await metric("custos_key_exchange_permissions_verified", "okx-1"), 1);
    // The next request with the same passphrase runs no second check (the periodic run uses it).
    await unary(svc.signer, "sendExchangeRequest", request("okx-1", "GET", "/api/v5/account/balance", OKX_PASSPHRASE));
    await svc.service.housekeeping();
    await checked("okx-1", "periodic");
    assert.equal((await checks("okx-1", "passphrase")).length, 1);

    // A new API key has its own passphrase: the old one is dropped and the check waits again.
    const envelope = await envelopeFor(svc.custody, Buffer.from(OKX_SECRET));
    const p = await proposeAndApprove(svc.custody, {
      kind: { $case: "rotateKey", rotateKey: { keyId: "okx-1", envelope, apiKeyId: "okx-api-2", graceSeconds: 3600, signedPassphrase: "" } },
      ttlSeconds: 0,
    });
    assert.equal(p.state, "executed", p.failure);
    assert.equal((await checked("okx-1", "rotation")).details?.why, "waiting for a request carrying the passphrase");
    await unary(svc.signer, "sendExchangeRequest", request("okx-1", "GET", "/api/v5/account/balance", OKX_ROTATED_PASSPHRASE));
    const rotated = await checked("okx-1", "passphrase", 2);
    assert.deepEqual([rotated.details?.version, rotated.details?.unsafe, rotated.details?.ips], [2, "", "203.0.113.7"]);
  });

  it("Bitget: a withdrawal permission read with the caller's passphrase freezes the key once a request carries it", async () => {
    await importSecret(svc.custody, "bg-1", Buffer.from(BITGET_SECRET), { exchange: "bitget", apiKeyId: "bg-api" });
    await setPolicy("bg-1", { freezeOnUnsafeExchangePermissions: true });
    assert.equal((await checked("bg-1", "policy")).details?.why, "waiting for a request carrying the passphrase");
    assert.equal((await listed("bg-1"))?.frozen, false);
    assert.equal(bitget.received.length, 0);

    const res = await unary(svc.signer, "sendExchangeRequest", request("bg-1", "GET", "/api/v2/mix/account/accounts", BITGET_PASSPHRASE));
    assert.equal(res.status, 200);
    const e = await checked("bg-1", "passphrase");
    assert.deepEqual(
      [e.details?.verified, e.details?.withdrawals, e.details?.transfers, e.details?.ipRestricted, e.details?.unsafe],
      [true, "true", "false", "true", "withdrawals"],
    );
    assert.equal(bitget.received.find((r) => r.target === "/api/v2/spot/account/info")?.outcome.status, 200);
    await untilFrozen("bg-1");
    await expectDenied(
      unary(svc.signer, "sendExchangeRequest", request("bg-1", "GET", "/api/v2/mix/account/accounts", BITGET_PASSPHRASE)),
      status.FAILED_PRECONDITION,
      "KEY_FROZEN",
    );
  });

  it("Gate: the IP whitelist is read, withdrawals and transfers stay unknown and never read as safe", async () => {
    await importSecret(svc.custody, "gt-bound", Buffer.from(GATE_SECRET), { exchange: "gate", algorithm: "hmac-sha512", apiKeyId: "gt-api-bound" });
    await importSecret(svc.custody, "gt-open", Buffer.from(GATE_SECRET), { exchange: "gate", algorithm: "hmac-sha512", apiKeyId: "gt-api-open" });
    const bound = await checked("gt-bound", "import");
    assert.deepEqual(
      [
        bound.details?.verified,
        bound.details?.withdrawals,
        bound.details?.transfers,
        bound.details?.ipRestricted,
        bound.details?.unsafe,
        bound.details?.unverified,
      ],
      [true, "unknown", "unknown", "true", "", "withdrawals,transfers"],
    );
    assert.equal((await listed("gt-bound"))?.exchangePermissions, "no unsafe setting seen (unknown: withdrawals,transfers)");
    assert.equal(await metric("custos_key_exchange_permissions_unsafe", "gt-bound"), 0);
    assert.equal((await checked("gt-open", "import")).details?.unsafe, "no-ip-restriction");
    assert.equal(await metric("custos_key_exchange_permissions_unsafe", "gt-open"), 1);
    assert.deepEqual(
      gate.received.map((r) => r.outcome.status),
      [200, 200],
    );
  });

  it("BitMEX: this key's entry of the account's key list, not another key's", async () => {
    await importSecret(svc.custody, "bm-1", Buffer.from(BITMEX_SECRET), { exchange: "bitmex", apiKeyId: "bm-api" });
    const e = await checked("bm-1", "import");
    assert.deepEqual(
      [e.details?.verified, e.details?.withdrawals, e.details?.transfers, e.details?.ipRestricted, e.details?.ips, e.details?.unsafe],
      [true, "false", "unknown", "true", "203.0.113.7/32", ""],
    );
    assert.equal(bitmex.received[0]?.outcome.status, 200);
    assert.equal((await listed("bm-1"))?.exchangePermissions, "no unsafe setting seen (unknown: transfers)");
  });

  it("Kraken Futures: not exposed by the exchange, audited as not verified, never safe, nothing sent", async () => {
    await importSecret(svc.custody, "kf-1", KRAKEN_SECRET, { exchange: "krakenfutures", algorithm: "hmac-sha512", apiKeyId: "kf-api" });
    const e = await checked("kf-1", "import");
    assert.deepEqual([e.outcome, e.details?.verified], ["ok", false]);
    assert.match(String(e.details?.why), /^not exposed by the exchange: Kraken Futures documents no endpoint/);
    assert.match((await listed("kf-1"))!.exchangePermissions, /^not verified: not exposed by the exchange/);
    assert.equal(await metric("custos_key_exchange_permissions_unsafe", "kf-1"), undefined);
    assert.equal(await metric("custos_key_exchange_permissions_verified", "kf-1"), 0);
  });

  it("keeps every passphrase out of the audit log, the logs and every file of the data dir (the SQLite database included)", async () => {
    const secrets = [OKX_PASSPHRASE, OKX_ROTATED_PASSPHRASE, BITGET_PASSPHRASE, KUCOIN_PASSPHRASE];
    const audit = JSON.stringify(await auditEvents(svc.dir));
    const files = filesUnder(svc.dir);
    assert.ok(files.some((f) => f.endsWith("custos.db")));
    for (const secret of secrets) {
      assert.equal(audit.includes(secret), false, "a passphrase is in the audit log");
      assert.equal(svc.logs().includes(secret), false, "a passphrase is in the logs");
      for (const f of files) assert.equal(readFileSync(f).includes(Buffer.from(secret)), false, `a passphrase is in ${f}`);
    }
  });
});
