/**
 * The replica rows of `npm run bench` (alone: BENCH_ONLY=replicas): custos on PostgreSQL as one
 * and as two replicas (serve-for-bench.js custos with BENCH_POSTGRES_URL, one data dir, a
 * throwaway cluster on loopback) against the single-process floor and against custos on
 * SQLite, with the same load generators; and how fast a change committed to the shared store
 * is enforced by a replica. Times are reported, never asserted.
 *
 * - Unary capacity: two h2load processes × 32 in flight (2 connections × 16 streams), both at
 *   one replica, or one at each of two replicas (the floor and SQLite custos get the same two);
 *   grpc-js client processes when h2load is unusable.
 * - Stream throughput: two stream clients × 32 in flight, placed the same way.
 * - Sign latency one at a time: PostgreSQL store against SQLite (both answer once the sign's
 *   audit record is written, audit.acknowledge "written").
 * - Audit rows/s with two replicas writing: chain rows appended during the pair's loads (both
 *   replicas append to one chain) over their wall time.
 * - Propagation: PROPAGATION_CHANGES freezes and thaws committed straight to the store (as
 *   another replica's transaction would be), each timed until the other replica enforces it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readConnectionFile, signerClient, unary } from "../src/client/connection.js";
import { SignatureEncoding } from "../src/gen/custos/v1/signer.js";
import { PgStore } from "../src/store/postgres/pg-store.js";
import { devOfficerClient, importSecret } from "../test/helpers/harness.js";
import { startPostgres } from "../test/helpers/postgres.js";
import type { ClientJob, ClientResult } from "./client.js";
import { runH2load, type H2loadSetup } from "./h2load.js";
import { JsonChild, KEY_ID, PAYLOAD, SECRET, benchScript, round, summarize, type LatencySummary } from "./common.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? "5");
const PER_CLIENT_IN_FLIGHT = 32;
const LATENCY_CALLS = 10_000;
const PROPAGATION_CHANGES = Number(process.env.BENCH_PROPAGATION_CHANGES ?? "200");

interface Ready {
  ready: true;
  grpc: string;
  caPath: string;
  client: { certPath: string; keyPath: string };
}

/** One server's (or deployment's) figures. */
export interface ReplicaRow {
  server: string;
  unary_per_s: number;
  stream_per_s: number;
  latency?: LatencySummary;
}

export interface ReplicaResult {
  rows: ReplicaRow[];
  /** Two replicas' unary capacity over the floor's (goal ≥ 1.3). */
  pair_over_floor_unary: number;
  pair_over_single_unary: number;
  pair_over_single_stream: number;
  /** Audit rows appended to the one chain per second while both replicas signed (unary then stream). */
  pair_audit_rows_per_s: number;
  /** Commit → enforced by the other replica, over PROPAGATION_CHANGES changes. */
  propagation: { changes: number; p50_ms: number; p99_ms: number; max_ms: number };
}

type Server = { child: JsonChild; ready: Ready; stop(): Promise<void> };

async function serve(mode: "custos" | "floor", dir: string, env: NodeJS.ProcessEnv = {}): Promise<Server> {
  const child = new JsonChild([benchScript("serve-for-bench.js"), mode, dir], { BENCH_DISPATCH: "auto", BENCH_ABLATE: "", BENCH_AUDIT_FLUSH_MS: "", ...env });
  const ready = await child.next<Ready>(180_000);
  return {
    child,
    ready,
    async stop() {
      child.send({ cmd: "stop" });
      await child.exit;
    },
  };
}

/** Client processes started together, one per target, each measuring its own window; per_s summed. */
async function load(targets: Ready[], job: Omit<ClientJob, "grpc" | "caPath" | "certPath" | "keyPath">): Promise<ClientResult[]> {
  const children = targets.map((t) => new JsonChild([benchScript("client.js"), JSON.stringify({ ...job, grpc: t.grpc, caPath: t.caPath, ...t.client })]));
  await Promise.all(children.map((c) => c.next(60_000)));
  await Promise.all(children.map((c) => c.next(60_000 + job.seconds * 1000)));
  const results = await Promise.all(children.map((c) => c.next<ClientResult>(60_000)));
  await Promise.all(children.map((c) => c.exit));
  return results;
}

