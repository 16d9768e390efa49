import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { Metadata, status } from "@grpc/grpc-js";
import ccxt from "ccxt";
import type { ExchangeRequest, ExchangeResponse } from "../../src/gen/custos/v1/signer.js";
import type { ExchangeSender } from "../../src/gateway/custos-sender.js";
import { startGateway, type GatewayListen, type RunningGateway } from "../../src/gateway/gateway.js";
import type { PublicUpstream } from "../../src/gateway/public-upstream.js";
import { createLogger } from "../../src/log.js";
import { tempDir } from "../helpers/harness.js";

/*
 * The gateway's HTTP side with custos faked (a recording sender) and the public upstream faked:
 * what custos is asked to sign for each exchange's request layout, how refusals are shaped for
 * ccxt (the real ccxt's error handling judges them), and who may talk to the gateway at all.
 */

class RecordingSender implements ExchangeSender {
  readonly sent: ExchangeRequest[] = [];
  failWith: { code: number; reason?: string; rule?: string } | undefined;

  async send(r: ExchangeRequest): Promise<ExchangeResponse> {
    this.sent.push(r);
    if (this.failWith) {
      const metadata = new Metadata();
      if (this.failWith.reason) metadata.set("custos-reason", this.failWith.reason);
      if (this.failWith.rule) metadata.set("custos-rule", this.failWith.rule);
      throw Object.assign(new Error("refused"), { code: this.failWith.code, details: "refused by the fake", metadata });
    }
    return {
      status: 201,
      headers: [
        { name: "content-type", value: "application/json" },
        { name: "x-mbx-used-weight-1m", value: "7" },
        { name: "transfer-encoding", value: "chunked" },
      ],
      body: Buffer.from('{"ok":true}'),
      keyVersion: 1,
      endpointClass: "trade",
      roundTripUs: "100",
    };
  }
}

const publicAsked: string[] = [];
const upstream: PublicUpstream = {
  async get(exchange, path, query) {
    publicAsked.push(`${exchange} ${path}?${query}`);
    return { status: 200, headers: [["content-type", "application/json"]], body: Buffer.from('{"public":true}') };
  },
};

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function call(
  gw: RunningGateway | GatewayListen,
  method: string,
  target: string,
  opts: { body?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const where = "url" in gw ? new URL(gw.url) : undefined;
  const socketPath = "socket" in gw ? gw.socket : undefined;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        ...(socketPath ? { socketPath } : { host: where!.hostname, port: where!.port }),
        method,
        path: target,
        headers: { ...(opts.body ? { "content-type": "application/x-www-form-urlencoded" } : {}), ...opts.headers },
      },
      (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on("error", reject);
    req.end(opts.body ?? "");
  });
}

