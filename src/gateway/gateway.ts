import { createHash } from "node:crypto";
import { chmodSync, existsSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { isIP, type AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import { checkEgressTarget } from "../egress/destinations.js";
import { CustosError } from "../errors.js";
import { dialectFor } from "../exchanges/registry.js";
import type { ExchangeRequest } from "../gen/custos/v1/signer.js";
import { type ExchangeSender, sendRefusal } from "./custos-sender.js";
import { type BotRequest, type GatewayExchange, GatewayRequestError, gatewayExchangeFor, gatewayStreamExchanges } from "./exchanges/index.js";
import type { PublicUpstream } from "./public-upstream.js";
import { refusalKind } from "./refusal-kind.js";
import { refuseUpgrade, type WebSocketProxy } from "./websocket-proxy.js";

/*
 * `custos gateway`: a local HTTP endpoint a bot points its exchange base URL at. Routes are
 * `/<exchange>/<key-id>/<exchange path>?<query>` (e.g. /binance/alpha-usdm/fapi/v1/order): a
 * request carrying the exchange's credentials, or one the key's dialect classifies as private,
 * is stripped of what custos re-signs and handed to custos's SendExchangeRequest, which signs it
 * in the HSM and sends it to the exchange itself; the exchange's answer comes back verbatim.
 * Public GETs (market data) are fetched without credentials from the exchange's host. The
 * gateway never chooses a destination from the request: custos (private) and the gateway's
 * configuration (public) do. WebSocket upgrades on the same routes are private streams, passed
 * to websocket-proxy.ts after the same guards.
 */

/** Where the gateway listens: loopback TCP (the default) or a unix socket (mode 0600). */
export type GatewayListen = { host: string; port: number } | { socket: string };

export interface GatewayOptions {
  sender: ExchangeSender;
  publicUpstream: PublicUpstream;
  logger: Logger;
  listen: GatewayListen;
  /** A non-loopback listen address must be asked for explicitly: anyone who reaches the gateway trades with the bot's certificate. */
  allowNonLoopback?: boolean;
  /** Request bodies larger than this are refused (413). */
  maxBodyBytes?: number;
  /** Private WebSocket streams (absent: upgrade requests are refused). */
  websocket?: WebSocketProxy;
}

export interface RunningGateway {
  /** http://HOST:PORT for TCP, unix:PATH for a socket. */
  readonly url: string;
  close(): Promise<void>;
}

const ROUTE = /^\/([a-z0-9]{1,32})\/([A-Za-z0-9][A-Za-z0-9._-]{0,63})(\/[^?#]*)(?:\?([^#]*))?$/;
const METHODS = new Set(["GET", "POST", "PUT", "DELETE"]);
/** Response headers that describe the hop, not the exchange's answer. */
const HOP_HEADERS = new Set(["connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "upgrade", "te", "trailer"]);
const LOOPBACK_HOST = /^(127(?:\.\d{1,3}){3}|localhost|\[::1\])(?::\d{1,5})?$/i;

/** True for addresses that only this machine can reach. */
export function isLoopback(host: string): boolean {
  if (host === "localhost" || host === "::1") return true;
  return isIP(host) === 4 && host.startsWith("127.");
}

/** Starts the gateway; resolves once it listens. */
export async function startGateway(opts: GatewayOptions): Promise<RunningGateway> {
  const tcp = "host" in opts.listen ? opts.listen : undefined;
  if (tcp && !isLoopback(tcp.host) && !opts.allowNonLoopback) {
    throw new Error(`the gateway listens on loopback or a unix socket unless a public address is configured explicitly (got ${tcp.host})`);
  }
  if ("socket" in opts.listen && existsSync(opts.listen.socket)) throw new Error(`${opts.listen.socket} exists: remove it, or choose another socket path`);
  const checkHost = tcp !== undefined && !opts.allowNonLoopback;
  const server = createServer((req, res) => {
    handle(opts, checkHost, req, res).catch((e: unknown) => {
      // A bug, not a refusal: logged without the request's content; the bot sees a generic 502.
      opts.logger.error({ event: "gateway.error", err: e instanceof Error ? e.name : "unknown" }, "gateway request failed");
      if (!res.headersSent) {
        res.writeHead(502, { "content-type": "text/plain; charset=utf-8" });
        res.end("custos gateway: internal error\n");
      } else res.destroy();
    });
  });
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => upgrade(opts, checkHost, req, socket, head));
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    if ("socket" in opts.listen) server.listen(opts.listen.socket, resolve);
    else server.listen(opts.listen.port, opts.listen.host, resolve);
  });
  let url: string;
  if ("socket" in opts.listen) {
    chmodSync(opts.listen.socket, 0o600); // only the bot's user may trade through it
    url = `unix:${opts.listen.socket}`;
  } else {
    const a = server.address() as AddressInfo;
    url = `http://${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`;
  }
  opts.logger.info({ event: "gateway.listening", url }, "custos gateway listening");
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        opts.websocket?.close();
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

/** A WebSocket upgrade: the same guards as a request, then the private-stream proxy. */
function upgrade(opts: GatewayOptions, checkHost: boolean, req: IncomingMessage, socket: Duplex, head: Buffer) {
  socket.on("error", () => socket.destroy());
  const refuse = (status: number, reason: string, text: string) => {
    opts.logger.info({ event: "gateway.websocket", outcome: "refused", status, reason }, "gateway websocket refused");
    refuseUpgrade(socket, status, `custos gateway: ${text}`);
  };
  // Browsers always name their Origin on a WebSocket: no web page may open a stream with the bot's certificate.
  if (req.headers.origin !== undefined) return refuse(403, "ORIGIN", "requests from web pages are refused");
  if (checkHost && !LOOPBACK_HOST.test(req.headers.host ?? "")) return refuse(403, "HOST", "the Host must be a loopback address");
  const route = ROUTE.exec(req.url ?? "");
  const exchange = route ? gatewayExchangeFor(route[1]!) : undefined;
  if (!opts.websocket || !route || !exchange?.websocket) {
    return refuse(404, "NO_ROUTE", `private streams are /<exchange>/<key-id>/<stream path> for ${gatewayStreamExchanges().join(", ")}`);
  }
  const [, , keyId, path, query = ""] = route as unknown as [string, string, string, string, string | undefined];
  try {
    checkEgressTarget(path, query);
  } catch (e) {
    return refuse(400, "INVALID_ARGUMENT", (e as Error).message);
  }
  opts.websocket.accept(req, socket, head, { exchange, keyId, path, query });
}

async function handle(opts: GatewayOptions, checkHost: boolean, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = process.hrtime.bigint();
  const plain = (status: number, text: string) => {
    res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(text) });
    res.end(text);
  };
  const target = req.url ?? "";
  if (target === "/healthz" && req.method === "GET") return plain(200, "ok\n");
  // A web page on the bot's host must not trade through the gateway: browsers name their Origin, and a
  // DNS-rebound name arrives as a foreign Host.
  if (req.headers.origin !== undefined) return plain(403, "custos gateway: requests from web pages are refused\n");
  if (checkHost && !LOOPBACK_HOST.test(req.headers.host ?? "")) return plain(403, "custos gateway: the Host must be a loopback address\n");
  const route = ROUTE.exec(target);
  if (!route) return plain(404, "custos gateway: routes are /<exchange>/<key-id>/<exchange path>\n");
  const [, exchangeName, keyId, path, query = ""] = route as unknown as [string, string, string, string, string | undefined];
  const exchange = gatewayExchangeFor(exchangeName);
  if (!exchange) return plain(404, `custos gateway: no exchange ${exchangeName}\n`);
  const method = req.method ?? "";
  if (!METHODS.has(method)) return plain(405, "custos gateway: GET, POST, PUT or DELETE\n");

  const max = opts.maxBodyBytes ?? 1024 * 1024;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > max) return plain(413, `custos gateway: the body exceeds ${max} bytes\n`);
    chunks.push(c as Buffer);
  }
  const body = Buffer.concat(chunks).toString("utf8");
  const bot: BotRequest = {
    method,
    path,
    query,
    body,
    header: (name) => {
      const v = req.headers[name.toLowerCase()];
      return Array.isArray(v) ? v.join(", ") : v;
    },
  };
  try {
    // custos checks this again; the gateway refuses early, and for public requests it is the only check.
    checkEgressTarget(path, query);
  } catch (e) {
    if (!(e instanceof CustosError)) throw e;
    const shaped = exchange.refusal("invalid", { reason: e.code, message: e.message });
    opts.logger.info(
      { event: "gateway.request", exchange: exchange.exchange, key: keyId, method, outcome: "denied", reason: e.code },
      "gateway request refused",
    );
    return json(res, shaped.status, shaped.body);
  }
  const log = {
    event: "gateway.request",
    exchange: exchange.exchange,
    key: keyId,
    method,
    path,
    payloadSha256: createHash("sha256").update(`${query}\n${body}`).digest("hex"),
  };
  const done = (fields: Record<string, unknown>) =>
    opts.logger.info({ ...log, ...fields, durationMs: Number(process.hrtime.bigint() - started) / 1e6 }, "gateway request answered");

  if (!isPrivate(exchange, bot)) {
    try {
      const answer = await opts.publicUpstream.get(exchange.exchange, path, query);
      done({ outcome: "public", status: answer.status });
      return reply(res, answer.status, answer.headers, answer.body);
    } catch (e) {
      done({ outcome: "failed", status: 503, reason: "PUBLIC_UPSTREAM" });
      return plain(503, `custos gateway: the exchange's public API did not answer (${(e as Error).message})\n`);
    }
  }

  let request: ExchangeRequest;
  try {
    request = toExchangeRequest(exchange, keyId, bot);
  } catch (e) {
    if (!(e instanceof GatewayRequestError)) throw e;
    const shaped = exchange.refusal("invalid", { reason: "MALFORMED_REQUEST", message: e.message });
    done({ outcome: "denied", status: shaped.status, reason: "MALFORMED_REQUEST" });
    return json(res, shaped.status, shaped.body);
  }
  try {
    const answer = await opts.sender.send(request);
    done({ outcome: "sent", status: answer.status, roundTripUs: Number(answer.roundTripUs) });
    return reply(
      res,
      answer.status,
      answer.headers.map((h) => [h.name, h.value]),
      answer.body,
    );
  } catch (e) {
    const refusal = sendRefusal(e);
    const kind = refusalKind(refusal);
    const fields = { reason: refusal.reason, ...(refusal.rule ? { rule: refusal.rule } : {}) };
    if (kind === "unavailable" || kind === "rate-limited") {
      const status = kind === "unavailable" ? 503 : 429;
      done({ outcome: "failed", status, ...fields });
      return plain(status, `custos gateway: ${refusal.reason}: ${refusal.message}\n`);
    }
    const shaped = exchange.refusal(kind, { ...fields, message: refusal.message });
    done({ outcome: "denied", status: shaped.status, ...fields });
    return json(res, shaped.status, shaped.body);
  }
}

