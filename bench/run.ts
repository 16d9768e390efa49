/**
 * `npm run bench`: custos against its floor (a bare grpc-js server answering HMAC from
 * node:crypto with the same mTLS setup) on the same loads, each server alone in its own
 * process and every load generator in processes of its own. See bench/README.md.
 *
 * Environment knobs (all optional):
 *   BENCH_SECONDS=5         measured seconds of each throughput load
 *   BENCH_GENERATOR=h2load  unary capacity generator: h2load (+ client-cert shim) or node
 *                           (4 grpc-js client processes × 16 in flight)
 *   BENCH_STREAM_IMPL=h2    stream client: h2 (lean node:http2 framing) or grpc (grpc-js)
 *   BENCH_PROFILE=1         also run custos once under --cpu-prof and print its top functions
 *   BENCH_KEEP=1            keep the temp data dir
 *   BENCH_ONLY=stream       diagnosis: only the stream load, custos (auto) then the floor, and
 *                           their ratio; no JSON summary; honours BENCH_ABLATE (serve-for-bench.ts)
 *   BENCH_ONLY=exchange     diagnosis: raw Sign then SignExchangeRequest capacity on one custos,
 *                           their ratio, server CPU µs per call of each and the difference, and
 *                           (with BENCH_PROFILE=1) the exchange load's profile
 *   BENCH_ONLY=replicas     only the replicas group (bench/replicas.ts): custos on PostgreSQL as one
 *                           and two replicas against the floor and SQLite custos, and propagation
 *   BENCH_ONLY=egress       only the egress group (bench/egress.ts): SendExchangeRequest against
 *                           SignExchangeRequest + the client sending, to a local HTTPS stand-in;
 *                           EGRESS_CPU_PROF_DIR=DIR runs its custos under --cpu-prof into DIR, with
 *                           each path's window of the CPU section in DIR/windows.json
 *   BENCH_ONLY=ack          only the audit acknowledgement pair: custos answering once the record
 *                           is written (default) against answering once it is queued
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { readConnectionFile } from "../src/client/connection.js";
import { devOfficerClient, importSecret } from "../test/helpers/harness.js";
import type { ClientJob, ClientResult } from "./client.js";
import { EXCHANGE_KEY_ID, JsonChild, KEY_ID, PAYLOAD, SECRET, benchScript, encodedExchangeRequest, encodedSignRequest, grpcFrame, round } from "./common.js";
import { prepareH2load, runH2load, type H2loadSetup } from "./h2load.js";
import { egressBench, egressReport, type EgressResult } from "./egress.js";
import { printProfile, summarizeProfile } from "./profile.js";
import { pythonStreamChild } from "./python-stream.js";
import { replicasBench, replicasReport, type ReplicaResult } from "./replicas.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? "5");
const IN_FLIGHT = 64;
const LATENCY_CALLS = 20_000;
const STREAM_IMPL = (process.env.BENCH_STREAM_IMPL ?? "h2") as "h2" | "grpc";
const log = (line: string) => process.stderr.write(line + "\n");

interface Ready {
  ready: true;
  mode: string;
  grpc: string;
  caPath: string;
  client: { certPath: string; keyPath: string };
  admin?: { certPath: string; keyPath: string };
  dispatch?: string;
}

/** What the server process reports for one measured window (see serve-for-bench.ts). */
interface ServerStats {
  calls: number;
  denied: number;
  failed: number;
  wall_ms: number;
  cpu_us: number;
  cores: number;
  cpu_us_per_call: number | null;
  eld_p50_ms: number;
  eld_p99_ms: number;
  loop_utilization: number;
  main_thread_cores: number;
  eld_max_ms: number;
  gc_ms: number;
  gc_share: number;
  /** Event-loop time inside Hsm.sign per call (custos only). */
  hsm_loop_us_per_call?: number | null;
  /** Whole machine's busy cores during the window (/proc/stat), all processes. */
  machine_cores: number;
}

/** Busy and total jiffies of all CPUs, from /proc/stat. */
function procStat(): { busy: number; total: number } {
  try {
    const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
    const busy = user + nice + system + irq + softirq + steal;
    return { busy, total: busy + idle + iowait };
  } catch {
    return { busy: 0, total: 0 };
  }
}

/** Busy cores of the whole machine over `ms` milliseconds (what else is running). */
async function backgroundCores(ms: number): Promise<number> {
  const a = procStat();
  await new Promise((r) => setTimeout(r, ms));
  const b = procStat();
  return b.total > a.total ? round(((b.busy - a.busy) / (b.total - a.total)) * availableParallelism(), 2) : 0;
}

