import { rootCertificates } from "node:tls";
import { Pool, errors } from "undici";
import { CustosError } from "../errors.js";
import type { Environment } from "../keys/model.js";
import { checkEgressHeaders, checkEgressTarget, contentTypeFor, destinationFor, type Destination, type HostOverrides } from "./destinations.js";

/** custos.json `egress`, resolved. */
export interface EgressSettings {
  /** exchange → path prefix → https origin, replacing the built-in host (tests: local stand-ins). */
  hosts: HostOverrides;
  /** PEM CA certificate(s) trusted for exchange hosts besides the system's roots (tests: the stand-in's CA). */
  trustedCaPem?: string;
  connectTimeoutMs: number;
  /** Until the response headers, and then between body chunks. */
  responseTimeoutMs: number;
  maxResponseBytes: number;
  /** Keep-alive connections per exchange origin. */
  connectionsPerOrigin: number;
}

/** A signed request, ready to send. */
export interface OutgoingRequest {
  method: string;
  path: string;
  /** Without "?". */
  query: string;
  headers: ReadonlyArray<readonly [string, string]>;
  body: string;
}

/** The exchange's answer, verbatim. */
export interface ExchangeReply {
  status: number;
  /** Lower-case names, in the order received (a repeated header once per value). */
  headers: Array<[string, string]>;
  body: Buffer;
  /** From the first byte sent to the end of the body. */
  roundTripUs: number;
}

/** Why a send failed, for the audit and the status-class metric. */
export type EgressFailure = "connect-timeout" | "connect-failed" | "response-timeout" | "connection-reset" | "response-too-large";

/** An egress failure: the typed error, what happened, and whether the request may have reached the exchange. */
export class EgressError extends CustosError {
  constructor(
    readonly failure: EgressFailure,
    /** False only when no byte of the request can have reached the exchange (it never connected). */
    readonly mayHaveArrived: boolean,
    message: string,
    cause?: unknown,
  ) {
    super(failure === "response-too-large" ? "EXCHANGE_RESPONSE_TOO_LARGE" : "EXCHANGE_UNAVAILABLE", message, { cause });
  }
}

/** Observes each send (metrics); kept abstract so the egress imports no metrics library. */
export interface EgressObserver {
  /** `outcome`: the HTTP status class ("2xx" … "5xx") or the failure. */
  egressed(exchange: string, outcome: string, seconds: number): void;
}

/** What the sign path needs from the egress: where a request goes, and sending it. */
export interface Egress {
  /** The request's destination; refuses a path or query that could influence it. Called before anything is signed. */
  route(exchange: string, environment: Environment, path: string, query: string): Destination;
  send(exchange: string, destination: Destination, request: OutgoingRequest): Promise<ExchangeReply>;
}

/**
 * custos's own HTTPS client to the exchanges (undici): TLS verified, one keep-alive pool per
 * origin, connect and response timeouts, a bounded response. Nothing is retried: an order
 * must never be placed twice, so a failure is the caller's to judge (its audit row says
 * whether the request may have arrived).
 */
export class HttpEgress implements Egress {
  private readonly pools = new Map<string, Pool>();
  private readonly ca: string[] | undefined;

  constructor(
    private readonly settings: EgressSettings,
    private readonly observer?: EgressObserver,
  ) {
    this.ca = settings.trustedCaPem ? [...rootCertificates, settings.trustedCaPem] : undefined;
  }

  route(exchange: string, environment: Environment, path: string, query: string): Destination {
    checkEgressTarget(path, query);
    return destinationFor(exchange, environment, path, this.settings.hosts);
  }

  async send(exchange: string, destination: Destination, request: OutgoingRequest): Promise<ExchangeReply> {
    checkEgressHeaders(request.headers);
    const headers: string[] = [];
    for (const [name, value] of request.headers) if (name.toLowerCase() !== "content-type") headers.push(name, value);
    for (const [name, value] of destination.headers) headers.push(name, value);
    if (request.body !== "") headers.push("content-type", contentTypeFor(exchange, request.body));
    const started = performance.now();
    try {
      const reply = await this.exchange(destination.origin, request, headers, started);
      this.observer?.egressed(exchange, `${Math.floor(reply.status / 100)}xx`, reply.roundTripUs / 1e6);
      return reply;
    } catch (e) {
      const err = e instanceof EgressError ? e : egressError(e);
      this.observer?.egressed(exchange, err.failure, (performance.now() - started) / 1000);
      throw err;
    }
  }

  private async exchange(origin: string, request: OutgoingRequest, headers: string[], started: number): Promise<ExchangeReply> {
    const res = await this.pool(origin).request({
      method: request.method as "GET",
      path: request.query ? `${request.path}?${request.query}` : request.path,
      headers,
      ...(request.body !== "" ? { body: request.body } : {}),
      headersTimeout: this.settings.responseTimeoutMs,
      bodyTimeout: this.settings.responseTimeoutMs,
    });
    const max = this.settings.maxResponseBytes;
    const tooLarge = () => new EgressError("response-too-large", true, `the exchange's response exceeds ${max} bytes: cut off`);
    const declared = Number(res.headers["content-length"]);
    if (declared > max) {
      res.body.destroy();
      throw tooLarge();
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > max) {
        res.body.destroy();
        throw tooLarge();
      }
      chunks.push(chunk);
    }
    const out: Array<[string, string]> = [];
    for (const [name, value] of Object.entries(res.headers)) {
      if (Array.isArray(value)) for (const v of value) out.push([name, v]);
      else if (value !== undefined) out.push([name, value]);
    }
    return { status: res.statusCode, headers: out, body: Buffer.concat(chunks, size), roundTripUs: Math.round((performance.now() - started) * 1000) };
  }

  private pool(origin: string): Pool {
    let pool = this.pools.get(origin);
    if (!pool) {
      pool = new Pool(origin, {
        connections: this.settings.connectionsPerOrigin,
        pipelining: 1,
        connect: { timeout: this.settings.connectTimeoutMs, rejectUnauthorized: true, ...(this.ca ? { ca: this.ca } : {}) },
      });
      this.pools.set(origin, pool);
    }
    return pool;
  }

  /** Closes every pool (service stop). */
  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.close().catch(() => p.destroy())));
  }
}

/** undici's and the socket's errors → the typed egress error; anything unknown may have arrived. */
function egressError(e: unknown): EgressError {
  if (e instanceof errors.ConnectTimeoutError) return new EgressError("connect-timeout", false, "the exchange did not accept a connection in time", e);
  if (e instanceof errors.HeadersTimeoutError || e instanceof errors.BodyTimeoutError) {
    return new EgressError("response-timeout", true, "the exchange did not answer in time; the request may have been executed", e);
  }
  const code = (e as { code?: string }).code;
  if (code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "EHOSTUNREACH" || code === "ENETUNREACH") {
    return new EgressError("connect-failed", false, "custos could not connect to the exchange", e);
  }
  // OpenSSL's verification codes (UNABLE_TO_VERIFY_LEAF_SIGNATURE, SELF_SIGNED_CERT_IN_CHAIN, CERT_HAS_EXPIRED, …) and Node's host name check.
  if (typeof code === "string" && (code.startsWith("ERR_TLS") || code.includes("CERT") || code.startsWith("UNABLE_TO_"))) {
    return new EgressError("connect-failed", false, "the exchange's TLS certificate did not verify", e);
  }
  return new EgressError("connection-reset", true, "the connection to the exchange failed; the request may have been executed", e);
}
