import type { ServerDuplexStream, ServerUnaryCall, sendUnaryData } from "@grpc/grpc-js";
import type { Logger } from "pino";
import {
  SignatureEncoding,
  type ExchangeRequest,
  type SignRequest,
  type SignResponse,
  type SignStreamRequest,
  type SignStreamResponse,
  type SignedExchangeRequest,
  type SignedWebSocketAuth,
  type SignerServer,
  type WebSocketAuthRequest,
} from "../../gen/custos/v1/signer.js";
import { CustosError } from "../../errors.js";
import type { ExchangeSignRequest, ExchangeSignResult, SignResult, SignService } from "../../signing/sign-service.js";
import { callerOf } from "./caller.js";
import { describeError, ruleOf, toServiceError } from "./status.js";

let requestCounter = 0;
const nextRequestId = () => (++requestCounter).toString(36);

/** Thin handlers: decode → domain → encode; every rule lives in SignService. */
export function signerHandlers(signer: SignService, log: Logger, tracker: InFlight): SignerServer {
  return {
    sign(call: ServerUnaryCall<SignRequest, SignResponse>, callback: sendUnaryData<SignResponse>): void {
      const done = tracker.start();
      const req = call.request;
      signer
        .sign(callerOf(call), { keyId: req.keyId, version: req.version, payload: req.payload })
        .then(
          (result) => callback(null, encode(result, req.encoding)),
          (e: unknown) => callback(toServiceError(e, log, nextRequestId())),
        )
        .finally(done);
    },

    signExchangeRequest(call: ServerUnaryCall<ExchangeRequest, SignedExchangeRequest>, callback: sendUnaryData<SignedExchangeRequest>): void {
      const done = tracker.start();
      Promise.resolve()
        .then(() => signer.signExchange(callerOf(call), exchangeInput(call.request)))
        .then(
          (result) => callback(null, encodeExchange(result)),
          (e: unknown) => callback(toServiceError(e, log, nextRequestId())),
        )
        .finally(done);
    },

    signWebSocketAuth(call: ServerUnaryCall<WebSocketAuthRequest, SignedWebSocketAuth>, callback: sendUnaryData<SignedWebSocketAuth>): void {
      const done = tracker.start();
      const r = call.request;
      Promise.resolve()
        .then(() =>
          signer.signWebSocketAuth(callerOf(call), {
            keyId: r.keyId,
            version: r.version,
            input: {
              ...(r.challenge ? { challenge: r.challenge } : {}),
              ...(r.channel ? { channel: r.channel } : {}),
              ...(r.event ? { event: r.event } : {}),
              ...(r.wsMethod ? { request: { method: r.wsMethod, params: r.wsParams.map((p): [string, string] => [p.name, p.value]) } } : {}),
            },
            timestampMs: Number(r.timestampMs),
            nonce: r.nonce,
            expires: Number(r.expires),
            passphrase: r.passphrase,
          }),
        )
        .then(
          (res) =>
            callback(null, {
              fields: res.fields.map(([name, value]) => ({ name, value })),
              message: res.message,
              signature: res.signature,
              timestamp: res.timestamp,
              keyVersion: res.version,
              apiKeyId: res.apiKeyId,
            }),
          (e: unknown) => callback(toServiceError(e, log, nextRequestId())),
        )
        .finally(done);
    },

    signStream(stream: ServerDuplexStream<SignStreamRequest, SignStreamResponse>): void {
      // The identity is fixed for the stream's connection: read it once.
      const caller = callerOf(stream);
      let pending = 0;
      let ended = false;
      const finishIfDone = () => {
        if (ended && pending === 0) stream.end();
      };
      stream.on("data", (msg: SignStreamRequest) => {
        const done = tracker.start();
        pending++;
        const reply = (out: SignStreamResponse) => {
          pending--;
          done();
          if (!stream.destroyed && stream.writable) stream.write(out);
          finishIfDone();
        };
        const kind = msg.kind;
        const deny = (e: unknown) => {
          const d = describeError(e);
          if (d.reason === "INTERNAL" || d.reason === "HSM_ERROR") log.error({ event: "rpc.error", reason: d.reason, err: e }, "stream sign failed");
          reply({ requestId: msg.requestId, result: { $case: "denial", denial: { code: d.code, reason: d.reason, message: d.message, rule: ruleOf(e) ?? "" } } });
        };
        if (kind?.$case === "request") {
          const req = kind.request;
          signer.sign(caller, { keyId: req.keyId, version: req.version, payload: req.payload }).then(
            (result) => reply({ requestId: msg.requestId, result: { $case: "response", response: encode(result, req.encoding) } }),
            deny,
          );
        } else if (kind?.$case === "exchangeRequest") {
          Promise.resolve()
            .then(() => signer.signExchange(caller, exchangeInput(kind.exchangeRequest)))
            .then((result) => reply({ requestId: msg.requestId, result: { $case: "exchangeResponse", exchangeResponse: encodeExchange(result) } }), deny);
        } else {
          reply({ requestId: msg.requestId, result: { $case: "denial", denial: { code: 3, reason: "INVALID_ARGUMENT", message: "request is missing", rule: "" } } });
        }
      });
      stream.on("end", () => {
        ended = true;
        finishIfDone();
      });
      stream.on("error", () => undefined); // client went away; pending replies are dropped
    },
  };
}