const sum = (rs: Array<{ per_s: number }>) => Math.round(rs.reduce((a, r) => a + r.per_s, 0));

/** Unary capacity: one generator per target, run at once; calls/s summed. */
async function unaryLoad(targets: Ready[], h2: H2loadSetup, bodyFile: string): Promise<number> {
  if (!h2.ok) return load(targets, { mode: "unary", inFlight: PER_CLIENT_IN_FLIGHT, seconds: SECONDS, warmupSeconds: 1 }).then(sum);
  const run = (t: Ready, n: number) => runH2load({ setup: h2, grpc: t.grpc, bodyFile, n, connections: 2, streams: PER_CLIENT_IN_FLIGHT / 2, ...t.client });
  const warm = await Promise.all(targets.map((t) => run(t, 5_000)));
  const n = Math.max(5_000, Math.min(500_000, Math.round((sum(warm) / targets.length) * SECONDS)));
  return sum(await Promise.all(targets.map((t) => run(t, n))));
}
const streamLoad = (targets: Ready[]) =>
  load(targets, { mode: "stream", impl: "h2", inFlight: PER_CLIENT_IN_FLIGHT, seconds: SECONDS, warmupSeconds: 1.5 }).then(sum);
const latency = async (target: Ready) => (await load([target], { mode: "latency", calls: LATENCY_CALLS, warmupCalls: 2000, seconds: 10 }))[0]!.latency!;

/** Runs the group in fresh data dirs; `log` gets progress lines. */
export async function replicasBench(log: (line: string) => void, h2: H2loadSetup, bodyFile: string): Promise<ReplicaResult> {
  const cluster = await startPostgres("custos_bench");
  const pgDir = mkdtempSync(join(tmpdir(), "custos-bench-pg-"));
  const sqliteDir = mkdtempSync(join(tmpdir(), "custos-bench-sqlite-"));
  const servers: Server[] = [];
  try {
    log("replicas: custos on SQLite (its own data dir), then the floor");
    const sqlite = await serve("custos", sqliteDir);
    servers.push(sqlite);
    await importBenchKey(sqliteDir);
    const sqliteRow: ReplicaRow = { server: "custos, SQLite", unary_per_s: 0, stream_per_s: 0 };
    sqliteRow.latency = await latency(sqlite.ready);
    sqliteRow.unary_per_s = await unaryLoad([sqlite.ready, sqlite.ready], h2, bodyFile);
    sqliteRow.stream_per_s = await streamLoad([sqlite.ready, sqlite.ready]);
    await sqlite.stop();
    const floor = await serve("floor", sqliteDir);
    servers.push(floor);
    const floorRow: ReplicaRow = { server: "floor (one process)", unary_per_s: await unaryLoad([floor.ready, floor.ready], h2, bodyFile), stream_per_s: 0 };
    floorRow.stream_per_s = await streamLoad([floor.ready, floor.ready]);
    await floor.stop();

    log("replicas: custos on PostgreSQL, one replica, then two");
    const env = { BENCH_POSTGRES_URL: cluster.url };
    const first = await serve("custos", pgDir, env);
    servers.push(first);
    await importBenchKey(pgDir);
    const single: ReplicaRow = { server: "custos, PostgreSQL, 1 replica", unary_per_s: 0, stream_per_s: 0 };
    single.latency = await latency(first.ready);
    single.unary_per_s = await unaryLoad([first.ready, first.ready], h2, bodyFile);
    single.stream_per_s = await streamLoad([first.ready, first.ready]);
    const second = await serve("custos", pgDir, env);
    servers.push(second);
    const rowsBefore = await chainLength(cluster.url);
    const pairStarted = performance.now();
    const pair: ReplicaRow = {
      server: "custos, PostgreSQL, 2 replicas",
      unary_per_s: await unaryLoad([first.ready, second.ready], h2, bodyFile),
      stream_per_s: await streamLoad([first.ready, second.ready]),
    };
    const pairAuditRowsPerS = Math.round(((await chainLength(cluster.url)) - rowsBefore) / ((performance.now() - pairStarted) / 1000));

    log(`replicas: propagation of ${PROPAGATION_CHANGES} freezes and thaws to the other replica`);
    const propagation = await propagationTimes(cluster.url, second.ready);
    await second.stop();
    await first.stop();
    return {
      rows: [floorRow, sqliteRow, single, pair],
      pair_over_floor_unary: round(pair.unary_per_s / floorRow.unary_per_s, 3),
      pair_over_single_unary: round(pair.unary_per_s / single.unary_per_s, 3),
      pair_over_single_stream: round(pair.stream_per_s / single.stream_per_s, 3),
      pair_audit_rows_per_s: pairAuditRowsPerS,
      propagation,
    };
  } finally {
    for (const s of servers) if (s.child.proc.exitCode === null) s.child.proc.kill("SIGKILL");
    cluster.close();
    rmSync(pgDir, { recursive: true, force: true });
    rmSync(sqliteDir, { recursive: true, force: true });
  }
}

