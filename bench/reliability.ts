/**
 * `npm run soak`: reliability figures for a real running custos (`custos serve`, embedded
 * default, in a temp data dir), in two phases (bench/README.md "Reliability"):
 *
 *   fuzz  ≥ 10,000 mutated messages per RPC (every Signer, Custody and Guard method; SignStream
 *         as stream messages): crashes, the share of refusals carrying a custos reason, and the
 *         share audited (individual rows + refusal.aggregate counts, read after the service stops).
 *   soak  unary Sign at 80 % of the capacity measured first, for a configurable duration:
 *         errors, and the service's RSS at the end against its RSS after warm-up.
 *
 * Environment: RELIABILITY_FUZZ_PER_RPC (10000), RELIABILITY_SOAK_SECONDS (600),
 * RELIABILITY_SKIP=fuzz|soak. Every loop is bounded in count and time. The last stdout line is JSON.
 */
import { readFileSync, rmSync } from "node:fs";
import { Client, Metadata, type ServiceError } from "@grpc/grpc-js";
import { channelCredentials, channelOptions, signerClient, type ClientIdentity } from "../src/client/connection.js";
import { CustodyService, FreezeTarget, GuardService, InitGovernanceRequest, ProposeRequest, VoteRequest, FreezeRequest } from "../src/gen/custos/v1/custody.js";
import { SignStreamRequest, SignStreamResponse, SignerService, WebSocketAuthRequest } from "../src/gen/custos/v1/signer.js";
import { SqliteStore } from "../src/store/sqlite/sqlite-store.js";
import { devOfficerClient, importSecret, spawnService, tempDir, type ChildService } from "../test/helpers/harness.js";
import { EXCHANGE_KEY_ID, KEY_ID, SECRET, encodedExchangeRequest, encodedSignRequest, round, signRequest } from "./common.js";

const FUZZ_PER_RPC = Number(process.env.RELIABILITY_FUZZ_PER_RPC ?? "10000");
const SOAK_SECONDS = Number(process.env.RELIABILITY_SOAK_SECONDS ?? "600");
const SKIP = process.env.RELIABILITY_SKIP ?? "";
const IN_FLIGHT = 32;
const log = (line: string) => process.stderr.write(line + "\n");
const identity = (b: Buffer) => b;

// ---- mutations ----------------------------------------------------------------------------

/** xorshift32: the same mutations on every run. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

/** One mutated copy of `seed`: flipped bits, cut, inserted or overwritten bytes, overlong varints, spliced tags. */
function mutate(seed: Buffer, rand: () => number): Buffer {
  const int = (n: number) => Math.floor(rand() * n);
  let b = Buffer.from(seed);
  const rounds = 1 + int(4);
  for (let r = 0; r < rounds; r++) {
    const at = b.length ? int(b.length) : 0;
    switch (int(7)) {
      case 0:
        if (b.length) b[at] = b[at]! ^ (1 << int(8));
        break;
      case 1:
        b = b.subarray(0, at);
        break;
      case 2:
        b = Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + int(8) }, () => int(256))), b.subarray(at)]);
        break;
      case 3:
        if (b.length) b[at] = int(256);
        break;
      case 4: // an overlong varint (11 continuation bytes)
        b = Buffer.concat([b.subarray(0, at), Buffer.alloc(11, 0xff), b.subarray(at)]);
        break;
      case 5: // a tag of any field number and wire type, including the undefined 6 and 7
        b = Buffer.concat([b.subarray(0, at), Buffer.from([((1 + int(20)) << 3) | int(8)]), b.subarray(at)]);
        break;
      default:
        b = Buffer.concat([b, b.subarray(int(b.length + 1))]);
    }
    if (b.length > 8_192) b = b.subarray(0, 8_192);
  }
  return b;
}

// ---- fuzz ---------------------------------------------------------------------------------

interface RpcFuzz {
  rpc: string;
  sent: number;
  ok: number;
  refused: number;
  typed: number;
  untyped: Record<string, number>;
}

/** A ts-proto message type's bytes for a partial value. */
function enc<T>(type: { encode(m: T): { finish(): Uint8Array }; fromPartial(o: never): T }, value: object): Uint8Array {
  return type.encode(type.fromPartial(value as never)).finish();
}

