import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { destinationFor, type Destination } from "../../src/egress/destinations.js";
import type { Egress, ExchangeReply, OutgoingRequest } from "../../src/egress/http-egress.js";
import { bitgetPermissions } from "../../src/exchange-permissions/bitget.js";
import { bitmexPermissions } from "../../src/exchange-permissions/bitmex.js";
import { PermissionParseError } from "../../src/exchange-permissions/facts.js";
import { gatePermissions } from "../../src/exchange-permissions/gate.js";
import { NOT_EXPOSED, permissionProbeFor } from "../../src/exchange-permissions/index.js";
import { sendOwnRequest } from "../../src/exchange-permissions/own-request.js";
import { CallerPassphrases } from "../../src/exchange-permissions/passphrases.js";
import type { Environment, KeyWithVersions } from "../../src/keys/model.js";
import { FakeHsm } from "./fake-hsm.js";

/*
 * Bitget, Gate and BitMEX permission parsers on the exchanges' documented example answers (expected
 * facts written by hand from the docs), Kraken Futures' documented absence, and the in-memory
 * passphrases OKX and Bitget checks wait for.
 */

describe("permission parsers for Bitget, Gate and BitMEX, on the documented examples", () => {
  it("Bitget account info: the documented example's legacy authorities say nothing about withdrawals; the codes do", () => {
    // www.bitget.com/api-doc/spot/account/Get-Account-Info, response example.
    const documented = {
      code: "00000",
      msg: "success",
      requestTime: 1695808949356,
      data: {
        userId: "**********",
        inviterId: "**********",
        ips: "127.0.0.1",
        authorities: ["trade", "readonly"],
        parentId: 1,
        traderType: "trader",
        channelCode: "XXX",
        channel: "YYY",
        regisTime: "1246566789345",
      },
    };
    assert.deepEqual(bitgetPermissions.parse(200, documented), { withdrawals: "unknown", transfers: "unknown", ipRestricted: true, ips: ["127.0.0.1"] });
    const withCodes = (authorities: string[], ips: string) => ({ ...documented, data: { ...documented.data, authorities, ips } });
    // The same page's code list: coow futures orders, cpow futures holdings, wtow wallet transfer, wwow withdrawal.
    assert.deepEqual(bitgetPermissions.parse(200, withCodes(["coow", "cpow", "stor"], "203.0.113.7,198.51.100.2")), {
      withdrawals: false,
      transfers: false,
      ipRestricted: true,
      ips: ["203.0.113.7", "198.51.100.2"],
    });
    assert.deepEqual(bitgetPermissions.parse(200, withCodes(["coow", "wtow", "wwow"], "")), {
      withdrawals: true,
      transfers: true,
      ipRestricted: false,
      ips: [],
    });
    // A known grant is read even beside an unknown word; a "no" is not.
    assert.deepEqual(bitgetPermissions.parse(200, withCodes(["wwow", "trade"], "1.2.3.4")).transfers, "unknown");
    assert.equal(bitgetPermissions.parse(200, withCodes(["wwow", "trade"], "1.2.3.4")).withdrawals, true);
    assert.throws(() => bitgetPermissions.parse(400, { code: "40037", msg: "Apikey does not exist", requestTime: 1 }), PermissionParseError);
    assert.throws(() => bitgetPermissions.parse(200, { code: "40012", msg: "apikey/password is incorrect" }), PermissionParseError);
    assert.throws(() => bitgetPermissions.parse(200, withCodes(["coow"], undefined as unknown as string)), PermissionParseError);
  });

  it("Gate account detail: ip_whitelist only; withdrawals and transfers unknown", () => {
    // www.gate.io/docs/developers/apiv4/#get-account-detail, response example.
    const documented = { user_id: 1667201533, ip_whitelist: ["127.0.0.1"], currency_pairs: ["USDT_BTC"], key: { mode: 1 }, tier: 2, copy_trading_role: 1 };
    assert.deepEqual(gatePermissions.parse(200, documented), { withdrawals: "unknown", transfers: "unknown", ipRestricted: true, ips: ["127.0.0.1"] });
    assert.deepEqual(gatePermissions.parse(200, { ...documented, ip_whitelist: [] }), {
      withdrawals: "unknown",
      transfers: "unknown",
      ipRestricted: false,
      ips: [],
    });
    assert.throws(() => gatePermissions.parse(401, { label: "INVALID_KEY", message: "Invalid key provided" }), PermissionParseError);
    assert.throws(() => gatePermissions.parse(200, { ...documented, ip_whitelist: "127.0.0.1" }), PermissionParseError);
  });

  it("BitMEX apiKey: this key's entry among the account's keys; cidr 0.0.0.0 allows every IP", () => {
    // support.bitmex.com "/apiKey field definitions" and the API explorer's APIKey model (values filled in).
    const entry = (id: string, permissions: string[], cidr: string, cidrs?: string[]) => ({
      id,
      secret: "",
      name: id,
      nonce: 0,
      cidr,
      ...(cidrs ? { cidrs } : {}),
      targetAccountId: 0,
      permissions,
      enabled: true,
      userId: 1,
      created: "2020-09-14T02:04:59.423Z",
    });
    const keys = [entry("other", ["order", "withdraw"], "0.0.0.0"), entry("mine", ["order", "orderCancel"], "203.0.113.0/24")];
    assert.deepEqual(bitmexPermissions.parse(200, keys, "mine"), { withdrawals: false, transfers: "unknown", ipRestricted: true, ips: ["203.0.113.0/24"] });
    assert.deepEqual(bitmexPermissions.parse(200, keys, "other"), { withdrawals: true, transfers: true, ipRestricted: false, ips: [] });
    assert.deepEqual(bitmexPermissions.parse(200, [entry("m", ["order"], "", ["198.51.100.2/32", "203.0.113.7/32"])], "m"), {
      withdrawals: false,
      transfers: "unknown",
      ipRestricted: true,
      ips: ["198.51.100.2/32", "203.0.113.7/32"],
    });
    assert.equal(bitmexPermissions.parse(200, [entry("m", ["order"], "")], "m").ipRestricted, false);
    assert.equal(bitmexPermissions.parse(200, [entry("m", ["order"], "0.0.0.0", ["203.0.113.7/32"])], "m").ipRestricted, false);
    assert.throws(() => bitmexPermissions.parse(200, keys, "absent"), PermissionParseError);
    assert.throws(() => bitmexPermissions.parse(401, { error: { message: "Invalid API Key.", name: "HTTPError" } }, "mine"), PermissionParseError);
  });

  it("reports Kraken Futures as not exposed by the exchange, with the reason", () => {
    assert.equal(permissionProbeFor("krakenfutures"), undefined);
    assert.match(NOT_EXPOSED.get("krakenfutures")!, /^not exposed by the exchange: .*no endpoint/);
  });
});

