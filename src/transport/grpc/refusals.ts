import type { ServerUnaryCall, ServiceDefinition, ServiceError, UntypedServiceImplementation, sendUnaryData } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { AuditEvent } from "../../audit/audit-log.js";
import { CustosError } from "../../errors.js";
import { nextRequestId } from "../../request-id.js";
import type { CallerContext } from "../../signing/sign-service.js";
import { callerOf, type PeerInfo } from "./caller.js";
import { describeError, toServiceError } from "./status.js";

/** Where the transport's refusals are audited (AuditLog.recordRefusal: sampled under floods). */
export interface RefusalRecorder {
  recordRefusal(event: AuditEvent): void;
}

/** The audit kind of a refusal decided by the transport rather than a domain service. */
export const RPC_REFUSED = "rpc.refused";

/**
 * What a request deserializer yields for bytes that are not a valid message: grpc-js would
 * otherwise answer a generic INTERNAL "Error deserializing request" before any custos code ran,
 * with no reason and no audit record. The handler path refuses it instead (MALFORMED_REQUEST).
 */
export class MalformedRequest {
  constructor(readonly bytes: number) {}
}

export function isMalformed(request: unknown): request is MalformedRequest {
  return request instanceof MalformedRequest;
}

/** The typed refusal of a request that did not decode. */
export function malformedError(rpc: string): CustosError {
  return new CustosError("MALFORMED_REQUEST", `the request is not a valid ${rpc.split("/").pop() ?? "request"} message`);
}

/**
 * The transport's own refusals: answered with a typed status and audited, unless the domain
 * already audited them (CustosError.audited). One record per refusal, sampled under floods.
 */
export class EdgeRefusals {
  constructor(
    private readonly recorder: RefusalRecorder,
    private readonly log: Logger,
  ) {}

  /** Audits `e` if nothing did yet and returns the status to answer with. */
  answer(call: PeerInfo & { getPath(): string }, e: unknown, requestId: string, key?: string): Partial<ServiceError> {
    this.audit(callerOf(call), call.getPath(), e, key);
    return toServiceError(e, this.log, requestId);
  }

  /** Audits a refusal of `rpc` unless the domain did. */
  audit(caller: CallerContext, rpc: string, e: unknown, key?: string): void {
    if (e instanceof CustosError && e.audited) return;
    const { code, reason } = describeError(e);
    const failed = code === status.INTERNAL || code === status.UNAVAILABLE;
    this.recorder.recordRefusal({
      kind: RPC_REFUSED,
      actor: caller.identity ?? "unknown",
      outcome: failed ? "failed" : "denied",
      reason,
      ...(key ? { key } : {}),
      ...(caller.ip ? { peer: caller.ip } : {}),
      details: { rpc },
    });
    if (e instanceof CustosError) e.audited = true;
  }
}

/**
 * A copy of a generated service definition whose request deserializers never throw: bytes
 * that do not decode become a MalformedRequest for the handler path to refuse.
 */
export function tolerantDecoding<D extends ServiceDefinition>(definition: D): D {
  const out: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(definition)) {
    const decode = method.requestDeserialize;
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return decode(bytes);
        } catch {
          return new MalformedRequest(bytes.length);
        }
      },
    };
  }
  return out as D;
}

/**
 * The unary handlers of `implementation`, each refusing a MalformedRequest (audited, typed)
 * before the handler runs. Streaming handlers meet MalformedRequest as a message and refuse it themselves.
 */
export function refuseMalformed<I extends object>(definition: ServiceDefinition, implementation: I, edge: EdgeRefusals): I {
  const out = { ...implementation } as Record<string, unknown>;
  for (const [name, method] of Object.entries(definition)) {
    if (method.requestStream) continue;
    const handler = (implementation as UntypedServiceImplementation)[name] as (call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) => void;
    out[name] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      if (isMalformed(call.request)) return callback(edge.answer(call, malformedError(call.getPath()), nextRequestId()));
      handler(call, callback);
    };
  }
  return out as I;
}