interface Row {
  server: string;
  load: string;
  per_s: number;
  p50_us?: number;
  p99_us?: number;
  p999_us?: number;
  server_stats: ServerStats;
  generator: string;
  generator_cpu_us_per_call: number;
  generator_cores: number;
  notes?: string;
}

class BenchServer {
  private constructor(
    readonly child: JsonChild,
    readonly ready: Ready,
    public label: string,
  ) {}

  static async start(label: string, mode: "custos" | "floor", dir: string, env: NodeJS.ProcessEnv = {}, execArgv: string[] = []): Promise<BenchServer> {
    // The launcher's diagnosis knobs never leak into `npm run bench` from the environment.
    const child = new JsonChild([benchScript("serve-for-bench.js"), mode, dir], { BENCH_ABLATE: "", BENCH_AUDIT_FLUSH_MS: "", ...env }, execArgv);
    const ready = await child.next<Ready>(180_000);
    return new BenchServer(child, ready, label);
  }

  private stat0 = procStat();

  begin(): Promise<unknown> {
    this.stat0 = procStat();
    return this.child.request({ cmd: "begin" });
  }

  async end(): Promise<ServerStats> {
    const st = procStat();
    const stats = await this.child.request<ServerStats>({ cmd: "end" });
    const total = st.total - this.stat0.total;
    stats.machine_cores = total > 0 ? round(((st.busy - this.stat0.busy) / total) * availableParallelism(), 2) : 0;
    return stats;
  }

  async stop(): Promise<void> {
    this.child.send({ cmd: "stop" });
    const code = await this.child.exit;
    if (code !== 0) throw new Error(`${this.label} server exited ${code}: ${this.child.stderr().slice(-2000)}`);
  }

  /** A client process (client.js, or `child` speaking its protocol) whose measured window brackets the server's counters. */
  async bracketClient(
    job: Omit<ClientJob, "grpc" | "caPath" | "certPath" | "keyPath">,
    child?: JsonChild,
  ): Promise<{ client: ClientResult; server: ServerStats }> {
    const full: ClientJob = { ...job, grpc: this.ready.grpc, caPath: this.ready.caPath, ...this.ready.client };
    const c = child ?? new JsonChild([benchScript("client.js"), JSON.stringify(full)]);
    await c.next<{ window: "start" }>(60_000);
    await this.begin();
    await c.next<{ window: "end" }>(60_000 + job.seconds * 1000);
    const server = await this.end();
    const client = await c.next<ClientResult>(60_000);
    await c.exit;
    return { client, server };
  }
}

// ---- the three loads -----------------------------------------------------------------------

async function latencyLoad(s: BenchServer, rpc: "sign" | "exchange" = "sign"): Promise<Row> {
  const { client, server } = await s.bracketClient({ mode: "latency", calls: LATENCY_CALLS, warmupCalls: 3000, seconds: 10, rpc });
  const l = client.latency!;
  return {
    server: s.label,
    load: rpc === "exchange" ? "exchange order 1 at a time" : "unary 1 at a time",
    per_s: client.per_s,
    p50_us: l.p50_us,
    p99_us: l.p99_us,
    p999_us: l.p999_us,
    server_stats: server,
    generator: "1 grpc-js process",
    generator_cpu_us_per_call: client.cpu_us_per_call,
    generator_cores: client.cores,
  };
}

