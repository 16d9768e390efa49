import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { destinationFor, type Destination } from "../../src/egress/destinations.js";
import type { Egress, ExchangeReply, OutgoingRequest } from "../../src/egress/http-egress.js";
import { binancePermissions } from "../../src/exchange-permissions/binance.js";
import { bybitPermissions } from "../../src/exchange-permissions/bybit.js";
import { deribitPermissions } from "../../src/exchange-permissions/deribit.js";
import { PermissionParseError, unsafeReasons, unverified } from "../../src/exchange-permissions/facts.js";
import { NOT_EXPOSED, permissionProbeFor, probedExchanges } from "../../src/exchange-permissions/index.js";
import { kucoinPermissions } from "../../src/exchange-permissions/kucoin.js";
import { okxPermissions } from "../../src/exchange-permissions/okx.js";
import { sendOwnRequest } from "../../src/exchange-permissions/own-request.js";
import { dialectExchanges } from "../../src/exchanges/registry.js";
import type { Environment, KeyWithVersions } from "../../src/keys/model.js";
import { FakeHsm } from "./fake-hsm.js";

/*
 * The permission parsers on the exchanges' documented example answers (expected facts written by
 * hand from the docs), and the requests custos signs for them, with the egress faked.
 */

describe("permission parsers, on the documented examples", () => {
  it("Binance apiRestrictions: withdrawals, internal or universal transfer, ipRestrict", () => {
    // developers.binance.com/docs/wallet/account/api-key-permission, response example.
    const documented = {
      ipRestrict: false,
      createTime: 1698645219000,
      enableReading: true,
      enableWithdrawals: false,
      enableInternalTransfer: false,
      enableMargin: false,
      enableFutures: false,
      permitsUniversalTransfer: false,
      enableVanillaOptions: false,
      enableFixApiTrade: false,
      enableFixReadOnly: true,
      enableSpotAndMarginTrading: false,
      enablePortfolioMarginTrading: true,
    };
    assert.deepEqual(binancePermissions.parse(200, documented), { withdrawals: false, transfers: false, ipRestricted: false });
    assert.deepEqual(binancePermissions.parse(200, { ...documented, ipRestrict: true, permitsUniversalTransfer: true }), {
      withdrawals: false,
      transfers: true,
      ipRestricted: true,
    });
    assert.equal(binancePermissions.parse(200, { ...documented, enableInternalTransfer: true }).transfers, true);
    assert.equal(binancePermissions.parse(200, { ...documented, enableWithdrawals: true }).withdrawals, true);
    assert.throws(() => binancePermissions.parse(401, { code: -2015, msg: "Invalid API-key, IP, or permissions for action." }), PermissionParseError);
    assert.throws(() => binancePermissions.parse(200, { ...documented, enableWithdrawals: "false" }), PermissionParseError);
  });

  it("Bybit query-api: Wallet permissions and ips", () => {
    // bybit-exchange.github.io/docs/v5/user/apikey-info, response example (abridged to the fields read).
    const result = {
      id: "13770661",
      note: "XXXXXX",
      apiKey: "XXXXXX",
      readOnly: 0,
      secret: "",
      permissions: {
        ContractTrade: ["Order", "Position"],
        Spot: ["SpotTrade"],
        Wallet: ["AccountTransfer", "SubMemberTransfer"],
        Options: ["OptionsTrade"],
        Derivatives: [],
        Exchange: [],
        Earn: [],
      },
      ips: ["*"],
      type: 1,
    };
    const answer = (r: object) => ({ retCode: 0, retMsg: "", result: r, retExtInfo: {}, time: 1697525901391 });
    assert.deepEqual(bybitPermissions.parse(200, answer(result)), { withdrawals: false, transfers: true, ipRestricted: false, ips: [] });
    const bound = { ...result, permissions: { ...result.permissions, Wallet: [] }, ips: ["203.0.113.7", "198.51.100.2"] };
    assert.deepEqual(bybitPermissions.parse(200, answer(bound)), {
      withdrawals: false,
      transfers: false,
      ipRestricted: true,
      ips: ["203.0.113.7", "198.51.100.2"],
    });
    assert.equal(bybitPermissions.parse(200, answer({ ...bound, permissions: { Wallet: ["Withdraw"] } })).withdrawals, true);
    assert.throws(() => bybitPermissions.parse(200, { retCode: 10003, retMsg: "API key is invalid.", result: {} }), PermissionParseError);
  });

  it("OKX account config: perm and ip", () => {
    // www.okx.com/docs-v5/en/#trading-account-rest-api-get-account-configuration (fields read: perm, ip).
    const answer = (perm: string, ip: string) => ({ code: "0", msg: "", data: [{ uid: "44705892343619584", acctLv: "2", perm, ip, label: "v5 test" }] });
    assert.deepEqual(okxPermissions.parse(200, answer("read_only,trade", "1.1.1.1,2.2.2.2")), {
      withdrawals: false,
      transfers: "unknown",
      ipRestricted: true,
      ips: ["1.1.1.1", "2.2.2.2"],
    });
    assert.deepEqual(okxPermissions.parse(200, answer("read_only,withdraw,trade", "")), { withdrawals: true, transfers: true, ipRestricted: false, ips: [] });
    assert.throws(() => okxPermissions.parse(401, { code: "50111", msg: "Invalid OK-ACCESS-KEY", data: [] }), PermissionParseError);
  });

  it("KuCoin api-key: permission and ipWhitelist", () => {
    // KuCoin "Get Apikey Info" (GET /api/v1/user/api-key), response example.
    const data = {
      remark: "account1",
      apiKey: "6705f5c311545b000157d3eb",
      apiVersion: 3,
      permission: "General,Futures,Spot,Earn,InnerTransfer,Transfer,Margin",
      ipWhitelist: "203.**.154,103.**.34",
      createdAt: 1728443843000,
      uid: 165111215,
      isMaster: true,
    };
    assert.deepEqual(kucoinPermissions.parse(200, { code: "200000", data }), {
      withdrawals: false,
      transfers: true,
      ipRestricted: true,
      ips: ["203.**.154", "103.**.34"],
    });
    const { ipWhitelist: _, ...unbound } = data;
    assert.deepEqual(kucoinPermissions.parse(200, { code: "200000", data: { ...unbound, permission: "General,Futures,Withdrawal" } }), {
      withdrawals: true,
      transfers: false,
      ipRestricted: false,
      ips: [],
    });
    assert.throws(() => kucoinPermissions.parse(200, { code: "400003", msg: "KC-API-KEY not exists" }), PermissionParseError);
  });

  it("Deribit public/auth: the wallet scope; IP restriction unknown", () => {
    // docs.deribit.com/api-reference/authentication/public-auth, response example (scope varied as the access-scope article lists).
    const answer = (scope: string) => ({
      jsonrpc: "2.0",
      id: 9929,
      result: { access_token: "1582628593469.1MbQ-J_4", expires_in: 31536000, refresh_token: "1582628593469.1GP4rQd0", scope, token_type: "bearer" },
    });
    assert.deepEqual(deribitPermissions.parse(200, answer("connection mainaccount account:read trade:read_write wallet:none")), {
      withdrawals: false,
      transfers: false,
      ipRestricted: "unknown",
    });
    assert.deepEqual(deribitPermissions.parse(200, answer("account:read trade:read_write wallet:read_write")), {
      withdrawals: true,
      transfers: true,
      ipRestricted: "unknown",
    });
    assert.equal(deribitPermissions.parse(200, answer("connection mainaccount")).withdrawals, "unknown");
  });

  it("flags withdrawals, transfers and a missing IP restriction; an unknown fact is unverified, never flagged", () => {
    assert.deepEqual(unsafeReasons({ withdrawals: true, transfers: true, ipRestricted: false }), ["withdrawals", "transfers", "no-ip-restriction"]);
    assert.deepEqual(unsafeReasons({ withdrawals: false, transfers: "unknown", ipRestricted: "unknown" }), []);
    assert.deepEqual(unverified({ withdrawals: false, transfers: "unknown", ipRestricted: "unknown" }), ["transfers", "ipRestricted"]);
  });

  it("has a probe or a documented reason for every exchange custos signs for", () => {
    assert.deepEqual([...probedExchanges(), ...NOT_EXPOSED.keys()].sort(), dialectExchanges().sort());
    assert.deepEqual(
      probedExchanges().filter((e) => permissionProbeFor(e)?.passphrase === "caller"),
      ["bitget", "okx"],
    );
  });
});

