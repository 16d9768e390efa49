/**
 * Local stand-ins for exchanges' private REST APIs, for end-to-end tests. Each checks requests
 * the way its exchange documents and records every request exactly as received, so a test can
 * replay or tamper with one.
 *
 * Binance USDⓈ-M futures ("SIGNED (TRADE and USER_DATA) Endpoint security",
 * developers.binance.com/docs/derivatives/usds-margined-futures/general-info):
 *   - the API key in X-MBX-APIKEY must be known (-2015, HTTP 401; malformed/missing: -2014);
 *   - `signature` = hex HMAC-SHA256(secret, totalParams), totalParams being the query string
 *     concatenated with the request body (no separator), without the signature parameter
 *     (-1022, HTTP 400, "Signature for this request is not valid.");
 *   - `timestamp` is required (-1102) and accepted only if timestamp < serverTime + 1000 and
 *     serverTime - timestamp <= recvWindow (default 5000, at most 60000: -1131) (-1021).
 *   Serves POST /fapi/v1/order, GET /fapi/v3/account and GET /fapi/v2/balance, and the wallet's
 *   GET /sapi/v1/account/apiRestrictions (the API key's permissions, `apiRestrictions` per key,
 *   answered as developers.binance.com/docs/wallet/account/api-key-permission documents).
 *
 * Bybit v5 (bybit-exchange.github.io/docs/v5/guide, "Authentication for API"): headers
 * X-BAPI-API-KEY, X-BAPI-TIMESTAMP (ms), X-BAPI-RECV-WINDOW (default 5000), X-BAPI-SIGN =
 * hex HMAC-SHA256(secret, timestamp + apiKey + recvWindow + (GET: queryString | POST: body));
 * accepted if serverTime - recvWindow <= timestamp < serverTime + 1000. Errors (HTTP 200,
 * retCode): 10003 invalid API key, 10004 invalid sign, 10002 timestamp/recv_window.
 * Serves POST /v5/order/create, GET /v5/account/wallet-balance and GET /v5/user/query-api (the
 * calling key's information, `apiKeyInfo` per key, shaped as bybit-exchange.github.io/docs/v5/user/apikey-info).
 *
 * OKX v5: stand-in-okx.ts.
 *
 * Each stand-in serves plain HTTP, or HTTPS with a certificate from a test CA (`standInTls`), and
 * can misbehave on purpose (`fault`): never answer, reset the connection, or answer too much.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createDevCa, issueServerCert } from "../../src/pki/dev-ca.js";
import type { AddressInfo } from "node:net";

/** A request as the stand-in received it (raw bytes of target and body). */
export interface ReceivedRequest {
  method: string;
  /** Path and query exactly as sent. */
  target: string;
  headers: Record<string, string>;
  body: string;
  /** The answer: HTTP status, and the exchange's error code when it refused. */
  outcome: { status: number; code?: number };
}

/** An order the stand-in accepted. */
export interface AcceptedOrder {
  orderId: number;
  symbol: string;
  side: string;
  type: string;
  quantity: string;
  price?: string;
  clientOrderId?: string;
}

