import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CLI, REPO, tempDir } from "../helpers/harness.js";
import { WebSocket } from "ws";
import { startVenues, VENUE_ACCOUNTS, type Venues } from "../helpers/gateway-venues.js";
import { StandInPrivateStream } from "../helpers/stand-in-private-stream.js";

/*
 * A Python bot with no custos code in it (docs/examples/gateway-bot.py, Debian's python3 and
 * python3-requests) places and cancels an order on Binance USDⓈ-M through `custos gateway`, run
 * as the CLI runs it: the data dir's trading-client certificate, public data from configured hosts.
 */

const BOT = join(REPO, "docs/examples/gateway-bot.py");

function runBot(args: string[]): Promise<{ code: number; steps: Array<{ step: string; status: number; body: Record<string, unknown> }>; stderr: string }> {
  return new Promise((resolve) => {
    execFile("/usr/bin/python3", [BOT, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      const steps = stdout
        .trim()
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { step: string; status: number; body: Record<string, unknown> });
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, steps, stderr });
    });
  });
}

describe("a Python bot (requests) through `custos gateway`", () => {
  let venues: Venues;
  let bybitStream: StandInPrivateStream;
  let gateway: ChildProcess;
  let url = "";
  let stderr = "";
  const exited = () => new Promise<number | null>((r) => (gateway.exitCode !== null ? r(gateway.exitCode) : gateway.once("exit", (c) => r(c))));

  before(async () => {
    venues = await startVenues();
    const dir = tempDir("custos-gw-cli-");
    const hostsFile = join(dir, "public-hosts.json");
    writeFileSync(hostsFile, JSON.stringify(venues.hosts));
    const bybit = VENUE_ACCOUNTS.find((x) => x.exchange === "bybit")!;
    bybitStream = new StandInPrivateStream("bybit", new Map([[bybit.apiKey, bybit.secret]]));
    const streamFile = join(dir, "ws-hosts.json");
    writeFileSync(streamFile, JSON.stringify({ bybit: { "/v5/private": await bybitStream.start(venues.tls) } }));
    gateway = spawn(
      process.execPath,
      [
        CLI,
        "gateway",
        "--data-dir",
        venues.svc.dir,
        "--listen",
        "127.0.0.1:0",
        "--testnet",
        "--public-hosts",
        hostsFile,
        "--public-ca",
        venues.caFile,
        "--ws-hosts",
        streamFile,
      ],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, CUSTOS_LOG_LEVEL: "warn" } },
    );
    gateway.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const deadline = Date.now() + 30_000;
    while (!/listening on (http:\S+)/.test(stderr)) {
      if (gateway.exitCode !== null) assert.fail(`custos gateway exited ${gateway.exitCode}: ${stderr}`);
      if (Date.now() > deadline) assert.fail(`custos gateway did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    url = /listening on (http:\S+)/.exec(stderr)![1]!;
  });
  after(async () => {
    if (gateway && gateway.exitCode === null) {
      gateway.kill("SIGTERM");
      await exited();
    }
    await bybitStream?.stop();
    await venues?.stop();
  });

  it("places and cancels an order; the exchange verified custos's signature and the account's API key", async () => {
    const a = VENUE_ACCOUNTS.find((x) => x.exchange === "binance")!;
    const from = venues.binance.received.length;
    const run = await runBot([`${url}/binance/${a.keyId}`]);
    assert.equal(run.code, 0, run.stderr);
    const [placed, cancelled] = run.steps;
    assert.equal(placed?.status, 200);
    const accepted = venues.binance.accepted.at(-1)!;
    assert.equal(placed?.body.orderId, accepted.orderId);
    assert.deepEqual([accepted.symbol, accepted.side, accepted.quantity, accepted.price], ["BTCUSDT", "BUY", "0.010", "30000"]);
    assert.equal(cancelled?.status, 200);
    assert.equal(cancelled?.body.status, "CANCELED");
    assert.deepEqual(venues.binance.cancelled.at(-1), String(accepted.orderId));
    const received = venues.binance.received.slice(from);
    assert.equal(received.length, 2);
    assert.ok(received.every((r) => r.headers["x-mbx-apikey"] === a.apiKey && r.outcome.status === 200));
  });

  it("a withdrawal is refused with Binance's permission error (HTTP 403, code -1002) and never reaches the exchange", async () => {
    const a = VENUE_ACCOUNTS.find((x) => x.exchange === "binance")!;
    const from = venues.binance.received.length;
    const run = await runBot([`${url}/binance/${a.keyId}`, "withdraw"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.steps[0]?.status, 403);
    assert.equal(run.steps[0]?.body.code, -1002);
    assert.equal(venues.binance.received.length, from);
  });

  it("a Bybit private stream through the CLI (--ws-hosts, --public-ca): custos's login verified, the wallet pushed back", async () => {
    const a = VENUE_ACCOUNTS.find((x) => x.exchange === "bybit")!;
    const bot = new WebSocket(`${url.replace(/^http/, "ws")}/bybit/${a.keyId}/v5/private`);
    const frames: string[] = [];
    const wallet = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no wallet frame within 10 s: ${JSON.stringify(frames)}`)), 10_000);
      bot.on("message", (d) => {
        frames.push(String(d));
        if (String(d).includes('"topic":"wallet"')) {
          clearTimeout(timer);
          resolve(String(d));
        }
      });
      bot.on("error", reject);
    });
    await new Promise((resolve, reject) => bot.once("open", resolve).once("error", reject));
    bot.send(JSON.stringify({ op: "auth", args: [] }));
    bot.send(JSON.stringify({ op: "subscribe", args: ["wallet"] }));
    assert.equal(await wallet, bybitStream.pushed.at(-1));
    assert.deepEqual(bybitStream.logins, [{ apiKey: a.apiKey, verified: true }]);
    bot.close();
  });

  it("stops cleanly on SIGTERM", async () => {
    gateway.kill("SIGTERM");
    assert.equal(await exited(), 0);
  });
});
