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
 */
import { type ServiceError, status } from "@grpc/grpc-js";
import type { SignerClient } from "../gen/custos/v1/signer.js";
import { type ClientIdentity, signerClient } from "./connection.js";

/** Whether a failed call may be retried on another replica (see the module comment). */
export function isFailoverError(e: unknown): boolean {
  return (e as Partial<ServiceError> | undefined)?.code === status.UNAVAILABLE;
}

/** One Signer channel per replica address, and which one the client is using. */
export class ReplicaSet {
  private readonly signers: SignerClient[];
  private current = 0;

  constructor(
    readonly addresses: readonly string[],
    identity: ClientIdentity,
    serverName: string,
  ) {
    if (addresses.length === 0) throw new Error("a custos client needs at least one address");
    this.signers = addresses.map((a) => signerClient(a, identity, serverName));
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

  close(): void {
    for (const s of this.signers) s.close();
  }
}