/** A test CA and a server certificate for 127.0.0.1 / localhost, for stand-ins served over HTTPS. */
export async function standInTls(): Promise<{ caPem: string; certPem: string; keyPem: string }> {
  const ca = await createDevCa("stand-in exchange test CA");
  const server = await issueServerCert(ca, { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
  return { caPem: ca.certPem, certPem: server.certPem, keyPem: server.keyPem };
}

/**
 * How a stand-in misbehaves after recording a request: `hang` never answers, `reset` destroys the
 * connection, `oversized` answers 200 with a JSON body of that many bytes.
 */
export type StandInFault = "none" | "hang" | "reset" | { oversized: number };

/** A refusal in the exchange's own terms. */
export class ExchangeRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** The HTTP side shared by the stand-ins: listen, record, answer, replay. */
export abstract class StandInExchange {
  readonly received: ReceivedRequest[] = [];
  readonly accepted: AcceptedOrder[] = [];
  /** Added to the stand-in's clock (to replay a request "later"). */
  clockOffsetMs = 0;
  /** What the stand-in does after recording a request (default: answer as the exchange would). */
  fault: StandInFault = "none";
  private server: Server | undefined;
  private scheme = "http";
  protected nextOrderId = 1000;

  /** @param accounts API key → secret (UTF-8), as the exchange stores them. */
  constructor(protected readonly accounts: ReadonlyMap<string, string>) {}

  /** Listens on loopback (HTTPS when `tls` is given); returns the base URL. */
  async start(opts: { tls?: { certPem: string; keyPem: string } } = {}): Promise<string> {
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    this.server = opts.tls ? createHttpsServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, handler) : createServer(handler);
    this.scheme = opts.tls ? "https" : "http";
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    return this.url;
  }

  get url(): string {
    const { port } = this.server!.address() as AddressInfo;
    return `${this.scheme}://127.0.0.1:${port}`;
  }

  async stop(): Promise<void> {
    // Hung requests hold their connections open: close them too.
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** Response headers the exchange adds to every answer (none unless a stand-in says so). */
  protected answerHeaders(): Record<string, string> {
    return {};
  }

  /** Sends a recorded request again, byte for byte except what `change` edits; returns status and JSON answer. */
  async replay(
    r: ReceivedRequest,
    change: { target?: (t: string) => string; body?: (b: string) => string } = {},
  ): Promise<{ status: number; json: Record<string, unknown> }> {
    const headers = Object.fromEntries(Object.entries(r.headers).filter(([k]) => !["host", "content-length", "connection", "transfer-encoding"].includes(k)));
    const res = await fetch(this.url + (change.target ? change.target(r.target) : r.target), {
      method: r.method,
      headers,
      ...(r.method === "GET" || r.method === "DELETE" ? {} : { body: change.body ? change.body(r.body) : r.body }),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  }

  protected now(): number {
    return Date.now() + this.clockOffsetMs;
  }

  /** Verifies and serves one request; throws ExchangeRefusal to refuse it. */
  protected abstract serve(r: ReceivedRequest, path: string, query: string): unknown;
  /** The exchange's error body. */
  protected abstract errorBody(e: ExchangeRefusal): unknown;

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const target = req.url ?? "/";
    const record: ReceivedRequest = {
      method: req.method ?? "",
      target,
      headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : (v ?? "")])),
      body: Buffer.concat(chunks).toString("utf8"),
      outcome: { status: 200 },
    };
    this.received.push(record);
    const fault = this.fault;
    if (fault === "hang") return;
    if (fault === "reset") {
      req.socket.destroy();
      return;
    }
    if (typeof fault === "object") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ pad: "x".repeat(Math.max(0, fault.oversized - 10)) }));
      return;
    }
    const answer = (status: number, json: unknown) => {
      res.writeHead(status, { "content-type": "application/json", ...this.answerHeaders() });
      res.end(JSON.stringify(json));
    };
    try {
      const q = target.indexOf("?");
      answer(200, this.serve(record, q < 0 ? target : target.slice(0, q), q < 0 ? "" : target.slice(q + 1)));
    } catch (e) {
      const err = e instanceof ExchangeRefusal ? e : new ExchangeRefusal(500, -1, "internal error of the stand-in");
      record.outcome = { status: err.status, code: err.code };
      answer(err.status, this.errorBody(err));
    }
  }

  protected order(o: Omit<AcceptedOrder, "orderId">): AcceptedOrder {
    const order = { orderId: this.nextOrderId++, ...o };
    this.accepted.push(order);
    return order;
  }
}

/** Equal hex MACs, compared in constant time. */
function macMatches(givenHex: string, expected: Buffer): boolean {
  if (!/^[0-9a-fA-F]{64}$/.test(givenHex)) return false;
  return timingSafeEqual(Buffer.from(givenHex, "hex"), expected);
}

