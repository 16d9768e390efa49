import type { ClientDuplexStream } from "@grpc/grpc-js";
import {
  SignatureEncoding,
  type ExchangeRequest,
  type SignResponse,
  type SignStreamRequest,
  type SignStreamResponse,
  type SignedExchangeRequest,
  type SignerClient,
} from "../gen/custos/v1/signer.js";
import { readConnectionFile, signerClient, unary, type ClientIdentity } from "./connection.js";

/** An exchange request as a trading engine describes it; everything but key, method and path is optional. */
export interface ExchangeRequestInput {
  keyId: string;
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: string;
  /** The exact query string (without "?"), or ordered pairs. */
  query?: string | Array<[string, string]>;
  body?: string | Uint8Array;
  /** Pin a key version (default: the active one). */
  version?: number;
  /** Caller-chosen values (default: custos's clock). */
  timestampMs?: number;
  nonce?: string;
  expires?: number;
  recvWindowMs?: number;
  /** OKX, Bitget (sent in clear). Not KuCoin: its passphrase is part of the key, and a request carrying one is refused. */
  passphrase?: string;
  /** The API key's version at the exchange (KuCoin: "2" or "3"; default 2). */
  apiKeyVersion?: string;
  /** Kraken Futures: no Nonce, as ccxt sends it (the key's policy must set allowUntimedRequests). */
  omitNonce?: boolean;
}

/** What to attach to the request. */
export interface SignedRequest {
  headers: Record<string, string>;
  params: Array<[string, string]>;
  query: string;
  body: string;
  signature: string;
  timestamp: string;
  keyVersion: number;
  apiKeyId: string;
  endpointClass: string;
}

/** A denial inside a stream, with the same reason and rule a unary call would carry. */
export class StreamDenial extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    readonly rule: string,
    message: string,
  ) {
    super(`${reason}${rule ? ` (${rule})` : ""}: ${message}`);
  }
}

/**
 * The TypeScript client of custos's Signer: typed, promise-based, mTLS. The channel reconnects
 * by itself (grpc-js); the stream helper reopens its stream on the next call after a failure,
 * failing only the calls that were in flight.
 */
export class CustosClient {
  private readonly signer: SignerClient;
  private stream: SignStreamSession | undefined;

  constructor(address: string, identity: ClientIdentity, serverName = "localhost") {
    this.signer = signerClient(address, identity, serverName);
  }

  /** From a data dir's connection.json; the dev trading client's certificate unless `identity` is given. */
  static fromDataDir(dataDir: string, identity?: Omit<ClientIdentity, "caPath">): CustosClient {
    const conn = readConnectionFile(dataDir);
    const id = identity ?? conn.client;
    if (!id) throw new Error(`no client certificate in ${dataDir}/connection.json: pass one`);
    return new CustosClient(conn.grpc, { caPath: conn.caPath, certPath: id.certPath, keyPath: id.keyPath }, conn.serverName);
  }

  /** Raw signature over `payload` (for keys without a dialect, or whose policy allows raw signing). */
  sign(keyId: string, payload: Uint8Array, version = 0): Promise<SignResponse> {
    return unary(this.signer, "sign", { keyId, version, payload: Buffer.from(payload), encoding: SignatureEncoding.SIGNATURE_ENCODING_RAW });
  }

  async signExchangeRequest(input: ExchangeRequestInput): Promise<SignedRequest> {
    return fromWire(await unary(this.signer, "signExchangeRequest", toWire(input)));
  }

  /** One shared bidirectional stream for high rates (answers may come out of order). */
  streamSession(): SignStreamSession {
    if (!this.stream || this.stream.broken) this.stream = new SignStreamSession(this.signer);
    return this.stream;
  }

  close(): void {
    this.stream?.close();
    this.signer.close();
  }
}

/** Requests over one `SignStream`, matched to answers by request id. */
export class SignStreamSession {
  private readonly call: ClientDuplexStream<SignStreamRequest, SignStreamResponse>;
  private readonly pending = new Map<string, { resolve: (r: SignStreamResponse) => void; reject: (e: unknown) => void }>();
  private nextId = 0;
  broken = false;

  constructor(signer: SignerClient) {
    this.call = signer.signStream();
    this.call.on("data", (m: SignStreamResponse) => {
      const p = this.pending.get(m.requestId);
      if (!p) return;
      this.pending.delete(m.requestId);
      p.resolve(m);
    });
    const fail = (e: unknown) => {
      this.broken = true;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    this.call.on("error", fail);
    this.call.on("end", () => fail(new Error("custos closed the sign stream")));
  }

  async signExchangeRequest(input: ExchangeRequestInput): Promise<SignedRequest> {
    const m = await this.send({ $case: "exchangeRequest", exchangeRequest: toWire(input) });
    if (m.result?.$case === "exchangeResponse") return fromWire(m.result.exchangeResponse);
    throw denial(m);
  }

  async sign(keyId: string, payload: Uint8Array, version = 0): Promise<SignResponse> {
    const m = await this.send({
      $case: "request",
      request: { keyId, version, payload: Buffer.from(payload), encoding: SignatureEncoding.SIGNATURE_ENCODING_RAW },
    });
    if (m.result?.$case === "response") return m.result.response;
    throw denial(m);
  }

  close(): void {
    this.call.end();
  }

  private send(kind: SignStreamRequest["kind"]): Promise<SignStreamResponse> {
    if (this.broken) return Promise.reject(new Error("the sign stream failed; open a new session"));
    const requestId = String(++this.nextId);
    return new Promise((resolve, reject) => {
      this.pending.set(requestId, { resolve, reject });
      this.call.write({ requestId, kind });
    });
  }
}

function denial(m: SignStreamResponse): StreamDenial {
  const d = m.result?.$case === "denial" ? m.result.denial : { code: 13, reason: "INTERNAL", rule: "", message: "unexpected answer" };
  return new StreamDenial(d.code, d.reason, d.rule, d.message);
}

function toWire(i: ExchangeRequestInput): ExchangeRequest {
  return {
    keyId: i.keyId,
    version: i.version ?? 0,
    method: i.method,
    path: i.path,
    query: typeof i.query === "string" ? i.query : "",
    queryParams: Array.isArray(i.query) ? i.query.map(([name, value]) => ({ name, value })) : [],
    body: typeof i.body === "string" ? Buffer.from(i.body, "utf8") : Buffer.from(i.body ?? new Uint8Array(0)),
    timestampMs: String(i.timestampMs ?? 0),
    nonce: i.nonce ?? "",
    expires: String(i.expires ?? 0),
    recvWindowMs: i.recvWindowMs ?? 0,
    passphrase: i.passphrase ?? "",
    apiKeyVersion: i.apiKeyVersion ?? "",
    omitNonce: i.omitNonce ?? false,
  };
}

function fromWire(r: SignedExchangeRequest): SignedRequest {
  return {
    headers: Object.fromEntries(r.headers.map((h) => [h.name, h.value])),
    params: r.params.map((p) => [p.name, p.value]),
    query: r.query,
    body: r.body.toString("utf8"),
    signature: r.signature,
    timestamp: r.timestamp,
    keyVersion: r.keyVersion,
    apiKeyId: r.apiKeyId,
    endpointClass: r.endpointClass,
  };
}