describe("passphrases callers sent (OKX, Bitget)", () => {
  it("holds one per key for one version; rotation and destruction drop it", () => {
    const p = new CallerPassphrases();
    assert.equal(p.remember("k", 1, "pass-1"), true);
    assert.equal(p.remember("k", 1, "pass-1b"), false);
    assert.equal(p.of("k", 1), "pass-1b");
    assert.equal(p.of("k", 2), undefined);
    p.keepOnly("k", 1);
    assert.equal(p.of("k", 1), "pass-1b");
    p.keepOnly("k", 2);
    assert.equal(p.of("k", 1), undefined);
    assert.equal(p.remember("k", 2, "pass-2"), true);
    p.keepOnly("k", undefined);
    assert.equal(p.of("k", 2), undefined);
  });

  it("signs Bitget's account-info query with the passphrase in its header only", async () => {
    const NOW = 1_735_689_600_000;
    const secret = randomBytes(32);
    const hsm = new FakeHsm();
    hsm.put("custos:bg:v1", secret);
    const sent: OutgoingRequest[] = [];
    const egress: Egress = {
      route: (exchange: string, environment: Environment, path: string): Destination => destinationFor(exchange, environment, path),
      send: async (_e: string, _d: Destination, request: OutgoingRequest): Promise<ExchangeReply> => {
        sent.push(request);
        return { status: 200, headers: [], body: Buffer.from("{}"), roundTripUs: 1 };
      },
    };
    const at = "2025-01-01T00:00:00.000Z";
    const key: KeyWithVersions = {
      id: "bg",
      exchange: "bitget",
      environment: "mainnet",
      label: "bg",
      apiKeyId: "api-bg",
      algorithm: "hmac-sha256",
      maxAgeDays: 45,
      createdAt: at,
      versions: [{ keyId: "bg", version: 1, objectId: "custos:bg:v1", state: "active", createdAt: at, activatedAt: at, retireAt: null }],
    };
    const { origin } = await sendOwnRequest({ hsm, egress, now: () => NOW }, key, bitgetPermissions, "Bg-Pass!1");
    assert.equal(origin, "https://api.bitget.com");
    const headers = new Map(sent[0]!.headers);
    assert.equal(headers.get("ACCESS-PASSPHRASE"), "Bg-Pass!1");
    assert.equal(headers.get("ACCESS-SIGN"), createHmac("sha256", secret).update(`${NOW}GET/api/v2/spot/account/info`).digest("base64"));
    assert.equal(sent[0]!.query + sent[0]!.body, "");
  });
});
