import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { type RawData, WebSocket, WebSocketServer } from "ws";
import type { WebSocketLoginSigner } from "../../src/gateway/custos-login-signer.js";
import { startGateway, type RunningGateway } from "../../src/gateway/gateway.js";
import { webSocketProxy } from "../../src/gateway/websocket-proxy.js";
import { createLogger } from "../../src/log.js";
import { tempDir } from "../helpers/harness.js";

/*
 * The gateway's stream proxy with custos faked (a signer that answers a fixed login, when the
 * test lets it) and a plain ws:// upstream on loopback: piping, close propagation and the bounds.
 * The real login path (custos, TLS, the exchanges' signatures) is test/integration/gateway-websocket.test.ts.
 */

const DEADLINE_MS = 5_000;
const SIGNED = JSON.stringify({ op: "auth", args: ["custos-api-key", 1, "custos-signature"] });

/** Resolves when `check` holds, polling until the deadline. */
async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`not within ${DEADLINE_MS} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A signer whose answers the test releases one by one. */
function gatedSigner(): WebSocketLoginSigner & { release(): void; asked: number } {
  const waiting: Array<() => void> = [];
  const s = {
    asked: 0,
    signLogin() {
      s.asked += 1;
      return new Promise<string>((resolve) => waiting.push(() => resolve(SIGNED)));
    },
    release() {
      for (const go of waiting.splice(0)) go();
    },
  };
  return s;
}

describe("gateway stream proxy (custos faked, plain upstream)", () => {
  let upstreamServer: Server;
  let upstream: WebSocketServer;
  const sockets: WebSocket[] = [];
  const received: Array<{ data: RawData; binary: boolean }> = [];
  let signer: ReturnType<typeof gatedSigner>;
  let gateway: RunningGateway;

  before(async () => {
    upstreamServer = createServer();
    upstream = new WebSocketServer({ server: upstreamServer });
    upstream.on("connection", (ws) => {
      sockets.push(ws);
      ws.on("message", (data, binary) => received.push({ data, binary }));
    });
    await new Promise<void>((r) => upstreamServer.listen(0, "127.0.0.1", r));
    const origin = `ws://127.0.0.1:${(upstreamServer.address() as AddressInfo).port}`;
    signer = gatedSigner();
    gateway = await startGateway({
      sender: { send: () => Promise.reject(new Error("REST is not used here")) },
      publicUpstream: { get: () => Promise.reject(new Error("REST is not used here")) },
      logger: createLogger("silent"),
      listen: { host: "127.0.0.1", port: 0 },
      websocket: webSocketProxy({ signer, upstreamUrlFor: (_e, path) => `${origin}${path}`, logger: createLogger("silent") }),
    });
  });
  after(async () => {
    await gateway?.close();
    for (const s of upstream?.clients ?? []) s.terminate();
    upstream?.close();
    await new Promise<void>((r) => (upstreamServer ? upstreamServer.close(() => r()) : r()));
  });

  const bot = async () => {
    const ws = new WebSocket(`${gateway.url.replace(/^http/, "ws")}/bybit/k1/v5/private`);
    const frames: Array<{ data: string; binary: boolean }> = [];
    ws.on("message", (d, binary) => frames.push({ data: (d as Buffer).toString("hex"), binary }));
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.on("close", (code, reason) => r({ code, reason: String(reason) })));
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    return { ws, frames, closed };
  };

  it("sends custos's login first, then held and later frames verbatim both ways, binary included", async () => {
    const from = received.length;
    const b = await bot();
    b.ws.send(JSON.stringify({ op: "auth", args: ["placeholder", 1, "x"] }));
    b.ws.send(Buffer.from([0, 1, 2, 255]), { binary: true }); // held while custos signs
    await until(() => signer.asked === 1, "custos asked for the login");
    signer.release();
    await until(() => received.length === from + 2, "login and held frame upstream");
    assert.equal(String(received[from]!.data), SIGNED);
    assert.deepEqual([Buffer.from(received[from + 1]!.data as Buffer), received[from + 1]!.binary], [Buffer.from([0, 1, 2, 255]), true]);
    b.ws.send("text after login");
    await until(() => received.length === from + 3, "a later frame upstream");
    assert.deepEqual([String(received[from + 2]!.data), received[from + 2]!.binary], ["text after login", false]);

    sockets.at(-1)!.send(Buffer.from([9, 8, 7]), { binary: true });
    await until(() => b.frames.length === 1, "the exchange's frame at the bot");
    assert.deepEqual(b.frames[0], { data: "090807", binary: true });
    b.ws.close();
  });

  /** A bot logged in through the proxy, with the upstream socket it caused. */
  const loggedIn = async () => {
    const count = sockets.length;
    const asked = signer.asked;
    const b = await bot();
    b.ws.send(JSON.stringify({ op: "auth", args: [] }));
    await until(() => signer.asked === asked + 1, "custos asked");
    signer.release();
    await until(() => sockets.length === count + 1 && sockets.at(-1)!.readyState === WebSocket.OPEN, "upstream open");
    return { ...b, upstream: sockets.at(-1)! };
  };

  it("passes the exchange's close code and reason to the bot", async () => {
    const b = await loggedIn();
    b.upstream.close(4001, "login failed");
    assert.deepEqual(await b.closed, { code: 4001, reason: "login failed" });
  });

  it("closes the exchange's socket when the bot leaves", async () => {
    const b = await loggedIn();
    b.ws.close();
    await until(() => b.upstream.readyState === WebSocket.CLOSED, "upstream closed");
  });

  it("a bot that leaves while custos signs never causes an upstream connection", async () => {
    const count = sockets.length;
    const asked = signer.asked;
    const b = await bot();
    b.ws.send(JSON.stringify({ op: "auth", args: [] }));
    await until(() => signer.asked === asked + 1, "custos asked");
    b.ws.close();
    await b.closed;
    signer.release();
    // A second bot logs in after the abandoned login was signed: only its own connection reaches the exchange.
    const probe = await loggedIn();
    assert.equal(sockets.length, count + 1);
    probe.ws.close();
  });

  it("too many frames before the exchange opens: close 1013, nothing sent", async () => {
    const count = sockets.length;
    const b = await bot();
    b.ws.send(JSON.stringify({ op: "auth", args: [] }));
    for (let i = 0; i < 65; i++) b.ws.send(`frame ${i}`);
    assert.equal((await b.closed).code, 1013);
    signer.release();
    assert.equal(sockets.length, count);
  });

  it("serves streams on the unix socket as on loopback", async () => {
    const socket = join(tempDir("custos-gw-ws-"), "gw.sock");
    const origin = `ws://127.0.0.1:${(upstreamServer.address() as AddressInfo).port}`;
    const onSocket = await startGateway({
      sender: { send: () => Promise.reject(new Error("REST is not used here")) },
      publicUpstream: { get: () => Promise.reject(new Error("REST is not used here")) },
      logger: createLogger("silent"),
      listen: { socket },
      websocket: webSocketProxy({ signer, upstreamUrlFor: (_e, path) => `${origin}${path}`, logger: createLogger("silent") }),
    });
    try {
      const count = sockets.length;
      const asked = signer.asked;
      const ws = new WebSocket(`ws+unix://${socket}:/okx/k1/ws/v5/private`);
      await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
      ws.send(JSON.stringify({ op: "login", args: [{ passphrase: "p" }] }));
      await until(() => signer.asked === asked + 1, "custos asked");
      signer.release();
      await until(() => sockets.length === count + 1, "upstream connected");
      ws.close();
    } finally {
      await onSocket.close();
    }
  });

  it("a binary first frame is not a login: close 1008", async () => {
    const b = await bot();
    b.ws.send(Buffer.from(JSON.stringify({ op: "auth", args: [] })), { binary: true });
    assert.equal((await b.closed).code, 1008);
  });
});
