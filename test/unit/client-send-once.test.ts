import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { describe, it } from "node:test";
import { connectivityState, Metadata, status } from "@grpc/grpc-js";
import { SendOutcomeUnknown, SignStreamSession, StreamDenial } from "../../src/client/custos-client.js";
import { mayHaveBeenSent, NotSent, ReplicaSet } from "../../src/client/failover.js";
import type { SignerClient, SignStreamRequest } from "../../src/gen/custos/v1/signer.js";

/*
 * The TypeScript client never sends an order twice (the integration test, client-send.test.ts,
 * covers the real service): which failures move a SendExchangeRequest to another replica, and
 * what a broken stream does with a pending send. The replicas here are fakes.
 */

const identity = { caPath: "ca.pem", certPath: "c.pem", keyPath: "k.pem" };

/** A gRPC error as custos answers it: status, message and the custos-reason trailer. */
function custosError(code: status, reason?: string): Error {
  const metadata = new Metadata();
  if (reason) metadata.set("custos-reason", reason);
  return Object.assign(new Error(reason ?? "connection dropped"), { code, details: reason ?? "connection dropped", metadata });
}

/** A replica whose channel is in `state`, and whose stream is `stream`. */
function fakeReplica(address: string, state: connectivityState, stream?: FakeStream): SignerClient {
  const channel = {
    getConnectivityState: () => state,
    watchConnectivityState: (_s: unknown, _d: unknown, cb: (e?: Error) => void) => cb(new Error("no change before the deadline")),
  };
  return { address, getChannel: () => channel, signStream: () => stream, close() {} } as unknown as SignerClient;
}

class FakeStream extends EventEmitter {
  readonly written: Array<{ requestId: string; kind: SignStreamRequest["kind"] }> = [];
  write(m: { requestId: string; kind: SignStreamRequest["kind"] }): boolean {
    this.written.push(m);
    return true;
  }
  end(): void {}
  cancel(): void {}
}

function replicas(signers: SignerClient[]): ReplicaSet {
  const byAddress = new Map(signers.map((s) => [(s as unknown as { address: string }).address, s]));
  return new ReplicaSet([...byAddress.keys()], identity, "localhost", (a) => byAddress.get(a)!);
}

/** Runs callOnce over `set`, failing each replica's call with `failures[address]`, and lists the replicas called. */
async function sendOnce(set: ReplicaSet, failures: Record<string, Error>): Promise<{ called: string[]; result: unknown }> {
  const called: string[] = [];
  const result = await set
    .callOnce(async (signer) => {
      const address = (signer as unknown as { address: string }).address;
      called.push(address);
      if (failures[address]) throw failures[address];
      return `sent by ${address}`;
    }, 50)
    .catch((e: unknown) => e);
  return { called, result };
}

describe("a SendExchangeRequest is issued at most once per replica that may have received it", () => {
  it("skips replicas whose connection is down: nothing reached them", async () => {
    const set = replicas([fakeReplica("a", connectivityState.TRANSIENT_FAILURE), fakeReplica("b", connectivityState.READY)]);
    assert.deepEqual(await sendOnce(set, {}), { called: ["b"], result: "sent by b" });
  });

  it("moves on after custos refused before signing (HSM_UNAVAILABLE, AUDIT_BACKLOG)", async () => {
    const set = replicas([fakeReplica("a", connectivityState.READY), fakeReplica("b", connectivityState.READY), fakeReplica("c", connectivityState.READY)]);
    const failures = { a: custosError(status.UNAVAILABLE, "HSM_UNAVAILABLE"), b: custosError(status.UNAVAILABLE, "AUDIT_BACKLOG") };
    assert.deepEqual(await sendOnce(set, failures), { called: ["a", "b", "c"], result: "sent by c" });
  });

  for (const [what, failure] of [
    ["the exchange did not answer (EXCHANGE_UNAVAILABLE)", custosError(status.UNAVAILABLE, "EXCHANGE_UNAVAILABLE")],
    ["the connection dropped mid-call (no custos reason)", custosError(status.UNAVAILABLE)],
    ["the deadline passed", custosError(status.DEADLINE_EXCEEDED)],
  ] as const) {
    it(`never tries another replica once ${what}: the exchange may have the order`, async () => {
      const set = replicas([fakeReplica("a", connectivityState.READY), fakeReplica("b", connectivityState.READY)]);
      const { called, result } = await sendOnce(set, { a: failure });
      assert.deepEqual(called, ["a"]);
      assert.equal(result, failure);
    });
  }

  it("answers NotSent when no replica can be reached", async () => {
    const set = replicas([fakeReplica("a", connectivityState.TRANSIENT_FAILURE), fakeReplica("b", connectivityState.SHUTDOWN)]);
    const { called, result } = await sendOnce(set, {});
    assert.deepEqual(called, []);
    assert.ok(result instanceof NotSent);
    assert.deepEqual(result.addresses, ["a", "b"]);
  });

  it("throws custos's last refusal when every replica refused before signing", async () => {
    const set = replicas([fakeReplica("a", connectivityState.READY), fakeReplica("b", connectivityState.READY)]);
    const last = custosError(status.UNAVAILABLE, "AUDIT_BACKLOG");
    const { called, result } = await sendOnce(set, { a: custosError(status.UNAVAILABLE, "HSM_UNAVAILABLE"), b: last });
    assert.deepEqual(called, ["a", "b"]);
    assert.equal(result, last);
  });
});