/** Binance's answer for a key bound to IPs that may neither withdraw nor transfer. */
export const SAFE_BINANCE_RESTRICTIONS: Readonly<Record<string, unknown>> = {
  ipRestrict: true,
  createTime: 1698645219000,
  enableReading: true,
  enableWithdrawals: false,
  enableInternalTransfer: false,
  enableMargin: false,
  enableFutures: true,
  permitsUniversalTransfer: false,
  enableVanillaOptions: false,
  enableFixApiTrade: false,
  enableFixReadOnly: true,
  enableSpotAndMarginTrading: false,
  enablePortfolioMarginTrading: false,
};

/** Binance USDⓈ-M futures, checked as documented (see the file comment). */
export class StandInBinance extends StandInExchange {
  /** API key → its apiRestrictions answer (absent: SAFE_BINANCE_RESTRICTIONS). */
  readonly apiRestrictions = new Map<string, Record<string, unknown>>();

  /** Binance reports the IP's request weight used in the current minute with every answer. */
  protected override answerHeaders(): Record<string, string> {
    return { "x-mbx-used-weight-1m": String(this.received.length) };
  }

  protected errorBody(e: ExchangeRefusal): unknown {
    return { code: e.code, msg: e.message };
  }

  protected serve(r: ReceivedRequest, path: string, query: string): unknown {
    const route = `${r.method} ${path}`;
    if (!BINANCE_ROUTES.has(route)) throw new ExchangeRefusal(404, -1000, "Unknown endpoint.");
    const p = this.verify(r, query, r.body);
    if (route === "GET /sapi/v1/account/apiRestrictions") return this.apiRestrictions.get(r.headers["x-mbx-apikey"]!) ?? SAFE_BINANCE_RESTRICTIONS;
    if (route === "POST /fapi/v1/order") {
      const [symbol, side, type, quantity] = ["symbol", "side", "type", "quantity"].map((k) => p.get(k) ?? "");
      if (!symbol || !side || !type || !quantity) throw new ExchangeRefusal(400, -1102, "Mandatory parameter was not sent.");
      const o = this.order({
        symbol,
        side,
        type,
        quantity,
        ...(p.has("price") ? { price: p.get("price")! } : {}),
        ...(p.has("newClientOrderId") ? { clientOrderId: p.get("newClientOrderId")! } : {}),
      });
      return {
        orderId: o.orderId,
        symbol,
        status: "NEW",
        clientOrderId: o.clientOrderId ?? "",
        price: o.price ?? "0",
        avgPrice: "0.00",
        origQty: quantity,
        executedQty: "0",
        cumQuote: "0",
        timeInForce: p.get("timeInForce") ?? "GTC",
        type,
        side,
        updateTime: Number(p.get("timestamp")),
      };
    }
    const usdt = {
      asset: "USDT",
      walletBalance: "1000.00000000",
      availableBalance: "1000.00000000",
      crossWalletBalance: "1000.00000000",
      balance: "1000.00000000",
      marginBalance: "1000.00000000",
      crossUnPnl: "0.00000000",
      maxWithdrawAmount: "1000.00000000",
      updateTime: 1,
    };
    if (route === "GET /fapi/v2/balance") return [{ accountAlias: "stand-in", ...usdt }];
    return { totalWalletBalance: "1000.00000000", availableBalance: "1000.00000000", assets: [usdt], positions: [] };
  }

