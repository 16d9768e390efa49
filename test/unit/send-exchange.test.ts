import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
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

/**
 * Records what would have been sent; answers with `answer` or throws `failure`. Like undici on a
 * reused keep-alive socket, it puts the request on the wire in the next check phase.
 */
class FakeEgress implements Egress {
  readonly sent: Array<{ exchange: string; destination: Destination; request: OutgoingRequest }> = [];
  failure: Error | undefined;
  /** Runs when the request goes on the wire, before the exchange answers. */
  onSend: (() => void) | undefined;
  route(exchange: string, environment: Environment, path: string): Destination {
    if (path.includes("..")) throw new CustosError("INVALID_ARGUMENT", "dot segments");
    return destinationFor(exchange, environment, path, { binance: { "/fapi/": "https://stand-in.test" } });
  }
  async send(exchange: string, destination: Destination, request: OutgoingRequest): Promise<ExchangeReply> {
    await new Promise((resolve) => setImmediate(resolve));
    this.sent.push({ exchange, destination, request });
    this.onSend?.();
    if (this.failure) throw this.failure;
    return { status: 200, headers: [["content-type", "application/json"]], body: Buffer.from('{"orderId":1}'), roundTripUs: 321 };
  }
}

let store: SqliteStore;
let hsm: FakeHsm;
let audit: AuditLog;
let signer: SignService;
const egress = new FakeEgress();
/** What the sign observer (metrics) saw, call by call. */
const observed: string[] = [];
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
type Row = Record<string, unknown> & { details?: Record<string, unknown>; payloadSha256?: string };
async function lastEvents(n: number): Promise<Row[]> {
  await audit.flush();
  const last = (await store.audit.lastAudit())!;
  return (await store.audit.readAudit(last.seq - n, n)).map((r) => JSON.parse(r.body) as Row);
}
async function lastEvent(): Promise<Row> {
  return (await lastEvents(1))[0]!;
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
  signer = new SignService(
    directory,
    hsm,
    audit,
    { observe: (outcome, reason) => observed.push(`${outcome}:${reason}`) },
    { maxPayloadBytes: 64 * 1024, clientRate: unlimited, keyRate: unlimited, egress },
  );
});

after(async () => {
  await audit.close();
  await store.close();
});

describe("SendExchangeRequest in the sign path", () => {
  it("signs once, sends the signed request to the table's destination, and audits status and round trip", async () => {
    const before = [signs(), egress.sent.length];
    observed.length = 0;
    const res = await signer.sendExchange(caller, input("bn"));
    assert.deepEqual([signs(), egress.sent.length], [before[0]! + 1, before[1]! + 1]);
    // Two rows, one observation: the metrics count calls, not rows.
    assert.deepEqual(observed, ["allowed:OK"]);
    const sent = egress.sent.at(-1)!;
    assert.equal(sent.destination.origin, "https://stand-in.test");
    assert.match(sent.request.query, /^symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0\.01&timestamp=\d+&signature=[0-9a-f]{64}$/);
    assert.deepEqual(sent.request.headers, [["X-MBX-APIKEY", "pub-bn"]]);
    assert.deepEqual([res.status, res.body.toString(), res.version, res.endpointClass], [200, '{"orderId":1}', 1, "trade"]);
    const [decision, result] = await lastEvents(2);
    // The decision: the request's digest and destination; the result: the exchange's status and round trip.
    assert.deepEqual(
      [decision!.kind, decision!.outcome, decision!.key, decision!.details?.origin, decision!.details?.method, decision!.details?.path],
      ["sign.send", "allowed", "bn", "https://stand-in.test", "POST", "/fapi/v1/order"],
    );
    // The request as the caller asked for it (before custos added timestamp and signature).
    assert.equal(decision!.payloadSha256, createHash("sha256").update(`POST /fapi/v1/order?${ORDER.query}\n`).digest("hex"));
    assert.deepEqual(
      [result!.kind, result!.outcome, result!.key, result!.details?.status, result!.details?.roundTripUs, result!.details?.origin],
      ["sign.send.result", "allowed", "bn", 200, 321, "https://stand-in.test"],
    );
    assert.match(String(decision!.details?.sendId), /^r[0-9a-z]+-[0-9a-z]+$/);
    assert.equal(result!.details?.sendId, decision!.details?.sendId);
  });

  it("queues the decision row before the request is on the wire, and answers only once that row is written", async () => {
    const queuedAtSend: number[] = [];
    egress.onSend = () => queuedAtSend.push(audit.queueDepth);
    const writtenBefore = (await store.audit.lastAudit())!.seq;
    try {
      const res = await signer.sendExchange(caller, input("bn"));
      assert.equal(res.status, 200);
      // Answered: the decision row is in the store without a flush (the result row may still be queued).
      const stored = await store.audit.readAudit(writtenBefore, 10);
      assert.deepEqual(
        stored.map((r) => (JSON.parse(r.body) as Row).kind),
        ["sign.send", ...(stored.length > 1 ? ["sign.send.result"] : [])],
      );
    } finally {
      egress.onSend = undefined;
    }
    assert.deepEqual(queuedAtSend, [1]);
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

  it("audits a failed send: the decision row, then a failed result with the failure and whether it may have arrived", async () => {
    egress.failure = new EgressError("response-timeout", true, "no answer");
    observed.length = 0;
    try {
      await rejectsWith(signer.sendExchange(caller, input("bn")), "EXCHANGE_UNAVAILABLE");
    } finally {
      egress.failure = undefined;
    }
    const [decision, result] = await lastEvents(2);
    assert.deepEqual([decision!.kind, decision!.outcome], ["sign.send", "allowed"]);
    assert.deepEqual(
      [result!.kind, result!.outcome, result!.reason, result!.details?.egressFailure, result!.details?.mayHaveArrived, result!.details?.sendId],
      ["sign.send.result", "failed", "EXCHANGE_UNAVAILABLE", "response-timeout", true, decision!.details?.sendId],
    );
    assert.deepEqual(observed, ["failed:EXCHANGE_UNAVAILABLE"]);
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