/** The chain's length (its head's seq): every sign answered is one row, once written. */
async function chainLength(url: string): Promise<number> {
  const store = await PgStore.open(url);
  try {
    return (await store.audit.lastAudit())?.seq ?? 0;
  } finally {
    await store.close();
  }
}

async function importBenchKey(dir: string): Promise<void> {
  const officer = devOfficerClient(readConnectionFile(dir));
  try {
    await importSecret(officer, KEY_ID, SECRET, { apiKeyId: "api-bench" });
  } finally {
    officer.close();
  }
}

/** Each change committed to the shared store, then signs on `other` until it enforces the change. */
async function propagationTimes(url: string, other: Ready): Promise<ReplicaResult["propagation"]> {
  const store = await PgStore.open(url);
  const signer = signerClient(other.grpc, { caPath: other.caPath, ...other.client });
  const frozen = () =>
    unary(signer, "sign", { keyId: KEY_ID, version: 0, payload: PAYLOAD, encoding: SignatureEncoding.SIGNATURE_ENCODING_RAW }).then(
      () => false,
      () => true,
    );
  const samples = new Float64Array(PROPAGATION_CHANGES);
  try {
    for (let i = 0; i < PROPAGATION_CHANGES; i++) {
      const freeze = i % 2 === 0;
      const t0 = process.hrtime.bigint();
      await store.keys.setKeyFrozen(KEY_ID, freeze ? { at: new Date().toISOString(), reason: "bench" } : null);
      const deadline = Date.now() + 10_000;
      while ((await frozen()) !== freeze) if (Date.now() > deadline) throw new Error(`change ${i} not enforced within 10 s`);
      samples[i] = Number(process.hrtime.bigint() - t0);
    }
    if (PROPAGATION_CHANGES % 2 === 1) await store.keys.setKeyFrozen(KEY_ID, null);
  } finally {
    signer.close();
    await store.close();
  }
  const s = summarize(samples, PROPAGATION_CHANGES);
  return { changes: PROPAGATION_CHANGES, p50_ms: round(s.p50_us / 1000, 2), p99_ms: round(s.p99_us / 1000, 2), max_ms: round(s.max_us / 1000, 2) };
}

/** The group's lines for the bench report. */
export function replicasReport(r: ReplicaResult): string {
  const lines = [
    "replicas (custos on PostgreSQL; same generators for every row: 2 h2load processes × 32 unary, 2 h2 stream clients × 32)",
    "| server | unary calls/s | stream calls/s | 1 at a time p50 / p99 µs |",
    "|---|---|---|---|",
    ...r.rows.map((x) => `| ${x.server} | ${x.unary_per_s} | ${x.stream_per_s} | ${x.latency ? `${x.latency.p50_us} / ${x.latency.p99_us}` : "—"} |`),
    `two replicas ÷ floor, unary: ${r.pair_over_floor_unary} (goal ≥ 1.3); two ÷ one replica: unary ${r.pair_over_single_unary}, stream ${r.pair_over_single_stream}`,
    `audit rows appended to the one chain by two replicas: ${r.pair_audit_rows_per_s}/s over the pair's loads (warm-ups included)`,
    `propagation to the other replica (commit → enforced), ${r.propagation.changes} freezes and thaws: p50 ${r.propagation.p50_ms} ms, p99 ${r.propagation.p99_ms} ms, max ${r.propagation.max_ms} ms (bound 250 ms p99)`,
  ];
  return lines.join("\n");
}
