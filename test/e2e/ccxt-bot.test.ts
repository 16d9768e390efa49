import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { ConnectionFile } from "../../src/client/connection.js";
import { devOfficerClient, importSecret, REPO, spawnService, tempDir, type ChildService } from "../helpers/harness.js";
import { StandInBinance, StandInBybit } from "../helpers/stand-in-exchange.js";

/*
 * End to end: custos as its own process (SoftHSM2, mTLS), a ccxt bot as another process that has
 * no secret, and a local Binance USDⓈ-M stand-in that verifies signatures and timestamps as
 * Binance documents. The bot's orders reach the stand-in signed by custos; a tampered copy of
 * one is refused.
 */

const API_KEY = "botApiKey0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS";
const SECRET = "botSecret0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS";
const KEY_ID = "bn-bot";
const BYBIT_API_KEY = "botBybitKey0123456";
const BYBIT_SECRET = "botBybitSecret0123456789abcdefghijkl";
const BYBIT_KEY_ID = "bybit-bot";
const BOT = join(REPO, "dist/test/fixtures/ccxt-bot.js");

/** The bot's view of custos: connection.json and copies of the CA and client certificate, nothing else. */
function botConnectionDir(conn: ConnectionFile): string {
  const dir = tempDir("custos-bot-");
  mkdirSync(join(dir, "tls"));
  const copy = (from: string, name: string) => {
    const to = join(dir, "tls", name);
    copyFileSync(from, to);
    return to;
  };
  const mine: ConnectionFile = {
    grpc: conn.grpc,
    http: conn.http,
    serverName: conn.serverName,
    caPath: copy(conn.caPath, "ca.crt"),
    wrappingKeyFingerprint: conn.wrappingKeyFingerprint,
    client: { certPath: copy(conn.client!.certPath, "client.crt"), keyPath: copy(conn.client!.keyPath, "client.key") },
  };
  writeFileSync(join(dir, "connection.json"), JSON.stringify(mine));
  return dir;
}

function runBot(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; lines: Array<Record<string, unknown>>; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [BOT, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    proc.stdout.on("data", (d: Buffer) => (out += d.toString()));
    proc.stderr.on("data", (d: Buffer) => (err += d.toString()));
    proc.on("close", (code) =>
      resolve({
        code,
        lines: out
          .trim()
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, unknown>),
        stderr: err,
      }),
    );
  });
}

