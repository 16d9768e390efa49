import { Metadata, type ServiceError, status as grpcStatus } from "@grpc/grpc-js";
import type { ExchangeRequest, ExchangeResponse, SignerClient } from "../gen/custos/v1/signer.js";

/** What the gateway needs from custos: one signed-and-sent request (SendExchangeRequest). */
export interface ExchangeSender {
  send(request: ExchangeRequest): Promise<ExchangeResponse>;
}

/** Why custos did not send a request, as the gateway answers it. */
export interface SendRefusal {
  /** gRPC status code (undefined: not a gRPC answer at all). */
  code: number | undefined;
  /** custos's reason (the custos-reason trailer), else the status name. */
  reason: string;
  rule: string | undefined;
  message: string;
}

/** How long the gateway waits for custos (signing, the exchange's round trip and custos's own timeouts). */
const SEND_DEADLINE_MS = 30_000;

/** SendExchangeRequest over the bot's mTLS channel to custos. */
export function grpcSender(signer: SignerClient): ExchangeSender {
  return {
    send(request) {
      return new Promise((resolve, reject) => {
        signer.sendExchangeRequest(request, new Metadata(), { deadline: Date.now() + SEND_DEADLINE_MS }, (err, res) => (err ? reject(err) : resolve(res)));
      });
    },
  };
}

/** A failed SendExchangeRequest as code, reason, rule and message. */
export function sendRefusal(e: unknown): SendRefusal {
  const err = e as Partial<ServiceError>;
  const code = typeof err.code === "number" ? err.code : undefined;
  const trailer = (name: string) => {
    const v = typeof err.metadata?.get === "function" ? err.metadata.get(name)[0] : undefined;
    return v === undefined || v === "" ? undefined : String(v);
  };
  const reason = trailer("custos-reason") ?? (code !== undefined ? (grpcStatus[code] ?? "UNKNOWN") : "UNKNOWN");
  return { code, reason, rule: trailer("custos-rule"), message: typeof err.details === "string" ? err.details : "custos did not answer" };
}