describe("which failed sends may have reached the exchange (thrown as SendOutcomeUnknown)", () => {
  const cases: Array<[string, unknown, boolean]> = [
    ["a policy refusal (PERMISSION_DENIED, POLICY_DENIED)", custosError(status.PERMISSION_DENIED, "POLICY_DENIED"), false],
    ["a rate limit (RESOURCE_EXHAUSTED, RATE_LIMITED)", custosError(status.RESOURCE_EXHAUSTED, "RATE_LIMITED"), false],
    ["a bad request (INVALID_ARGUMENT, INVALID_ARGUMENT)", custosError(status.INVALID_ARGUMENT, "INVALID_ARGUMENT"), false],
    ["custos's HSM down (HSM_UNAVAILABLE)", custosError(status.UNAVAILABLE, "HSM_UNAVAILABLE"), false],
    ["custos's audit backlog (AUDIT_BACKLOG)", custosError(status.UNAVAILABLE, "AUDIT_BACKLOG"), false],
    ["no replica reachable (NotSent)", new NotSent(["a"]), false],
    ["a custos without the call (UNIMPLEMENTED)", custosError(status.UNIMPLEMENTED), false],
    ["the exchange timing out (EXCHANGE_UNAVAILABLE)", custosError(status.UNAVAILABLE, "EXCHANGE_UNAVAILABLE"), true],
    ["a cut-off answer (EXCHANGE_RESPONSE_TOO_LARGE)", custosError(status.UNAVAILABLE, "EXCHANGE_RESPONSE_TOO_LARGE"), true],
    ["a connection lost mid-call (UNAVAILABLE, no reason)", custosError(status.UNAVAILABLE), true],
    ["a deadline (DEADLINE_EXCEEDED)", custosError(status.DEADLINE_EXCEEDED), true],
    ["custos failing inside (INTERNAL)", custosError(status.INTERNAL, "INTERNAL"), true],
    ["gRPC's own RESOURCE_EXHAUSTED (no custos reason)", custosError(status.RESOURCE_EXHAUSTED), true],
    ["a stream denial EXCHANGE_UNAVAILABLE", new StreamDenial(status.UNAVAILABLE, "EXCHANGE_UNAVAILABLE", "", "no answer"), true],
    ["a stream denial POLICY_DENIED", new StreamDenial(status.PERMISSION_DENIED, "POLICY_DENIED", "max-quantity", "too much"), false],
    ["a stream denial HSM_UNAVAILABLE", new StreamDenial(status.UNAVAILABLE, "HSM_UNAVAILABLE", "", "HSM down"), false],
  ];
  for (const [what, failure, unknown] of cases) {
    it(`${what}: ${unknown ? "may have been sent" : "was not sent"}`, () => assert.equal(mayHaveBeenSent(failure), unknown));
  }

  it("SendOutcomeUnknown keeps the failure's status and custos reason", () => {
    const e = new SendOutcomeUnknown(custosError(status.UNAVAILABLE, "EXCHANGE_UNAVAILABLE"));
    assert.deepEqual([e.code, e.reason], [status.UNAVAILABLE, "EXCHANGE_UNAVAILABLE"]);
    assert.match(e.message, /may have the request/);
  });
});

describe("a stream that breaks re-sends its signs, never its sends", () => {
  it("fails a pending send with SendOutcomeUnknown and re-sends a pending sign on the next replica", async () => {
    const first = new FakeStream();
    const second = new FakeStream();
    const session = new SignStreamSession(replicas([fakeReplica("a", connectivityState.READY, first), fakeReplica("b", connectivityState.READY, second)]));
    const send = session.sendExchangeRequest({ keyId: "bn", method: "POST", path: "/fapi/v1/order", query: "symbol=BTCUSDT" }).catch((e: unknown) => e);
    const sign = session.sign("raw", Buffer.from("payload"));
    assert.deepEqual(
      first.written.map((m) => m.kind?.$case),
      ["sendExchangeRequest", "request"],
    );
    first.emit("error", custosError(status.UNAVAILABLE));
    assert.ok((await send) instanceof SendOutcomeUnknown);
    // Only the sign went to the next replica; its answer there settles it.
    assert.deepEqual(
      second.written.map((m) => m.kind?.$case),
      ["request"],
    );
    const answer = { keyVersion: 1, apiKeyId: "k", signature: Buffer.from("sig"), signatureText: "" };
    second.emit("data", { requestId: second.written[0]!.requestId, result: { $case: "response", response: answer } });
    assert.deepEqual(await sign, answer);
  });
});