/** Private: not a GET, or carrying the exchange's credentials, or an endpoint the key's dialect classifies (a signed one). */
function isPrivate(exchange: GatewayExchange, req: BotRequest): boolean {
  if (req.method !== "GET" || exchange.carriesCredentials(req)) return true;
  try {
    const method = req.method;
    return dialectFor(exchange.exchange)?.classify({ method, path: req.path, query: req.query, body: req.body }) !== "unknown";
  } catch {
    return true; // unreadable: custos decides, nothing leaves unsigned
  }
}

function toExchangeRequest(exchange: GatewayExchange, keyId: string, req: BotRequest): ExchangeRequest {
  const stripped = exchange.strip(req);
  return {
    keyId,
    version: 0,
    method: req.method,
    path: req.path,
    query: stripped.query,
    queryParams: [],
    body: Buffer.from(stripped.body, "utf8"),
    timestampMs: "0",
    nonce: "",
    expires: "0",
    recvWindowMs: stripped.recvWindowMs ?? 0,
    passphrase: stripped.passphrase ?? "",
    apiKeyVersion: "",
    omitNonce: false,
  };
}

function reply(res: ServerResponse, status: number, headers: ReadonlyArray<readonly [string, string]>, body: Buffer): void {
  const out: Array<[string, string]> = headers.filter(([name]) => !HOP_HEADERS.has(name.toLowerCase())).map(([n, v]) => [n, v]);
  out.push(["content-length", String(body.length)]);
  res.writeHead(status, out.flat());
  res.end(body);
}

function json(res: ServerResponse, status: number, value: unknown): void {
  reply(res, status, [["content-type", "application/json"]], Buffer.from(JSON.stringify(value)));
}
