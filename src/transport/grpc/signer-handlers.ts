import type { ServerDuplexStream, ServerUnaryCall, sendUnaryData } from "@grpc/grpc-js";
import type { Logger } from "pino";
import { SignatureEncoding, type SignRequest, type SignResponse, type SignStreamRequest, type SignStreamResponse, type SignerServer } from "../../gen/custos/v1/signer.js";
import type { SignResult, SignService } from "../../signing/sign-service.js";
import { callerOf } from "./caller.js";
import { describeError, toServiceError } from "./status.js";

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

    signStream(stream: ServerDuplexStream<SignStreamRequest, SignStreamResponse>): void {
      // The identity is fixed for the stream's connection: read it once.
      const caller = callerOf(stream);
      let pending = 0;
      let ended = false;
      const finishIfDone = () => {
        if (ended && pending === 0) stream.end();
      };
      stream.on("data", (msg: SignStreamRequest) => {
        const req = msg.request;
        const done = tracker.start();
        pending++;
        const reply = (out: SignStreamResponse) => {
          pending--;
          done();
          if (!stream.destroyed && stream.writable) stream.write(out);
          finishIfDone();
        };
        if (!req) {
          reply({ requestId: msg.requestId, result: { $case: "denial", denial: { code: 3, reason: "INVALID_ARGUMENT", message: "request is missing" } } });
          return;
        }
        signer.sign(caller, { keyId: req.keyId, version: req.version, payload: req.payload }).then(
          (result) => reply({ requestId: msg.requestId, result: { $case: "response", response: encode(result, req.encoding) } }),
          (e: unknown) => {
            const d = describeError(e);
            if (d.reason === "INTERNAL" || d.reason === "HSM_ERROR") log.error({ event: "rpc.error", reason: d.reason, err: e }, "stream sign failed");
            reply({ requestId: msg.requestId, result: { $case: "denial", denial: { code: d.code, reason: d.reason, message: d.message } } });
          },
        );
      });
      stream.on("end", () => {
        ended = true;
        finishIfDone();
      });
      stream.on("error", () => undefined); // client went away; pending replies are dropped
    },
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
