import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CustosError } from "../../src/errors.js";
import { isStreamOrigin, privateStreamExchanges, privateStreamUrl } from "../../src/egress/websocket-destinations.js";
import { gatewayExchangeFor, gatewayStreamExchanges } from "../../src/gateway/exchanges/index.js";

const login = (exchange: string) => gatewayExchangeFor(exchange)!.websocket!;

describe("private WebSocket streams: the exchange's stream host from the table, never from the bot", () => {
  it("serves Bybit's, OKX's and Bitget's private streams, and the gateway reads logins for exactly those", () => {
    assert.deepEqual(privateStreamExchanges(), ["bitget", "bybit", "okx"]);
    assert.deepEqual(gatewayStreamExchanges().sort(), ["bitget", "bybit", "okx"]);
  });

  it("maps each listed stream path to the documented mainnet and testnet host", () => {
    assert.equal(privateStreamUrl("bybit", "mainnet", "/v5/private"), "wss://stream.bybit.com/v5/private");
    assert.equal(privateStreamUrl("bybit", "testnet", "/v5/private"), "wss://stream-testnet.bybit.com/v5/private");
    assert.equal(privateStreamUrl("okx", "mainnet", "/ws/v5/private"), "wss://ws.okx.com:8443/ws/v5/private");
    assert.equal(privateStreamUrl("okx", "mainnet", "/ws/v5/business"), "wss://ws.okx.com:8443/ws/v5/business");
    assert.equal(privateStreamUrl("okx", "testnet", "/ws/v5/private"), "wss://wspap.okx.com:8443/ws/v5/private");
    assert.equal(privateStreamUrl("bitget", "mainnet", "/v2/ws/private"), "wss://ws.bitget.com/v2/ws/private");
    assert.equal(privateStreamUrl("bitget", "testnet", "/v2/ws/private"), "wss://wspap.bitget.com/v2/ws/private");
  });

  it("matches paths exactly: public streams, order-entry sockets, suffixes and tricks are refused", () => {
    const refused = (exchange: string, path: string, code: string) =>
      assert.throws(
        () => privateStreamUrl(exchange, "mainnet", path),
        (e: unknown) => e instanceof CustosError && e.code === code,
        `${exchange} ${path}`,
      );
    for (const path of ["/v5/public/linear", "/v5/trade", "/v5/private/", "/v5/private/../x", "//evil.example/v5/private", "/V5/PRIVATE", ""]) {
      refused("bybit", path, "INVALID_ARGUMENT");
    }
    refused("okx", "/ws/v5/public", "INVALID_ARGUMENT");
    refused("binance", "/ws", "NO_DIALECT");
  });

  it("takes an override from the configuration for its path only, in both environments", () => {
    const overrides = { bybit: { "/v5/private": "wss://127.0.0.1:9443" } };
    assert.equal(privateStreamUrl("bybit", "mainnet", "/v5/private", overrides), "wss://127.0.0.1:9443/v5/private");
    assert.equal(privateStreamUrl("bybit", "testnet", "/v5/private", overrides), "wss://127.0.0.1:9443/v5/private");
    assert.equal(privateStreamUrl("okx", "mainnet", "/ws/v5/private", overrides), "wss://ws.okx.com:8443/ws/v5/private");
  });

  it("accepts only wss://host[:port] as an override origin", () => {
    assert.ok(isStreamOrigin("wss://stream.example:9443"));
    for (const bad of ["ws://stream.example", "wss://stream.example/path", "wss://user@stream.example", "https://stream.example", "wss://a?b"]) {
      assert.ok(!isStreamOrigin(bad), bad);
    }
  });
});

describe("private-stream logins as the gateway reads them", () => {
  it("Bybit: `op: auth` is the login, its req_id is kept, nothing else of the bot's frame is", () => {
    const bybit = login("bybit");
    assert.deepEqual(bybit.login(JSON.stringify({ op: "auth", args: ["k", 1, "sig"], req_id: "r1" })), { requestId: "r1" });
    assert.deepEqual(bybit.login(JSON.stringify({ op: "auth", args: [] })), {});
    for (const other of ['{"op":"subscribe","args":["wallet"]}', '{"op":"ping"}', "ping", "[1]", "not json"])
      assert.equal(bybit.login(other), undefined, other);
    const custos = JSON.stringify({ op: "auth", args: ["apiKey", 1700000000000, "ab".repeat(32)] });
    assert.deepEqual(JSON.parse(bybit.signedFrame({ requestId: "r1" }, custos)), {
      req_id: "r1",
      op: "auth",
      args: ["apiKey", 1700000000000, "ab".repeat(32)],
    });
    assert.equal(bybit.signedFrame({}, custos), custos);
  });

  it("Bybit: a refused login is answered as Bybit answers a failed auth (success false, op auth)", () => {
    const frame = JSON.parse(login("bybit").refusalFrame({ requestId: 7 }, { reason: "POLICY_DENIED", rule: "egress-only", message: "m" })) as Record<
      string,
      unknown
    >;
    assert.equal(frame.success, false);
    assert.equal(frame.op, "auth");
    assert.equal(frame.req_id, 7);
    assert.deepEqual(frame.request, { op: "auth", args: null });
    assert.match(String(frame.ret_msg), /POLICY_DENIED \(egress-only\)/);
  });

  it("OKX: `op: login` is the login; only the passphrase is kept; custos's message goes as is", () => {
    const okx = login("okx");
    const bot = { op: "login", args: [{ apiKey: "placeholder", passphrase: "Pass-1", timestamp: "1", sign: "x" }] };
    assert.deepEqual(okx.login(JSON.stringify(bot)), { passphrase: "Pass-1" });
    assert.deepEqual(okx.login(JSON.stringify({ op: "login", args: [] })), {});
    assert.equal(okx.login('{"op":"subscribe","args":[{"channel":"account"}]}'), undefined);
    assert.equal(okx.signedFrame({ passphrase: "Pass-1" }, '{"op":"login"}'), '{"op":"login"}');
  });

  it("OKX: a refused login is answered with OKX's login failure (event error, code 60009)", () => {
    const frame = JSON.parse(login("okx").refusalFrame({}, { reason: "KEY_NOT_FOUND", message: "m" })) as Record<string, unknown>;
    assert.equal(frame.event, "error");
    assert.equal(frame.code, "60009");
    assert.match(String(frame.msg), /KEY_NOT_FOUND/);
  });

  it("Bitget: `op: login` is the login, only the passphrase is kept; a refusal is Bitget's login failure (code 30005)", () => {
    const bitget = login("bitget");
    const bot = { op: "login", args: [{ apiKey: "placeholder", passphrase: "Pass-3", timestamp: "1", sign: "x" }] };
    assert.deepEqual(bitget.login(JSON.stringify(bot)), { passphrase: "Pass-3" });
    assert.equal(bitget.login('{"op":"subscribe","args":[{"channel":"account"}]}'), undefined);
    assert.equal(bitget.signedFrame({}, '{"op":"login"}'), '{"op":"login"}');
    const frame = JSON.parse(bitget.refusalFrame({}, { reason: "POLICY_DENIED", rule: "egress-only", message: "m" })) as Record<string, unknown>;
    assert.deepEqual([frame.event, frame.code], ["error", 30005]);
    assert.match(String(frame.msg), /POLICY_DENIED \(egress-only\)/);
  });

  it("Binance has no login to read: its user-data stream needs none", () => {
    assert.equal(gatewayExchangeFor("binance")!.websocket, undefined);
  });
});