function seeds(): Array<{ path: string; officer: boolean; stream?: true; seed: Buffer }> {
  const s = (path: string, officer: boolean, seed: Uint8Array) => ({ path, officer, seed: Buffer.from(seed) });
  return [
    s(SignerService.sign.path, false, encodedSignRequest()),
    s(SignerService.signExchangeRequest.path, false, encodedExchangeRequest()),
    s(
      SignerService.signWebSocketAuth.path,
      false,
      enc(WebSocketAuthRequest, { keyId: EXCHANGE_KEY_ID, wsMethod: "order.place", wsParams: [{ name: "symbol", value: "BTCUSDT" }] }),
    ),
    {
      ...s(SignerService.signStream.path, false, enc(SignStreamRequest, { requestId: "1", kind: { $case: "request", request: signRequest() } })),
      stream: true as const,
    },
    s(CustodyService.getWrappingKey.path, true, Buffer.alloc(0)),
    s(CustodyService.listKeys.path, true, Buffer.alloc(0)),
    s(CustodyService.listClients.path, true, Buffer.alloc(0)),
    s(
      CustodyService.initGovernance.path,
      true,
      enc(InitGovernanceRequest, { officers: [{ id: "zed", identity: "spiffe://custos/officer/zed", publicKeyPem: "PEM" }], threshold: 1 }),
    ),
    s(CustodyService.getGovernance.path, true, Buffer.alloc(0)),
    s(
      CustodyService.propose.path,
      true,
      enc(ProposeRequest, { kind: { $case: "setPolicy", setPolicy: { keyId: KEY_ID, policyJson: '{"allowRawSign":true}' } } }),
    ),
    s(CustodyService.getProposal.path, true, Buffer.from([0x0a, 0x03, 0x70, 0x2d, 0x31])),
    s(CustodyService.listProposals.path, true, Buffer.from([0x0a, 0x07, ...Buffer.from("pending")])),
    s(CustodyService.vote.path, true, enc(VoteRequest, { proposalId: "p-1", decision: 1, digest: "00".repeat(32), signature: Buffer.alloc(64, 1) })),
    s(GuardService.freeze.path, true, enc(FreezeRequest, { target: FreezeTarget.FREEZE_TARGET_KEY, id: "no-such-key", reason: "fuzz" })),
  ];
}

async function fuzzUnary(client: Client, path: string, seed: Buffer, rand: () => number, out: RpcFuzz, deadline: number): Promise<void> {
  let next = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      client.makeUnaryRequest(path, identity, identity, mutate(seed, rand), new Metadata(), { deadline: Date.now() + 10_000 }, (err: ServiceError | null) => {
        classify(out, err);
        resolve();
      });
    });
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < FUZZ_PER_RPC && Date.now() < deadline) {
        next++;
        out.sent++;
        await one();
      }
    }),
  );
}

function classify(out: RpcFuzz, err: ServiceError | null): void {
  if (!err) return void out.ok++;
  out.refused++;
  const reason = err.metadata?.get("custos-reason")[0];
  if (reason !== undefined) out.typed++;
  else out.untyped[`${err.code} ${err.details}`.slice(0, 80)] = (out.untyped[`${err.code} ${err.details}`.slice(0, 80)] ?? 0) + 1;
}

/** Stream messages: each gets an answer (a response or a typed denial) on one stream per batch of 1,000. */
async function fuzzStream(client: Client, path: string, seed: Buffer, rand: () => number, out: RpcFuzz, deadline: number): Promise<void> {
  while (out.sent < FUZZ_PER_RPC && Date.now() < deadline) {
    const batch = Math.min(1_000, FUZZ_PER_RPC - out.sent);
    const stream = client.makeBidiStreamRequest(path, identity, (b: Buffer) => SignStreamResponse.decode(b), new Metadata(), { deadline: Date.now() + 60_000 });
    let answered = 0;
    const done = new Promise<void>((resolve) => {
      stream.on("data", (m: SignStreamResponse) => {
        answered++;
        if (m.result?.$case === "denial") {
          out.refused++;
          if (m.result.denial.reason) out.typed++;
          else out.untyped["stream denial without reason"] = (out.untyped["stream denial without reason"] ?? 0) + 1;
        } else out.ok++;
      });
      stream.on("error", (e: ServiceError) => {
        // The stream itself failed: every unanswered message counts as an untyped refusal.
        for (let i = answered; i < batch; i++) classify(out, e);
        answered = batch;
        resolve();
      });
      stream.on("end", resolve);
    });
    for (let i = 0; i < batch; i++) stream.write(mutate(seed, rand));
    out.sent += batch;
    stream.end();
    await done;
    if (answered < batch) out.untyped["stream ended without an answer"] = (out.untyped["stream ended without an answer"] ?? 0) + batch - answered;
  }
}

