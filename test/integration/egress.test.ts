import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import { unary } from "../../src/client/connection.js";
import { SignatureEncoding, type ExchangeRequest, type SignStreamRequest, type SignStreamResponse } from "../../src/gen/custos/v1/signer.js";
import {
  auditEvents,
  expectDenied,
  type AuditBody,
  importSecret,
  proposeAndApprove,
  startInProcess,
  tempDir,
  waitForAudit,
  type InProcessService,
} from "../helpers/harness.js";
import { StandInBinance, StandInBybit, StandInCanned, standInTls } from "../helpers/stand-in-exchange.js";

/**
 * SendExchangeRequest through the real service (SoftHSM2, gRPC over mTLS, SQLite): custos signs
 * and sends to HTTPS stand-ins on loopback that verify the signature and API key as the exchanges
 * document, served with a test CA custos is configured to trust (egress.trustedCaFile).
 */

const BINANCE_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
const BINANCE_API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
const BYBIT_SECRET = "bybit-stand-in-secret-0123456789abcdef";
const BYBIT_API_KEY = "bybit-stand-in-key";
const ORDER = "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01";
const BYBIT_ORDER = '{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"0.01"}';

function request(keyId: string, r: { method: string; path: string; query?: string; body?: string }): ExchangeRequest {
  return {
    keyId,
    version: 0,
    method: r.method,
    path: r.path,
    query: r.query ?? "",
    queryParams: [],
    body: Buffer.from(r.body ?? ""),
    timestampMs: "0",
    nonce: "",
    expires: "0",
    recvWindowMs: 0,
    passphrase: "test-passphrase",
    apiKeyVersion: "",
    omitNonce: false,
  };
}

