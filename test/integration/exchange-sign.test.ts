import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { ErrorInfo, Status } from "../../src/gen/google/rpc/status.js";
import { EMBEDDED_CLIENT } from "../../src/config/config.js";
import { LOG_FIELDS } from "../../src/log.js";
import { after, before, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import { unary } from "../../src/client/connection.js";
import { SignatureEncoding, type ExchangeRequest } from "../../src/gen/custos/v1/signer.js";
import { dialectExchanges, dialectFor } from "../../src/exchanges/registry.js";
import { expectDenied, importSecret, proposeAndApprove, startInProcess, waitForAudit, type InProcessService } from "../helpers/harness.js";

/**
 * Exchange-aware signing through the real service: the embedded default (SoftHSM2 token,
 * gRPC over mTLS, SQLite), keys imported by proposal, the dev trading client signing.
 */

// Binance's documented HMAC example (Binance API docs, "SIGNED Endpoint Examples for POST /api/v3/order").
const BINANCE_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
const BINANCE_API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
// The docs' query ends "&recvWindow=5000&timestamp=1499827319559"; custos appends both (it owns them).
const BINANCE_QUERY = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1";
const BINANCE_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71";

const KRAKEN_WITHDRAWAL = { method: "POST", path: "/derivatives/api/v3/withdrawal", query: "amount=1&currency=xbt" };

/** One withdrawal request per exchange, from its API documentation. */
const WITHDRAWALS: Record<string, { method: string; path: string; query?: string; body?: string }> = {
  binance: { method: "POST", path: "/sapi/v1/capital/withdraw/apply", query: "coin=USDT&address=TXYZ&amount=1000&network=TRX" },
  bybit: {
    method: "POST",
    path: "/v5/asset/withdraw/create",
    body: '{"coin":"USDT","chain":"ETH","address":"0xabc","amount":"1000","timestamp":1700000000000}',
  },
  okx: { method: "POST", path: "/api/v5/asset/withdrawal", body: '{"ccy":"USDT","amt":"1000","dest":"4","toAddr":"0xabc","fee":"1","chain":"USDT-ERC20"}' },
  deribit: { method: "GET", path: "/api/v2/private/withdraw", query: "currency=BTC&address=bc1qxyz&amount=1" },
  bitmex: { method: "POST", path: "/api/v1/user/requestWithdrawal", body: '{"currency":"XBt","amount":100000000,"address":"bc1qxyz"}' },
  krakenfutures: KRAKEN_WITHDRAWAL,
  bitget: {
    method: "POST",
    path: "/api/v2/spot/wallet/withdrawal",
    body: '{"coin":"USDT","transferType":"on_chain","address":"0xabc","chain":"trc20","size":"1000"}',
  },
  gate: { method: "POST", path: "/api/v4/withdrawals", body: '{"currency":"USDT","address":"0xabc","amount":"1000","chain":"TRX"}' },
  kucoinfutures: { method: "POST", path: "/api/v1/withdrawals", body: '{"currency":"USDT","address":"0xabc","amount":1000,"chain":"trc20"}' },
};

function request(keyId: string, r: { method: string; path: string; query?: string; body?: string }, extra: Partial<ExchangeRequest> = {}): ExchangeRequest {
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
    ...extra,
  };
}

