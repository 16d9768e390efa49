import { type ClientDuplexStream, type ServiceError, status } from "@grpc/grpc-js";
import {
  SignatureEncoding,
  type ExchangeRequest,
  type ExchangeResponse,
  type SignResponse,
  type SignStreamRequest,
  type SignStreamResponse,
  type SignedExchangeRequest,
} from "../gen/custos/v1/signer.js";
import { connectionAddresses, readConnectionFile, unary, type ClientIdentity } from "./connection.js";
import { custosReason, isFailoverError, mayHaveBeenSent, ReplicaSet } from "./failover.js";

export { NotSent, refusedBeforeSending } from "./failover.js";

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

/** The exchange's answer to a request custos signed and sent (SendExchangeRequest), verbatim. */
export interface ExchangeReply {
  status: number;
  /** Lower-case names, in the order the exchange sent them. */
  headers: Array<[string, string]>;
  body: Buffer;
  keyVersion: number;
  endpointClass: string;
  /** custos's round trip to the exchange, in microseconds. */
  roundTripUs: number;
}

/**
 * A SendExchangeRequest that failed after it may have reached the exchange: the exchange did not
 * answer in time (reason EXCHANGE_UNAVAILABLE), the connection to custos was lost mid-call, a
 * deadline passed, or its stream broke before the answer. It was not sent again. Check the
 * exchange (by the order's client id) before sending it again. `code` and `reason` are the
 * failure's gRPC status and custos reason ("" when custos gave none); `cause` is the failure.
 */
export class SendOutcomeUnknown extends Error {
  readonly code: number;
  readonly reason: string;
  constructor(cause: unknown) {
    const err = cause as Partial<ServiceError> | undefined;
    const reason = custosReason(cause);
    super(`the exchange may have the request (${reason || (err?.details ?? "no answer from custos")}): check it before sending again; it was not sent again`, {
      cause,
    });
    this.code = typeof err?.code === "number" ? err.code : status.UNAVAILABLE;
    this.reason = reason;
  }
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
 * The TypeScript client of custos's Signer: typed, promise-based, mTLS. Given the addresses of
 * several replicas of one deployment it fails over: a sign call that ends UNAVAILABLE is retried
 * on the next replica (see failover.ts for why that is safe), and a stream session that breaks
 * re-opens on the next replica and re-sends the sign requests that had no answer. A send
 * (SendExchangeRequest: custos places the order) is never sent twice: it fails over only when it
 * provably reached no replica or custos refused it before signing (ReplicaSet.callOnce).
 */
export class CustosClient {
  private readonly replicas: ReplicaSet;
  private stream: SignStreamSession | undefined;

  /** `address`: one replica, or every replica of the deployment (the first is used first). */
  constructor(address: string | readonly string[], identity: ClientIdentity, serverName = "localhost") {
    this.replicas = new ReplicaSet(typeof address === "string" ? [address] : address, identity, serverName);
  }

  /**
   * From a data dir's connection.json; the dev trading client's certificate unless `identity` is
   * given. Every replica the file lists is used (failover); `otherReplicas`: more addresses of the
   * same deployment, tried after those.
   */
  static fromDataDir(dataDir: string, identity?: Omit<ClientIdentity, "caPath">, otherReplicas: readonly string[] = []): CustosClient {
    const conn = readConnectionFile(dataDir);
    const id = identity ?? conn.client;
    if (!id) throw new Error(`no client certificate in ${dataDir}/connection.json: pass one`);
    const addresses = [...new Set([...connectionAddresses(conn), ...otherReplicas])];
    return new CustosClient(addresses, { caPath: conn.caPath, certPath: id.certPath, keyPath: id.keyPath }, conn.serverName);
  }

  /** The address of the replica the client is using now. */
  get activeAddress(): string {
    return this.replicas.addresses[this.replicas.index] as string;
  }

  /** Raw signature over `payload` (for keys without a dialect, or whose policy allows raw signing). */
  sign(keyId: string, payload: Uint8Array, version = 0): Promise<SignResponse> {
    const req = { keyId, version, payload: Buffer.from(payload), encoding: SignatureEncoding.SIGNATURE_ENCODING_RAW };
    return this.replicas.call((signer) => unary(signer, "sign", req));
  }

  async signExchangeRequest(input: ExchangeRequestInput): Promise<SignedRequest> {
    const req = toWire(input);
    return fromWire(await this.replicas.call((signer) => unary(signer, "signExchangeRequest", req)));
  }

