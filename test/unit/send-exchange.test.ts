import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { PassThrough } from "node:stream";
import { after, before, describe, it } from "node:test";
import { AuditLog } from "../../src/audit/audit-log.js";
import type { Destination } from "../../src/egress/destinations.js";
import { destinationFor } from "../../src/egress/destinations.js";
import { EgressError, type Egress, type ExchangeReply, type OutgoingRequest } from "../../src/egress/http-egress.js";
import { CustosError, type CustosErrorCode } from "../../src/errors.js";
import type { Environment } from "../../src/keys/model.js";
import { createLogger } from "../../src/log.js";
import type { KeyPolicy } from "../../src/policy/policy.js";
import { AccessDirectory } from "../../src/signing/directory.js";
import { SignService, type ExchangeSignRequest } from "../../src/signing/sign-service.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { FakeHsm } from "./fake-hsm.js";

/*
 * SendExchangeRequest in the domain, with the egress faked (the integration test sends for real):
 * the destination is fixed before the HSM signs, refusals send nothing, egressOnly keys sign only
 * to send, and a failed send is audited with what custos knows about it.
 */

const ALPHA = "spiffe://custos/engine/alpha";
const caller = { identity: ALPHA, ip: "10.1.2.3" };
const NOW = "2025-01-01T00:00:00.000Z";
const ORDER = { method: "POST" as const, path: "/fapi/v1/order", query: "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01", body: "" };

const KEYS: Record<string, KeyPolicy | undefined> = {
  bn: undefined,
  "bn-eo": { egressOnly: true },
  "bn-small": { maxQuantity: { "*": 0.001 } },
  "bn-eo-login": { egressOnly: true, egressOnlyAllowsWebSocketLogin: true },
  "by-eo": { egressOnly: true },
  "by-eo-login": { egressOnly: true, egressOnlyAllowsWebSocketLogin: true },
};

/** Records what would have been sent; answers with `answer` or throws `failure`. */
class FakeEgress implements Egress {
  readonly sent: Array<{ exchange: string; destination: Destination; request: OutgoingRequest }> = [];
  failure: Error | undefined;
  route(exchange: string, environment: Environment, path: string): Destination {
    if (path.includes("..")) throw new CustosError("INVALID_ARGUMENT", "dot segments");
    return destinationFor(exchange, environment, path, { binance: { "/fapi/": "https://stand-in.test" } });
  }
  async send(exchange: string, destination: Destination, request: OutgoingRequest): Promise<ExchangeReply> {
    this.sent.push({ exchange, destination, request });
    if (this.failure) throw this.failure;
    return { status: 200, headers: [["content-type", "application/json"]], body: Buffer.from('{"orderId":1}'), roundTripUs: 321 };
  }
}

let store: SqliteStore;
let hsm: FakeHsm;
let audit: AuditLog;
let signer: SignService;
const egress = new FakeEgress();
const signs = () => hsm.calls.filter((c) => c.startsWith("sign:")).length;
const input = (keyId: string, request = ORDER): ExchangeSignRequest => ({
  keyId,
  version: 0,
  request,
  timestampMs: 0,
  nonce: "",
  expires: 0,
  recvWindowMs: 0,
  passphrase: "",
});
const rejectsWith = (run: Promise<unknown>, code: CustosErrorCode, rule?: string) =>
  assert.rejects(run, (e: unknown) => e instanceof CustosError && e.code === code && (rule === undefined || (e as { rule?: string }).rule === rule));
async function lastEvent(): Promise<Record<string, unknown> & { details?: Record<string, unknown> }> {
  await audit.flush();
  const last = await store.audit.lastAudit();
  return JSON.parse(last!.body) as Record<string, unknown>;
}

before(async () => {
  store = new SqliteStore(":memory:");
  hsm = new FakeHsm();
  await store.clients.upsertClient({ identity: ALPHA, name: "alpha", role: "trader", cidrs: ["10.0.0.0/8"], createdAt: NOW });
  for (const [id, policy] of Object.entries(KEYS)) {
    const objectId = `custos:${id}:v1`;
    const key = {
      id,
      exchange: id.startsWith("by-") ? "bybit" : "binance",
      environment: "testnet" as const,
      label: id,
      apiKeyId: `pub-${id}`,
      algorithm: "hmac-sha256" as const,
      maxAgeDays: 45,
      createdAt: NOW,
    };
    await store.keys.createKey(key, { keyId: id, version: 1, objectId, state: "active", createdAt: NOW, activatedAt: NOW, retireAt: null });
    if (policy) await store.keys.setPolicy(id, JSON.stringify(policy), NOW);
    await store.clients.addGrant(ALPHA, id);
    hsm.put(objectId, randomBytes(64));
  }
  const directory = new AccessDirectory();
  await directory.reload(store);
  audit = await AuditLog.open(store, createLogger("info", new PassThrough()), { flushIntervalMs: 3_600_000 });
  const unlimited = { perSecond: 1_000_000, burst: 1_000_000 };
  signer = new SignService(directory, hsm, audit, { observe() {} }, { maxPayloadBytes: 64 * 1024, clientRate: unlimited, keyRate: unlimited, egress });
});

