import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { cliOk, importSecret, proposeAndApprove, runCli, startInProcess, type InProcessService } from "../helpers/harness.js";

/**
 * `custos sign-request` and `custos sign-ws-auth` as scripts use them: the embedded data dir's
 * trading-client certificate, one JSON object on stdout, refusals on stderr with exit code 1.
 * Expected signatures come from the exchanges' documented examples or node:crypto.
 */

// Binance's documented key pair (REST "SIGNED endpoint examples" and WebSocket API "order.place").
const BINANCE_API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
const BINANCE_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
const BYBIT_SECRET = "bybit-cli-secret-0123456789abcdef0123456789";
const KRAKEN_SECRET = Buffer.from("kraken futures cli test secret: 64 bytes of key material here!!");

describe("signing CLI: sign-request and sign-ws-auth", () => {
  let svc: InProcessService;
  const cli = async (args: string[]) => JSON.parse(cliOk(await runCli([...args, "--data-dir", svc.dir]), args[0]!)) as Record<string, unknown>;

  before(async () => {
    svc = await startInProcess();
    await importSecret(svc.custody, "bn", Buffer.from(BINANCE_SECRET), { exchange: "binance", apiKeyId: BINANCE_API_KEY });
    await importSecret(svc.custody, "by", Buffer.from(BYBIT_SECRET), { exchange: "bybit", apiKeyId: "by-key" });
    await importSecret(svc.custody, "kf", KRAKEN_SECRET, { exchange: "krakenfutures", algorithm: "hmac-sha512", apiKeyId: "kf-key" });
  });
  after(async () => svc?.stop());

  it("sign-ws-auth signs Binance's documented WebSocket API order.place from --param pairs", async () => {
    const out = await cli([
      "sign-ws-auth",
      "--key",
      "bn",
      "--ws-method",
      "order.place",
      "--timestamp",
      "1645423376532",
      ...[
        "symbol=BTCUSDT",
        "side=SELL",
        "type=LIMIT",
        "timeInForce=GTC",
        "quantity=0.01000000",
        "price=52000.00",
        "newOrderRespType=ACK",
        "recvWindow=100",
      ].flatMap((p) => ["--param", p]),
    ]);
    assert.equal(out.signature, "cc15477742bd704c29492d96c7ead9414dfd8e0ec4a00f947bb5bb454ddbd08a");
    const message = JSON.parse(String(out.message)) as { method: string; params: Record<string, unknown> };
    assert.equal(message.method, "order.place");
    assert.equal(message.params.apiKey, BINANCE_API_KEY);
    assert.equal(message.params.signature, out.signature);
    assert.equal(out.timestamp, "1645423376532");
  });

  it("sign-ws-auth builds Bybit's auth with custos's expiry; the signature is HMAC-SHA256(\"GET/realtime\" + expires)", async () => {
    const out = await cli(["sign-ws-auth", "--key", "by"]);
    const expires = String(out.timestamp);
    assert.match(expires, /^\d{13}$/);
    assert.ok(Number(expires) > Date.now(), "an expiry in the future");
    assert.equal(out.signature, createHmac("sha256", BYBIT_SECRET).update(`GET/realtime${expires}`).digest("hex"));
    assert.deepEqual(JSON.parse(String(out.message)), { op: "auth", args: ["by-key", Number(expires), out.signature] });
  });

  it("sign-ws-auth refuses --param without --ws-method before it connects", async () => {
    const r = await runCli(["sign-ws-auth", "--key", "bn", "--param", "symbol=BTCUSDT", "--data-dir", svc.dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--param needs --ws-method/);
  });

  it("sign-request --omit-nonce: refused by the default policy; with allowUntimedRequests, Kraken Futures' Authent without a Nonce", async () => {
    const args = [
      "sign-request",
      "--key",
      "kf",
      "--method",
      "POST",
      "--path",
      "/derivatives/api/v3/sendorder",
      "--query",
      "orderType=mkt&symbol=PF_XBTUSD&side=buy&size=1",
      "--omit-nonce",
    ];
    const refused = await runCli([...args, "--data-dir", svc.dir]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /PERMISSION_DENIED \(POLICY_DENIED\).*allowUntimedRequests/);
    assert.equal(refused.stdout, "");

    const p = await proposeAndApprove(svc.custody, {
      kind: { $case: "setPolicy", setPolicy: { keyId: "kf", policyJson: JSON.stringify({ allowUntimedRequests: true }) } },
      ttlSeconds: 0,
    });
    assert.equal(p.state, "executed", p.failure);
    const out = await cli(args);
    const digest = createHash("sha256").update("orderType=mkt&symbol=PF_XBTUSD&side=buy&size=1/api/v3/sendorder").digest();
    assert.deepEqual(out.headers, { APIKey: "kf-key", Authent: createHmac("sha512", KRAKEN_SECRET).update(digest).digest("base64") });
  });
});