const METHODS = new Set(["GET", "POST", "PUT", "DELETE"]);

/** The wire request → the domain's; ordered pairs become a percent-encoded query string. */
function exchangeInput(r: ExchangeRequest): ExchangeSignRequest {
  const method = r.method.toUpperCase();
  if (!METHODS.has(method)) throw new CustosError("INVALID_ARGUMENT", "method must be GET, POST, PUT or DELETE");
  if (!r.path.startsWith("/")) throw new CustosError("INVALID_ARGUMENT", "path must start with /");
  if (r.query && r.queryParams.length) throw new CustosError("INVALID_ARGUMENT", "give query or query_params, not both");
  const query = r.query || r.queryParams.map((p) => `${encodeURIComponent(p.name)}=${encodeURIComponent(p.value)}`).join("&");
  return {
    keyId: r.keyId,
    version: r.version,
    request: { method: method as "GET", path: r.path, query, body: r.body.toString("utf8") },
    timestampMs: Number(r.timestampMs),
    nonce: r.nonce,
    expires: Number(r.expires),
    recvWindowMs: r.recvWindowMs,
    passphrase: r.passphrase,
    apiKeyVersion: r.apiKeyVersion,
    omitNonce: r.omitNonce,
  };
}

function encodeExchange(r: ExchangeSignResult): SignedExchangeRequest {
  return {
    headers: r.headers.map(([name, value]) => ({ name, value })),
    params: r.params.map(([name, value]) => ({ name, value })),
    query: r.query,
    body: Buffer.from(r.body, "utf8"),
    signature: r.signature,
    timestamp: r.timestamp,
    keyVersion: r.version,
    apiKeyId: r.apiKeyId,
    endpointClass: r.endpointClass,
  };
}

function encode(r: SignResult, encoding: SignatureEncoding): SignResponse {
  // Object literals, not spreads: this runs once per signature.
  switch (encoding) {
    case SignatureEncoding.SIGNATURE_ENCODING_HEX:
      return { keyVersion: r.version, apiKeyId: r.apiKeyId, signature: EMPTY, signatureText: r.signature.toString("hex") };
    case SignatureEncoding.SIGNATURE_ENCODING_BASE64:
      return { keyVersion: r.version, apiKeyId: r.apiKeyId, signature: EMPTY, signatureText: r.signature.toString("base64") };
    default:
      return { keyVersion: r.version, apiKeyId: r.apiKeyId, signature: r.signature, signatureText: "" };
  }
}

const EMPTY = Buffer.alloc(0);

/** Counts calls in flight so shutdown can drain them before the audit log closes. */
export class InFlight {
  private count = 0;
  private waiters: Array<() => void> = [];

  start(): () => void {
    this.count++;
    let finished = false;
    return () => {
      if (finished) return;
      finished = true;
      if (--this.count === 0) for (const w of this.waiters.splice(0)) w();
    };
  }

  get active(): number {
    return this.count;
  }

  drained(): Promise<void> {
    return this.count === 0 ? Promise.resolve() : new Promise((r) => this.waiters.push(r));
  }
}