  /** Binance's SIGNED endpoint checks: key, signature, timestamp. */
  protected verify(r: ReceivedRequest, query: string, body: string): URLSearchParams {
    const apiKey = r.headers["x-mbx-apikey"];
    if (!apiKey || !/^[\x21-\x7e]+$/.test(apiKey)) throw new ExchangeRefusal(401, -2014, "API-key format invalid.");
    const secret = this.accounts.get(apiKey);
    if (secret === undefined) throw new ExchangeRefusal(401, -2015, "Invalid API-key, IP, or permissions for action.");

    const [unsignedQuery, qSig] = withoutSignature(query);
    const [unsignedBody, bSig] = withoutSignature(body);
    const signatures = [qSig, bSig].filter((s): s is string => s !== undefined);
    if (signatures.length !== 1) throw new ExchangeRefusal(400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.");
    if (
      !macMatches(
        signatures[0]!,
        createHmac("sha256", secret)
          .update(unsignedQuery + unsignedBody)
          .digest(),
      )
    ) {
      throw new ExchangeRefusal(400, -1022, "Signature for this request is not valid.");
    }

    const params = new URLSearchParams(unsignedQuery);
    for (const [k, v] of new URLSearchParams(unsignedBody)) params.append(k, v);
    const timestamp = Number(params.get("timestamp"));
    if (!params.has("timestamp") || !Number.isSafeInteger(timestamp))
      throw new ExchangeRefusal(400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.");
    const recvWindow = params.has("recvWindow") ? Number(params.get("recvWindow")) : 5000;
    if (!Number.isSafeInteger(recvWindow) || recvWindow <= 0 || recvWindow > 60_000)
      throw new ExchangeRefusal(400, -1131, "recvWindow must be less than 60000");
    const serverTime = this.now();
    if (!(timestamp < serverTime + 1000 && serverTime - timestamp <= recvWindow)) {
      throw new ExchangeRefusal(400, -1021, "Timestamp for this request is outside of the recvWindow.");
    }
    return params;
  }
}

const BINANCE_ROUTES = new Set(["POST /fapi/v1/order", "GET /fapi/v3/account", "GET /fapi/v2/balance", "GET /sapi/v1/account/apiRestrictions"]);

/** A form string without its `signature=` parameter, and that parameter's value. */
function withoutSignature(form: string): [string, string | undefined] {
  const pairs = form === "" ? [] : form.split("&");
  const kept = pairs.filter((p) => !p.startsWith("signature="));
  const sig = pairs.filter((p) => p.startsWith("signature="));
  if (sig.length > 1) throw new ExchangeRefusal(400, -1101, "Duplicate values for parameter 'signature'.");
  return [kept.join("&"), sig[0]?.slice("signature=".length)];
}

/** Bybit's query-api result for a key bound to IPs that may trade but neither withdraw nor transfer. */
export function safeBybitKeyInfo(apiKey: string): Record<string, unknown> {
  return {
    id: "13770661",
    note: "custos",
    apiKey,
    readOnly: 0,
    secret: "",
    permissions: { ContractTrade: ["Order", "Position"], Spot: ["SpotTrade"], Wallet: [], Options: [], Derivatives: [], Exchange: [], Earn: [], NFT: [] },
    ips: ["203.0.113.7"],
    type: 1,
    deadlineDay: 0,
    expiredAt: "",
    createdAt: "2024-01-01T00:00:00Z",
    uta: 1,
    userID: 24617703,
    inviterID: 0,
    vipLevel: "No VIP",
    mktMakerLevel: "0",
    affiliateID: 0,
    rsaPublicKey: "",
    isMaster: true,
    parentUid: "0",
    kycLevel: "LEVEL_DEFAULT",
    kycRegion: "",
  };
}

/** Bybit v5, checked as documented (see the file comment). */
export class StandInBybit extends StandInExchange {
  /** API key → changes to its query-api result (absent: safeBybitKeyInfo). */
  readonly apiKeyInfo = new Map<string, Record<string, unknown>>();

  protected errorBody(e: ExchangeRefusal): unknown {
    return { retCode: e.code, retMsg: e.message, result: {}, retExtInfo: {}, time: this.now() };
  }

  protected serve(r: ReceivedRequest, path: string, query: string): unknown {
    const route = `${r.method} ${path}`;
    if (route !== "POST /v5/order/create" && route !== "GET /v5/account/wallet-balance" && route !== "GET /v5/user/query-api")
      throw new ExchangeRefusal(404, 10001, "Unknown endpoint.");
    const serverTime = this.verify(r, query);
    const ok = (result: unknown) => ({ retCode: 0, retMsg: "OK", result, retExtInfo: {}, time: serverTime });
    if (route === "GET /v5/user/query-api") {
      const apiKey = r.headers["x-bapi-api-key"]!;
      return ok({ ...safeBybitKeyInfo(apiKey), ...this.apiKeyInfo.get(apiKey) });
    }
    if (route === "GET /v5/account/wallet-balance") {
      return ok({ list: [{ accountType: "UNIFIED", totalWalletBalance: "1000", coin: [{ coin: "USDT", walletBalance: "1000", equity: "1000" }] }] });
    }
    const o = JSON.parse(r.body) as Record<string, string>;
    const order = this.order({
      symbol: o.symbol ?? "",
      side: o.side ?? "",
      type: o.orderType ?? "",
      quantity: o.qty ?? "",
      ...(o.price ? { price: o.price } : {}),
      ...(o.orderLinkId ? { clientOrderId: o.orderLinkId } : {}),
    });
    return ok({ orderId: String(order.orderId), orderLinkId: order.clientOrderId ?? "" });
  }

  /** Bybit v5's checks: API key, signature, timestamp within the receive window; returns the server time. */
  protected verify(r: ReceivedRequest, query: string): number {
    const h = (name: string) => r.headers[name.toLowerCase()] ?? "";
    const apiKey = h("X-BAPI-API-KEY");
    const secret = this.accounts.get(apiKey);
    if (secret === undefined) throw new ExchangeRefusal(200, 10003, "API key is invalid.");
    const timestamp = h("X-BAPI-TIMESTAMP");
    const recvWindow = h("X-BAPI-RECV-WINDOW") || "5000";
    const payload = timestamp + apiKey + recvWindow + (r.method === "GET" ? query : r.body);
    if (!macMatches(h("X-BAPI-SIGN"), createHmac("sha256", secret).update(payload).digest())) {
      throw new ExchangeRefusal(200, 10004, "Error sign, please check your signature generation algorithm.");
    }
    const serverTime = this.now();
    const ts = Number(timestamp);
    if (!/^\d+$/.test(timestamp) || !(serverTime - Number(recvWindow) <= ts && ts < serverTime + 1000)) {
      throw new ExchangeRefusal(200, 10002, "invalid request, please check your server timestamp or recv_window param");
    }
    return serverTime;
  }
}

/** An exchange's error answer, with its HTTP status. */
export class CannedError {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {}
}

/** A canned answer: JSON, one computed from the request URL, or an error. */
export type Canned = unknown | ((url: URL) => unknown) | CannedError;

/**
 * Any exchange's REST API as canned answers by "METHOD /path" (unlisted routes: `fallback`),
 * recording every request byte for byte. It checks no signature: tests compare what ccxt sent
 * through custos with what the same ccxt sent holding the plaintext secret.
 */
export class StandInCanned extends StandInExchange {
  constructor(
    private readonly answers: Readonly<Record<string, Canned>>,
    private readonly fallback: unknown = {},
  ) {
    super(new Map());
  }

  protected errorBody(e: ExchangeRefusal): unknown {
    return (e as ExchangeRefusal & { body?: unknown }).body ?? { code: e.code, msg: e.message };
  }

  protected serve(r: ReceivedRequest, path: string): unknown {
    const answer = this.answers[`${r.method} ${path}`];
    if (answer instanceof CannedError) {
      const refusal = Object.assign(new ExchangeRefusal(answer.status, 0, "canned error"), { body: answer.body });
      throw refusal;
    }
    return typeof answer === "function" ? (answer as (url: URL) => unknown)(new URL(r.target, this.url)) : (answer ?? this.fallback);
  }
}
