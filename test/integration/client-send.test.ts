import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import { CustosClient, NotSent, SendOutcomeUnknown } from "../../src/client/custos-client.js";
import { expectDenied, importSecret, proposeAndApprove, startInProcess, tempDir, type InProcessService } from "../helpers/harness.js";
import { StandInBinance, standInTls } from "../helpers/stand-in-exchange.js";

/**
 * CustosClient.sendExchangeRequest against the real service (SoftHSM2, gRPC over mTLS, SQLite)
 * and an HTTPS stand-in exchange that verifies every signature as Binance documents: custos
 * places the order and returns the exchange's answer, and the client sends an order at most
 * once — it skips a replica it cannot reach, and never tries another after the request may
 * have reached the exchange.
 */

// Binance's documented HMAC example key ("SIGNED Endpoint Examples for POST /api/v3/order").
const SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
const API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
const ORDER = { method: "POST" as const, path: "/fapi/v1/order", query: "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01" };

/** A loopback address nothing listens on. */
async function deadAddress(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `127.0.0.1:${port}`;
}

describe("CustosClient.sendExchangeRequest: custos places the order, at most once", () => {
  let svc: InProcessService;
  const binance = new StandInBinance(new Map([[API_KEY, SECRET]]));
  const clients: CustosClient[] = [];
  const client = (addresses: string[]) => {
    const c = new CustosClient(addresses, { caPath: svc.conn.caPath, ...svc.conn.client! }, svc.conn.serverName);
    clients.push(c);
    return c;
  };

  before(async () => {
    const tls = await standInTls();
    const caFile = join(tempDir("custos-client-send-ca-"), "exchange-ca.pem");
    writeFileSync(caFile, tls.caPem);
    const url = await binance.start({ tls });
    svc = await startInProcess((c) => {
      c.egress = { ...c.egress, hosts: { binance: { "/fapi/": url } }, trustedCaFile: caFile, responseTimeoutMs: 400 };
    });
    await importSecret(svc.custody, "bn", Buffer.from(SECRET), { exchange: "binance", apiKeyId: API_KEY });
    await importSecret(svc.custody, "bn-eo", Buffer.from(SECRET), { exchange: "binance", apiKeyId: API_KEY });
    const p = await proposeAndApprove(svc.custody, {
      kind: { $case: "setPolicy", setPolicy: { keyId: "bn-eo", policyJson: JSON.stringify({ egressOnly: true }) } },
      ttlSeconds: 0,
    });
    assert.equal(p.state, "executed", p.failure);
  });
  after(async () => {
    for (const c of clients) c.close();
    await svc?.stop();
    await binance.stop();
  });

  it("places an egressOnly key's order and returns the exchange's answer verbatim; the key signs nothing for the client", async () => {
    const c = client([svc.conn.grpc]);
    const before = binance.received.length;
    const reply = await c.sendExchangeRequest({ keyId: "bn-eo", ...ORDER });
    assert.equal(binance.received.length, before + 1);
    assert.deepEqual(binance.received.at(-1)!.outcome, { status: 200 });
    assert.equal(reply.status, 200);
    const body = JSON.parse(reply.body.toString("utf8")) as { orderId: number; symbol: string };
    assert.deepEqual([body.orderId, body.symbol], [binance.accepted.at(-1)!.orderId, "BTCUSDT"]);
    assert.equal(new Map(reply.headers).get("content-type"), "application/json");
    assert.deepEqual([reply.keyVersion, reply.endpointClass], [1, "trade"]);
    assert.ok(reply.roundTripUs > 0);
    await expectDenied(c.signExchangeRequest({ keyId: "bn-eo", ...ORDER }), status.PERMISSION_DENIED, "POLICY_DENIED");
  });

  it("passes custos's refusals through as they came: nothing was sent", async () => {
    const before = binance.received.length;
    // A path that would steer the request elsewhere: refused before anything is signed.
    const steered = { keyId: "bn", method: "POST" as const, path: "/fapi/../sapi/v1/capital/withdraw/apply", query: "coin=USDT&amount=1000" };
    await expectDenied(client([svc.conn.grpc]).sendExchangeRequest(steered), status.INVALID_ARGUMENT, "INVALID_ARGUMENT");
    assert.equal(binance.received.length, before);
  });

  it("returns the exchange's own refusal as an answer, not an error", async () => {
    const reply = await client([svc.conn.grpc]).sendExchangeRequest({ keyId: "bn", method: "GET", path: "/fapi/v2/positionRisk", query: "symbol=BTCUSDT" });
    assert.equal(reply.status, 404);
    assert.deepEqual(JSON.parse(reply.body.toString("utf8")), { code: -1000, msg: "Unknown endpoint." });
  });

  it("skips a replica it cannot reach and sends once through the next", async () => {
    const before = binance.received.length;
    const reply = await client([await deadAddress(), svc.conn.grpc]).sendExchangeRequest({ keyId: "bn", ...ORDER });
    assert.equal(reply.status, 200);
    assert.equal(binance.received.length, before + 1);
  });

  it("never sends again once the exchange may have the request, though another replica is listed", async () => {
    const before = binance.received.length;
    binance.fault = "hang";
    try {
      // The same live replica twice: a retry would reach the stand-in a second time.
      await assert.rejects(
        client([svc.conn.grpc, svc.conn.grpc]).sendExchangeRequest({ keyId: "bn", ...ORDER }),
        (e: unknown) => e instanceof SendOutcomeUnknown && e.code === status.UNAVAILABLE && e.reason === "EXCHANGE_UNAVAILABLE",
      );
    } finally {
      binance.fault = "none";
    }
    assert.equal(binance.received.length, before + 1);
  });

  it("answers NotSent, having sent nothing, when no replica can be reached", async () => {
    const before = binance.received.length;
    const addresses = [await deadAddress(), await deadAddress()];
    await assert.rejects(
      client(addresses).sendExchangeRequest({ keyId: "bn", ...ORDER }),
      (e: unknown) => e instanceof NotSent && e.code === status.UNAVAILABLE,
    );
    assert.equal(binance.received.length, before);
  });

  it("places an order inside a stream session", async () => {
    const before = binance.received.length;
    const reply = await client([svc.conn.grpc])
      .streamSession()
      .sendExchangeRequest({ keyId: "bn-eo", ...ORDER });
    assert.equal(reply.status, 200);
    assert.equal(binance.received.length, before + 1);
    assert.equal((JSON.parse(reply.body.toString("utf8")) as { orderId: number }).orderId, binance.accepted.at(-1)!.orderId);
  });
});
