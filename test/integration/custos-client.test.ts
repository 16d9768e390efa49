import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { CustosClient, StreamDenial } from "../../src/client/custos-client.js";
import { importSecret, startInProcess, type InProcessService } from "../helpers/harness.js";

const SECRET = "client-test-secret-0123456789abcdef0123456789abcdef";

describe("the TypeScript client", () => {
  let svc: InProcessService;
  let client: CustosClient;

  before(async () => {
    svc = await startInProcess();
    await importSecret(svc.custody, "bn", Buffer.from(SECRET), { exchange: "binance", apiKeyId: "api-bn" });
    await importSecret(svc.custody, "raw", Buffer.from(SECRET));
    client = CustosClient.fromDataDir(svc.dir);
  });
  after(async () => {
    client?.close();
    await svc?.stop();
  });

  it("signs an exchange request from ordered pairs and returns headers to attach", async () => {
    const r = await client.signExchangeRequest({
      keyId: "bn",
      method: "POST",
      path: "/fapi/v1/order",
      query: [
        ["symbol", "BTCUSDT"],
        ["side", "BUY"],
        ["type", "MARKET"],
        ["quantity", "0.01"],
      ],
    });
    assert.equal(r.headers["X-MBX-APIKEY"], "api-bn");
    assert.ok(r.query.startsWith("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01&timestamp="));
    const signed = r.query.slice(0, r.query.lastIndexOf("&signature="));
    assert.equal(r.signature, createHmac("sha256", SECRET).update(signed).digest("hex"));
    assert.equal(r.endpointClass, "trade");
  });

  it("a stream session signs many requests concurrently, answers matched by id", async () => {
    const session = client.streamSession();
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        session.signExchangeRequest({
          keyId: "bn",
          method: "POST",
          path: "/fapi/v1/order",
          query: `symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.0${(i % 9) + 1}`,
        }),
      ),
    );
    results.forEach((r, i) => {
      assert.ok(r.query.includes(`quantity=0.0${(i % 9) + 1}&`), `answer ${i} belongs to request ${i}`);
      const signed = r.query.slice(0, r.query.lastIndexOf("&signature="));
      assert.equal(r.signature, createHmac("sha256", SECRET).update(signed).digest("hex"));
    });
    const raw = await session.sign("raw", Buffer.from("abc"));
    assert.deepEqual(Buffer.from(raw.signature), createHmac("sha256", SECRET).update("abc").digest());
  });

  it("a denial in the stream rejects that call with its reason and rule; the stream stays usable", async () => {
    const session = client.streamSession();
    await assert.rejects(
      session.signExchangeRequest({ keyId: "bn", method: "POST", path: "/sapi/v1/capital/withdraw/apply", query: "coin=BTC&address=x&amount=1" }),
      (e: unknown) => e instanceof StreamDenial && e.reason === "POLICY_DENIED" && e.rule === "class:withdraw",
    );
    assert.equal(
      (await session.signExchangeRequest({ keyId: "bn", method: "GET", path: "/fapi/v1/openOrders", query: "symbol=BTCUSDT" })).endpointClass,
      "read",
    );
  });

  it("a failed stream fails its pending calls, and the next session is a new stream", async () => {
    const session = client.streamSession();
    session.close(); // the server ends the stream in turn
    for (const deadline = Date.now() + 5_000; !session.broken && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
    assert.equal(session.broken, true);
    const next = client.streamSession();
    assert.notEqual(next, session);
    assert.equal((await next.signExchangeRequest({ keyId: "bn", method: "GET", path: "/fapi/v1/openOrders", query: "symbol=BTCUSDT" })).endpointClass, "read");
  });
});
