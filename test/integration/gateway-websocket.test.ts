import assert from "node:assert/strict";
import { connect as netConnect } from "node:net";
import { PassThrough } from "node:stream";
import { after, before, describe, it } from "node:test";
import ccxt from "ccxt";
import { WebSocket } from "ws";
import { signerClient } from "../../src/client/connection.js";
import { destinationFor } from "../../src/egress/destinations.js";
import { privateStreamUrl, type StreamHostOverrides } from "../../src/egress/websocket-destinations.js";
import { grpcLoginSigner } from "../../src/gateway/custos-login-signer.js";
import { grpcSender } from "../../src/gateway/custos-sender.js";
import { startGateway, type RunningGateway } from "../../src/gateway/gateway.js";
import { httpPublicUpstream } from "../../src/gateway/public-upstream.js";
import { webSocketProxy } from "../../src/gateway/websocket-proxy.js";
import { dialectFor } from "../../src/exchanges/registry.js";
import { createLogger } from "../../src/log.js";
import type { SignerClient } from "../../src/gen/custos/v1/signer.js";
import { startVenues, VENUE_ACCOUNTS, type VenueAccount, type Venues } from "../helpers/gateway-venues.js";
import { importSecret, proposeAndApprove, waitForAudit } from "../helpers/harness.js";
import { StandInPrivateStream } from "../helpers/stand-in-private-stream.js";

/*
 * `custos gateway` proxying private WebSocket streams (Bybit v5, OKX v5): the bot's login — unsigned
 * or signed with a placeholder secret — is replaced by one custos signs (SignWebSocketAuth), sent
 * to TLS stand-ins that verify it exactly as each exchange documents; frames then pass both ways
 * verbatim. A refused login never reaches the exchange, and the bot cannot choose the host.
 */

const account = (e: VenueAccount["exchange"]) => VENUE_ACCOUNTS.find((a) => a.exchange === e)!;
const BYBIT = account("bybit");
const OKX = account("okx");
/** A Bitget account (the REST venues have none: the stream is all this test needs). */
const BITGET = {
  keyId: "gw-bitget",
  apiKey: "bg_0123456789abcdef0123456789abcdef",
  secret: "bitgetSecret0123456789abcdef0123456789abcdef012345",
  passphrase: "Bitget-Pass-1",
};
const DEADLINE_MS = 10_000;

/** A bot-side socket that records what it receives and how it closed. */
interface BotSocket {
  ws: WebSocket;
  frames: string[];
  closed: Promise<{ code: number; reason: string }>;
  /** Resolves with the first received frame (from `from` on) that satisfies `match`, within the deadline. */
  next(match: (frame: string) => boolean, from?: number): Promise<string>;
}