async function unaryCapacity(s: BenchServer, h2: H2loadSetup, bodyFile: string, method = "Sign"): Promise<Row> {
  if (h2.ok) {
    const base = { setup: h2, grpc: s.ready.grpc, bodyFile, method, connections: 4, streams: IN_FLIGHT / 4, ...s.ready.client };
    const warm = await runH2load({ ...base, n: 20_000 });
    const n = Math.max(20_000, Math.min(1_000_000, Math.round(warm.per_s * SECONDS)));
    await s.begin();
    const r = await runH2load({ ...base, n });
    const server = await s.end();
    // h2load counts HTTP 200s; a gRPC error is also a 200, so the server's own count decides.
    const notes = server.calls === r.succeeded ? "server OK count = h2load count" : `server counted ${server.calls} OK of ${r.succeeded}`;
    return {
      server: s.label,
      load: method === "Sign" ? `unary ${IN_FLIGHT} in flight` : `exchange order ${IN_FLIGHT} in flight`,
      per_s: Math.round(r.per_s * Math.min(1, server.calls / r.succeeded)),
      server_stats: server,
      generator: "h2load (4 conn × 16 streams)",
      generator_cpu_us_per_call: r.cpu_us_per_call,
      generator_cores: r.cores,
      notes: `${notes}; h2load mean ${r.mean_ms} ms, max ${r.max_ms} ms`,
    };
  }
  // Fallback: several grpc-js client processes, summed.
  const procs = 4;
  const full = (): ClientJob => ({
    mode: "unary",
    inFlight: IN_FLIGHT / procs,
    seconds: SECONDS,
    warmupSeconds: 1,
    grpc: s.ready.grpc,
    caPath: s.ready.caPath,
    ...s.ready.client,
  });
  const children = Array.from({ length: procs }, () => new JsonChild([benchScript("client.js"), JSON.stringify(full())]));
  await Promise.all(children.map((c) => c.next(60_000)));
  await s.begin();
  await Promise.all(children.map((c) => c.next(60_000 + SECONDS * 1000)));
  const server = await s.end();
  const results = await Promise.all(children.map((c) => c.next<ClientResult>(60_000)));
  const calls = results.reduce((a, r) => a + r.calls, 0);
  const cpu = results.reduce((a, r) => a + r.cpu_us, 0);
  return {
    server: s.label,
    load: `unary ${IN_FLIGHT} in flight`,
    per_s: results.reduce((a, r) => a + r.per_s, 0),
    server_stats: server,
    generator: `${procs} grpc-js processes × ${IN_FLIGHT / procs}`,
    generator_cpu_us_per_call: round(cpu / calls, 2),
    generator_cores: round(
      results.reduce((a, r) => a + r.cores, 0),
      2,
    ),
    notes: `h2load unusable: ${h2.reason}`,
  };
}

async function streamLoad(s: BenchServer): Promise<Row> {
  const { client, server } = await s.bracketClient({ mode: "stream", impl: STREAM_IMPL, inFlight: IN_FLIGHT, seconds: SECONDS, warmupSeconds: 1.5 });
  const l = client.latency!;
  return {
    server: s.label,
    load: `stream ${IN_FLIGHT} in flight`,
    per_s: client.per_s,
    p50_us: l.p50_us,
    p99_us: l.p99_us,
    p999_us: l.p999_us,
    server_stats: server,
    generator: `1 ${client.impl} process`,
    generator_cpu_us_per_call: client.cpu_us_per_call,
    generator_cores: client.cores,
    ...(client.errors ? { notes: `${client.errors} errors` } : {}),
  };
}

/** The Python client (clients/python, grpc.aio SignStream) on the same server run: raw Sign, 64 in flight. */
async function pythonStreamLoad(s: BenchServer): Promise<Row> {
  const { client, server } = await s.bracketClient({ mode: "stream", seconds: SECONDS }, pythonStreamChild(s.ready, IN_FLIGHT, SECONDS));
  return {
    server: s.label,
    load: `python stream ${IN_FLIGHT} in flight`,
    per_s: client.per_s,
    server_stats: server,
    generator: `1 ${client.impl} process`,
    generator_cpu_us_per_call: client.cpu_us_per_call,
    generator_cores: client.cores,
  };
}

async function allLoads(s: BenchServer, h2: H2loadSetup, bodyFile: string): Promise<Row[]> {
  const rows: Row[] = [];
  for (const load of [latencyLoad, (x: BenchServer) => unaryCapacity(x, h2, bodyFile), streamLoad]) {
    const row = await load(s);
    log(`  ${row.load.padEnd(22)} ${String(row.per_s).padStart(7)}/s  server ${row.server_stats.cpu_us_per_call} µs/call`);
    if (row.server_stats.denied || row.server_stats.failed)
      throw new Error(`${s.label}: ${row.server_stats.denied} denied, ${row.server_stats.failed} failed calls`);
    rows.push(row);
  }
  return rows;
}

// ---- output --------------------------------------------------------------------------------

/** Machine cores busy beyond the server and the generator (foreign load, the orchestrator). */
function otherCores(r: Row): number {
  return round(Math.max(0, r.server_stats.machine_cores - r.server_stats.cores - r.generator_cores), 2);
}

