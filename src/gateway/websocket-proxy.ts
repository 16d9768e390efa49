import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import { type RawData, WebSocket, WebSocketServer } from "ws";
import type { WebSocketLoginSigner } from "./custos-login-signer.js";
import { sendRefusal } from "./custos-sender.js";
import type { BotLogin, GatewayExchange } from "./exchanges/index.js";
import { refusalKind } from "./refusal-kind.js";

/*
 * The gateway's private WebSocket streams. A bot opens its private-stream URL at the gateway
 * (`/<exchange>/<key-id>/<stream path>`); its first frame must be the exchange's login, signed or
 * not. The gateway has custos sign a login of its own (SignWebSocketAuth: identity, grants,
 * policy, HSM, audit), and only then opens the exchange's stream — the URL comes from the
 * gateway's configuration, never from the bot — sends custos's login first, and pipes every
 * later frame both ways verbatim. A refused login never reaches the exchange: the bot gets the
 * exchange's login-failure frame and the socket closes (1008 refused, 1013 try again later).
 *
 * Before the login, anything else from the bot closes the socket (1008): there is no session yet
 * to send it on. Frames that follow the login while custos signs and the exchange's socket opens
 * are held, in order and bounded, and sent after the login. A second login on the same socket
 * closes it: the exchange never sees a login custos did not sign.
 */

export interface WebSocketProxyOptions {
  signer: WebSocketLoginSigner;
  /** The exchange's private-stream URL (wss://host[:port]/path) for this stream path; throws when there is none. */
  upstreamUrlFor(exchange: string, path: string): string;
  /** Extra CA certificates (PEM) trusted for the exchange's stream besides the system's (test stand-ins). */
  ca?: string | Buffer;
  logger: Logger;
  /** How long the bot has to send its login (default 10 s). */
  loginTimeoutMs?: number;
  /** Frames larger than this are refused, either way (default 16 MiB). */
  maxFrameBytes?: number;
}

/** One bot connection's route, already checked by the gateway. */
export interface StreamRoute {
  exchange: GatewayExchange;
  keyId: string;
  path: string;
  /** The bot's query string (without "?"), passed to the exchange as sent; "" for none. */
  query: string;
}

export interface WebSocketProxy {
  /** Completes the bot's upgrade and runs the session. */
  accept(req: IncomingMessage, socket: Duplex, head: Buffer, route: StreamRoute): void;
  /** Closes every session (going away). */
  close(): void;
}

/** Close codes the bot sees. */
const CLOSE = { refused: 1008, tryAgain: 1013, goingAway: 1001, badGateway: 1014 } as const;
/** Frames (and their bytes) held between the login and the exchange's socket opening. */
const MAX_HELD_FRAMES = 64;
const MAX_HELD_BYTES = 1024 * 1024;
/** Unsent data queued towards either side before the session is dropped as too slow. */
const MAX_BUFFERED_BYTES = 32 * 1024 * 1024;
const UPSTREAM_HANDSHAKE_MS = 10_000;

export function webSocketProxy(opts: WebSocketProxyOptions): WebSocketProxy {
  const maxPayload = opts.maxFrameBytes ?? 16 * 1024 * 1024;
  // perMessageDeflate off: frames are piped as they come, and compression bombs stay out.
  const server = new WebSocketServer({ noServer: true, maxPayload, perMessageDeflate: false });
  const sessions = new Set<() => void>();
  return {
    accept(req, socket, head, route) {
      let url: string;
      try {
        url = opts.upstreamUrlFor(route.exchange.exchange, route.path);
      } catch (e) {
        refuseUpgrade(socket, 404, `custos gateway: ${(e as Error).message}`);
        return;
      }
      if (route.query) url += `?${route.query}`;
      server.handleUpgrade(req, socket, head, (bot) => {
        const end = runSession(opts, maxPayload, bot, { ...route, url }, () => sessions.delete(end));
        sessions.add(end);
      });
    },
    close() {
      for (const end of sessions) end();
      server.close();
    },
  };
}

type State = "awaiting-login" | "signing" | "connecting" | "open" | "closed";