after(async () => {
  await audit.close();
  await store.close();
});

describe("SendExchangeRequest in the sign path", () => {
  it("signs once, sends the signed request to the table's destination, and audits status and round trip", async () => {
    const before = [signs(), egress.sent.length];
    const res = await signer.sendExchange(caller, input("bn"));
    assert.deepEqual([signs(), egress.sent.length], [before[0]! + 1, before[1]! + 1]);
    const sent = egress.sent.at(-1)!;
    assert.equal(sent.destination.origin, "https://stand-in.test");
    assert.match(sent.request.query, /^symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0\.01&timestamp=\d+&signature=[0-9a-f]{64}$/);
    assert.deepEqual(sent.request.headers, [["X-MBX-APIKEY", "pub-bn"]]);
    assert.deepEqual([res.status, res.body.toString(), res.version, res.endpointClass], [200, '{"orderId":1}', 1, "trade"]);
    const e = await lastEvent();
    assert.deepEqual(
      [e.kind, e.outcome, e.details?.status, e.details?.roundTripUs, e.details?.origin],
      ["sign.send", "allowed", 200, 321, "https://stand-in.test"],
    );
  });

  it("refuses a destination-steering path before the HSM signs, and sends nothing", async () => {
    const before = [signs(), egress.sent.length];
    await rejectsWith(signer.sendExchange(caller, input("bn", { ...ORDER, path: "/fapi/../sapi/v1/capital/withdraw/apply" })), "INVALID_ARGUMENT");
    assert.deepEqual([signs(), egress.sent.length], before);
    assert.deepEqual([(await lastEvent()).kind, (await lastEvent()).reason], ["sign.send", "INVALID_ARGUMENT"]);
  });

  it("sends nothing the key's policy refuses", async () => {
    const before = [signs(), egress.sent.length];
    await rejectsWith(signer.sendExchange(caller, input("bn-small")), "POLICY_DENIED", "max-quantity:BTCUSDT");
    assert.deepEqual([signs(), egress.sent.length], before);
  });

  it("signs an egressOnly key's request only to send it: SignExchangeRequest and Sign are refused before the HSM", async () => {
    const before = signs();
    await rejectsWith(signer.signExchange(caller, input("bn-eo")), "POLICY_DENIED", "egress-only");
    await rejectsWith(signer.sign(caller, { keyId: "bn-eo", version: 0, payload: Buffer.from("x") }), "POLICY_DENIED", "egress-only");
    assert.equal(signs(), before);
    const res = await signer.sendExchange(caller, input("bn-eo"));
    assert.equal(res.status, 200);
    assert.equal(signs(), before + 1);
  });

  it("audits a failed send as failed, signed, with the failure and whether it may have arrived", async () => {
    egress.failure = new EgressError("response-timeout", true, "no answer");
    try {
      await rejectsWith(signer.sendExchange(caller, input("bn")), "EXCHANGE_UNAVAILABLE");
    } finally {
      egress.failure = undefined;
    }
    const e = await lastEvent();
    assert.deepEqual(
      [e.kind, e.outcome, e.reason, e.details?.signed, e.details?.egressFailure, e.details?.mayHaveArrived],
      ["sign.send", "failed", "EXCHANGE_UNAVAILABLE", true, "response-timeout", true],
    );
  });

  it("refuses an egressOnly key's WebSocket login unless its policy allows logins, and then only logins", async () => {
    const login = (keyId: string, request?: { method: string; params: Array<[string, string]> }) =>
      signer.signWebSocketAuth(caller, { keyId, version: 0, input: request ? { request } : {}, timestampMs: 0, nonce: "", expires: 0, passphrase: "" });
    const order = {
      method: "order.place",
      params: [
        ["symbol", "BTCUSDT"],
        ["side", "BUY"],
        ["type", "MARKET"],
        ["quantity", "0.001"],
      ] as Array<[string, string]>,
    };
    const before = signs();
    await rejectsWith(login("by-eo"), "POLICY_DENIED", "egress-only");
    await rejectsWith(login("bn-eo", order), "POLICY_DENIED", "egress-only");
    assert.equal(signs(), before);
    // Bybit's private-stream "auth": the logged-in socket is the caller's.
    const signed = await login("by-eo-login");
    assert.equal(signs(), before + 1);
    assert.equal(signed.apiKeyId, "pub-by-eo-login");
    // Only logins: a WebSocket API order, Sign and SignExchangeRequest still never leave.
    await rejectsWith(login("bn-eo-login", order), "POLICY_DENIED", "egress-only");
    await rejectsWith(signer.signExchange(caller, input("bn-eo-login")), "POLICY_DENIED", "egress-only");
    await rejectsWith(signer.sign(caller, { keyId: "bn-eo-login", version: 0, payload: Buffer.from("x") }), "POLICY_DENIED", "egress-only");
    assert.equal(signs(), before + 1);
  });
});