/** Records what custos would send; answers 200 "{}". */
class RecordingEgress implements Egress {
  readonly sent: Array<{ destination: Destination; request: OutgoingRequest }> = [];
  route(exchange: string, environment: Environment, path: string): Destination {
    return destinationFor(exchange, environment, path);
  }
  async send(_exchange: string, destination: Destination, request: OutgoingRequest): Promise<ExchangeReply> {
    this.sent.push({ destination, request });
    return { status: 200, headers: [], body: Buffer.from("{}"), roundTripUs: 1 };
  }
}

function keyOf(id: string, exchange: string, extra: { signedPassphrase?: string; frozenAt?: string } = {}): KeyWithVersions {
  const at = "2025-01-01T00:00:00.000Z";
  return {
    id,
    exchange,
    environment: "mainnet",
    label: id,
    apiKeyId: `api-${id}`,
    algorithm: "hmac-sha256",
    maxAgeDays: 45,
    createdAt: at,
    ...(extra.frozenAt ? { frozenAt: extra.frozenAt } : {}),
    versions: [
      {
        keyId: id,
        version: 1,
        objectId: `custos:${id}:v1`,
        state: "active",
        createdAt: at,
        activatedAt: at,
        retireAt: null,
        ...(extra.signedPassphrase ? { signedPassphrase: extra.signedPassphrase } : {}),
      },
    ],
  };
}

