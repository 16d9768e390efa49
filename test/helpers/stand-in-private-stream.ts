/**
 * A stand-in exchange's private WebSocket stream (Bybit v5 `/v5/private`, OKX `/ws/v5/private`)
 * over TLS. It verifies the login exactly as the exchange documents it, computing the expected
 * signature itself with node:crypto from the account's secret:
 *   - Bybit: `{"op":"auth","args":[apiKey, expires, signature]}`, signature =
 *     hex(HMAC-SHA256(secret, "GET/realtime" + expires)), expires (ms) in the future;
 *   - OKX: `{"op":"login","args":[{apiKey, passphrase, timestamp, sign}]}`, sign =
 *     base64(HMAC-SHA256(secret, timestamp + "GET/users/self/verify")), timestamp (s) within 30 s;
 *   - Bitget v2: OKX's layout, sign = base64(HMAC-SHA256(secret, timestamp + "GET/user/verify")),
 *     timestamp (s) within 30 s.
 * After a verified login it answers subscriptions to the account channel (Bybit `wallet`, OKX
 * `account`) with the exchange's ack and one balance push, and records everything it received.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { type WebSocket, WebSocketServer } from "ws";

export type StreamExchange = "bybit" | "okx" | "bitget";

/** One login as the stand-in judged it. */
export interface StreamLogin {
  apiKey: string;
  verified: boolean;
  /** Why it was refused. */
  why?: string;
}

export interface StreamConnection {
  /** The request target the stand-in was asked for (path and query). */
  target: string;
  /** Every frame received, as text, in order. */
  frames: string[];
}

export class StandInPrivateStream {
  readonly connections: StreamConnection[] = [];
  readonly logins: StreamLogin[] = [];
  /** Every frame the stand-in pushed after a subscription, as sent. */
  readonly pushed: string[] = [];
  private server: Server | undefined;
  private wss: WebSocketServer | undefined;

  constructor(
    readonly exchange: StreamExchange,
    /** API key → secret. */
    private readonly accounts: ReadonlyMap<string, string>,
    /** OKX, Bitget: API key → passphrase. */
    private readonly passphrases: ReadonlyMap<string, string> = new Map(),
  ) {}