describe("a ccxt bot without its secret trades through custos", () => {
  let service: ChildService;
  let standIn: StandInBinance;
  let bybit: StandInBybit;
  let botDir: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    service = await spawnService();
    const custody = devOfficerClient(service.conn);
    try {
      await importSecret(custody, KEY_ID, Buffer.from(SECRET), { exchange: "binance", apiKeyId: API_KEY });
      await importSecret(custody, BYBIT_KEY_ID, Buffer.from(BYBIT_SECRET), { exchange: "bybit", apiKeyId: BYBIT_API_KEY });
    } finally {
      custody.close();
    }
    standIn = new StandInBinance(new Map([[API_KEY, SECRET]]));
    await standIn.start();
    bybit = new StandInBybit(new Map([[BYBIT_API_KEY, BYBIT_SECRET]]));
    await bybit.start();
    botDir = botConnectionDir(service.conn);
    // Nothing the bot gets holds a secret: environment (no HSM or custos settings either), files.
    env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("SOFTHSM") && !k.startsWith("CUSTOS")));
    assert.ok(!Object.values(env).some((v) => v?.includes(SECRET) || v?.includes(BYBIT_SECRET)));
    for (const f of readdirSync(botDir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile())) {
      const text = readFileSync(join(f.parentPath, f.name), "utf8");
      assert.ok(!text.includes(SECRET) && !text.includes(BYBIT_SECRET), f.name);
    }
  });
  after(async () => {
    await standIn?.stop();
    await bybit?.stop();
    await service?.stop();
    if (service) rmSync(service.dir, { recursive: true, force: true });
    if (botDir) rmSync(botDir, { recursive: true, force: true });
  });

  it("Binance USDⓈ-M: places orders the stand-in verifies, is refused a withdrawal, and a tampered order is rejected", { timeout: 120_000 }, async () => {
    const args = ["binanceusdm", botDir, KEY_ID, API_KEY, standIn.url];
    assert.ok(!args.some((a) => a.includes(SECRET)));
    const bot = await runBot(args, env);
    assert.equal(bot.code, 0, `${JSON.stringify(bot.lines)}\n${bot.stderr}`);
    const steps = bot.lines;
    assert.deepEqual(
      steps.map((s) => s.step),
      ["order", "order", "balance", "withdraw"],
    );
    assert.deepEqual(steps[0], { step: "order", id: "1000", status: "open", amount: 0.01, price: 30000 });
    assert.deepEqual(steps[1], { step: "order", id: "1001", status: "open", amount: 0.005 });
    assert.deepEqual(steps[2], { step: "balance", USDT: 1000 });
    assert.deepEqual(steps[3], { step: "withdraw", refused: true, code: "SIGNING_REFUSED", reason: "POLICY_DENIED", rule: "class:withdraw" });

    // The stand-in verified and accepted both orders and the balance read; no withdrawal reached it.
    assert.deepEqual(
      standIn.accepted.map((o) => [o.symbol, o.side, o.type, o.quantity, o.price]),
      [
        ["BTCUSDT", "BUY", "LIMIT", "0.01", "30000"],
        ["BTCUSDT", "SELL", "MARKET", "0.005", undefined],
      ],
    );
    assert.deepEqual(
      standIn.received.map((r) => [r.method, r.target.split("?")[0], r.outcome.status]),
      [
        ["POST", "/fapi/v1/order", 200],
        ["POST", "/fapi/v1/order", 200],
        ["GET", "/fapi/v3/account", 200],
      ],
    );
    const order = standIn.received[0]!;
    assert.equal(order.headers["x-mbx-apikey"], API_KEY);
    assert.match(order.body, /^timestamp=\d+&symbol=BTCUSDT&.*&signature=[0-9a-f]{64}$/);

    // The bot's signed order with another quantity: Binance's -1022.
    const tampered = await standIn.replay(order, { body: (b) => b.replace("quantity=0.01&", "quantity=0.02&") });
    assert.notEqual(standIn.received.at(-1)!.body, order.body);
    assert.deepEqual([tampered.status, tampered.json.code], [400, -1022]);
    // The same order untouched, ten minutes later: outside the recvWindow, -1021.
    standIn.clockOffsetMs = 10 * 60_000;
    const late = await standIn.replay(order);
    assert.deepEqual([late.status, late.json.code], [400, -1021]);
    standIn.clockOffsetMs = 0;
    // Signed for another API key's account: -2015.
    const otherKey = await standIn.replay({ ...order, headers: { ...order.headers, "x-mbx-apikey": "someoneElsesKey" } });
    assert.deepEqual([otherKey.status, otherKey.json.code], [401, -2015]);
    assert.equal(standIn.accepted.length, 2);
  });

  it("Bybit v5: the bot's order and balance read pass the stand-in's checks; a tampered order is refused", { timeout: 120_000 }, async () => {
    const args = ["bybit", botDir, BYBIT_KEY_ID, BYBIT_API_KEY, bybit.url];
    assert.ok(!args.some((a) => a.includes(BYBIT_SECRET)));
    const bot = await runBot(args, env);
    assert.equal(bot.code, 0, `${JSON.stringify(bot.lines)}\n${bot.stderr}`);
    assert.deepEqual(bot.lines, [
      { step: "order", id: "1000" },
      { step: "balance", USDT: 1000 },
      { step: "withdraw", refused: true, code: "SIGNING_REFUSED", reason: "POLICY_DENIED", rule: "class:withdraw" },
    ]);
    assert.deepEqual(
      bybit.accepted.map((o) => [o.symbol, o.side, o.type, o.quantity, o.price, o.clientOrderId]),
      [["BTCUSDT", "Buy", "Limit", "0.01", "30000", "bot-1"]],
    );
    assert.deepEqual(
      bybit.received.map((r) => [r.method, r.target.split("?")[0], r.outcome.code]),
      [
        ["POST", "/v5/order/create", undefined],
        ["GET", "/v5/account/wallet-balance", undefined],
      ],
    );
    const order = bybit.received[0]!;
    assert.equal(order.headers["x-bapi-api-key"], BYBIT_API_KEY);

    // Bybit answers refusals with HTTP 200 and a retCode: 10004 for a tampered body, 10002 when late.
    const tampered = await bybit.replay(order, { body: (b) => b.replace('"qty":"0.01"', '"qty":"0.02"') });
    assert.deepEqual([tampered.status, tampered.json.retCode], [200, 10004]);
    bybit.clockOffsetMs = 10 * 60_000;
    const late = await bybit.replay(order);
    assert.deepEqual([late.status, late.json.retCode], [200, 10002]);
    bybit.clockOffsetMs = 0;
    assert.equal(bybit.accepted.length, 1);
  });
});
