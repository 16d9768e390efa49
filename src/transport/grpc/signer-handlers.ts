import type { ServerDuplexStream, ServerUnaryCall, sendUnaryData } from "@grpc/grpc-js";
import type { Logger } from "pino";
import {
  SignatureEncoding,
  type ExchangeRequest,
  type ExchangeResponse,
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
import { nextRequestId } from "../../request-id.js";
import type { ExchangeSendResult, ExchangeSignRequest, ExchangeSignResult, SignResult, SignService } from "../../signing/sign-service.js";
import { callerOf } from "./caller.js";
import { describeError, ruleOf } from "./status.js";
import { isMalformed, malformedError, type EdgeRefusals, type MalformedRequest } from "./refusals.js";

/**
 * Thin handlers: decode → domain → encode; every rule lives in SignService. Refusals decided
 * here (a malformed message, an unknown method) are audited through `edge`.
 */
export function signerHandlers(signer: SignService, log: Logger, tracker: InFlight, edge: EdgeRefusals): SignerServer {
  return {
    sign(call: ServerUnaryCall<SignRequest, SignResponse>, callback: sendUnaryData<SignResponse>): void {
      const done = tracker.start();
      const req = call.request;
      signer
        .sign(callerOf(call), { keyId: req.keyId, version: req.version, payload: req.payload })
        .then(
          (result) => callback(null, encode(result, req.encoding)),
          (e: unknown) => callback(edge.answer(call, e, nextRequestId(), req.keyId)),
        )
        .finally(done);
    },

    signExchangeRequest(call: ServerUnaryCall<ExchangeRequest, SignedExchangeRequest>, callback: sendUnaryData<SignedExchangeRequest>): void {
      const done = tracker.start();
      Promise.resolve()
        .then(() => signer.signExchange(callerOf(call), exchangeInput(call.request)))
        .then(
          (result) => callback(null, encodeExchange(result)),
          (e: unknown) => callback(edge.answer(call, e, nextRequestId(), call.request.keyId)),
        )
        .finally(done);
    },

    sendExchangeRequest(call: ServerUnaryCall<ExchangeRequest, ExchangeResponse>, callback: sendUnaryData<ExchangeResponse>): void {
      const done = tracker.start();
      Promise.resolve()
        .then(() => signer.sendExchange(callerOf(call), exchangeInput(call.request)))
        .then(
          (result) => callback(null, encodeReply(result)),
          (e: unknown) => callback(edge.answer(call, e, nextRequestId(), call.request.keyId)),
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
          (e: unknown) => callback(edge.answer(call, e, nextRequestId(), r.keyId)),
        )
        .finally(done);
    },

    signStream(stream: ServerDuplexStream<SignStreamRequest, SignStreamResponse>): void {
      // The identity is fixed for the stream's connection: read it once.
      const caller = callerOf(stream);
      const rpc = stream.getPath();
      let pending = 0;
      let ended = false;
      const finishIfDone = () => {
        if (ended && pending === 0) stream.end();
      };
      stream.on("data", (data: SignStreamRequest | MalformedRequest) => {
        const done = tracker.start();
        pending++;
        const reply = (out: SignStreamResponse) => {
          pending--;
          done();
          if (!stream.destroyed && stream.writable) stream.write(out);
          finishIfDone();
        };
        if (isMalformed(data)) {
          // Not decodable, so no request id to answer under: the denial carries "".
          const err = malformedError(rpc);
          edge.audit(caller, rpc, err);
          const d = describeError(err);
          reply({ requestId: "", result: { $case: "denial", denial: { code: d.code, reason: d.reason, message: d.message, rule: "" } } });
          return;
        }
        const msg = data;
        const kind = msg.kind;
        const deny = (e: unknown, key?: string) => {
          edge.audit(caller, rpc, e, key);
          const d = describeError(e);
          if (d.reason === "INTERNAL" || d.reason === "HSM_ERROR") log.error({ event: "rpc.error", reason: d.reason, err: e }, "stream sign failed");
          reply({
            requestId: msg.requestId,
            result: { $case: "denial", denial: { code: d.code, reason: d.reason, message: d.message, rule: ruleOf(e) ?? "" } },
          });
        };
        if (kind?.$case === "request") {
          const req = kind.request;
          signer.sign(caller, { keyId: req.keyId, version: req.version, payload: req.payload }).then(
            (result) => reply({ requestId: msg.requestId, result: { $case: "response", response: encode(result, req.encoding) } }),
            (e: unknown) => deny(e, req.keyId),
          );
        } else if (kind?.$case === "exchangeRequest") {
          Promise.resolve()
            .then(() => signer.signExchange(caller, exchangeInput(kind.exchangeRequest)))
            .then(
              (result) => reply({ requestId: msg.requestId, result: { $case: "exchangeResponse", exchangeResponse: encodeExchange(result) } }),
              (e: unknown) => deny(e, kind.exchangeRequest.keyId),
            );
        } else if (kind?.$case === "sendExchangeRequest") {
          Promise.resolve()
            .then(() => signer.sendExchange(caller, exchangeInput(kind.sendExchangeRequest)))
            .then(
              (result) => reply({ requestId: msg.requestId, result: { $case: "exchangeReply", exchangeReply: encodeReply(result) } }),
              (e: unknown) => deny(e, kind.sendExchangeRequest.keyId),
            );
        } else {
          deny(new CustosError("INVALID_ARGUMENT", "request is missing"));
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

/** The exchange's answer, verbatim, as SendExchangeRequest returns it. */
function encodeReply(r: ExchangeSendResult): ExchangeResponse {
  return {
    status: r.status,
    headers: r.headers.map(([name, value]) => ({ name, value })),
    body: r.body,
    keyVersion: r.version,
    endpointClass: r.endpointClass,
    roundTripUs: String(r.roundTripUs),
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