  /** Listens on 127.0.0.1 with TLS; resolves to the origin (wss://127.0.0.1:PORT). */
  async start(tls: { certPem: string; keyPem: string }): Promise<string> {
    this.server = createServer({ cert: tls.certPem, key: tls.keyPem });
    this.wss = new WebSocketServer({ server: this.server });
    this.wss.on("connection", (ws, req) => {
      const conn: StreamConnection = { target: req.url ?? "", frames: [] };
      this.connections.push(conn);
      let loggedIn = false;
      ws.on("message", (data) => {
        const text = (data as Buffer).toString("utf8");
        conn.frames.push(text);
        if (text === "ping") return void ws.send("pong");
        const msg = JSON.parse(text) as Record<string, unknown>;
        if (msg.op === "ping") return void ws.send(JSON.stringify({ success: true, ret_msg: "pong", op: "ping", conn_id: "stand-in" }));
        if (msg.op === "auth" || msg.op === "login") {
          const login = this.exchange === "bybit" ? this.verifyBybit(msg) : this.verifyOkx(msg);
          this.logins.push(login);
          loggedIn = login.verified;
          ws.send(this.loginAnswer(msg, login));
          if (!login.verified) ws.close(4001, "login failed");
          return;
        }
        if (msg.op === "subscribe") this.subscribe(ws, msg, loggedIn);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    return `wss://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const c of this.wss?.clients ?? []) c.terminate();
    this.wss?.close();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private verifyBybit(msg: Record<string, unknown>): StreamLogin {
    const [apiKey, expires, signature] = (Array.isArray(msg.args) ? msg.args : []) as unknown[];
    const key = String(apiKey);
    const secret = this.accounts.get(key);
    if (secret === undefined) return { apiKey: key, verified: false, why: "unknown API key" };
    if (!(Number(expires) > Date.now())) return { apiKey: key, verified: false, why: "expired" };
    const expected = createHmac("sha256", secret)
      .update(`GET/realtime${String(expires)}`)
      .digest("hex");
    return same(expected, String(signature)) ? { apiKey: key, verified: true } : { apiKey: key, verified: false, why: "bad signature" };
  }

  /** OKX and Bitget (the same login layout, another verify path). */
  private verifyOkx(msg: Record<string, unknown>): StreamLogin {
    const args = (Array.isArray(msg.args) ? msg.args[0] : {}) as Record<string, unknown>;
    const key = String(args.apiKey);
    const secret = this.accounts.get(key);
    if (secret === undefined) return { apiKey: key, verified: false, why: "unknown API key" };
    if (this.passphrases.get(key) !== args.passphrase) return { apiKey: key, verified: false, why: "bad passphrase" };
    const timestamp = String(args.timestamp);
    if (!/^\d+$/.test(timestamp) || Math.abs(Date.now() / 1000 - Number(timestamp)) > 30) return { apiKey: key, verified: false, why: "timestamp" };
    const verifyPath = this.exchange === "bitget" ? "/user/verify" : "/users/self/verify";
    const expected = createHmac("sha256", secret).update(`${timestamp}GET${verifyPath}`).digest("base64");
    return same(expected, String(args.sign)) ? { apiKey: key, verified: true } : { apiKey: key, verified: false, why: "bad signature" };
  }

  private loginAnswer(msg: Record<string, unknown>, login: StreamLogin): string {
    if (this.exchange === "bitget") {
      return JSON.stringify(login.verified ? { event: "login", code: 0, msg: "" } : { event: "error", code: 30005, msg: "login failed" });
    }
    if (this.exchange === "okx") {
      return JSON.stringify(
        login.verified
          ? { event: "login", code: "0", msg: "", connId: "stand-in" }
          : { event: "error", code: "60009", msg: "Login failed.", connId: "stand-in" },
      );
    }
    const reqId = msg.req_id !== undefined ? { req_id: msg.req_id } : {};
    return JSON.stringify({ success: login.verified, ret_msg: login.verified ? "" : "error:USVC1111", op: "auth", conn_id: "stand-in", ...reqId });
  }

  private subscribe(ws: WebSocket, msg: Record<string, unknown>, loggedIn: boolean): void {
    const args = (Array.isArray(msg.args) ? msg.args : []) as unknown[];
    if (this.exchange === "bitget") {
      const arg = (args[0] ?? {}) as Record<string, unknown>;
      if (!loggedIn) return void ws.send(JSON.stringify({ event: "error", code: 30004, msg: "User not logged in" }));
      ws.send(JSON.stringify({ event: "subscribe", arg }));
      if (arg.channel === "account") this.push(ws, bitgetAccountPush(arg));
      return;
    }
    if (this.exchange === "okx") {
      const arg = (args[0] ?? {}) as Record<string, unknown>;
      if (!loggedIn) return void ws.send(JSON.stringify({ event: "error", code: "60011", msg: "Please log in", connId: "stand-in" }));
      ws.send(JSON.stringify({ event: "subscribe", arg, connId: "stand-in" }));
      if (arg.channel === "account") this.push(ws, okxAccountPush());
      return;
    }
    const reqId = msg.req_id !== undefined ? { req_id: msg.req_id } : {};
    if (!loggedIn) return void ws.send(JSON.stringify({ success: false, ret_msg: "Request not authorized", op: "subscribe", conn_id: "stand-in", ...reqId }));
    ws.send(JSON.stringify({ success: true, ret_msg: "", op: "subscribe", conn_id: "stand-in", ...reqId }));
    if (args.includes("wallet")) this.push(ws, bybitWalletPush());
  }

  private push(ws: WebSocket, frame: string): void {
    this.pushed.push(frame);
    ws.send(frame);
  }
}

function same(expected: string, got: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(got);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Bybit v5 `wallet` topic, as documented (one USDT coin). */
function bybitWalletPush(): string {
  return JSON.stringify({
    id: "592324d2bce751-ad38-48eb-8f42-4671d1fb4d4e",
    topic: "wallet",
    creationTime: Date.now(),
    data: [{ accountType: "UNIFIED", totalEquity: "1000", coin: [{ coin: "USDT", equity: "1000", walletBalance: "1000", locked: "0" }] }],
  });
}

/** OKX `account` channel, as documented (one USDT detail). */
function okxAccountPush(): string {
  const uTime = String(Date.now());
  return JSON.stringify({
    arg: { channel: "account", uid: "44705892343619584" },
    data: [{ uTime, totalEq: "1000", details: [{ ccy: "USDT", eq: "1000", availEq: "750", availBal: "750", frozenBal: "250", cashBal: "1000", uTime }] }],
  });
}

/** Bitget v2 `account` channel (futures), as documented (one USDT margin coin). */
function bitgetAccountPush(arg: Record<string, unknown>): string {
  return JSON.stringify({
    action: "snapshot",
    arg,
    data: [{ marginCoin: "USDT", frozen: "0", available: "1000", maxOpenPosAvailable: "1000", maxTransferOut: "1000", equity: "1000", usdtEquity: "1000" }],
    ts: Date.now(),
  });
}