describe("custos's own permission requests", () => {
  const NOW = 1_735_689_600_000;
  const secret = randomBytes(32);
  const hsm = new FakeHsm();

  it("sends Deribit's client_signature login as a GET query whose signature verifies, to the table's host", async () => {
    hsm.put("custos:dr:v1", secret);
    const egress = new RecordingEgress();
    const { origin } = await sendOwnRequest({ hsm, egress, now: () => NOW }, keyOf("dr", "deribit"), deribitPermissions);
    assert.equal(origin, "https://www.deribit.com");
    const sent = egress.sent[0]!.request;
    assert.deepEqual([sent.method, sent.path, sent.body], ["GET", "/api/v2/public/auth", ""]);
    const q = new URLSearchParams(sent.query);
    assert.deepEqual([q.get("grant_type"), q.get("client_id"), q.get("timestamp"), q.get("data")], ["client_signature", "api-dr", String(NOW), ""]);
    const expected = createHmac("sha256", secret)
      .update(`${NOW}\n${q.get("nonce")}\n`)
      .digest("hex");
    assert.equal(q.get("signature"), expected);
  });

  it("sends KuCoin's API-key query to the spot host with the version's signed passphrase", async () => {
    hsm.put("custos:kc:v1", secret);
    const egress = new RecordingEgress();
    const { origin } = await sendOwnRequest({ hsm, egress, now: () => NOW }, keyOf("kc", "kucoinfutures", { signedPassphrase: "c2lnbmVk" }), kucoinPermissions);
    assert.equal(origin, "https://api.kucoin.com");
    const headers = new Map(egress.sent[0]!.request.headers);
    assert.equal(headers.get("KC-API-PASSPHRASE"), "c2lnbmVk");
    const expected = createHmac("sha256", secret).update(`${NOW}GET/api/v1/user/api-key`).digest("base64");
    assert.equal(headers.get("KC-API-SIGN"), expected);
  });

  it("signs nothing for a frozen key", async () => {
    const egress = new RecordingEgress();
    const before = hsm.calls.length;
    await assert.rejects(
      sendOwnRequest({ hsm, egress, now: () => NOW }, keyOf("bn", "binance", { frozenAt: "2025-01-01T00:00:00.000Z" }), binancePermissions),
      {
        code: "KEY_FROZEN",
      },
    );
    assert.deepEqual([hsm.calls.length, egress.sent.length], [before, 0]);
  });
});