/** Polls the audit chain until `enough` holds for the events `pick` selects (sign decisions are written in batches). */
async function auditUntil(dir: string, pick: (e: AuditBody) => boolean, enough: (events: AuditBody[]) => boolean): Promise<AuditBody[]> {
  const deadline = Date.now() + 3_000;
  for (;;) {
    const events = (await auditEvents(dir)).filter(pick);
    if (enough(events)) return events;
    if (Date.now() > deadline) assert.fail(`the audit chain never held what was expected: ${JSON.stringify(events.map((e) => e.details))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Sends one message on a fresh SignStream and returns its answer. */
async function streamOnce(svc: InProcessService, kind: SignStreamRequest["kind"]): Promise<SignStreamResponse> {
  const stream = svc.signer.signStream();
  const answer = new Promise<SignStreamResponse>((resolve, reject) => {
    stream.on("data", (m: SignStreamResponse) => {
      resolve(m);
      stream.end();
    });
    stream.on("error", reject);
  });
  stream.write({ requestId: "7", kind });
  return answer;
}

describe("SendExchangeRequest: custos signs and sends, the signature never leaves", () => {
  let svc: InProcessService;
  const binance = new StandInBinance(new Map([[BINANCE_API_KEY, BINANCE_SECRET]]));
  const bybit = new StandInBybit(new Map([[BYBIT_API_KEY, BYBIT_SECRET]]));
  // Served with a certificate from a CA custos does not trust.
  const untrusted = new StandInCanned({});
  const send = (r: ExchangeRequest) => unary(svc.signer, "sendExchangeRequest", r);
  const setPolicy = async (keyId: string, policy: unknown) => {
    const p = await proposeAndApprove(svc.custody, { kind: { $case: "setPolicy", setPolicy: { keyId, policyJson: JSON.stringify(policy) } }, ttlSeconds: 0 });
    assert.equal(p.state, "executed", p.failure);
  };
  const ruleOf = (e: unknown) => String((e as { metadata: { get(k: string): unknown[] } }).metadata.get("custos-rule")[0]);

  before(async () => {
    const tls = await standInTls();
    const other = await standInTls();
    const caFile = join(tempDir("custos-egress-ca-"), "exchange-ca.pem");
    writeFileSync(caFile, tls.caPem);
    const [binanceUrl, bybitUrl, untrustedUrl] = [
      await binance.start({ tls }),
      await bybit.start({ tls }),
      await untrusted.start({ tls: { certPem: other.certPem, keyPem: other.keyPem } }),
    ];
    svc = await startInProcess((c) => {
      c.audit.refusals = { individualPerSource: 10_000 };
      c.egress = {
        ...c.egress,
        hosts: { binance: { "/fapi/": binanceUrl, "/sapi/": binanceUrl }, bybit: { "/": bybitUrl }, okx: { "/": untrustedUrl } },
        trustedCaFile: caFile,
        responseTimeoutMs: 400,
        maxResponseBytes: 16 * 1024,
      };
    });
    await importSecret(svc.custody, "bn", Buffer.from(BINANCE_SECRET), { exchange: "binance", apiKeyId: BINANCE_API_KEY });
    await importSecret(svc.custody, "bn-eo", Buffer.from(BINANCE_SECRET), { exchange: "binance", apiKeyId: BINANCE_API_KEY });
    await setPolicy("bn-eo", { egressOnly: true });
    await importSecret(svc.custody, "by", Buffer.from(BYBIT_SECRET), { exchange: "bybit", apiKeyId: BYBIT_API_KEY });
    await importSecret(svc.custody, "ok", Buffer.from("okx-stand-in-secret-0123456789abcdef"), { exchange: "okx", apiKeyId: "okx-key" });
  });
  after(async () => {
    await svc?.stop();
    await Promise.all([binance.stop(), bybit.stop(), untrusted.stop()]);
  });

  it("sends a signed Binance order the stand-in accepts, and returns status, headers and body verbatim", async () => {
    const before = binance.received.length;
    const res = await send(request("bn", { method: "POST", path: "/fapi/v1/order", query: ORDER }));
    assert.equal(binance.received.length, before + 1);
    const seen = binance.received.at(-1)!;
    assert.deepEqual(seen.outcome, { status: 200 });
    assert.equal(seen.headers["x-mbx-apikey"], BINANCE_API_KEY);
    assert.match(seen.target, /^\/fapi\/v1\/order\?symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0\.01&timestamp=\d+&signature=[0-9a-f]{64}$/);
    assert.equal(res.status, 200);
    assert.equal(res.keyVersion, 1);
    assert.equal(res.endpointClass, "trade");
    assert.equal(Number(res.roundTripUs) > 0, true);
    const body = JSON.parse(res.body.toString("utf8")) as { orderId: number; symbol: string };
    assert.deepEqual([body.orderId, body.symbol], [binance.accepted.at(-1)!.orderId, "BTCUSDT"]);
    const headers = new Map(res.headers.map((h) => [h.name, h.value]));
    assert.equal(headers.get("content-type"), "application/json");
    assert.equal(headers.get("x-mbx-used-weight-1m"), String(binance.received.length));
  });

  it("returns the exchange's refusal as it came (HTTP status and body), and audits its status", async () => {
    // The stand-in knows no such endpoint: Binance answers 404 with its error body.
    const res = await send(request("bn", { method: "GET", path: "/fapi/v2/positionRisk", query: "symbol=BTCUSDT" }));
    assert.equal(res.status, 404);
    assert.deepEqual(JSON.parse(res.body.toString("utf8")), { code: -1000, msg: "Unknown endpoint." });
    // Two linked rows per request: the decision (digest, path, destination) and the exchange's answer.
    const answered = (e: AuditBody) => e.kind === "sign.send.result" && e.outcome === "allowed" && e.key === "bn";
    const results = await auditUntil(svc.dir, answered, (es) => es.some((e) => e.details?.status === 404));
    const decided = (e: AuditBody) => e.kind === "sign.send" && e.outcome === "allowed" && e.key === "bn";
    const decisions = await auditUntil(svc.dir, decided, (es) => es.length >= results.length);
    assert.deepEqual(
      results.map((r) => {
        const d = decisions.find((x) => x.details?.sendId === r.details?.sendId);
        return [r.details?.status, d?.details?.path, d?.details?.origin, r.details?.origin];
      }),
      [
        [200, "/fapi/v1/order", binance.url, binance.url],
        [404, "/fapi/v2/positionRisk", binance.url, binance.url],
      ],
    );
    for (const d of decisions) assert.ok(d.payloadSha256 && /^[0-9a-f]{64}$/.test(d.payloadSha256));
    for (const r of results) assert.equal(typeof r.details?.roundTripUs, "number");
    // The decision is written before the answer (and so before its result row).
    for (const r of results) assert.ok(decisions.find((d) => d.details?.sendId === r.details?.sendId)!.seq < r.seq);
  });

  it("sends a Bybit order inside a SignStream, with the JSON Content-Type Bybit expects", async () => {
    const before = bybit.received.length;
    const m = await streamOnce(svc, {
      $case: "sendExchangeRequest",
      sendExchangeRequest: request("by", { method: "POST", path: "/v5/order/create", body: BYBIT_ORDER }),
    });
    assert.equal(m.result?.$case, "exchangeReply", JSON.stringify(m.result));
    const reply = m.result.$case === "exchangeReply" ? m.result.exchangeReply : assert.fail();
    assert.equal(bybit.received.length, before + 1);
    const seen = bybit.received.at(-1)!;
    assert.equal(seen.headers["content-type"], "application/json");
    assert.equal(seen.body, BYBIT_ORDER);
    const answer = JSON.parse(reply.body.toString("utf8")) as { retCode: number; result: { orderId: string } };
    assert.deepEqual([reply.status, answer.retCode, answer.result.orderId], [200, 0, String(bybit.accepted.at(-1)!.orderId)]);
  });

  it("sends nothing when the key's policy refuses the request (withdrawal, quantity)", async () => {
    await importSecret(svc.custody, "bn-small", Buffer.from(BINANCE_SECRET), { exchange: "binance", apiKeyId: BINANCE_API_KEY });
    await setPolicy("bn-small", { maxQuantity: { "*": 0.001 } });
    const before = binance.received.length;
    const withdraw = request("bn", { method: "POST", path: "/sapi/v1/capital/withdraw/apply", query: "coin=USDT&address=TXYZ&amount=1000&network=TRX" });
    await expectDenied(send(withdraw), status.PERMISSION_DENIED, "POLICY_DENIED");
    await expectDenied(send(request("bn-small", { method: "POST", path: "/fapi/v1/order", query: ORDER })), status.PERMISSION_DENIED, "POLICY_DENIED");
    assert.equal(binance.received.length, before);
    const e = await waitForAudit(svc.dir, { kind: "sign.send", outcome: "denied", key: "bn-small" });
    assert.equal(e.details?.rule, "max-quantity:BTCUSDT");
  });

  it("refuses every path that could influence the destination, audited, and sends nothing", async () => {
    const paths = [
      "//evil.example/fapi/v1/order",
      "https://evil.example/fapi/v1/order",
      "/fapi/v1/order@evil.example",
      "/fapi%2f..%2fv1/order",
      "/fapi/v1%2Forder",
      "/fapi/v1\\order",
      "/fapi/../sapi/v1/capital/withdraw/apply",
      "/fapi/./v1/order",
      "/fapi/v1/order#frag",
      "/fapi/v1/order?symbol=BTCUSDT",
      "/evil.example/fapi/v1/order",
    ];
    const before = binance.received.length;
    for (const path of paths) await expectDenied(send(request("bn", { method: "POST", path, query: ORDER })), status.INVALID_ARGUMENT, "INVALID_ARGUMENT");
    assert.equal(binance.received.length, before);
    // The absolute URL is refused at the edge (a path starts with /), audited there as the RPC.
    const refusedHere = paths.filter((p) => p.startsWith("/"));
    const refused = await auditUntil(
      svc.dir,
      (x) => x.kind === "sign.send" && x.reason === "INVALID_ARGUMENT" && x.key === "bn",
      (es) => es.length >= refusedHere.length,
    );
    assert.equal(refused.length, refusedHere.length);
    // The audit escapes a backslash in text it stores; every other path is recorded as given.
    const plain = refusedHere.filter((p) => !p.includes("\\"));
    assert.deepEqual(
      refused
        .map((x) => String(x.details?.path))
        .filter((p) => !p.includes("\\"))
        .sort(),
      plain.sort(),
    );
  });

  it("never returns an egressOnly key's signature: Sign, SignExchangeRequest, SignWebSocketAuth and the stream refuse it", async () => {
    const order = request("bn-eo", { method: "POST", path: "/fapi/v1/order", query: ORDER });
    const denials = [
      unary(svc.signer, "sign", { keyId: "bn-eo", version: 0, payload: Buffer.from(ORDER), encoding: SignatureEncoding.SIGNATURE_ENCODING_HEX }),
      unary(svc.signer, "signExchangeRequest", order),
      unary(svc.signer, "signWebSocketAuth", {
        keyId: "bn-eo",
        version: 0,
        timestampMs: "0",
        nonce: "",
        expires: "0",
        challenge: "",
        channel: "",
        event: "",
        passphrase: "",
        wsMethod: "account.status",
        wsParams: [],
      }),
    ];
    for (const call of denials) {
      await expectDenied(call, status.PERMISSION_DENIED, "POLICY_DENIED");
      assert.equal(await call.catch(ruleOf), "egress-only");
    }
    for (const kind of [
      { $case: "exchangeRequest", exchangeRequest: order },
      { $case: "request", request: { keyId: "bn-eo", version: 0, payload: Buffer.from(ORDER), encoding: SignatureEncoding.SIGNATURE_ENCODING_HEX } },
    ] as SignStreamRequest["kind"][]) {
      const m = await streamOnce(svc, kind);
      assert.equal(m.result?.$case, "denial");
      assert.deepEqual(m.result.$case === "denial" && [m.result.denial.reason, m.result.denial.rule], ["POLICY_DENIED", "egress-only"]);
    }
    // Only SendExchangeRequest signs with it, and its reply carries no signature.
    const res = await send(order);
    assert.equal(res.status, 200);
    const signature = /signature=([0-9a-f]{64})/.exec(binance.received.at(-1)!.target)![1]!;
    const everything = JSON.stringify(res) + res.body.toString("utf8") + res.headers.map((h) => h.value).join();
    assert.equal(everything.includes(signature), false);
    const e = await waitForAudit(svc.dir, { kind: "sign.ws_auth", outcome: "denied", key: "bn-eo" });
    assert.equal(e.details?.rule, "egress-only");
  });

  it("answers UNAVAILABLE when the exchange does not answer in time, and sends the request exactly once", async () => {
    const before = binance.received.length;
    binance.fault = "hang";
    try {
      await expectDenied(send(request("bn", { method: "POST", path: "/fapi/v1/order", query: ORDER })), status.UNAVAILABLE, "EXCHANGE_UNAVAILABLE");
    } finally {
      binance.fault = "none";
    }
    assert.equal(binance.received.length, before + 1);
    const e = await waitForAudit(svc.dir, { kind: "sign.send.result", outcome: "failed", reason: "EXCHANGE_UNAVAILABLE" });
    assert.deepEqual([e.details?.egressFailure, e.details?.mayHaveArrived], ["response-timeout", true]);
    // The request it answers for is recorded: signed, sent, digest and destination.
    const decision = (await auditEvents(svc.dir)).find((x) => x.kind === "sign.send" && x.details?.sendId === e.details?.sendId);
    assert.deepEqual([decision?.outcome, decision?.details?.path, decision?.details?.origin], ["allowed", "/fapi/v1/order", binance.url]);
  });

  it("answers UNAVAILABLE on a connection reset, retrying nothing", async () => {
    const before = bybit.received.length;
    bybit.fault = "reset";
    try {
      await expectDenied(send(request("by", { method: "POST", path: "/v5/order/create", body: BYBIT_ORDER })), status.UNAVAILABLE, "EXCHANGE_UNAVAILABLE");
    } finally {
      bybit.fault = "none";
    }
    assert.equal(bybit.received.length, before + 1);
    assert.equal(bybit.accepted.length, 1, "the reset order was not placed again");
    const e = await waitForAudit(svc.dir, { kind: "sign.send.result", outcome: "failed", key: "by" });
    assert.equal(e.details?.egressFailure, "connection-reset");
  });

  it("cuts off a response over egress.maxResponseBytes with EXCHANGE_RESPONSE_TOO_LARGE", async () => {
    bybit.fault = { oversized: 64 * 1024 };
    try {
      const call = send(request("by", { method: "GET", path: "/v5/account/wallet-balance", query: "accountType=UNIFIED" }));
      await expectDenied(call, status.UNAVAILABLE, "EXCHANGE_RESPONSE_TOO_LARGE");
    } finally {
      bybit.fault = "none";
    }
    const e = await waitForAudit(svc.dir, { kind: "sign.send.result", reason: "EXCHANGE_RESPONSE_TOO_LARGE" });
    assert.equal(e.details?.egressFailure, "response-too-large");
  });

  it("verifies the exchange's TLS certificate: an untrusted one is refused before any request", async () => {
    const call = send(request("ok", { method: "GET", path: "/api/v5/account/balance" }));
    await expectDenied(call, status.UNAVAILABLE, "EXCHANGE_UNAVAILABLE");
    assert.equal(untrusted.received.length, 0);
    const e = await waitForAudit(svc.dir, { kind: "sign.send.result", outcome: "failed", key: "ok" });
    assert.deepEqual([e.details?.egressFailure, e.details?.mayHaveArrived], ["connect-failed", false]);
  });

  it("counts egress round trips and status classes per exchange in the metrics", async () => {
    const res = await svc.service.http.inject({ method: "GET", url: "/metrics" });
    const text = res.body;
    assert.match(text, /custos_egress_responses_total\{exchange="binance",outcome="2xx"\} [1-9]/);
    assert.match(text, /custos_egress_responses_total\{exchange="binance",outcome="4xx"\} [1-9]/);
    assert.match(text, /custos_egress_responses_total\{exchange="binance",outcome="response-timeout"\} 1/);
    assert.match(text, /custos_egress_responses_total\{exchange="bybit",outcome="connection-reset"\} 1/);
    assert.match(text, /custos_egress_duration_seconds_count\{exchange="bybit"\} [1-9]/);
  });
});
