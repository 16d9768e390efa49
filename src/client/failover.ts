/**
 * Failover across the replicas of one custos deployment, for the TypeScript client.
 *
 * When to move on: a call that ends UNAVAILABLE. For a unary call that status comes before
 * any response (the connection was refused or dropped, or the replica answered that it cannot
 * sign now: its HSM or its audit backlog), so the client retries the call on the next replica.
 * A dropped connection may hide a request the dead replica had already signed; retrying is
 * still safe because signing is idempotent for custos: a signature is not an order, and only
 * the caller sends the request to the exchange, once, with the signature it received. (The
 * deployment may then audit two signatures of one request.) Nothing else is retried:
 * a refusal (PERMISSION_DENIED, FAILED_PRECONDITION, …) would be the same on every replica.
 * A send (SendExchangeRequest: custos places the order) is the exception to the rule above:
 * see {@link ReplicaSet.callOnce}.
 */
import { connectivityState, type ServiceError, status } from "@grpc/grpc-js";
import type { SignerClient } from "../gen/custos/v1/signer.js";
import { type ClientIdentity, signerClient } from "./connection.js";

/** Whether a failed call may be retried on another replica (see the module comment). */
export function isFailoverError(e: unknown): boolean {
  return (e as Partial<ServiceError> | undefined)?.code === status.UNAVAILABLE;
}

/** Refusals custos answers before it signs or sends anything (the reason in the custos-reason trailer). */
const REFUSED_BEFORE_SIGNING = new Set(["HSM_UNAVAILABLE", "AUDIT_BACKLOG"]);

/** custos's reason for a failure: the custos-reason trailer of a call, a stream denial's `reason`; "" if none. */
export function custosReason(e: unknown): string {
  const err = e as (Partial<ServiceError> & { reason?: unknown }) | undefined;
  const reason = typeof err?.metadata?.get === "function" ? err.metadata.get("custos-reason")[0] : err?.reason;
  return typeof reason === "string" ? reason : "";
}

/** Whether a failed SendExchangeRequest provably sent nothing: custos refused it before signing. */
export function refusedBeforeSending(e: unknown): boolean {
  return (e as Partial<ServiceError> | undefined)?.code === status.UNAVAILABLE && REFUSED_BEFORE_SIGNING.has(custosReason(e));
}

/** gRPC statuses custos answers only for refusals, each carrying its reason: nothing was sent. */
const REFUSALS = new Set<number>([
  status.INVALID_ARGUMENT,
  status.NOT_FOUND,
  status.ALREADY_EXISTS,
  status.PERMISSION_DENIED,
  status.RESOURCE_EXHAUSTED,
  status.FAILED_PRECONDITION,
  status.OUT_OF_RANGE,
  status.UNAUTHENTICATED,
]);

/**
 * Whether a failed SendExchangeRequest may have reached the exchange: every failure but custos's
 * refusals (a refusal status with a custos reason, or HSM_UNAVAILABLE / AUDIT_BACKLOG), a call
 * custos does not implement, and {@link NotSent}.
 */
export function mayHaveBeenSent(e: unknown): boolean {
  if (e instanceof NotSent || refusedBeforeSending(e)) return false;
  const code = (e as Partial<ServiceError> | undefined)?.code;
  if (code === status.UNIMPLEMENTED) return false;
  return !(typeof code === "number" && REFUSALS.has(code) && custosReason(e) !== "");
}

/** No replica could be reached: the request was not sent, and may be sent again. */
export class NotSent extends Error {
  readonly code = status.UNAVAILABLE;
  constructor(readonly addresses: readonly string[]) {
    super(`no custos replica accepted a connection (${addresses.join(", ")}): the request was not sent`);
  }
}

/** One Signer channel per replica address, and which one the client is using. */
export class ReplicaSet {
  private readonly signers: SignerClient[];
  private current = 0;

  /** `connect`: how a replica's channel is made (tests give fakes). */
  constructor(
    readonly addresses: readonly string[],
    identity: ClientIdentity,
    serverName: string,
    connect: (address: string, identity: ClientIdentity, serverName: string) => SignerClient = signerClient,
  ) {
    if (addresses.length === 0) throw new Error("a custos client needs at least one address");
    this.signers = addresses.map((a) => connect(a, identity, serverName));
  }

  /** The replica in use (index into `addresses`). */
  get index(): number {
    return this.current;
  }

  signer(index = this.current): SignerClient {
    return this.signers[index % this.signers.length] as SignerClient;
  }

  /** Moves on from replica `from` (if nobody moved already) and returns the replica to use now. */
  advance(from: number): number {
    if (this.current === from) this.current = (from + 1) % this.signers.length;
    return this.current;
  }

  /**
   * Runs `call` on the replica in use; on a failover error, on each other replica in turn (each
   * tried at most once per call). The last error is thrown when every replica failed.
   */
  async call<T>(call: (signer: SignerClient) => Promise<T>): Promise<T> {
    let index = this.current;
    for (let attempt = 1; ; attempt++) {
      try {
        return await call(this.signer(index));
      } catch (e) {
        if (!isFailoverError(e) || attempt >= this.signers.length) throw e;
        index = this.advance(index);
      }
    }
  }

  /**
   * Runs `call` — one that sends an order (SendExchangeRequest) — at most once on a replica that
   * may have received it. It goes to the first replica whose channel is ready: one that cannot be
   * reached has received nothing. After issuing it, it moves on only when custos refused before
   * signing ({@link refusedBeforeSending}); any other failure (the exchange timed out, the
   * connection dropped mid-call) is thrown as it came, because the exchange may have the order.
   */
  async callOnce<T>(call: (signer: SignerClient) => Promise<T>, readyTimeoutMs: number): Promise<T> {
    let index = this.current;
    let refused: unknown;
    for (let attempt = 1; attempt <= this.signers.length; attempt++) {
      const signer = this.signer(index);
      if (await channelReady(signer, readyTimeoutMs)) {
        try {
          return await call(signer);
        } catch (e) {
          if (!refusedBeforeSending(e)) throw e;
          refused = e;
        }
      }
      index = this.advance(index);
    }
    throw refused ?? new NotSent(this.addresses);
  }

  close(): void {
    for (const s of this.signers) s.close();
  }
}

/**
 * Whether `signer`'s channel is (or becomes, within `timeoutMs`) connected. A failed connection
 * attempt answers false at once rather than waiting out the reconnect backoff.
 */
async function channelReady(signer: SignerClient, timeoutMs: number): Promise<boolean> {
  const channel = signer.getChannel();
  const deadline = Date.now() + timeoutMs;
  for (let state = channel.getConnectivityState(true); ; state = channel.getConnectivityState(true)) {
    if (state === connectivityState.READY) return true;
    if (state === connectivityState.TRANSIENT_FAILURE || state === connectivityState.SHUTDOWN || Date.now() >= deadline) return false;
    const changed = await new Promise<boolean>((resolve) => channel.watchConnectivityState(state, deadline, (err) => resolve(!err)));
    if (!changed) return false;
  }
}
