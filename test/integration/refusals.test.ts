import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { Client, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { channelCredentials, channelOptions, type ClientIdentity } from "../../src/client/connection.js";
import { CustodyService, GuardService } from "../../src/gen/custos/v1/custody.js";
import { SignStreamResponse, SignerService } from "../../src/gen/custos/v1/signer.js";
import { auditEvents, failure, importSecret, runCli, startInProcess, type AuditBody, type InProcessService } from "../helpers/harness.js";

/**
 * Refusals custos decides at its gRPC edge are typed and audited: a message that does not
 * decode answers INVALID_ARGUMENT with reason MALFORMED_REQUEST (never grpc-js's bare INTERNAL),
 * a bad argument caught in a handler (`--method PATCH`) leaves an audit row, a flood of either is
 * counted in `refusal.aggregate` rows instead of one row each, and caller-supplied strings reach
 * the audit log and the logs bounded and escaped.
 */

/** Field 1, length-delimited, announcing 127 bytes that never come: no message type decodes it. */
const TRUNCATED = Buffer.from([0x0a, 0x7f]);
/** A tag with wire type 7, which protobuf does not define. */
const BAD_WIRE_TYPE = Buffer.from([0x0f, 0x01]);
const FLOOD = 300;
const PER_SOURCE = 5;

const identity = (b: Buffer) => b;

/** A raw unary call: the bytes go on the wire as they are. */
function rawUnary(client: Client, path: string, body: Buffer): Promise<ServiceError> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(path, identity, identity, body, new Metadata(), {}, (err, res) =>
      err ? resolve(err) : reject(new Error(`${path} answered ${res?.length ?? 0} bytes to a malformed request`)),
    ),
  );
}

function rawClient(svc: InProcessService, id: { certPath: string; keyPath: string }): Client {
  const ident: ClientIdentity = { caPath: svc.conn.caPath, ...id };
  return new Client(svc.conn.grpc, channelCredentials(ident), channelOptions("localhost"));
}