describe("exchange-aware signing through the service", () => {
  let svc: InProcessService;
  const sign = (r: ExchangeRequest) => unary(svc.signer, "signExchangeRequest", r);
  const rawSign = (keyId: string) =>
    unary(svc.signer, "sign", { keyId, version: 0, payload: Buffer.from("anything"), encoding: SignatureEncoding.SIGNATURE_ENCODING_HEX });
  const setPolicy = async (keyId: string, policy: unknown) => {
    const p = await proposeAndApprove(svc.custody, { kind: { $case: "setPolicy", setPolicy: { keyId, policyJson: JSON.stringify(policy) } }, ttlSeconds: 0 });
    assert.equal(p.state, "executed", p.failure);
  };
  /** The rule id a denial carried (trailer), asserting it is a POLICY_DENIED. */
  const deniedRule = async (call: Promise<unknown>): Promise<string> => {
    try {
      await call;
    } catch (e) {
      const err = e as { code: number; metadata: { get(k: string): unknown[] } };
      assert.equal(err.code, status.PERMISSION_DENIED);
      assert.equal(String(err.metadata.get("custos-reason")[0]), "POLICY_DENIED");
      return String(err.metadata.get("custos-rule")[0]);
    }
    assert.fail("expected a policy denial");
  };

  before(async () => {
    // Every refusal here is checked for its own audit row: no flood sampling for this suite.
    svc = await startInProcess((c) => (c.audit.refusals = { individualPerSource: 10_000 }));
    await importSecret(svc.custody, "bn", Buffer.from(BINANCE_SECRET), { exchange: "binance", apiKeyId: BINANCE_API_KEY });
  });
  after(async () => svc?.stop());

  it("signs Binance's documented order example in SoftHSM2, byte for byte", async () => {
    const res = await sign(
      request("bn", { method: "POST", path: "/api/v3/order", query: BINANCE_QUERY }, { timestampMs: "1499827319559", recvWindowMs: 5000 }),
    );
    assert.equal(res.signature, BINANCE_SIGNATURE);
    assert.equal(res.query, `${BINANCE_QUERY}&recvWindow=5000&timestamp=1499827319559&signature=${BINANCE_SIGNATURE}`);
    assert.deepEqual(
      res.params.map((p) => [p.name, p.value]),
      [
        ["recvWindow", "5000"],
        ["timestamp", "1499827319559"],
        ["signature", BINANCE_SIGNATURE],
      ],
    );
    assert.deepEqual(
      res.headers.map((h) => [h.name, h.value]),
      [["X-MBX-APIKEY", BINANCE_API_KEY]],
    );
    assert.equal(res.timestamp, "1499827319559");
    assert.equal(res.endpointClass, "trade");
    assert.equal(res.keyVersion, 1);
    const e = await waitForAudit(svc.dir, { kind: "sign.request", outcome: "allowed", key: "bn" });
    assert.deepEqual([e.details?.class, e.details?.path, e.details?.method], ["trade", "/api/v3/order", "POST"]);
  });

  it("reproduces every documented example that publishes its secret, through SoftHSM2 (short secrets included, SHA-256 and SHA-512)", async () => {
    // BitMEX, https://www.bitmex.com/app/apiKeysUsage "Full sample calculation" (HMAC-SHA256, 48-byte secret).
    await importSecret(svc.custody, "doc-bitmex", Buffer.from("chNOOS4KvNXR_Xq4k4c9qsfoKWvnDecLATCRlcBwyKDYnWgO"), {
      exchange: "bitmex",
      apiKeyId: "LAqUlngMIQkIUjXMUreyu3qn",
    });
    // The docs sign a public endpoint (class unknown, denied by default): the key's policy allows it by path.
    await setPolicy("doc-bitmex", { rules: [{ id: "docs-instrument", effect: "allow", method: "GET", path: "/api/v1/instrument" }] });
    const bitmexExamples: Array<[{ method: string; path: string; query?: string; body?: string }, number, string]> = [
      [{ method: "GET", path: "/api/v1/instrument" }, 1518064236, "c7682d435d0cfe87c16098df34ef2eb5a549d4c5a3c2b1f0f77b8af73423bf00"],
      [
        { method: "GET", path: "/api/v1/instrument", query: "filter=%7B%22symbol%22%3A+%22XBTM15%22%7D" },
        1518064237,
        "e2f422547eecb5b3cb29ade2127e21b858b235b386bfa45e1c1756eb3383919f",
      ],
      [
        { method: "POST", path: "/api/v1/order", body: '{"symbol":"XBTM15","price":219.0,"clOrdID":"mm_bitmex_1a/oemUeQ4CAJZgP3fjHsA","orderQty":98}' },
        1518064238,
        "1749cd2ccae4aa49048ae09f0b95110cee706e0944e6a14ad0b3a8cb45bd336b",
      ],
    ];
    for (const [r, expires, signature] of bitmexExamples) {
      const res = await sign(request("doc-bitmex", r, { expires: String(expires) }));
      assert.equal(res.signature, signature, `${r.method} ${r.path}`);
      assert.deepEqual(
        res.headers.map((h) => [h.name, h.value]),
        [
          ["api-expires", String(expires)],
          ["api-key", "LAqUlngMIQkIUjXMUreyu3qn"],
          ["api-signature", signature],
        ],
      );
    }

    // Gate v4, https://www.gate.com/docs/developers/apiv4/en/#api-signature-string-generation "Examples":
    // HMAC-SHA512 with the 6-byte secret "secret" (SoftHSM2 needs 64 bytes: zero-padded at import, same MAC).
    await importSecret(svc.custody, "doc-gate", Buffer.from("secret"), { exchange: "gate", algorithm: "hmac-sha512", apiKeyId: "key" });
    // The example's path predates the settle currency (/futures/{settle}/orders), so it is allowed by path.
    await setPolicy("doc-gate", { rules: [{ id: "docs-orders", effect: "allow", path: "/api/v4/futures/orders" }] });
    const list = await sign(
      request(
        "doc-gate",
        { method: "GET", path: "/api/v4/futures/orders", query: "contract=BTC_USD&status=finished&limit=50" },
        { timestampMs: "1541993715000" },
      ),
    );
    assert.equal(
      list.signature,
      "55f84ea195d6fe57ce62464daaa7c3c02fa9d1dde954e4c898289c9a2407a3d6fb3faf24deff16790d726b66ac9f74526668b13bd01029199cc4fcc522418b8a",
    );
    const create = await sign(
      request(
        "doc-gate",
        { method: "POST", path: "/api/v4/futures/orders", body: '{"contract":"BTC_USD","type":"limit","size":100,"price":6800,"time_in_force":"gtc"}' },
        { timestampMs: "1541993715000" },
      ),
    );
    assert.equal(
      create.signature,
      "eae42da914a590ddf727473aff25fc87d50b64783941061f47a3fdb92742541fc4c2c14017581b4199a1418d54471c269c03a38d788d802e2c306c37636389f0",
    );

    const wsAuth = (keyId: string, extra: Record<string, string>) =>
      unary(svc.signer, "signWebSocketAuth", {
        keyId,
        version: 0,
        timestampMs: "0",
        nonce: "",
        expires: "0",
        challenge: "",
        channel: "",
        event: "",
        passphrase: "",
        wsMethod: "",
        wsParams: [],
        ...extra,
      });
    // Deribit, docs.deribit.com "Client Signature (WebSocket)" example: client AMANDA, 13-byte secret.
    await importSecret(svc.custody, "doc-deribit", Buffer.from("AMANDASECRECT"), { exchange: "deribit", apiKeyId: "AMANDA" });
    // A Deribit login hands over a session for every private method: refused until the quorum attests the
    // key's Deribit scope moves no funds and names the login in an allow rule.
    assert.equal(await deniedRule(wsAuth("doc-deribit", { timestampMs: "1576074319000", nonce: "1iqt2wls" })), "exchange-scope");
    await setPolicy("doc-deribit", { exchangeScopeExcludesFunds: true });
    assert.equal(await deniedRule(wsAuth("doc-deribit", { timestampMs: "1576074319000", nonce: "1iqt2wls" })), "session-login");
    await setPolicy("doc-deribit", { exchangeScopeExcludesFunds: true, rules: [{ id: "ws-login", effect: "allow", method: "WS", path: "auth" }] });
    const deribitAuth = await wsAuth("doc-deribit", { timestampMs: "1576074319000", nonce: "1iqt2wls" });
    assert.equal(deribitAuth.signature, "56590594f97921b09b18f166befe0d1319b198bbcdad7ca73382de2f88fe9aa1");

    // Kraken Futures, "WebSocket API: Sign Challenge" example: the base64 secret is decoded at import.
    await importSecret(
      svc.custody,
      "doc-kraken",
      Buffer.from("7zxMEF5p/Z8l2p2U7Ghv6x14Af+Fx+92tPgUdVQ748FOIrEoT9bgT+bTRfXc5pz8na+hL/QdrCVG7bh9KpT0eMTm", "base64"),
      { exchange: "krakenfutures", algorithm: "hmac-sha512", apiKeyId: "kf-key" },
    );
    const krakenAuth = await wsAuth("doc-kraken", { challenge: "c100b894-1729-464d-ace1-52dbce11db42" });
    assert.equal(krakenAuth.signature, "4JEpF3ix66GA2B+ooK128Ift4XQVtc137N9yeg4Kqsn9PI0Kpzbysl9M1IeCEdjg0zl00wkVqcsnG4bmnlMb3A==");
  });

  it("owns the timestamp: without one it uses its own clock", async () => {
    const before = Date.now();
    const res = await sign(request("bn", { method: "POST", path: "/fapi/v1/order", query: "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01" }));
    const ts = Number(res.timestamp);
    assert.ok(ts >= before && ts <= Date.now(), `timestamp ${ts} is custos's clock`);
    const signed = res.query.slice(0, res.query.lastIndexOf("&signature="));
    assert.equal(res.signature, createHmac("sha256", BINANCE_SECRET).update(signed).digest("hex"));
  });

  it("refuses a caller timestamp beyond the allowed skew (a pre-signed order), audited with the rule", async () => {
    const rule = await deniedRule(
      sign(
        request(
          "bn",
          { method: "POST", path: "/fapi/v1/order", query: "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01" },
          { timestampMs: String(Date.now() + 3_600_000) },
        ),
      ),
    );
    assert.equal(rule, "timestamp-skew");
    // Sign decisions are batched (flushed every 50 ms in tests).
    const e = await waitForAudit(svc.dir, { kind: "sign.request", outcome: "denied", reason: "POLICY_DENIED" });
    assert.equal(e.details?.rule, "timestamp-skew");
  });

  it("denies a withdrawal on every exchange by default, naming the class", async () => {
    for (const exchange of dialectExchanges()) {
      const w = WITHDRAWALS[exchange];
      assert.ok(w, `a withdrawal example for ${exchange}`);
      const keyId = `wd-${exchange}`;
      const dialect = dialectFor(exchange)!;
      // A KuCoin key carries its passphrase (as its HMAC) from the import; its requests carry none.
      const kucoin = exchange === "kucoinfutures";
      const secret = Buffer.from("c2VjcmV0LWZvci13aXRoZHJhd2FsLXRlc3RzLTEyMzQ1Njc4", dialect.secretEncoding === "base64" ? "base64" : "utf8");
      await importSecret(svc.custody, keyId, secret, { exchange, algorithm: dialect.algorithm, ...(kucoin ? { apiPassphrase: "wd-passphrase" } : {}) });
      assert.equal(await deniedRule(sign(request(keyId, w, kucoin ? { passphrase: "" } : {}))), "class:withdraw", exchange);
    }
  });

  it("logs a refusal with client, key, reason, rule, the request id the caller got and the request's SHA-256 — never the request", async () => {
    const w = WITHDRAWALS.binance!;
    let requestId = "";
    try {
      await sign(request("bn", w));
      assert.fail("a withdrawal must be refused");
    } catch (e) {
      const bin = (e as { metadata: { get(k: string): Buffer[] } }).metadata.get("grpc-status-details-bin")[0]!;
      requestId = ErrorInfo.decode(Status.decode(bin).details[0]!.value).metadata.requestId!;
    }
    assert.match(requestId, /^r[0-9a-z]+-[0-9a-z]+$/);
    const line = svc
      .logs()
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.requestId === requestId);
    assert.ok(line, "the refusal is logged under the caller's request id");
    const sent = `${w.method} ${w.path}?${w.query}\n`;
    assert.deepEqual(
      {
        event: line.event,
        level: line.level,
        outcome: line.outcome,
        reason: line.reason,
        rule: line.rule,
        key: line.key,
        client: line.client,
        payloadSha256: line.payloadSha256,
      },
      {
        event: "sign.request.denied",
        level: "info",
        outcome: "denied",
        reason: "POLICY_DENIED",
        rule: "class:withdraw",
        key: "bn",
        client: EMBEDDED_CLIENT,
        payloadSha256: createHash("sha256").update(sent).digest("hex"),
      },
    );
    assert.ok(!svc.logs().includes("TXYZ"), "the withdrawal address (request content) is not logged");
    for (const field of Object.keys(line)) assert.ok(field in LOG_FIELDS, `${field} is a documented log field`);
  });

  it("symbol allowlist and order size come from the key's policy (a quorum decision)", async () => {
    await importSecret(svc.custody, "bn-policy", Buffer.from(BINANCE_SECRET), { exchange: "binance", apiKeyId: BINANCE_API_KEY });
    await setPolicy("bn-policy", { symbols: ["BTCUSDT"], maxQuantity: { BTCUSDT: 1 } });
    const order = (symbol: string, quantity: string) =>
      request("bn-policy", { method: "POST", path: "/fapi/v1/order", query: `symbol=${symbol}&side=BUY&type=MARKET&quantity=${quantity}` });
    assert.equal((await sign(order("BTCUSDT", "0.5"))).endpointClass, "trade");
    assert.equal(await deniedRule(sign(order("ETHUSDT", "0.5"))), "symbols");
    assert.equal(await deniedRule(sign(order("BTCUSDT", "2"))), "max-quantity:BTCUSDT");
  });

  it("signs a KuCoin Futures order for a version-3 API key: the request's MAC in the HSM, the key's passphrase HMAC, the version in its header", async () => {
    const secret = "kucoin-v3-secret-0123456789abcdef";
    await importSecret(svc.custody, "kc", Buffer.from(secret), { exchange: "kucoinfutures", apiKeyId: "kc-key", apiPassphrase: "test-passphrase" });
    const body = '{"clientOid":"c1","side":"buy","symbol":"XBTUSDTM","type":"market","size":1}';
    const res = await sign(
      request("kc", { method: "POST", path: "/api/v1/orders", body }, { timestampMs: "1700000000000", apiKeyVersion: "3", passphrase: "" }),
    );
    const mac = (m: string) => createHmac("sha256", secret).update(m).digest("base64");
    assert.deepEqual(
      res.headers.map((h) => [h.name, h.value]),
      [
        ["KC-API-KEY", "kc-key"],
        ["KC-API-SIGN", mac(`1700000000000POST/api/v1/orders${body}`)],
        ["KC-API-TIMESTAMP", "1700000000000"],
        ["KC-API-PASSPHRASE", mac("test-passphrase")],
        ["KC-API-KEY-VERSION", "3"],
        ["Content-Type", "application/json"],
      ],
    );
    await expectDenied(
      sign(request("kc", { method: "POST", path: "/api/v1/orders", body }, { apiKeyVersion: "1", passphrase: "" })),
      status.INVALID_ARGUMENT,
      "INVALID_ARGUMENT",
    );
    // The passphrase is the key's: one sent with the request is refused, never HMACed.
    await expectDenied(
      sign(request("kc", { method: "POST", path: "/api/v1/orders", body }, { passphrase: "test-passphrase" })),
      status.INVALID_ARGUMENT,
      "INVALID_ARGUMENT",
    );
  });

  it("refuses raw Sign on a dialect key unless its policy allows raw signing", async () => {
    assert.equal(await deniedRule(rawSign("bn")), "raw-sign");
    await importSecret(svc.custody, "bn-raw", Buffer.from(BINANCE_SECRET), { exchange: "binance" });
    await setPolicy("bn-raw", { allowRawSign: true });
    const res = await rawSign("bn-raw");
    assert.equal(res.signatureText, createHmac("sha256", BINANCE_SECRET).update("anything").digest("hex"));
  });

  it("signs a Kraken Futures request without a Nonce only when asked and the key's policy allows untimed requests; refused and audited otherwise", async () => {
    const secret = Buffer.from("kraken futures untimed test secret: 64 bytes of key material!!!!");
    await importSecret(svc.custody, "kf-untimed", secret, { exchange: "krakenfutures", algorithm: "hmac-sha512", apiKeyId: "kf-key" });
    const order = (extra: Partial<ExchangeRequest> = {}) =>
      request(
        "kf-untimed",
        { method: "POST", path: "/derivatives/api/v3/sendorder", query: "orderType=lmt&symbol=PF_XBTUSD&side=buy&size=1&limitPrice=50000" },
        extra,
      );
    // Kraken's Authent (docs: "Generate authentication"): base64(HMAC-SHA512(secret, SHA-256(postData + Nonce + endpointPath))).
    const authent = (nonce: string) =>
      createHmac("sha512", secret)
        .update(createHash("sha256").update(`orderType=lmt&symbol=PF_XBTUSD&side=buy&size=1&limitPrice=50000${nonce}/api/v3/sendorder`).digest())
        .digest("base64");

    // By default custos adds its own increasing nonce.
    const timed = await sign(order());
    const nonce = timed.headers.find((h) => h.name === "Nonce")?.value ?? "";
    assert.match(nonce, /^\d{13,}$/);
    assert.equal(timed.signature, authent(nonce));

    // Without a nonce the signature never expires: the default policy refuses, with its rule, and audits it.
    assert.equal(await deniedRule(sign(order({ omitNonce: true }))), "untimed-request");
    const denied = await waitForAudit(svc.dir, { kind: "sign.request", outcome: "denied", key: "kf-untimed" });
    assert.equal(denied.details?.rule, "untimed-request");

    await setPolicy("kf-untimed", { allowUntimedRequests: true });
    const untimed = await sign(order({ omitNonce: true }));
    assert.deepEqual(
      untimed.headers.map((h) => h.name),
      ["APIKey", "Authent"],
      "no Nonce header",
    );
    assert.equal(untimed.signature, authent(""));
    assert.equal(untimed.timestamp, "");
    // The policy's other rules still apply, and omit_nonce does not combine with a nonce.
    assert.equal(await deniedRule(sign(request("kf-untimed", KRAKEN_WITHDRAWAL, { omitNonce: true }))), "class:withdraw");
    await expectDenied(sign(order({ omitNonce: true, nonce: String(Date.now()) })), status.INVALID_ARGUMENT, "INVALID_ARGUMENT");
    // Exchanges whose requests always carry a timestamp or nonce refuse it outright.
    await expectDenied(
      sign(request("bn", { method: "POST", path: "/fapi/v1/order", query: "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1" }, { omitNonce: true })),
      status.INVALID_ARGUMENT,
      "INVALID_ARGUMENT",
    );
  });

  it("signs a Bybit WebSocket auth message in the HSM with custos's expiry; refuses one for a key without a login", async () => {
    const secret = "bybit-ws-secret-0123456789abcdef0123456789";
    await importSecret(svc.custody, "by", Buffer.from(secret), { exchange: "bybit", apiKeyId: "by-key" });
    const before = Math.floor(Date.now() / 1000);
    const res = await unary(svc.signer, "signWebSocketAuth", {
      keyId: "by",
      version: 0,
      timestampMs: "0",
      nonce: "",
      expires: "0",
      challenge: "",
      channel: "",
      event: "",
      passphrase: "",
      wsMethod: "",
      wsParams: [],
    });
    const expires = Number(res.timestamp);
    assert.ok(expires >= before * 1000 && expires <= (Math.floor(Date.now() / 1000) + 60) * 1000, `expiry ${expires} in ms, from custos's clock`);
    assert.equal(res.signature, createHmac("sha256", secret).update(`GET/realtime${expires}`).digest("hex"));
    assert.deepEqual(JSON.parse(res.message), { op: "auth", args: ["by-key", expires, res.signature] });
    // With a symbol allowlist, a login (whose session custos never sees) is refused unless a rule allows it.
    await setPolicy("by", { symbols: ["BTCUSDT"] });
    const login = () =>
      unary(svc.signer, "signWebSocketAuth", {
        keyId: "by",
        version: 0,
        timestampMs: "0",
        nonce: "",
        expires: "0",
        challenge: "",
        channel: "",
        event: "",
        passphrase: "",
        wsMethod: "",
        wsParams: [],
      });
    assert.equal(await deniedRule(login()), "session-login");
    await setPolicy("by", { symbols: ["BTCUSDT"], rules: [{ id: "ws-login", effect: "allow", method: "WS", path: "auth" }] });
    assert.ok((await login()).signature);
    // Binance's WebSocket API logs in with Ed25519 keys only: no HMAC login to sign.
    await expectDenied(
      unary(svc.signer, "signWebSocketAuth", {
        keyId: "bn",
        version: 0,
        timestampMs: "0",
        nonce: "",
        expires: "0",
        challenge: "",
        channel: "",
        event: "",
        passphrase: "",
        wsMethod: "",
        wsParams: [],
      }),
      status.FAILED_PRECONDITION,
      "PRECONDITION_FAILED",
    );
    // KuCoin signs nothing on its private socket (the token comes from a signed REST call).
    await importSecret(svc.custody, "kc-ws", Buffer.from("kucoin-ws-secret-0123456789abcdef"), {
      exchange: "kucoinfutures",
      apiKeyId: "kc-key",
      apiPassphrase: "ws-passphrase",
    });
    await expectDenied(
      unary(svc.signer, "signWebSocketAuth", {
        keyId: "kc-ws",
        version: 0,
        timestampMs: "0",
        nonce: "",
        expires: "0",
        challenge: "",
        channel: "",
        event: "",
        passphrase: "",
        wsMethod: "",
        wsParams: [],
      }),
      status.FAILED_PRECONDITION,
      "NO_DIALECT",
    );
  });

  it("signs Binance WebSocket API requests in the HSM (the documented order.place), through the key's policy", async () => {
    const ws = (keyId: string, wsMethod: string, wsParams: Array<[string, string]>, extra: Record<string, string> = {}) =>
      unary(svc.signer, "signWebSocketAuth", {
        keyId,
        version: 0,
        timestampMs: "0",
        nonce: "",
        expires: "0",
        challenge: "",
        channel: "",
        event: "",
        passphrase: "",
        wsMethod,
        wsParams: wsParams.map(([name, value]) => ({ name, value })),
        ...extra,
      });
    const docParams: Array<[string, string]> = [
      ["symbol", "BTCUSDT"],
      ["side", "SELL"],
      ["type", "LIMIT"],
      ["timeInForce", "GTC"],
      ["quantity", "0.01000000"],
      ["price", "52000.00"],
      ["newOrderRespType", "ACK"],
      ["recvWindow", "100"],
    ];
    const placed = await ws("bn", "order.place", docParams, { timestampMs: "1645423376532" });
    assert.equal(placed.signature, "cc15477742bd704c29492d96c7ead9414dfd8e0ec4a00f947bb5bb454ddbd08a");
    assert.equal((JSON.parse(placed.message) as { params: { signature: string } }).params.signature, placed.signature);
    const audited = await waitForAudit(svc.dir, { kind: "sign.ws_auth", outcome: "allowed", key: "bn" });
    assert.deepEqual([audited.details?.method, audited.details?.path, audited.details?.class], ["WS", "order.place", "trade"]);

    // The same rules as REST: classes, symbols, sizes, skew, and path rules naming WS methods.
    await importSecret(svc.custody, "bn-ws-policy", Buffer.from(BINANCE_SECRET), { exchange: "binance", apiKeyId: BINANCE_API_KEY });
    await setPolicy("bn-ws-policy", {
      symbols: ["BTCUSDT"],
      maxQuantity: { BTCUSDT: 1 },
      rules: [{ id: "no-cancel-all", effect: "deny", method: "WS", path: "openOrders.cancelAll" }],
    });
    assert.ok((await ws("bn-ws-policy", "account.status", [])).signature);
    assert.equal(
      await deniedRule(
        ws("bn-ws-policy", "order.place", [
          ["symbol", "ETHUSDT"],
          ["quantity", "0.1"],
        ]),
      ),
      "symbols",
    );
    assert.equal(
      await deniedRule(
        ws("bn-ws-policy", "order.place", [
          ["symbol", "BTCUSDT"],
          ["quantity", "5"],
        ]),
      ),
      "max-quantity:BTCUSDT",
    );
    assert.equal(await deniedRule(ws("bn-ws-policy", "openOrders.cancelAll", [["symbol", "BTCUSDT"]])), "rule:no-cancel-all");
    assert.equal(await deniedRule(ws("bn-ws-policy", "some.new.method", [])), "class:unknown");
    assert.equal(
      await deniedRule(
        ws("bn-ws-policy", "order.place", [
          ["symbol", "BTCUSDT"],
          ["quantity", "0.1"],
          ["recvWindow", "60000"],
        ]),
      ),
      "recv-window",
    );
    assert.equal(
      await deniedRule(
        ws(
          "bn-ws-policy",
          "order.place",
          [
            ["symbol", "BTCUSDT"],
            ["quantity", "0.1"],
          ],
          { timestampMs: String(Date.now() + 3_600_000) },
        ),
      ),
      "timestamp-skew",
    );
    // A login would open a session on which these limits could not hold: refused, audited with its rule.
    assert.equal(
      await deniedRule(
        unary(svc.signer, "signWebSocketAuth", {
          keyId: "bn-ws-policy",
          version: 0,
          timestampMs: "0",
          nonce: "",
          expires: "0",
          challenge: "",
          channel: "",
          event: "",
          passphrase: "",
          wsMethod: "session.logon",
          wsParams: [],
        }),
      ),
      "session-login",
    );
    // An HMAC key has no session.logon (Ed25519 keys only).
    await expectDenied(ws("bn", "session.logon", []), status.FAILED_PRECONDITION, "PRECONDITION_FAILED");
  });

  it("answers NO_DIALECT for an exchange request on a key without a dialect", async () => {
    await importSecret(svc.custody, "plain", Buffer.from("0123456789abcdef0123456789abcdef"));
    await expectDenied(sign(request("plain", { method: "GET", path: "/x" })), status.FAILED_PRECONDITION, "NO_DIALECT");
  });

  it("signs exchange requests inside a SignStream, denials keep the stream open", async () => {
    const stream = svc.signer.signStream();
    const answers = new Map<string, { $case: string; rule?: string | undefined; signature?: string | undefined }>();
    const done = new Promise<void>((resolve, reject) => {
      stream.on("data", (m: { requestId: string; result?: { $case: string; exchangeResponse?: { signature: string }; denial?: { rule: string } } }) => {
        answers.set(m.requestId, { $case: m.result!.$case, rule: m.result!.denial?.rule, signature: m.result!.exchangeResponse?.signature });
        if (answers.size === 2) stream.end();
      });
      stream.on("end", resolve);
      stream.on("error", reject);
    });
    stream.write({
      requestId: "1",
      kind: {
        $case: "exchangeRequest",
        exchangeRequest: request("bn", { method: "POST", path: "/api/v3/order", query: BINANCE_QUERY }, { timestampMs: "1499827319559", recvWindowMs: 5000 }),
      },
    });
    stream.write({ requestId: "2", kind: { $case: "exchangeRequest", exchangeRequest: request("bn", WITHDRAWALS.binance!) } });
    await done;
    assert.deepEqual(answers.get("1"), { $case: "exchangeResponse", rule: undefined, signature: BINANCE_SIGNATURE });
    assert.deepEqual(answers.get("2"), { $case: "denial", rule: "class:withdraw", signature: undefined });
  });
});