async function fuzzPhase(): Promise<Record<string, unknown>> {
  const svc = await spawnService(tempDir("custos-fuzz-"), { CUSTOS_LOG_LEVEL: "warn" });
  const conn = svc.conn;
  const custody = devOfficerClient(conn);
  await importSecret(custody, KEY_ID, SECRET);
  await importSecret(custody, EXCHANGE_KEY_ID, SECRET, { exchange: "binance" });
  custody.close();
  const trader = rawClient(conn.caPath, conn.client!, conn.grpc);
  const officer = rawClient(conn.caPath, { certPath: conn.officer!.certPath, keyPath: conn.officer!.keyPath }, conn.grpc);
  const startSeq = await lastSeq(svc.dir);
  const results: RpcFuzz[] = [];
  let crashed = false;
  const rand = prng(0xc057_05);
  for (const { path, officer: asOfficer, stream, seed } of seeds()) {
    const out: RpcFuzz = { rpc: path, sent: 0, ok: 0, refused: 0, typed: 0, untyped: {} };
    const deadline = Date.now() + 300_000;
    const client = asOfficer ? officer : trader;
    await (stream ? fuzzStream(client, path, seed, rand, out, deadline) : fuzzUnary(client, path, seed, rand, out, deadline));
    results.push(out);
    log(`fuzz ${path}: ${out.sent} sent, ${out.ok} ok, ${out.refused} refused (${out.typed} with a custos reason)`);
    if (svc.proc.exitCode !== null) {
      crashed = true;
      break;
    }
  }
  trader.close();
  officer.close();
  const exitCode = await svc.stop();
  // Stopping ends the refusal window: counted refusals are now written as aggregates.
  const audited = await auditedRefusals(svc.dir, startSeq);
  rmSync(svc.dir, { recursive: true, force: true });
  const refused = results.reduce((n, r) => n + r.refused, 0);
  const typed = results.reduce((n, r) => n + r.typed, 0);
  return {
    per_rpc: FUZZ_PER_RPC,
    rpcs: results.length,
    sent: results.reduce((n, r) => n + r.sent, 0),
    refused,
    crashes: crashed || exitCode !== 0 ? 1 : 0,
    typed_share: refused ? round(typed / refused, 4) : 1,
    audited_share: refused ? round(audited.total / refused, 4) : 1,
    audit_rows_for_refusals: audited.rows,
    aggregate_rows: audited.aggregates,
    untyped: Object.fromEntries(results.filter((r) => Object.keys(r.untyped).length).map((r) => [r.rpc, r.untyped])),
  };
}

function rawClient(caPath: string, id: { certPath: string; keyPath: string }, address: string): Client {
  const ident: ClientIdentity = { caPath, ...id };
  return new Client(address, channelCredentials(ident), channelOptions("localhost"));
}

async function lastSeq(dir: string): Promise<number> {
  const store = new SqliteStore(`${dir}/custos.db`, { readonly: true });
  try {
    return (await store.audit.lastAudit())?.seq ?? 0;
  } finally {
    await store.close();
  }
}

/** Refusals in the audit log after `afterSeq`: individual denied/failed rows plus aggregate counts. */
async function auditedRefusals(dir: string, afterSeq: number): Promise<{ total: number; rows: number; aggregates: number }> {
  const store = new SqliteStore(`${dir}/custos.db`, { readonly: true });
  let total = 0;
  let rows = 0;
  let aggregates = 0;
  try {
    let seq = afterSeq;
    for (let pages = 0; pages < 10_000; pages++) {
      const page = await store.audit.readAudit(seq, 5_000);
      if (page.length === 0) break;
      for (const e of page) {
        const body = JSON.parse(e.body) as { kind: string; outcome: string; details?: { count?: number } };
        if (body.kind === "refusal.aggregate") {
          aggregates++;
          total += Number(body.details?.count ?? 0);
        } else if ((body.outcome === "denied" || body.outcome === "failed") && body.kind !== "connection.refused") {
          rows++;
          total++;
        }
      }
      seq = page[page.length - 1]!.seq;
    }
  } finally {
    await store.close();
  }
  return { total, rows, aggregates };
}

