import assert from "node:assert/strict";
import { createHash, createHmac, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import tls from "node:tls";
import { after, before, describe, it } from "node:test";
import {
  credentials,
  loadPackageDefinition,
  makeGenericClientConstructor,
  status,
  type ChannelCredentials,
  type Client,
  type ClientDuplexStream,
  type ServiceDefinition,
} from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { service as healthService } from "grpc-health-check";
import { channelCredentials, channelOptions, custodyClient, signerClient, unary } from "../../src/client/connection.js";
import { EMBEDDED_ADMIN, EMBEDDED_CLIENT, EMBEDDED_OFFICER } from "../../src/config/config.js";
import { issueDevClient } from "../../src/config/embedded.js";
import { Environment } from "../../src/gen/custos/v1/custody.js";
import { SignatureEncoding, SignerClient, type SignStreamResponse } from "../../src/gen/custos/v1/signer.js";
import { createDevCa, issueClientCert } from "../../src/pki/index.js";
import { ManualClock } from "../helpers/manual-clock.js";
import {
  REPO,
  auditEvents,
  expectDenied,
  failure,
  importSecret,
  setGrants,
  startInProcess,
  waitForAudit,
  type AuditBody,
  type InProcessService,
} from "../helpers/harness.js";

/** Who may sign what: every refusal of the sign path and the admin API, with its status, reason and audit record. */

const RAW = SignatureEncoding.SIGNATURE_ENCODING_RAW;

describe("access control on the sign path and the admin API", () => {
  let svc: InProcessService;
  const closers: Array<{ close(): void }> = [];
  let host: string;
  let port: number;
  /** The sign path's clock: real time, moved forward by the rate test instead of a pause. */
  const clock = ManualClock.followingRealTime();

  before(async () => {
    // Low per-key limit for the rate test; every other test stays below 20 signs per key.
    svc = await startInProcess((c) => (c.limits.key = { perSecond: 20, burst: 20 }), { clock });
    [host, port] = [svc.conn.grpc.split(":")[0]!, Number(svc.conn.grpc.split(":")[1])];
  });
  after(async () => {
    for (const c of closers) c.close();
    await svc.stop();
  });

  const auditEventsHere = () => auditEvents(svc.dir);
  const lastSeq = async () => (await auditEventsHere()).at(-1)?.seq ?? 0;

  const audited = (match: Partial<AuditBody>, afterSeq = 0) => waitForAudit(svc.dir, match, afterSeq);

  const denied = expectDenied;

  const keep = <T extends { close(): void }>(c: T): T => {
    closers.push(c);
    return c;
  };
  const caPem = () => readFileSync(svc.conn.caPath);
  const signAs = (paths: { certPath: string; keyPath: string }) => keep(signerClient(svc.conn.grpc, { caPath: svc.conn.caPath, ...paths }));
  const sign = (client: SignerClient, keyId: string, payload: Buffer = Buffer.from("p"), version = 0) =>
    unary(client, "sign", { keyId, version, payload, encoding: RAW }, { deadline: Date.now() + 10_000 });

  /**
   * A raw TLS dial: resolves "connected" once the server answers at the HTTP/2 layer, or how it ended.
   * In TLS 1.3 the server judges the client certificate after the client's Finished, so a finished
   * handshake alone proves nothing: the server's first HTTP/2 frame (its SETTINGS) does.
   */
  function dialTls(opts: tls.ConnectionOptions): Promise<string> {
    const sock = tls.connect({ host, port, servername: "localhost", ALPNProtocols: ["h2"], ...opts });
    return new Promise<string>((resolve) => {
      sock.once("secureConnect", () => {
        sock.once("data", () => resolve("connected"));
        sock.once("close", () => resolve("closed"));
        // The HTTP/2 client preface and an empty SETTINGS frame.
        sock.write(Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Buffer.from("000000040000000000", "hex")]));
      });
      sock.setTimeout(10_000, () => resolve("timeout"));
      sock.once("error", (e: Error & { code?: string }) => resolve(`error:${e.code ?? e.message}`));
    }).finally(() => sock.destroy());
  }

  it("refuses a client without a certificate, and audits the refusal", async () => {
    const since = await lastSeq();
    const client = keep(new SignerClient(svc.conn.grpc, credentials.createSsl(caPem()), { "grpc.ssl_target_name_override": "localhost" }));
    await denied(sign(client, "any"), status.UNAVAILABLE, undefined);
    client.close(); // no background reconnects adding refusals to later tests
    const e = await audited({ kind: "connection.refused", outcome: "denied", reason: "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE" }, since);
    assert.equal(e.peer, "127.0.0.1");
  });

  it("refuses a certificate from another CA carrying a registered identity", async () => {
    const since = await lastSeq();
    const otherCa = await createDevCa("impostor CA");
    const forged = await issueClientCert(otherCa, { name: "dev-engine", uri: EMBEDDED_CLIENT });
    const creds = credentials.createSsl(caPem(), Buffer.from(forged.keyPem), Buffer.from(forged.certPem));
    const client = keep(new SignerClient(svc.conn.grpc, creds, { "grpc.ssl_target_name_override": "localhost" }));
    await denied(sign(client, "any"), status.UNAVAILABLE, undefined);
    client.close();
    // Node refuses an unverifiable certificate after the handshake; the record carries the verify error.
    await audited({ kind: "connection.refused", outcome: "denied", reason: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" }, since);
  });

  it("refuses TLS 1.2 even with a valid client certificate", async () => {
    const valid = { ca: caPem(), cert: readFileSync(svc.conn.client!.certPath), key: readFileSync(svc.conn.client!.keyPath) };
    // Control: the same certificate over TLS 1.3 completes the handshake and stays up.
    assert.equal(await dialTls({ ...valid, minVersion: "TLSv1.3", maxVersion: "TLSv1.3" }), "connected");
    const since = await lastSeq();
    // minVersion too: the in-process server raised Node's process-wide default to TLS 1.3.
    const outcome = await dialTls({ ...valid, minVersion: "TLSv1.2", maxVersion: "TLSv1.2" });
    assert.match(outcome, /^error:/);
    await audited({ kind: "connection.refused", outcome: "denied", reason: "ERR_SSL_UNSUPPORTED_PROTOCOL", peer: "127.0.0.1" }, since);
  });

  it("refuses a valid certificate whose identity is not registered", async () => {
    const identity = "spiffe://custos/engine/stranger";
    const client = signAs(await issueDevClient(svc.dir, "stranger", identity));
    await importSecret(svc.custody, "k-stranger", randomBytes(32));
    await denied(sign(client, "k-stranger"), status.UNAUTHENTICATED, "UNKNOWN_CLIENT");
    await audited({ kind: "sign", actor: identity, outcome: "denied", reason: "UNKNOWN_CLIENT", key: "k-stranger" });
  });

  it("enforces the client's CIDR allowlist, and follows an update", async () => {
    const identity = "spiffe://custos/engine/remote";
    const client = signAs(await issueDevClient(svc.dir, "remote", identity));
    await importSecret(svc.custody, "k-cidr", randomBytes(32));
    await setGrants(svc.custody, identity, { name: "remote", cidrs: ["10.0.0.0/8"], keyIds: ["k-cidr"] });
    await denied(sign(client, "k-cidr"), status.PERMISSION_DENIED, "ADDRESS_NOT_ALLOWED");
    const e = await audited({ kind: "sign", actor: identity, outcome: "denied", reason: "ADDRESS_NOT_ALLOWED" });
    assert.equal(e.peer, "127.0.0.1");
    await setGrants(svc.custody, identity, { name: "remote", cidrs: ["127.0.0.1/32"], keyIds: ["k-cidr"] });
    assert.equal((await sign(client, "k-cidr")).keyVersion, 1);
  });

  it("refuses a registered client without a grant, then signs once granted", async () => {
    const identity = "spiffe://custos/engine/nogrant";
    const client = signAs(await issueDevClient(svc.dir, "nogrant", identity));
    const secret = randomBytes(40);
    await importSecret(svc.custody, "k-grant", secret);
    await setGrants(svc.custody, identity, { name: "nogrant", cidrs: ["127.0.0.1/32"], keyIds: [] });
    await denied(sign(client, "k-grant"), status.PERMISSION_DENIED, "NO_GRANT");
    await audited({ kind: "sign", actor: identity, outcome: "denied", reason: "NO_GRANT", key: "k-grant" });
    await setGrants(svc.custody, identity, { name: "nogrant", cidrs: ["127.0.0.1/32"], keyIds: ["k-grant"] });
    const payload = Buffer.from("symbol=ETHUSDT&side=SELL&timestamp=1700000000000");
    assert.deepEqual((await sign(client, "k-grant", payload)).signature, createHmac("sha256", secret).update(payload).digest());
  });

  it("keeps roles apart: administrators and officers cannot sign, a trading client can call no Custody method", async () => {
    await importSecret(svc.custody, "k-role", randomBytes(32));
    await denied(sign(signAs(svc.conn.admin!), "k-role"), status.PERMISSION_DENIED, "ROLE_NOT_ALLOWED");
    await audited({ kind: "sign", actor: EMBEDDED_ADMIN, outcome: "denied", reason: "ROLE_NOT_ALLOWED" });
    // An officer certificate is not a trading client: it cannot sign.
    await denied(sign(signAs(svc.conn.officer!), "k-role"), status.UNAUTHENTICATED, "UNKNOWN_CLIENT");
    await audited({ kind: "sign", actor: EMBEDDED_OFFICER.identity, outcome: "denied", reason: "UNKNOWN_CLIENT" });

    const trader = keep(custodyClient(svc.conn.grpc, { caPath: svc.conn.caPath, ...svc.conn.client! }));
    const envelope = {
      format: "custos.rsa-oaep-aes-kwp.v1",
      oaepHash: "sha1",
      encryptedAesKey: Buffer.alloc(384),
      wrappedKey: Buffer.alloc(40),
      wrappingKeyFingerprint: "sha256:00",
    };
    const since = await lastSeq();
    // Every Custody method, called one at a time.
    const calls: Array<[string, () => Promise<unknown>]> = [
      ["wrapping_key.get", () => unary(trader, "getWrappingKey", {})],
      ["key.list", () => unary(trader, "listKeys", {})],
      ["client.list", () => unary(trader, "listClients", {})],
      ["governance.get", () => unary(trader, "getGovernance", {})],
      ["governance.init", () => unary(trader, "initGovernance", { officers: [], threshold: 1 })],
      [
        "proposal.create",
        () =>
          unary(trader, "propose", {
            kind: {
              $case: "importKey",
              importKey: {
                keyId: "k-sneaky",
                exchange: "binance",
                environment: Environment.ENVIRONMENT_TESTNET,
                label: "",
                apiKeyId: "",
                algorithm: 1,
                envelope,
                maxAgeDays: 0,
                publicKeyPem: "",
                signedPassphrase: "",
              },
            },
            ttlSeconds: 0,
          }),
      ],
      ["proposal.get", () => unary(trader, "getProposal", { id: "x" })],
      ["proposal.list", () => unary(trader, "listProposals", { state: "" })],
      ["proposal.approve", () => unary(trader, "vote", { proposalId: "x", decision: 1, digest: "0".repeat(64), signature: Buffer.alloc(64), reason: "" })],
    ];
    for (const [kind, call] of calls) {
      await denied(call(), status.PERMISSION_DENIED, "ROLE_NOT_ALLOWED");
      await audited({ kind, actor: EMBEDDED_CLIENT, outcome: "denied", reason: "ROLE_NOT_ALLOWED" }, since);
    }
  });

  it("answers unknown keys, oversized payloads and missing versions precisely", async () => {
    await denied(sign(svc.signer, "no-such-key"), status.NOT_FOUND, "KEY_NOT_FOUND");
    await audited({ kind: "sign", actor: EMBEDDED_CLIENT, outcome: "denied", reason: "KEY_NOT_FOUND", key: "no-such-key" });

    const secret = randomBytes(32);
    await importSecret(svc.custody, "k-size", secret);
    // 65 KiB still fits grpc-js's receive limit (64 KiB + 4 KiB), so custos itself refuses it.
    const big = randomBytes(65 * 1024);
    await denied(sign(svc.signer, "k-size", big), status.INVALID_ARGUMENT, "PAYLOAD_TOO_LARGE");
    const e = await audited({ kind: "sign", outcome: "denied", reason: "PAYLOAD_TOO_LARGE", key: "k-size" });
    assert.equal(e.payloadSha256, createHash("sha256").update(big).digest("hex"));
    // Well past the transport limit grpc-js refuses before custos sees the message.
    await denied(sign(svc.signer, "k-size", randomBytes(80 * 1024)), status.RESOURCE_EXHAUSTED, undefined);

    const exact = randomBytes(64 * 1024);
    assert.deepEqual((await sign(svc.signer, "k-size", exact)).signature, createHmac("sha256", secret).update(exact).digest());

    await denied(sign(svc.signer, "k-size", Buffer.from("p"), 2), status.NOT_FOUND, "VERSION_NOT_FOUND");
    await audited({ kind: "sign", outcome: "denied", reason: "VERSION_NOT_FOUND", key: "k-size" });
  });

  it("rate-limits a key, then recovers", async () => {
    const secret = randomBytes(32);
    await importSecret(svc.custody, "k-rate", secret);
    // 40 at once against a burst of 20 at 20/s: about 20 must be refused, ≥ 5 even on a slow machine.
    const results = await Promise.allSettled(Array.from({ length: 40 }, () => sign(svc.signer, "k-rate")));
    const limited = results.filter((r) => r.status === "rejected");
    assert.ok(limited.length >= 5, `expected ≥ 5 of 40 refused, got ${limited.length}`);
    for (const r of limited) {
      const f = failure((r as PromiseRejectedResult).reason);
      assert.deepEqual([status[f.code], f.reason], ["RESOURCE_EXHAUSTED", "RATE_LIMITED"]);
    }
    await audited({ kind: "sign", outcome: "denied", reason: "RATE_LIMITED", key: "k-rate" });
    clock.advance(1_200); // > 1 s at 20/s: the bucket is full again
    const payload = Buffer.from("after the pause");
    assert.deepEqual((await sign(svc.signer, "k-rate", payload)).signature, createHmac("sha256", secret).update(payload).digest());
  });

  it("SignStream: 200 requests matched by id, a denial mid-stream does not end it", async () => {
    const secrets = Array.from({ length: 20 }, () => randomBytes(32));
    for (const [i, s] of secrets.entries()) await importSecret(svc.custody, `k-stream-${i}`, s);
    const expected = new Map<string, Buffer>();
    const stream = svc.signer.signStream();
    const responses = new Map<string, SignStreamResponse>();
    const done = new Promise<void>((resolve, reject) => {
      stream.on("data", (r: SignStreamResponse) => responses.set(r.requestId, r));
      stream.on("end", resolve);
      stream.on("error", reject);
    });
    for (let id = 1; id <= 201; id++) {
      const payload = randomBytes(64 + id);
      // id 101: an unknown key in the middle of the stream; the other 200 spread over 20 keys (rate limit).
      const keyId = id === 101 ? "k-stream-missing" : `k-stream-${id % 20}`;
      if (id !== 101)
        expected.set(
          String(id),
          createHmac("sha256", secrets[id % 20]!)
            .update(payload)
            .digest(),
        );
      stream.write({ requestId: String(id), kind: { $case: "request", request: { keyId, version: 0, payload, encoding: RAW } } });
    }
    stream.end();
    await done;
    assert.equal(responses.size, 201);
    for (const [id, sig] of expected) {
      const r = responses.get(id)!.result;
      assert.equal(r?.$case, "response", `request ${id}: ${JSON.stringify(r)}`);
      if (r?.$case === "response") assert.deepEqual(r.response.signature, sig, `request ${id}`);
    }
    const missing = responses.get("101")!.result;
    assert.equal(missing?.$case, "denial");
    if (missing?.$case === "denial") assert.deepEqual([missing.denial.code, missing.denial.reason], [status.NOT_FOUND, "KEY_NOT_FOUND"]);
    await audited({ kind: "sign", outcome: "denied", reason: "KEY_NOT_FOUND", key: "k-stream-missing" });
  });

  it("reports the Signer as SERVING over gRPC health", async () => {
    const Health = makeGenericClientConstructor(healthService as unknown as ServiceDefinition, "grpc.health.v1.Health");
    const health = keep(new Health(svc.conn.grpc, channelCredentials({ caPath: svc.conn.caPath, ...svc.conn.client! }), channelOptions("localhost")));
    const check = (service: string) =>
      new Promise<{ status: string }>((resolve, reject) =>
        (health as unknown as { check(r: object, cb: (e: Error | null, r: { status: string }) => void): void }).check({ service }, (e, r) =>
          e ? reject(e) : resolve(r),
        ),
      );
    assert.equal((await check("custos.v1.Signer")).status, "SERVING");
    await denied(check("no.such.Service"), status.NOT_FOUND, undefined);
  });

  it("lists its services over gRPC server reflection", async () => {
    const proto = join(REPO, "node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto");
    const pkg = loadPackageDefinition(loadSync(proto)) as unknown as {
      grpc: { reflection: { v1: { ServerReflection: new (address: string, creds: ChannelCredentials, options: object) => Client } } };
    };
    const reflection = keep(
      new pkg.grpc.reflection.v1.ServerReflection(
        svc.conn.grpc,
        channelCredentials({ caPath: svc.conn.caPath, ...svc.conn.client! }),
        channelOptions("localhost"),
      ),
    );
    const stream = (
      reflection as unknown as { serverReflectionInfo(): ClientDuplexStream<object, { listServicesResponse?: { service: Array<{ name: string }> } }> }
    ).serverReflectionInfo();
    const answer = new Promise<string[]>((resolve, reject) => {
      stream.on("data", (r) => resolve((r.listServicesResponse?.service ?? []).map((x: { name: string }) => x.name)));
      stream.on("error", reject);
    });
    stream.write({ listServices: "" });
    const names = await answer;
    stream.end();
    assert.ok(names.includes("custos.v1.Signer"), names.join(","));
    assert.ok(names.includes("custos.v1.Custody"), names.join(","));
  });
});