describe("custos gateway (HTTP side, custos faked)", () => {
  const sender = new RecordingSender();
  let gw: RunningGateway;
  const started: RunningGateway[] = [];
  const start = async (listen: GatewayListen = { host: "127.0.0.1", port: 0 }) => {
    const g = await startGateway({ sender, publicUpstream: upstream, logger: createLogger("silent"), listen });
    started.push(g);
    return g;
  };
  after(async () => {
    for (const g of started) await g.close();
  });

  it("Binance: signature, timestamp and recvWindow are stripped from query and body; the window becomes recvWindowMs; the answer is the exchange's", async () => {
    gw = await start();
    sender.failWith = undefined;
    const a = await call(gw, "POST", "/binance/alpha/fapi/v1/order?timestamp=1&recvWindow=9000&x=1&signature=deadbeef", {
      body: "symbol=BTCUSDT&side=BUY&timestamp=1700000000000&signature=abcd",
      headers: { "X-MBX-APIKEY": "placeholder" },
    });
    assert.equal(a.status, 201);
    assert.equal(a.body, '{"ok":true}');
    assert.equal(a.headers["x-mbx-used-weight-1m"], "7");
    assert.equal(a.headers["transfer-encoding"], undefined, "hop-by-hop headers are the gateway's own");
    const r = sender.sent.at(-1)!;
    assert.deepEqual(
      { keyId: r.keyId, method: r.method, path: r.path, query: r.query, body: r.body.toString(), recvWindowMs: r.recvWindowMs, timestampMs: r.timestampMs },
      { keyId: "alpha", method: "POST", path: "/fapi/v1/order", query: "x=1", body: "symbol=BTCUSDT&side=BUY", recvWindowMs: 9000, timestampMs: "0" },
    );
  });

  it("Bybit: the X-BAPI headers are dropped, X-BAPI-RECV-WINDOW becomes recvWindowMs; OKX: the passphrase header travels as passphrase", async () => {
    await call(gw, "POST", "/bybit/beta/v5/order/create", {
      body: '{"category":"linear"}',
      headers: { "X-BAPI-API-KEY": "k", "X-BAPI-SIGN": "s", "X-BAPI-TIMESTAMP": "1", "X-BAPI-RECV-WINDOW": "7000" },
    });
    const b = sender.sent.at(-1)!;
    assert.deepEqual([b.keyId, b.path, b.body.toString(), b.recvWindowMs, b.passphrase], ["beta", "/v5/order/create", '{"category":"linear"}', 7000, ""]);
    await call(gw, "GET", "/okx/gamma/api/v5/account/balance?ccy=USDT", { headers: { "OK-ACCESS-KEY": "k", "OK-ACCESS-PASSPHRASE": "pass-1" } });
    const o = sender.sent.at(-1)!;
    assert.deepEqual([o.keyId, o.method, o.path, o.query, o.passphrase], ["gamma", "GET", "/api/v5/account/balance", "ccy=USDT", "pass-1"]);
  });

  it("Bitget: the ACCESS-* headers are dropped and the passphrase header travels as passphrase", async () => {
    await call(gw, "POST", "/bitget/delta/api/v2/mix/order/place-order", {
      body: '{"symbol":"BTCUSDT"}',
      headers: { "ACCESS-KEY": "k", "ACCESS-SIGN": "s", "ACCESS-TIMESTAMP": "1", "ACCESS-PASSPHRASE": "pass-2" },
    });
    const g = sender.sent.at(-1)!;
    assert.deepEqual(
      [g.keyId, g.method, g.path, g.body.toString(), g.passphrase],
      ["delta", "POST", "/api/v2/mix/order/place-order", '{"symbol":"BTCUSDT"}', "pass-2"],
    );
  });

  it("an unsigned request to a private endpoint goes to custos; an unsigned GET the dialect does not classify is public data, fetched without custos", async () => {
    const before = sender.sent.length;
    await call(gw, "GET", "/binance/alpha/fapi/v2/balance");
    assert.equal(sender.sent.length, before + 1, "a private endpoint is signed even when the bot sent no credential");
    const pub = await call(gw, "GET", "/binance/alpha/fapi/v1/exchangeInfo?x=1");
    assert.equal(pub.body, '{"public":true}');
    assert.equal(sender.sent.length, before + 1, "public data is not signed");
    assert.deepEqual(publicAsked.at(-1), "binance /fapi/v1/exchangeInfo?x=1");
    await call(gw, "GET", "/binance/alpha/fapi/v1/exchangeInfo", { headers: { "X-MBX-APIKEY": "k" } });
    assert.equal(sender.sent.length, before + 2, "a request carrying credentials always goes to custos");
  });

  const refusals: Array<[string, number, string | undefined, new (m: string) => Error, number]> = [
    ["binanceusdm", status.PERMISSION_DENIED, "POLICY_DENIED", ccxt.PermissionDenied, 403],
    ["binanceusdm", status.FAILED_PRECONDITION, "KEY_FROZEN", ccxt.PermissionDenied, 403],
    ["binanceusdm", status.NOT_FOUND, "KEY_NOT_FOUND", ccxt.PermissionDenied, 403],
    ["binanceusdm", status.INVALID_ARGUMENT, "INVALID_ARGUMENT", ccxt.BadRequest, 400],
    ["binanceusdm", status.UNAVAILABLE, "HSM_UNAVAILABLE", ccxt.ExchangeNotAvailable, 503],
    ["binanceusdm", status.RESOURCE_EXHAUSTED, "RATE_LIMITED", ccxt.DDoSProtection, 429],
    ["bybit", status.PERMISSION_DENIED, "NO_GRANT", ccxt.PermissionDenied, 403],
    ["bybit", status.INVALID_ARGUMENT, "INVALID_ARGUMENT", ccxt.BadRequest, 400],
    ["bybit", status.UNAVAILABLE, undefined, ccxt.ExchangeNotAvailable, 503],
    ["bybit", status.RESOURCE_EXHAUSTED, "RATE_LIMITED", ccxt.RateLimitExceeded, 429],
    ["okx", status.PERMISSION_DENIED, "POLICY_DENIED", ccxt.PermissionDenied, 403],
    ["okx", status.INVALID_ARGUMENT, "INVALID_ARGUMENT", ccxt.BadRequest, 400],
    ["okx", status.UNAVAILABLE, "HSM_UNAVAILABLE", ccxt.ExchangeNotAvailable, 503],
    ["bitget", status.PERMISSION_DENIED, "POLICY_DENIED", ccxt.PermissionDenied, 403],
    ["bitget", status.INVALID_ARGUMENT, "INVALID_ARGUMENT", ccxt.BadRequest, 400],
    ["bitget", status.UNAVAILABLE, "HSM_UNAVAILABLE", ccxt.ExchangeNotAvailable, 503],
  ];
  for (const [ccxtId, code, reason, errorClass, httpStatus] of refusals) {
    it(`${ccxtId}: custos ${status[code]}/${reason ?? "-"} → HTTP ${httpStatus}, which ccxt raises as ${errorClass.name}`, async () => {
      sender.failWith = { code, ...(reason ? { reason } : {}), rule: "class:withdraw" };
      const exchange = ccxtId === "binanceusdm" ? "binance" : ccxtId;
      const path = { binanceusdm: "/fapi/v1/order", bybit: "/v5/order/create", okx: "/api/v5/trade/order", bitget: "/api/v2/mix/order/place-order" }[ccxtId]!;
      const a = await call(gw, "POST", `/${exchange}/k${path}`, { body: "a=1" });
      sender.failWith = undefined;
      assert.equal(a.status, httpStatus);
      const ex = new (ccxt as unknown as Record<string, new (c: object) => InstanceType<typeof ccxt.Exchange>>)[ccxtId]!({});
      const url = `${gw.url}/${exchange}/k${path}`;
      let parsed: unknown;
      try {
        parsed = JSON.parse(a.body);
      } catch {
        parsed = undefined;
      }
      assert.throws(
        () => {
          ex.handleErrors(a.status, "", url, "POST", {}, a.body, parsed, {}, "a=1");
          ex.handleHttpStatusCode(a.status, "", url, "POST", a.body);
        },
        (e: unknown) => e instanceof errorClass,
      );
    });
  }

  it("refuses what could steer it from a web page: an Origin header, a Host that is not loopback; unknown routes and exchanges are 404", async () => {
    const before = sender.sent.length;
    assert.equal((await call(gw, "POST", "/binance/alpha/fapi/v1/order", { body: "a=1", headers: { Origin: "https://evil.example" } })).status, 403);
    assert.equal((await call(gw, "POST", "/binance/alpha/fapi/v1/order", { body: "a=1", headers: { Host: "rebound.example:7410" } })).status, 403);
    assert.deepEqual(await call(gw, "GET", "/healthz").then((h) => [h.status, h.body]), [200, "ok\n"]);
    assert.equal((await call(gw, "GET", "/kraken/alpha/0/private/Balance")).status, 404);
    assert.equal((await call(gw, "GET", "/binance")).status, 404);
    assert.equal((await call(gw, "GET", "http://evil.example/binance/alpha/fapi/v2/balance")).status, 404, "absolute-form targets are not routes");
    assert.equal((await call(gw, "PATCH", "/binance/alpha/fapi/v1/order")).status, 405);
    assert.equal(sender.sent.length, before, "nothing reached custos");
  });

  it("paths that could steer a request elsewhere are refused before custos or any exchange host is asked", async () => {
    const [sent, asked] = [sender.sent.length, publicAsked.length];
    for (const target of [
      "/binance/alpha//evil.example/fapi/v1/exchangeInfo",
      "/binance/alpha/fapi/v1/%2e%2e/%2e%2e/sapi/v1/capital/withdraw/apply",
      "/binance/alpha/fapi/v1/..%2fexchangeInfo",
      "/binance/alpha/fapi/v1/exchangeInfo@evil.example",
      "/binance/alpha/https://evil.example/fapi/v1/exchangeInfo",
    ]) {
      const a = await call(gw, "GET", target);
      assert.equal(a.status, 400, target);
      assert.equal((JSON.parse(a.body) as { code: number }).code, -1100, target);
    }
    assert.equal((await call(gw, "GET", "/binance/alpha/fapi/v1/exchangeInfo#frag")).status, 404, "a fragment is no route");
    assert.deepEqual([sender.sent.length, publicAsked.length], [sent, asked]);
  });

  it("listens on loopback or a unix socket (mode 0600); a public address only when configured explicitly", async () => {
    await assert.rejects(startGateway({ sender, publicUpstream: upstream, logger: createLogger("silent"), listen: { host: "0.0.0.0", port: 0 } }), /loopback/);
    const socket = join(tempDir("custos-gw-sock-"), "gateway.sock");
    const g = await start({ socket });
    assert.equal(g.url, `unix:${socket}`);
    assert.equal(statSync(socket).mode & 0o777, 0o600);
    const a = await call({ socket }, "GET", "/okx/gamma/api/v5/account/balance", { headers: { "OK-ACCESS-KEY": "k" } });
    assert.equal(a.status, 201);
  });
});