// ---- soak ---------------------------------------------------------------------------------

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

async function soakPhase(): Promise<Record<string, unknown>> {
  const svc: ChildService = await spawnService(tempDir("custos-soak-"), { CUSTOS_LOG_LEVEL: "warn" });
  const conn = svc.conn;
  const custody = devOfficerClient(conn);
  await importSecret(custody, KEY_ID, SECRET);
  custody.close();
  const signer = signerClient(conn.grpc, { caPath: conn.caPath, ...conn.client! });
  const req = signRequest();
  let errors = 0;
  let calls = 0;
  const call = () =>
    new Promise<void>((resolve) =>
      signer.sign(req, new Metadata(), { deadline: Date.now() + 10_000 }, (err) => {
        calls++;
        if (err) errors++;
        resolve();
      }),
    );

  // Capacity: 64 in flight, closed loop, 3 s warm-up then 10 s measured.
  const closedLoop = async (seconds: number) => {
    const until = Date.now() + seconds * 1000;
    const before = calls;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (Date.now() < until) await call();
      }),
    );
    return (calls - before) / seconds;
  };
  await closedLoop(3);
  const capacity = await closedLoop(10);
  const rate = Math.floor(0.8 * capacity);
  log(`soak: unary capacity ${Math.round(capacity)}/s with this generator; soaking at ${rate}/s for ${SOAK_SECONDS} s`);
  errors = 0;
  calls = 0;

  // Open loop at `rate`: a batch every 10 ms; at most 4,096 outstanding (more would mean custos fell behind).
  const warmupSeconds = Math.min(60, SOAK_SECONDS / 4);
  let outstanding = 0;
  let skipped = 0;
  let rssAfterWarmup = 0;
  // One RSS sample a minute: tells a plateau (heap and page-cache sizing) from steady growth.
  const rssSamplesMb: number[] = [];
  const started = Date.now();
  const end = started + SOAK_SECONDS * 1000;
  let due = 0;
  while (Date.now() < end) {
    const elapsed = (Date.now() - started) / 1000;
    if (!rssAfterWarmup && elapsed >= warmupSeconds) rssAfterWarmup = rssBytes(svc.proc.pid!);
    if (elapsed >= 60 * (rssSamplesMb.length + 1)) rssSamplesMb.push(round(rssBytes(svc.proc.pid!) / 2 ** 20, 1));
    const target = Math.floor(elapsed * rate);
    for (; due < target; due++) {
      if (outstanding >= 4_096) {
        skipped++;
        continue;
      }
      outstanding++;
      void call().then(() => outstanding--);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  const drainUntil = Date.now() + 15_000;
  while (outstanding > 0 && Date.now() < drainUntil) await new Promise((r) => setTimeout(r, 10));
  const rssEnd = rssBytes(svc.proc.pid!);
  const seconds = (Date.now() - started) / 1000;
  signer.close();
  const exitCode = await svc.stop();
  rmSync(svc.dir, { recursive: true, force: true });
  return {
    seconds: round(seconds, 1),
    capacity_per_s: Math.round(capacity),
    target_per_s: rate,
    achieved_per_s: Math.round(calls / seconds),
    calls,
    errors,
    not_sent_backlog: skipped,
    exit_code: exitCode,
    rss_after_warmup_mb: round(rssAfterWarmup / 2 ** 20, 1),
    rss_end_mb: round(rssEnd / 2 ** 20, 1),
    rss_ratio: rssAfterWarmup ? round(rssEnd / rssAfterWarmup, 3) : null,
    warmup_seconds: warmupSeconds,
    rss_per_minute_mb: rssSamplesMb,
  };
}

const result: Record<string, unknown> = { targets: { crashes: 0, typed_share: 1, audited_share: 1, soak_errors: 0, rss_ratio_max: 1.05 } };
if (SKIP !== "fuzz") result.fuzz = await fuzzPhase();
if (SKIP !== "soak") result.soak = await soakPhase();
process.stdout.write(JSON.stringify(result) + "\n");