function openBot(url: string): Promise<BotSocket> {
  const ws = new WebSocket(url);
  const frames: string[] = [];
  const waiters: Array<() => void> = [];
  ws.on("message", (d) => {
    frames.push((d as Buffer).toString("utf8"));
    for (const w of waiters.splice(0)) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
  const next = (match: (frame: string) => boolean, from = 0) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching frame within ${DEADLINE_MS} ms; got ${JSON.stringify(frames)}`)), DEADLINE_MS);
      const look = () => {
        const hit = frames.slice(from).find(match);
        if (hit !== undefined) {
          clearTimeout(timer);
          resolve(hit);
        } else waiters.push(look);
      };
      look();
    });
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve({ ws, frames, closed, next }));
    ws.once("error", reject);
  });
}

/** Races a close against the deadline. */
async function closedWithin<T>(p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not closed within ${DEADLINE_MS} ms`)), DEADLINE_MS);
  });
  try {
    return await Promise.race([p, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** A raw HTTP upgrade request (any target and headers); resolves to the status line's code. */
function rawUpgrade(port: number, target: string, host = `127.0.0.1:${port}`, extra = ""): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, "127.0.0.1", () => {
      socket.write(
        `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
      );
    });
    let text = "";
    socket.setTimeout(DEADLINE_MS, () => socket.destroy(new Error("no answer")));
    socket.on("data", (d) => {
      text += d.toString();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (m) {
        resolve(Number(m[1]));
        socket.destroy();
      }
    });
    socket.on("error", reject);
  });
}

describe("custos gateway: private WebSocket streams (Bybit v5, OKX v5)", () => {
  let venues: Venues;
  let gateway: RunningGateway;
  let port: number;
  let bybitStream: StandInPrivateStream;
  let okxStream: StandInPrivateStream;
  let bitgetStream: StandInPrivateStream;
  let streamHosts: StreamHostOverrides;
  let logs = "";
  const closers: Array<() => void | Promise<void>> = [];

  const startWith = async (signer: SignerClient, logger = createLogger("silent"), proxy: { trustStandIns?: boolean; loginTimeoutMs?: number } = {}) => {
    const upstream = httpPublicUpstream({ originFor: (e, p) => destinationFor(e, "testnet", p, venues.hosts).origin, ca: venues.caPem });
    closers.push(() => upstream.close());
    return startGateway({
      sender: grpcSender(signer),
      publicUpstream: upstream,
      logger,
      listen: { host: "127.0.0.1", port: 0 },
      websocket: webSocketProxy({
        signer: grpcLoginSigner(signer),
        upstreamUrlFor: (e, p) => privateStreamUrl(e, "testnet", p, streamHosts),
        ...(proxy.trustStandIns === false ? {} : { ca: venues.caPem }),
        ...(proxy.loginTimeoutMs ? { loginTimeoutMs: proxy.loginTimeoutMs } : {}),
        logger,
      }),
    });
  };

  before(async () => {
    venues = await startVenues();
    bybitStream = new StandInPrivateStream("bybit", new Map([[BYBIT.apiKey, BYBIT.secret]]));
    okxStream = new StandInPrivateStream("okx", new Map([[OKX.apiKey, OKX.secret]]), new Map([[OKX.apiKey, OKX.passphrase!]]));
    bitgetStream = new StandInPrivateStream("bitget", new Map([[BITGET.apiKey, BITGET.secret]]), new Map([[BITGET.apiKey, BITGET.passphrase]]));
    const [bb, ok, bg] = await Promise.all([bybitStream.start(venues.tls), okxStream.start(venues.tls), bitgetStream.start(venues.tls)]);
    streamHosts = { bybit: { "/v5/private": bb }, okx: { "/ws/v5/private": ok, "/ws/v5/business": ok }, bitget: { "/v2/ws/private": bg } };
    const sink = new PassThrough();
    sink.on("data", (d: Buffer) => (logs += d.toString()));
    gateway = await startWith(venues.svc.signer, createLogger("info", sink));
    port = Number(new URL(gateway.url).port);
    // The same Bybit account under a second custos key, to be marked egressOnly.
    await importSecret(venues.svc.custody, "gw-bybit-eo", Buffer.from(BYBIT.secret, "utf8"), {
      exchange: "bybit",
      algorithm: dialectFor("bybit")!.algorithm,
      apiKeyId: BYBIT.apiKey,
    });
    await importSecret(venues.svc.custody, BITGET.keyId, Buffer.from(BITGET.secret, "utf8"), {
      exchange: "bitget",
      algorithm: dialectFor("bitget")!.algorithm,
      apiKeyId: BITGET.apiKey,
    });
  });
  after(async () => {
    await gateway?.close();
    for (const close of closers) await close();
    await Promise.all([bybitStream?.stop(), okxStream?.stop(), bitgetStream?.stop()]);
    await venues?.stop();
  });

  const wsUrl = (route: string) => `ws://127.0.0.1:${port}${route}`;

  it("bybit: a placeholder-signed auth is replaced by custos's, the stand-in verifies it, and the wallet stream flows back verbatim", async () => {
    const from = bybitStream.connections.length;
    const bot = await openBot(wsUrl("/bybit/gw-bybit/v5/private"));
    const placeholder = { op: "auth", args: ["placeholder-api-key", Date.now() + 10_000, "0".repeat(64)], req_id: "login-1" };
    bot.ws.send(JSON.stringify(placeholder));
    const answer = JSON.parse(await bot.next((f) => f.includes('"op":"auth"'))) as Record<string, unknown>;
    assert.equal(answer.success, true, JSON.stringify(answer));
    assert.equal(answer.req_id, "login-1", "the bot's request id is kept");
    assert.deepEqual(bybitStream.logins.at(-1), { apiKey: BYBIT.apiKey, verified: true });

    bot.ws.send(JSON.stringify({ op: "subscribe", args: ["wallet"], req_id: "sub-1" }));
    const wallet = await bot.next((f) => f.includes('"topic":"wallet"'));
    assert.equal(wallet, bybitStream.pushed.at(-1), "the exchange's frame reaches the bot byte for byte");

    const conn = bybitStream.connections[from]!;
    assert.equal(conn.target, "/v5/private");
    assert.equal(conn.frames.length, 2, "the login and the subscription, nothing else");
    assert.deepEqual(JSON.parse(conn.frames[1]!), { op: "subscribe", args: ["wallet"], req_id: "sub-1" }, "later frames pass unchanged");
    assert.ok(!conn.frames[0]!.includes("placeholder") && !conn.frames[0]!.includes("0".repeat(64)), "nothing of the bot's login reached the exchange");
    bot.ws.close();
  });

  it("bybit: frames sent right after the login are held and delivered after custos's login, in order", async () => {
    const from = bybitStream.connections.length;
    const bot = await openBot(wsUrl("/bybit/gw-bybit/v5/private"));
    bot.ws.send(JSON.stringify({ op: "auth", args: [] }));
    bot.ws.send(JSON.stringify({ op: "subscribe", args: ["wallet"], req_id: "early" }));
    await bot.next((f) => f.includes('"topic":"wallet"'));
    const frames = bybitStream.connections[from]!.frames.map((f) => (JSON.parse(f) as { op: string }).op);
    assert.deepEqual(frames, ["auth", "subscribe"]);
    bot.ws.close();
  });

  it("okx: the real ccxt (ccxt.pro) watchBalance through the gateway, with a placeholder secret", async () => {
    const ex = new ccxt.pro.okx({ apiKey: "placeholder-api-key", secret: "not-the-secret", password: OKX.passphrase!, enableRateLimit: false });
    const api = ex.urls.api as Record<string, unknown>;
    api.rest = `${gateway.url}/okx/${OKX.keyId}`;
    api.ws = wsUrl(`/okx/${OKX.keyId}/ws/v5`);
    // ccxt (JS, node) opens ws:// URLs only with an HTTP agent loaded first.
    await ex.loadHttpProxyAgent();
    const logins = okxStream.logins.length;
    try {
      const balance = (await ex.watchBalance()) as unknown as Record<string, { total: number; free: number }>;
      assert.deepEqual({ total: balance.USDT?.total, free: balance.USDT?.free }, { total: 1000, free: 750 }, "the balance the stand-in pushed, parsed by ccxt");
    } finally {
      await ex.close();
    }
    assert.deepEqual(okxStream.logins.slice(logins), [{ apiKey: OKX.apiKey, verified: true }], "one login, signed by custos, verified by the exchange");
    const sent = okxStream.connections.at(-1)!.frames.join("\n");
    assert.ok(!sent.includes("placeholder-api-key"), "the bot's API key never reached the exchange");
  });

  it("bybit: the real ccxt (ccxt.pro) watchBalance through the gateway, REST and stream, with a placeholder secret", async () => {
    const ex = new ccxt.pro.bybit({ apiKey: "placeholder-api-key", secret: "not-the-secret", enableRateLimit: false });
    const rest = `${gateway.url}/bybit/${BYBIT.keyId}`;
    const walk = (o: Record<string, unknown>) => {
      for (const [k, v] of Object.entries(o)) {
        if (typeof v === "string") o[k] = v.replace(/^https?:\/\/[^/]+/, rest);
        else if (v && typeof v === "object") walk(v as Record<string, unknown>);
      }
    };
    const api = ex.urls.api as Record<string, unknown> & { ws: { private: Record<string, unknown> } };
    walk(api);
    const stream = wsUrl(`/bybit/${BYBIT.keyId}/v5/private`);
    api.ws.private = { ...api.ws.private, contract: stream, spot: { unified: stream } };
    await ex.loadHttpProxyAgent();
    const logins = bybitStream.logins.length;
    try {
      const balance = (await ex.watchBalance()) as unknown as Record<string, { total: number }>;
      assert.equal(balance.USDT?.total, 1000, "the wallet the stand-in pushed, parsed by ccxt");
    } finally {
      await ex.close();
    }
    assert.deepEqual(bybitStream.logins.slice(logins), [{ apiKey: BYBIT.apiKey, verified: true }]);
  });

  it("bitget: the bot's login (its passphrase kept, nothing else) is replaced by custos's, verified, and the account stream flows back", async () => {
    const from = bitgetStream.connections.length;
    const bot = await openBot(wsUrl(`/bitget/${BITGET.keyId}/v2/ws/private`));
    bot.ws.send(JSON.stringify({ op: "login", args: [{ apiKey: "placeholder", passphrase: BITGET.passphrase, timestamp: "1", sign: "placeholder-sign" }] }));
    const answer = JSON.parse(await bot.next((f) => f.includes('"event":"login"') || f.includes('"event":"error"'))) as Record<string, unknown>;
    assert.deepEqual([answer.event, answer.code], ["login", 0], JSON.stringify(answer));
    assert.deepEqual(bitgetStream.logins.at(-1), { apiKey: BITGET.apiKey, verified: true });
    const arg = { instType: "USDT-FUTURES", channel: "account", coin: "default" };
    bot.ws.send(JSON.stringify({ op: "subscribe", args: [arg] }));
    const push = await bot.next((f) => f.includes('"action":"snapshot"'));
    assert.equal(push, bitgetStream.pushed.at(-1));
    const sent = bitgetStream.connections[from]!.frames;
    assert.equal(sent.length, 2);
    assert.ok(!sent[0]!.includes("placeholder"), "nothing of the bot's login but the passphrase reached the exchange");
    bot.ws.close();
  });

  it("an egressOnly key's login is refused: Bybit's login-failure frame, close 1008, and the exchange sees no connection", async () => {
    await approvePolicy("gw-bybit-eo", { egressOnly: true });
    const connections = bybitStream.connections.length;
    const bot = await openBot(wsUrl("/bybit/gw-bybit-eo/v5/private"));
    bot.ws.send(JSON.stringify({ op: "auth", args: ["k", 1, "s"] }));
    const failure = JSON.parse(await bot.next((f) => f.includes('"op":"auth"'))) as Record<string, unknown>;
    assert.equal(failure.success, false);
    assert.match(String(failure.ret_msg), /POLICY_DENIED \(egress-only\)/);
    const closed = await closedWithin(bot.closed);
    assert.equal(closed.code, 1008);
    assert.match(closed.reason, /POLICY_DENIED \(egress-only\)/);
    assert.equal(bybitStream.connections.length, connections, "nothing was sent upstream");
    const audited = await waitForAudit(venues.svc.dir, { kind: "sign.ws_auth", outcome: "denied", key: "gw-bybit-eo" });
    assert.equal(audited.details?.rule, "egress-only");

    // A quorum's egressOnlyAllowsWebSocketLogin lets the same key log in.
    await approvePolicy("gw-bybit-eo", { egressOnly: true, egressOnlyAllowsWebSocketLogin: true });
    const allowed = await openBot(wsUrl("/bybit/gw-bybit-eo/v5/private"));
    allowed.ws.send(JSON.stringify({ op: "auth", args: [] }));
    const ok = JSON.parse(await allowed.next((f) => f.includes('"op":"auth"'))) as Record<string, unknown>;
    assert.equal(ok.success, true);
    allowed.ws.close();
  });

  it("ccxt raises AuthenticationError for a refused login (okx, unknown key)", async () => {
    const ex = new ccxt.pro.okx({ apiKey: "k", secret: "s", password: OKX.passphrase!, enableRateLimit: false });
    const api = ex.urls.api as Record<string, unknown>;
    api.rest = `${gateway.url}/okx/${OKX.keyId}`;
    api.ws = wsUrl("/okx/no-such-key/ws/v5");
    await ex.loadHttpProxyAgent();
    const connections = okxStream.connections.length;
    try {
      await assert.rejects(ex.watchBalance(), (e: unknown) => {
        assert.ok(e instanceof ccxt.AuthenticationError, String(e));
        assert.match(String(e), /60009.*custos refused the login: KEY_NOT_FOUND/, "the gateway's refusal, not a REST error");
        return true;
      });
    } finally {
      await ex.close();
    }
    assert.equal(okxStream.connections.length, connections, "nothing was sent upstream");
  });

  it("anything but a login as the first frame closes the socket (1008) before the exchange is contacted", async () => {
    const connections = bybitStream.connections.length;
    const bot = await openBot(wsUrl("/bybit/gw-bybit/v5/private"));
    bot.ws.send(JSON.stringify({ op: "subscribe", args: ["wallet"] }));
    const closed = await closedWithin(bot.closed);
    assert.equal(closed.code, 1008);
    assert.match(closed.reason, /first message must be the exchange's login/);
    assert.equal(bybitStream.connections.length, connections);
  });

  it("a second login on the same socket closes it: the exchange never sees a login custos did not sign", async () => {
    const from = bybitStream.connections.length;
    const bot = await openBot(wsUrl("/bybit/gw-bybit/v5/private"));
    bot.ws.send(JSON.stringify({ op: "auth", args: [] }));
    await bot.next((f) => f.includes('"op":"auth"'));
    bot.ws.send(JSON.stringify({ op: "auth", args: [BYBIT.apiKey, Date.now() + 5000, "f".repeat(64)] }));
    const closed = await closedWithin(bot.closed);
    assert.equal(closed.code, 1008);
    assert.equal(bybitStream.connections[from]!.frames.length, 1, "only custos's login reached the exchange");
  });

  it("the bot cannot choose the upstream host: path and Host tricks are refused before any upgrade", async () => {
    const connections = bybitStream.connections.length + okxStream.connections.length;
    const refused: Array<[string, string | undefined, string | undefined]> = [
      ["/bybit/gw-bybit//evil.example/v5/private", undefined, undefined],
      ["/bybit/gw-bybit/v5/private/../../evil", undefined, undefined],
      ["/bybit/gw-bybit/%2F%2Fevil.example/v5/private", undefined, undefined],
      ["/bybit/gw-bybit/v5/private@evil.example", undefined, undefined],
      ["/bybit/gw-bybit/v5/public/linear", undefined, undefined],
      ["/bybit/gw-bybit/v5/trade", undefined, undefined],
      ["http://evil.example/bybit/gw-bybit/v5/private", undefined, undefined],
      ["/binance/gw-binance/ws", undefined, undefined],
      ["/bybit/gw-bybit/v5/private", "evil.example", undefined],
      ["/bybit/gw-bybit/v5/private", undefined, "Origin: https://evil.example\r\n"],
    ];
    for (const [target, host, extra] of refused) {
      const code = await rawUpgrade(port, target, host, extra);
      assert.ok(code >= 400 && code < 500, `${target} ${host ?? ""} ${extra ?? ""}: ${code}`);
    }
    assert.equal(bybitStream.connections.length + okxStream.connections.length, connections, "no connection reached any stream");
    // Control: the same raw request to the listed stream is accepted.
    assert.equal(await rawUpgrade(port, "/bybit/gw-bybit/v5/private"), 101);
  });

  it("custos unreachable: close 1013 (try again later), nothing sent upstream", async () => {
    const dead = signerClient("127.0.0.1:1", { caPath: venues.svc.conn.caPath, ...venues.svc.conn.client! });
    closers.push(() => dead.close());
    const down = await startWith(dead);
    closers.push(() => down.close());
    const connections = bybitStream.connections.length;
    const bot = await openBot(`ws://127.0.0.1:${new URL(down.url).port}/bybit/gw-bybit/v5/private`);
    bot.ws.send(JSON.stringify({ op: "auth", args: [] }));
    const closed = await closedWithin(bot.closed);
    assert.equal(closed.code, 1013);
    assert.equal(bybitStream.connections.length, connections);
  });

  it("the exchange's TLS certificate is verified: a stream host the gateway does not trust closes the bot's socket (1014) before any frame", async () => {
    const untrusting = await startWith(venues.svc.signer, createLogger("silent"), { trustStandIns: false });
    closers.push(() => untrusting.close());
    const logins = bybitStream.logins.length;
    const bot = await openBot(`ws://127.0.0.1:${new URL(untrusting.url).port}/bybit/gw-bybit/v5/private`);
    bot.ws.send(JSON.stringify({ op: "auth", args: [] }));
    const closed = await closedWithin(bot.closed);
    assert.equal(closed.code, 1014);
    assert.equal(bybitStream.logins.length, logins, "no login was sent over an unverified connection");
  });

  it("a bot that sends no login is closed (1008) when the login time runs out", async () => {
    const strict = await startWith(venues.svc.signer, createLogger("silent"), { loginTimeoutMs: 200 });
    closers.push(() => strict.close());
    const connections = bybitStream.connections.length;
    const bot = await openBot(`ws://127.0.0.1:${new URL(strict.url).port}/bybit/gw-bybit/v5/private`);
    const closed = await closedWithin(bot.closed);
    assert.equal(closed.code, 1008);
    assert.match(closed.reason, /no login within 200 ms/);
    assert.equal(bybitStream.connections.length, connections);
  });

  it("the gateway logs each stream's outcome, never a frame, signature or passphrase", () => {
    const lines = logs
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.event === "gateway.websocket");
    assert.ok(lines.some((l) => l.outcome === "opened" && l.exchange === "okx"));
    assert.ok(lines.some((l) => l.outcome === "refused" && l.reason === "POLICY_DENIED" && l.rule === "egress-only"));
    assert.ok(!logs.includes(OKX.passphrase!), "no passphrase in the logs");
    assert.ok(!logs.includes('"topic":"wallet"') && !logs.includes("USVC"), "no frame content in the logs");
  });

  async function approvePolicy(keyId: string, policy: object): Promise<void> {
    const p = await proposeAndApprove(venues.svc.custody, {
      kind: { $case: "setPolicy", setPolicy: { keyId, policyJson: JSON.stringify(policy) } },
      ttlSeconds: 0,
    });
    assert.equal(p.state, "executed", p.failure);
  }
});