/** One bot connection; returns a function that ends it. */
function runSession(opts: WebSocketProxyOptions, maxPayload: number, bot: WebSocket, route: StreamRoute & { url: string }, onEnd: () => void): () => void {
  const started = process.hrtime.bigint();
  const login = route.exchange.websocket!;
  const base = { event: "gateway.websocket", exchange: route.exchange.exchange, key: route.keyId, path: route.path };
  let state: State = "awaiting-login";
  let upstream: WebSocket | undefined;
  const held: Array<{ data: RawData; binary: boolean }> = [];
  let heldBytes = 0;
  const counts = { up: 0, down: 0 };

  const log = (outcome: string, fields: Record<string, unknown> = {}) =>
    opts.logger.info({ ...base, outcome, ...fields, durationMs: Number(process.hrtime.bigint() - started) / 1e6 }, "gateway websocket");
  const finish = (code: number, reason: string) => {
    if (state === "closed") return;
    state = "closed";
    clearTimeout(loginTimer);
    onEnd();
    if (bot.readyState === WebSocket.OPEN) bot.close(code, closeReason(reason));
    else bot.terminate();
    if (upstream && upstream.readyState === WebSocket.OPEN) upstream.close(CLOSE.goingAway, "");
    else upstream?.terminate();
  };
  const loginTimeoutMs = opts.loginTimeoutMs ?? 10_000;
  const loginTimer = setTimeout(() => {
    log("refused", { reason: "NO_LOGIN" });
    finish(CLOSE.refused, `custos gateway: no login within ${loginTimeoutMs} ms`);
  }, loginTimeoutMs);

  bot.on("message", (data, binary) => {
    if (state === "closed") return;
    const parsed = binary ? undefined : login.login(rawText(data));
    if (state === "awaiting-login") {
      if (!parsed) {
        log("refused", { reason: "NOT_A_LOGIN" });
        finish(CLOSE.refused, "custos gateway: the first message must be the exchange's login");
        return;
      }
      clearTimeout(loginTimer);
      state = "signing";
      void signAndConnect(parsed);
      return;
    }
    if (parsed) {
      log("refused", { reason: "SECOND_LOGIN" });
      finish(CLOSE.refused, "custos gateway: one login per connection");
      return;
    }
    if (state === "open") return forward(upstream!, data, binary, "up");
    heldBytes += frameBytes(data);
    if (held.length >= MAX_HELD_FRAMES || heldBytes > MAX_HELD_BYTES) {
      log("refused", { reason: "TOO_MANY_HELD_FRAMES" });
      finish(CLOSE.tryAgain, "custos gateway: too many frames before the exchange answered");
      return;
    }
    held.push({ data, binary });
  });
  bot.on("close", () => {
    if (state !== "closed") log("closed", { by: "bot", ...counts });
    finish(CLOSE.goingAway, "");
  });
  // ws has already answered a malformed or oversized frame with the fitting close code.
  bot.on("error", () => {
    if (state !== "closed") log("failed", { reason: "BOT_FRAME" });
    finish(CLOSE.refused, "");
  });

  async function signAndConnect(botLogin: BotLogin): Promise<void> {
    let message: string;
    try {
      message = await opts.signer.signLogin(route.keyId, botLogin.passphrase);
    } catch (e) {
      return refuse(botLogin, e);
    }
    if (state !== "signing") return; // the bot left while custos signed
    state = "connecting";
    const ws = new WebSocket(route.url, {
      handshakeTimeout: UPSTREAM_HANDSHAKE_MS,
      maxPayload,
      perMessageDeflate: false,
      followRedirects: false,
      ...(opts.ca ? { ca: opts.ca } : {}),
    });
    upstream = ws;
    ws.on("open", () => {
      if (state !== "connecting") return void ws.close(CLOSE.goingAway, "");
      ws.send(login.signedFrame(botLogin, message));
      for (const f of held.splice(0)) forward(ws, f.data, f.binary, "up");
      state = "open";
      log("opened");
    });
    ws.on("message", (data, binary) => {
      if (state === "open") forward(bot, data, binary, "down");
    });
    ws.on("close", (code, reason) => {
      if (state === "closed") return;
      log("closed", { by: "exchange", code, ...counts });
      finish(sendable(code), reason.toString("utf8"));
    });
    ws.on("error", (e) => {
      if (state === "closed") return;
      // The message names the exchange's host or TLS failure, never a frame's content.
      log("failed", { reason: "UPSTREAM", error: e.message });
      finish(CLOSE.badGateway, "custos gateway: the exchange's stream failed");
    });
  }

  function refuse(botLogin: BotLogin, e: unknown): void {
    const refusal = sendRefusal(e);
    const kind = refusalKind(refusal);
    log("refused", { reason: refusal.reason, ...(refusal.rule ? { rule: refusal.rule } : {}) });
    if (state === "closed") return;
    if (kind === "denied" || kind === "invalid") {
      bot.send(login.refusalFrame(botLogin, { reason: refusal.reason, ...(refusal.rule ? { rule: refusal.rule } : {}), message: refusal.message }));
      finish(CLOSE.refused, `custos refused the login: ${refusal.reason}${refusal.rule ? ` (${refusal.rule})` : ""}`);
      return;
    }
    finish(CLOSE.tryAgain, `custos gateway: ${refusal.reason}`);
  }

  function forward(to: WebSocket, data: RawData, binary: boolean, direction: "up" | "down"): void {
    if (to.bufferedAmount > MAX_BUFFERED_BYTES) {
      log("failed", { reason: "SLOW_CONSUMER", direction });
      finish(CLOSE.tryAgain, "custos gateway: the stream's reader is too slow");
      return;
    }
    counts[direction] += 1;
    to.send(data as Buffer, { binary });
  }

  return () => finish(CLOSE.goingAway, "custos gateway is stopping");
}

/** Answers an upgrade request with a plain HTTP refusal and drops the connection. */
export function refuseUpgrade(socket: Duplex, status: number, text: string): void {
  const body = `${text}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Refused"}\r\nconnection: close\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

const STATUS_TEXT: Record<number, string> = { 403: "Forbidden", 404: "Not Found", 400: "Bad Request" };

function frameBytes(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((n, b) => n + b.length, 0);
  return data.byteLength;
}

/** A frame's text (ws hands text frames over as bytes). */
function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString("utf8");
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  return Buffer.from(data).toString("utf8");
}

/** A close reason that fits the protocol's 123 bytes: printable ASCII only, cut to length. */
function closeReason(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, "?").slice(0, 123);
}

/** The exchange's close code as one the bot may be sent (1005/1006/1015 are never sent on the wire). */
function sendable(code: number): number {
  if (code === 1005) return 1000;
  const valid = (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
  return valid ? code : CLOSE.badGateway;
}