  /**
   * custos signs the request and sends it to the exchange itself (the only use of an `egressOnly`
   * key); the exchange's answer, refusals included, comes back verbatim. Sent at most once: a
   * replica that cannot be reached is skipped ({@link NotSent} when none can), and after the
   * call is issued only custos's refusals before signing (HSM_UNAVAILABLE, AUDIT_BACKLOG) move on.
   * custos's refusals come through as they came (nothing was sent); any other failure — reason
   * EXCHANGE_UNAVAILABLE, a connection lost mid-call, a deadline — is a {@link SendOutcomeUnknown}:
   * the exchange may have the order, so check it (by the order's client id) before sending again.
   * `readyTimeoutMs`: how long to wait for a replica's connection before trying the next one.
   */
  async sendExchangeRequest(input: ExchangeRequestInput, readyTimeoutMs = 2_000): Promise<ExchangeReply> {
    const req = toWire(input);
    try {
      return replyFromWire(await this.replicas.callOnce((signer) => unary(signer, "sendExchangeRequest", req), readyTimeoutMs));
    } catch (e) {
      throw mayHaveBeenSent(e) ? new SendOutcomeUnknown(e) : e;
    }
  }

  /** One shared bidirectional stream for high rates (answers may come out of order). */
  streamSession(): SignStreamSession {
    if (!this.stream || this.stream.broken) this.stream = new SignStreamSession(this.replicas);
    return this.stream;
  }

  close(): void {
    this.stream?.close();
    this.replicas.close();
  }
}

/**
 * Requests over one `SignStream`, matched to answers by request id. When the stream breaks
 * (UNAVAILABLE, or the replica ends it while the session is open) it re-opens on the next
 * replica and re-sends every request still waiting for an answer; after a round of every
 * replica without a single answer it gives up, failing the waiting calls, and is `broken`.
 */
export class SignStreamSession {
  private call: ClientDuplexStream<SignStreamRequest, SignStreamResponse>;
  private callReplica: number;
  private readonly pending = new Map<string, { kind: SignStreamRequest["kind"]; resolve: (r: SignStreamResponse) => void; reject: (e: unknown) => void }>();
  private nextId = 0;
  private closed = false;
  private reopensWithoutAnswer = 0;
  broken = false;

  constructor(private readonly replicas: ReplicaSet) {
    this.callReplica = replicas.index;
    this.call = this.open(this.callReplica);
  }

  async signExchangeRequest(input: ExchangeRequestInput): Promise<SignedRequest> {
    const m = await this.send({ $case: "exchangeRequest", exchangeRequest: toWire(input) });
    if (m.result?.$case === "exchangeResponse") return fromWire(m.result.exchangeResponse);
    throw denial(m);
  }

  /** SendExchangeRequest on the stream; if the stream breaks before its answer it fails with {@link SendOutcomeUnknown}, never re-sent. */
  async sendExchangeRequest(input: ExchangeRequestInput): Promise<ExchangeReply> {
    const m = await this.send({ $case: "sendExchangeRequest", sendExchangeRequest: toWire(input) });
    if (m.result?.$case === "exchangeReply") return replyFromWire(m.result.exchangeReply);
    const refused = denial(m);
    throw mayHaveBeenSent(refused) ? new SendOutcomeUnknown(refused) : refused;
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
    this.closed = true;
    this.call.end();
  }

  private open(replica: number): ClientDuplexStream<SignStreamRequest, SignStreamResponse> {
    const call = this.replicas.signer(replica).signStream();
    call.on("data", (m: SignStreamResponse) => {
      if (call !== this.call) return;
      this.reopensWithoutAnswer = 0;
      const p = this.pending.get(m.requestId);
      if (!p) return;
      this.pending.delete(m.requestId);
      p.resolve(m);
    });
    call.on("error", (e) => this.lost(call, e));
    call.on("end", () => this.lost(call, undefined));
    return call;
  }

  /** The stream `call` failed (`e`) or was ended by the replica (undefined). */
  private lost(call: ClientDuplexStream<SignStreamRequest, SignStreamResponse>, e: unknown): void {
    if (call !== this.call || this.broken) return;
    const failover = !this.closed && (e === undefined || isFailoverError(e));
    if (failover && this.reopensWithoutAnswer < this.replicas.addresses.length) {
      this.reopensWithoutAnswer++;
      call.cancel();
      this.callReplica = this.replicas.advance(this.callReplica);
      this.call = this.open(this.callReplica);
      for (const [requestId, p] of this.pending) {
        // A sign is safe to repeat; a send may already be at the exchange.
        if (p.kind?.$case === "sendExchangeRequest") {
          this.pending.delete(requestId);
          p.reject(new SendOutcomeUnknown(e));
        } else {
          this.call.write({ requestId, kind: p.kind });
        }
      }
      return;
    }
    this.broken = true;
    const why = e ?? new Error("custos closed the sign stream");
    for (const p of this.pending.values()) p.reject(why);
    this.pending.clear();
  }

  private send(kind: SignStreamRequest["kind"]): Promise<SignStreamResponse> {
    if (this.broken) return Promise.reject(new Error("the sign stream failed; open a new session"));
    const requestId = String(++this.nextId);
    return new Promise((resolve, reject) => {
      this.pending.set(requestId, { kind, resolve, reject });
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

function replyFromWire(r: ExchangeResponse): ExchangeReply {
  return {
    status: r.status,
    headers: r.headers.map((h) => [h.name, h.value]),
    body: r.body,
    keyVersion: r.keyVersion,
    endpointClass: r.endpointClass,
    roundTripUs: Number(r.roundTripUs),
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