function table(rows: Row[]): string {
  const head = [
    "server",
    "load",
    "calls/s",
    "p50 µs",
    "p99 µs",
    "p99.9 µs",
    "srv CPU µs/call",
    "HSM µs/call",
    "srv cores",
    "main thread cores",
    "loop busy",
    "ELD p99 ms",
    "GC %",
    "generator",
    "gen CPU µs/call",
    "gen cores",
    "other cores",
  ];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
  for (const r of rows) {
    const s = r.server_stats;
    const cells = [
      r.server,
      r.load,
      String(r.per_s),
      r.p50_us === undefined ? "–" : String(r.p50_us),
      r.p99_us === undefined ? "–" : String(r.p99_us),
      r.p999_us === undefined ? "–" : String(r.p999_us),
      String(s.cpu_us_per_call),
      s.hsm_loop_us_per_call == null ? "–" : String(s.hsm_loop_us_per_call),
      String(s.cores),
      String(s.main_thread_cores),
      String(s.loop_utilization),
      String(s.eld_p99_ms),
      String(round(s.gc_share * 100, 1)),
      r.generator,
      String(r.generator_cpu_us_per_call),
      String(r.generator_cores),
      String(otherCores(r)),
    ];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const dir = mkdtempSync(join(tmpdir(), "custos-bench-"));
  const tmp = join(dir, "bench");
  mkdirSync(tmp);
  const bodyFile = join(tmp, "sign-request.grpc");
  writeFileSync(bodyFile, grpcFrame(encodedSignRequest()));
  const exchangeBodyFile = join(tmp, "exchange-request.grpc");
  writeFileSync(exchangeBodyFile, grpcFrame(encodedExchangeRequest()));
  const h2 = process.env.BENCH_GENERATOR === "node" ? { ok: false, reason: "BENCH_GENERATOR=node" } : prepareH2load(tmp);
  if (!h2.ok) log(`h2load unusable (${h2.reason}); driving unary capacity with grpc-js processes`);
  const rows: Row[] = [];
  const background = await backgroundCores(1000);
  const machine = `${availableParallelism()} × ${cpus()[0]?.model ?? "?"}, node ${process.version}, load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(" ")}`;
  log(`machine: ${machine}; busy cores before start: ${background}`);
  if (background > 0.3) log(`WARNING: ${background} cores are busy with other work: figures will be low and noisy`);
  try {
    // custos, embedded default (dispatch auto = worker for SoftHSM2). Its first start creates
    // the token, the wrapping key and the dev PKI that the floor reuses.
    log("custos (dispatch auto): creating token, PKI, importing the bench key");
    // BENCH_ONLY (diagnosis) honours the ablation knobs of serve-for-bench.ts; the full run never does.
    const diagnosis = process.env.BENCH_ONLY
      ? { BENCH_ABLATE: process.env.BENCH_ABLATE ?? "", BENCH_AUDIT_FLUSH_MS: process.env.BENCH_AUDIT_FLUSH_MS ?? "" }
      : {};
    let s = await BenchServer.start("custos", "custos", dir, { BENCH_DISPATCH: "auto", ...diagnosis });
    // The embedded default's dev officer proposes and approves the import (threshold 1).
    const officer = devOfficerClient(readConnectionFile(dir));
    await importSecret(officer, KEY_ID, SECRET, { apiKeyId: "api-bench" });
    // The same secret as a Binance-dialect key: SignExchangeRequest through the full policy path.
    await importSecret(officer, EXCHANGE_KEY_ID, SECRET, { apiKeyId: "api-bench", exchange: "binance" });
    officer.close();
    const syncDispatch = s.ready.dispatch ?? "?";
    s.label = `custos (${syncDispatch})`;
    if (process.env.BENCH_ONLY === "stream") return await streamOnly(s, dir);
    if (process.env.BENCH_ONLY === "exchange") return await exchangeOnly(s, dir, h2, bodyFile, exchangeBodyFile);
    if (process.env.BENCH_ONLY === "replicas") {
      await s.stop();
      process.stdout.write(replicasReport(await replicasBench(log, h2, bodyFile)) + "\n");
      return;
    }
    if (process.env.BENCH_ONLY === "ack") {
      await s.stop();
      const [written, queued] = await acknowledgementPair(dir, h2, bodyFile);
      process.stdout.write(table([...written, ...queued]) + "\n" + acknowledgementReport(written, queued) + "\n");
      return;
    }
    if (process.env.BENCH_ONLY === "egress") {
      await s.stop();
      process.stdout.write(egressReport(await egressBench(dir, log)) + "\n");
      return;
    }
    const custos = await allLoads(s, h2, bodyFile);
    rows.push(...custos);
    log("custos: SignExchangeRequest (Binance order: dialect, policy, own timestamp)");
    const exchangeRows: [Row, Row] = [await latencyLoad(s, "exchange"), await unaryCapacity(s, h2, exchangeBodyFile, "SignExchangeRequest")];
    if (exchangeRows.some((r) => r.server_stats.denied || r.server_stats.failed)) throw new Error("custos denied or failed exchange requests in the bench");
    rows.push(...exchangeRows);
    log("custos: the Python client's stream (clients/python, grpc.aio)");
    const pythonStream = await pythonStreamLoad(s);
    if (pythonStream.server_stats.denied || pythonStream.server_stats.failed) throw new Error("custos denied or failed Python stream calls in the bench");
    rows.push(pythonStream);
    await s.stop();

    log("custos: SendExchangeRequest vs SignExchangeRequest + the client sending (local HTTPS stand-in)");
    const egress: EgressResult = await egressBench(dir, log);

    log("replicas: custos on PostgreSQL as one and two replicas, the floor and SQLite custos on the same generators");
    const replicas: ReplicaResult = await replicasBench(log, h2, bodyFile);

    log("floor: bare grpc-js + node:crypto HMAC, same mTLS");
    s = await BenchServer.start("floor", "floor", dir);
    const floor = await allLoads(s, h2, bodyFile);
    rows.push(...floor);
    await s.stop();

    log("custos (dispatch async)");
    s = await BenchServer.start("custos (async)", "custos", dir, { BENCH_DISPATCH: "async" });
    const custosAsync = await allLoads(s, h2, bodyFile);
    rows.push(...custosAsync);
    await s.stop();

    log("custos (dispatch sync)");
    s = await BenchServer.start("custos (sync)", "custos", dir, { BENCH_DISPATCH: "sync" });
    const custosSync = await allLoads(s, h2, bodyFile);
    rows.push(...custosSync);
    await s.stop();

    log("custos (audit.acknowledge queued): answers before the record is written");
    s = await BenchServer.start("custos (ack queued)", "custos", dir, { BENCH_DISPATCH: "auto", BENCH_AUDIT_ACK: "queued" });
    const custosQueued = await allLoads(s, h2, bodyFile);
    rows.push(...custosQueued);
    await s.stop();

    log("raw pkcs11js HMAC on the custos token");
    const raw = new JsonChild([benchScript("serve-for-bench.js"), "hsm-raw", dir]);
    const hsm = (await raw.next<{ hsmRaw: HsmRaw }>(120_000)).hsmRaw;
    await raw.exit;

    let profile: ReturnType<typeof summarizeProfile> | undefined;
    if (process.env.BENCH_PROFILE === "1") {
      log("custos under --cpu-prof (unary capacity + stream)");
      const profDir = join(tmp, "cpu-prof");
      s = await BenchServer.start("custos (profiled)", "custos", dir, { BENCH_DISPATCH: "auto" }, ["--cpu-prof", "--cpu-prof-dir", profDir]);
      await unaryCapacity(s, h2, bodyFile);
      await streamLoad(s);
      await s.stop();
      const file = readdirSync(profDir).find((f) => f.endsWith(".cpuprofile"));
      if (file) profile = summarizeProfile(join(profDir, file), 30);
    }

    // ---- report ----
    const [cLat, cUnary, cStream] = custos as [Row, Row, Row];
    const [fLat, fUnary, fStream] = floor as [Row, Row, Row];
    const out = (line = "") => process.stdout.write(line + "\n");
    out();
    out(`custos bench — ${PAYLOAD.length}-byte payload, HMAC-SHA256, TLS 1.3 mTLS on loopback, ${IN_FLIGHT} in flight for the throughput loads`);
    out(`machine: ${machine}; cores busy with other work before the run: ${background}`);
    out();
    out(table(rows));
    for (const r of rows) if (r.notes) out(`  ${r.server}, ${r.load}: ${r.notes}`);
    out();
    out("egress (Binance USDⓈ-M order to a local HTTPS stand-in that verifies it; keep-alive on both paths):");
    out(egressReport(egress));
    out();
    out(replicasReport(replicas));
    out();
    out(acknowledgementReport(custos as [Row, Row, Row], custosQueued as [Row, Row, Row]));
    out();
    out(`raw pkcs11js HMAC-SHA256 on the custos token (${hsm.object}):`);
    out(`  sync C_SignInit+C_Sign: ${hsm.sync.per_s} ops/s (${hsm.sync.us_per_op} µs/op)`);
    for (const a of hsm.async) out(`  C_SignAsync, ${a.in_flight} in flight: ${a.per_s} ops/s (${a.us_per_op} µs/op wall, ${a.cpu_us_per_op} µs CPU/op)`);
    if (profile) {
      out();
      out("custos server profile (--cpu-prof, self time):");
      printProfile(profile, out);
    }
    const summary = {
      unary_ratio: ratio(cUnary.per_s, fUnary.per_s),
      unary_per_s: cUnary.per_s,
      floor_unary_per_s: fUnary.per_s,
      unary_p50_us: cLat.p50_us,
      floor_unary_p50_us: fLat.p50_us,
      unary_p99_us: cLat.p99_us,
      floor_unary_p99_us: fLat.p99_us,
      unary_p999_us: cLat.p999_us,
      floor_unary_p999_us: fLat.p999_us,
      unary_p99_ratio: ratio(cLat.p99_us!, fLat.p99_us!),
      stream_ratio: ratio(cStream.per_s, fStream.per_s),
      stream_per_s: cStream.per_s,
      floor_stream_per_s: fStream.per_s,
      stream_p50_us: cStream.p50_us,
      stream_p99_us: cStream.p99_us,
      floor_stream_p50_us: fStream.p50_us,
      floor_stream_p99_us: fStream.p99_us,
      hsm_raw_per_s: hsm.sync.per_s,
      // SignExchangeRequest (a Binance order through dialect, policy and custos's clock) on the
      // same server, as ratios to raw Sign in the same run.
      exchange: {
        unary_per_s: exchangeRows[1].per_s,
        unary_ratio_to_raw: ratio(exchangeRows[1].per_s, cUnary.per_s),
        p50_us: exchangeRows[0].p50_us,
        p99_us: exchangeRows[0].p99_us,
        p99_ratio_to_raw: ratio(exchangeRows[0].p99_us!, cLat.p99_us!),
        server_cpu_us_per_call: exchangeRows[1].server_stats.cpu_us_per_call,
        raw_server_cpu_us_per_call: cUnary.server_stats.cpu_us_per_call,
        server_cpu_us_per_call_over_raw: round((exchangeRows[1].server_stats.cpu_us_per_call ?? 0) - (cUnary.server_stats.cpu_us_per_call ?? 0), 1),
      },
      // SendExchangeRequest against SignExchangeRequest + the client sending, same stand-in.
      egress: {
        send_p50_us: egress.rows[0].latency.p50_us,
        send_p99_us: egress.rows[0].latency.p99_us,
        sign_then_send_p50_us: egress.rows[1].latency.p50_us,
        sign_then_send_p99_us: egress.rows[1].latency.p99_us,
        added_p50_us: egress.added_p50_us,
        added_p99_us: egress.added_p99_us,
        send_per_s: egress.rows[0].per_s,
        sign_then_send_per_s: egress.rows[1].per_s,
        gateway_p50_us: egress.rows[2].latency.p50_us,
        gateway_p99_us: egress.rows[2].latency.p99_us,
        gateway_per_s: egress.rows[2].per_s,
        gateway_added_p50_us: egress.gateway_added_p50_us,
        gateway_added_p99_us: egress.gateway_added_p99_us,
        cpu_us_per_call: { send: egress.rows[0].cpu_us, sign_then_send: egress.rows[1].cpu_us, gateway: egress.rows[2].cpu_us },
      },
      // Replicas on PostgreSQL (bench/replicas.ts): capacity against the floor and one replica, propagation.
      replicas: {
        rows: replicas.rows.map((r) => ({ server: r.server, unary_per_s: r.unary_per_s, stream_per_s: r.stream_per_s, latency: r.latency ?? null })),
        pair_over_floor_unary: replicas.pair_over_floor_unary,
        pair_over_single_unary: replicas.pair_over_single_unary,
        pair_over_single_stream: replicas.pair_over_single_stream,
        pair_audit_rows_per_s: replicas.pair_audit_rows_per_s,
        propagation: replicas.propagation,
      },
      // The Python client's SignStream next to the TypeScript stream client, same custos run.
      python_stream: {
        per_s: pythonStream.per_s,
        client_cpu_us_per_call: pythonStream.generator_cpu_us_per_call,
        server_cpu_us_per_call: pythonStream.server_stats.cpu_us_per_call,
        typescript_stream_per_s: cStream.per_s,
        typescript_client_cpu_us_per_call: cStream.generator_cpu_us_per_call,
      },
      hsm_raw_async_per_s: Object.fromEntries(hsm.async.map((a) => [String(a.in_flight), a.per_s])),
      dispatch: syncDispatch,
      server_cpu_us_per_call: { unary: cUnary.server_stats.cpu_us_per_call, stream: cStream.server_stats.cpu_us_per_call },
      hsm_loop_us_per_call: { unary: cUnary.server_stats.hsm_loop_us_per_call, stream: cStream.server_stats.hsm_loop_us_per_call },
      floor_server_cpu_us_per_call: { unary: fUnary.server_stats.cpu_us_per_call, stream: fStream.server_stats.cpu_us_per_call },
      eld_p99_ms: { latency: cLat.server_stats.eld_p99_ms, unary: cUnary.server_stats.eld_p99_ms, stream: cStream.server_stats.eld_p99_ms },
      floor_eld_p99_ms: { latency: fLat.server_stats.eld_p99_ms, unary: fUnary.server_stats.eld_p99_ms, stream: fStream.server_stats.eld_p99_ms },
      async: dispatchSummary(custosAsync as [Row, Row, Row], fUnary, fStream),
      // audit.acknowledge "queued" (answer before the record is written) on the same loads.
      ack_queued: dispatchSummary(custosQueued as [Row, Row, Row], fUnary, fStream),
      sync: dispatchSummary(custosSync as [Row, Row, Row], fUnary, fStream),
      generator: {
        unary: cUnary.generator,
        unary_cpu_us_per_call: cUnary.generator_cpu_us_per_call,
        floor_unary_cpu_us_per_call: fUnary.generator_cpu_us_per_call,
        stream: cStream.generator,
        stream_cpu_us_per_call: cStream.generator_cpu_us_per_call,
        floor_stream_cpu_us_per_call: fStream.generator_cpu_us_per_call,
        latency_cpu_us_per_call: cLat.generator_cpu_us_per_call,
        max_generator_cores: Math.max(...rows.map((r) => r.generator_cores)),
      },
      targets: {
        unary_ratio_ge_0_6: cUnary.per_s / fUnary.per_s >= 0.6,
        stream_ratio_ge_0_6: cStream.per_s / fStream.per_s >= 0.6,
        unary_p99_le_2x_floor: cLat.p99_us! <= 2 * fLat.p99_us!,
        exchange_ratio_ge_0_8: exchangeRows[1].per_s / cUnary.per_s >= 0.8,
      },
      background_cores_before: background,
      max_other_cores: Math.max(...rows.map(otherCores)),
      seconds: round((performance.now() - t0) / 1000, 1),
    };
    out();
    out(
      `targets: unary_ratio ${summary.unary_ratio} (≥ 0.6 ${summary.targets.unary_ratio_ge_0_6 ? "met" : "MISSED"}), ` +
        `stream_ratio ${summary.stream_ratio} (≥ 0.6 ${summary.targets.stream_ratio_ge_0_6 ? "met" : "MISSED"}), ` +
        `one-at-a-time p99 ${summary.unary_p99_us} µs vs floor ${summary.floor_unary_p99_us} µs (≤ 2× ${summary.targets.unary_p99_le_2x_floor ? "met" : "MISSED"}), ` +
        `exchange order / raw Sign ${summary.exchange.unary_ratio_to_raw} (≥ 0.8 ${summary.targets.exchange_ratio_ge_0_8 ? "met" : "MISSED"})`,
    );
    out(JSON.stringify(summary));
  } finally {
    if (process.env.BENCH_KEEP === "1") log(`data dir kept: ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

/** BENCH_ONLY=ack: the same loads on custos answering once the record is written, then once queued. */
async function acknowledgementPair(dir: string, h2: H2loadSetup, bodyFile: string): Promise<[Row[], Row[]]> {
  const out: Row[][] = [];
  for (const ack of ["written", "queued"]) {
    log(`custos (audit.acknowledge ${ack})`);
    const s = await BenchServer.start(`custos (ack ${ack})`, "custos", dir, { BENCH_DISPATCH: "auto", BENCH_AUDIT_ACK: ack });
    out.push(await allLoads(s, h2, bodyFile));
    await s.stop();
  }
  return [out[0]!, out[1]!];
}

/** What answering after the record is written costs, against answering once it is queued. */
function acknowledgementReport([wLat, wUnary, wStream]: Row[], [qLat, qUnary, qStream]: Row[]): string {
  return [
    "audit acknowledgement (a signature answered once its record is written, the default, against once it is queued):",
    `  1 at a time: p50 ${wLat!.p50_us} vs ${qLat!.p50_us} µs (+${round(wLat!.p50_us! - qLat!.p50_us!, 0)}), p99 ${wLat!.p99_us} vs ${qLat!.p99_us} µs`,
    `  unary capacity: ${wUnary!.per_s} vs ${qUnary!.per_s} calls/s (${ratio(wUnary!.per_s, qUnary!.per_s)})`,
    `  stream: ${wStream!.per_s} vs ${qStream!.per_s} calls/s (${ratio(wStream!.per_s, qStream!.per_s)})`,
  ].join("\n");
}

/** BENCH_ONLY=stream: the quick loop for work on the stream path. */
async function streamOnly(custos: BenchServer, dir: string): Promise<void> {
  const c = await streamLoad(custos);
  await custos.stop();
  if (process.env.BENCH_PROFILE === "1") {
    const profDir = join(dir, "bench", "cpu-prof");
    const s = await BenchServer.start("custos (profiled)", "custos", dir, { BENCH_DISPATCH: "auto" }, ["--cpu-prof", "--cpu-prof-dir", profDir]);
    await streamLoad(s);
    await s.stop();
    const file = readdirSync(profDir).find((f) => f.endsWith(".cpuprofile"));
    if (file) printProfile(summarizeProfile(join(profDir, file), 40), (l = "") => process.stdout.write(l + "\n"));
  }
  const floor = await BenchServer.start("floor", "floor", dir);
  const f = await streamLoad(floor);
  await floor.stop();
  process.stdout.write(table([c, f]) + "\n");
  process.stdout.write(`stream_ratio ${ratio(c.per_s, f.per_s)}\n`);
}

/** BENCH_ONLY=exchange: the quick loop for work on the SignExchangeRequest path. */
async function exchangeOnly(custos: BenchServer, dir: string, h2: H2loadSetup, bodyFile: string, exchangeBodyFile: string): Promise<void> {
  const raw = await unaryCapacity(custos, h2, bodyFile);
  const exchange = await unaryCapacity(custos, h2, exchangeBodyFile, "SignExchangeRequest");
  await custos.stop();
  process.stdout.write(table([raw, exchange]) + "\n");
  process.stdout.write(`exchange_ratio ${ratio(exchange.per_s, raw.per_s)}\n`);
  // Server CPU per call is steadier on a shared VM than the throughput ratio: the figure to compare.
  const rawCpu = raw.server_stats.cpu_us_per_call ?? 0;
  const exchangeCpu = exchange.server_stats.cpu_us_per_call ?? 0;
  process.stdout.write(
    `server CPU µs/call: raw Sign ${rawCpu}, SignExchangeRequest (Binance order) ${exchangeCpu}, difference ${round(exchangeCpu - rawCpu, 1)}\n`,
  );
  if (process.env.BENCH_PROFILE === "1") {
    // One profiled process per load, then the functions whose self time per call differs most.
    const perCall = async (name: string, body: string, method: string): Promise<Map<string, number>> => {
      const profDir = join(dir, "bench", `cpu-prof-${name}`);
      const s = await BenchServer.start(`custos (profiled ${name})`, "custos", dir, { BENCH_DISPATCH: "auto" }, ["--cpu-prof", "--cpu-prof-dir", profDir]);
      const row = await unaryCapacity(s, h2, body, method);
      await s.stop();
      const file = readdirSync(profDir).find((f) => f.endsWith(".cpuprofile"));
      if (!file) return new Map();
      const summary = summarizeProfile(join(profDir, file), 400);
      // The profile spans the warm-up too: about 20k calls more than the measured ones.
      const calls = row.server_stats.calls + 20_000;
      return new Map(summary.top.map((t) => [`${t.fn} ${t.where}`, (t.selfMs * 1000) / calls]));
    };
    const rawUs = await perCall("raw", bodyFile, "Sign");
    const exchangeUs = await perCall("exchange", exchangeBodyFile, "SignExchangeRequest");
    const keys = new Set([...rawUs.keys(), ...exchangeUs.keys()]);
    const diff = [...keys].map((k) => ({ k, raw: rawUs.get(k) ?? 0, ex: exchangeUs.get(k) ?? 0 })).sort((a, b) => b.ex - b.raw - (a.ex - a.raw));
    const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
    process.stdout.write(
      `main-thread self µs per call (sampled): raw ${sum(rawUs).toFixed(1)}, exchange ${sum(exchangeUs).toFixed(1)}\n  Δ µs   raw µs  exch µs  function\n`,
    );
    for (const d of diff.slice(0, 30))
      process.stdout.write(`  ${(d.ex - d.raw).toFixed(2).padStart(5)}  ${d.raw.toFixed(2).padStart(6)}  ${d.ex.toFixed(2).padStart(6)}  ${d.k}\n`);
  }
}

interface HsmRaw {
  object: string;
  sync: { per_s: number; us_per_op: number; cpu_us_per_op: number };
  async: Array<{ in_flight: number; per_s: number; us_per_op: number; cpu_us_per_op: number }>;
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});

const ratio = (a: number, b: number) => round(a / b, 3);

/** The JSON summary of one extra dispatch mode's runs, as ratios to the same floor. */
function dispatchSummary([lat, unary, stream]: [Row, Row, Row], fUnary: Row, fStream: Row) {
  return {
    unary_per_s: unary.per_s,
    unary_ratio: ratio(unary.per_s, fUnary.per_s),
    unary_p50_us: lat.p50_us,
    unary_p99_us: lat.p99_us,
    stream_per_s: stream.per_s,
    stream_ratio: ratio(stream.per_s, fStream.per_s),
    stream_p99_us: stream.p99_us,
    server_cpu_us_per_call: { unary: unary.server_stats.cpu_us_per_call, stream: stream.server_stats.cpu_us_per_call },
    eld_p99_ms: { unary: unary.server_stats.eld_p99_ms, stream: stream.server_stats.eld_p99_ms },
  };
}