/** Runs `fn` for 0..n-1, at most `width` at a time. */
async function bounded(n: number, width: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

describe("refusals at the gRPC edge: typed, audited, aggregated under floods, bounded", () => {
  let svc: InProcessService;
  let trader: Client;
  let officer: Client;
  let stopped = false;

  before(async () => {
    // One window for the whole file: aggregate rows appear when the service stops.
    svc = await startInProcess((c) => (c.audit.refusals = { windowMs: 3_600_000, individualPerSource: PER_SOURCE, maxSources: 1_000 }));
    trader = rawClient(svc, svc.conn.client!);
    officer = rawClient(svc, svc.conn.officer!);
    await importSecret(svc.custody, "bn", Buffer.from("NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"), { exchange: "binance" });
  });
  after(async () => {
    trader?.close();
    officer?.close();
    if (!stopped) await svc?.stop();
  });

  it("a malformed message to each unary RPC answers INVALID_ARGUMENT (MALFORMED_REQUEST) and is audited as rpc.refused", async () => {
    const calls: Array<[Client, string, string]> = [
      ...Object.values(SignerService)
        .filter((m) => !m.requestStream)
        .map((m): [Client, string, string] => [trader, m.path, svc.conn.client!.certPath]),
      ...[...Object.values(CustodyService), ...Object.values(GuardService)].map((m): [Client, string, string] => [officer, m.path, svc.conn.officer!.certPath]),
    ];
    assert.equal(calls.length, 4 + 9 + 1, "every unary RPC of Signer, Custody and Guard");
    for (const [client, path] of calls) {
      const f = failure(await rawUnary(client, path, TRUNCATED));
      assert.deepEqual({ rpc: path, code: status[f.code], reason: f.reason }, { rpc: path, code: "INVALID_ARGUMENT", reason: "MALFORMED_REQUEST" });
    }
    const traderId = "spiffe://custos/engine/dev";
    for (const [, path] of calls) {
      const row = await waitForAuditWhere(svc.dir, (e) => e.kind === "rpc.refused" && e.details?.rpc === path);
      assert.equal(row.reason, "MALFORMED_REQUEST");
      assert.equal(row.outcome, "denied");
      assert.equal(row.peer, "127.0.0.1");
      if (path.startsWith("/custos.v1.Signer/")) assert.equal(row.actor, traderId);
      else assert.equal(row.actor, "spiffe://custos/officer/dev");
    }
  });

  it("a malformed SignStream message is denied in the stream (MALFORMED_REQUEST) and audited; the stream goes on", async () => {
    const stream = trader.makeBidiStreamRequest(SignerService.signStream.path, identity, (b: Buffer) => SignStreamResponse.decode(b));
    const answers: SignStreamResponse[] = [];
    const ended = new Promise<void>((resolve, reject) => {
      stream.on("data", (m: SignStreamResponse) => answers.push(m));
      stream.on("end", resolve);
      stream.on("error", reject);
    });
    stream.write(BAD_WIRE_TYPE);
    stream.write(TRUNCATED);
    stream.end();
    await ended;
    assert.deepEqual(
      answers.map((a) => (a.result?.$case === "denial" ? [a.result.denial.code, a.result.denial.reason] : a.result?.$case)),
      [
        [status.INVALID_ARGUMENT, "MALFORMED_REQUEST"],
        [status.INVALID_ARGUMENT, "MALFORMED_REQUEST"],
      ],
    );
    const rows = await waitForRows(svc.dir, (e) => e.kind === "rpc.refused" && e.details?.rpc === SignerService.signStream.path, 2);
    assert.deepEqual(
      rows.map((r) => r.reason),
      ["MALFORMED_REQUEST", "MALFORMED_REQUEST"],
    );
  });

  it("`custos sign-request --method PATCH` is refused with INVALID_ARGUMENT and audited with its key", async () => {
    const r = await runCli(["sign-request", "--key", "bn", "--method", "PATCH", "--path", "/api/v3/order", "--data-dir", svc.dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /INVALID_ARGUMENT \(INVALID_ARGUMENT\)/);
    const row = await waitForAuditWhere(
      svc.dir,
      (e) => e.kind === "rpc.refused" && e.details?.rpc === SignerService.signExchangeRequest.path && e.reason === "INVALID_ARGUMENT",
    );
    assert.equal(row.key, "bn");
    assert.equal(row.outcome, "denied");
  });

  it("a 60,000-character key id and one with control characters are bounded and escaped in the audit log and the logs", async () => {
    const long = "k".repeat(60_000);
    const hostile = "evil\nkey\u001b[31m\u202e";
    const payload = Buffer.from("x").toString("base64");
    for (const key of [long, hostile]) {
      const r = await runCli(["sign", "--key", key, "--payload", payload, "--encoding", "base64", "--data-dir", svc.dir]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /NOT_FOUND \(KEY_NOT_FOUND\)/);
    }
    const digest = (await import("node:crypto")).createHash("sha256").update(long).digest("hex");
    const longRow = await waitForAuditWhere(svc.dir, (e) => e.kind === "sign" && e.reason === "KEY_NOT_FOUND" && (e.key ?? "").startsWith("kkkk"));
    assert.ok(longRow.key!.length <= 256, `audited key id is ${longRow.key!.length} characters`);
    assert.ok(longRow.key!.endsWith(`…[60000 chars sha256:${digest}]`), longRow.key);
    const hostileRow = await waitForAuditWhere(svc.dir, (e) => e.kind === "sign" && e.reason === "KEY_NOT_FOUND" && (e.key ?? "").startsWith("evil"));
    assert.equal(hostileRow.key, "evil\\u000akey\\u001b[31m\\u202e");

    const lines = await pollFor(() => {
      const refused = svc
        .logs()
        .split("\n")
        .filter((l) => l.includes('"sign.denied"'));
      return refused.length >= 2 ? refused : undefined;
    });
    for (const line of lines) assert.ok(line.length < 2_000, `a log line of ${line.length} characters`);
    const keys = lines.map((l) => (JSON.parse(l) as { key: string }).key);
    assert.ok(keys.includes(`${"k".repeat(256 - `…[60000 chars sha256:${digest}]`.length)}…[60000 chars sha256:${digest}]`), keys.join("\n"));
    assert.ok(keys.includes("evil\\u000akey\\u001b[31m\\u202e"), keys.join("\n"));
  });

  it(`a flood of ${FLOOD} malformed and ${FLOOD} invalid requests leaves at most ${PER_SOURCE} rows each plus one aggregate with the exact count`, async () => {
    const isMalformedSign = (e: AuditBody) => e.details?.rpc === SignerService.sign.path && e.reason === "MALFORMED_REQUEST";
    const isPatch = (e: AuditBody) => e.details?.rpc === SignerService.signExchangeRequest.path && e.reason === "INVALID_ARGUMENT";
    const before = await auditEvents(svc.dir);
    const earlier = {
      malformed: before.filter((e) => e.kind === "rpc.refused" && isMalformedSign(e)).length,
      patch: before.filter((e) => e.kind === "rpc.refused" && isPatch(e)).length,
    };
    const { ExchangeRequest } = await import("../../src/gen/custos/v1/signer.js");
    const patch = Buffer.from(ExchangeRequest.encode(ExchangeRequest.fromPartial({ keyId: "bn", method: "PATCH", path: "/api/v3/order" })).finish());
    const codes = new Map<string, number>();
    await bounded(2 * FLOOD, 16, async (i) => {
      const err =
        i % 2 === 0 ? await rawUnary(trader, SignerService.sign.path, BAD_WIRE_TYPE) : await rawUnary(trader, SignerService.signExchangeRequest.path, patch);
      const f = failure(err);
      const k = `${status[f.code]}/${f.reason}`;
      codes.set(k, (codes.get(k) ?? 0) + 1);
    });
    assert.deepEqual(Object.fromEntries(codes), { "INVALID_ARGUMENT/MALFORMED_REQUEST": FLOOD, "INVALID_ARGUMENT/INVALID_ARGUMENT": FLOOD });

    // Stopping ends the window: the counted refusals are written as aggregates.
    const dir = svc.dir;
    trader.close();
    officer.close();
    svc.custody.close();
    svc.signer.close();
    await svc.service.stop();
    stopped = true;
    const rows = await auditEvents(dir);
    rmSync(dir, { recursive: true, force: true });
    for (const [name, match, sentEarlier] of [
      ["malformed", isMalformedSign, earlier.malformed],
      ["invalid", isPatch, earlier.patch],
    ] as const) {
      const individual = rows.filter((e) => e.kind === "rpc.refused" && match(e));
      const aggregates = rows.filter((e) => e.kind === "refusal.aggregate" && match(e));
      assert.equal(individual.length, PER_SOURCE, `${name}: individual rows`);
      assert.equal(aggregates.length, 1, `${name}: aggregate rows`);
      assert.equal(aggregates[0]!.actor, "spiffe://custos/engine/dev");
      assert.equal(aggregates[0]!.details?.refused, "rpc.refused");
      assert.equal(individual.length + Number(aggregates[0]!.details?.count), sentEarlier + FLOOD, `${name}: every refusal counted once`);
    }
  });
});

async function pollFor<T>(probe: () => T | undefined | Promise<T | undefined>, ms = 3_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

function waitForAuditWhere(dir: string, match: (e: AuditBody) => boolean): Promise<AuditBody> {
  return pollFor(async () => (await auditEvents(dir)).find(match));
}

function waitForRows(dir: string, match: (e: AuditBody) => boolean, n: number): Promise<AuditBody[]> {
  return pollFor(async () => {
    const rows = (await auditEvents(dir)).filter(match);
    return rows.length >= n ? rows : undefined;
  });
}
