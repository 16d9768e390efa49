/**
 * The egress rows of `npm run bench` (alone: BENCH_ONLY=egress): SendExchangeRequest against
 * SignExchangeRequest plus the client sending the signed request itself, both to the same local
 * HTTPS stand-in exchange (test/helpers/stand-in-exchange.ts, Binance USDⓈ-M, which verifies
 * every signature) on loopback, both over keep-alive connections (custos's undici pool; the
 * client's own undici pool with the same settings). Three processes: custos
 * (serve-for-bench.js custos, egress pointed at the stand-in), the stand-in (this file with
 * `stand-in`), and the load in the orchestrator. Times are reported, never asserted.
 *
 * Loads: one call at a time, the two paths interleaved call by call (so drift and background
 * work hit both alike), then EGRESS_IN_FLIGHT calls in flight for BENCH_SECONDS (at most
 * EGRESS_MAX_CALLS) per path. Added latency = SendExchangeRequest − (sign + send) at p50 and p99.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Pool } from "undici";
import { signerClient, unary } from "../src/client/connection.js";
import type { SignerClient } from "../src/gen/custos/v1/signer.js";
import { StandInBinance, standInTls } from "../test/helpers/stand-in-exchange.js";
import { gatewayPath } from "./gateway-path.js";
import { API_KEY_ID, JsonChild, SECRET, benchScript, cpuSinceUs, exchangeRequest, onCommands, reply, round, summarize, type LatencySummary } from "./common.js";

const LATENCY_CALLS = Number(process.env.EGRESS_LATENCY_CALLS ?? "3000");
const WARMUP_CALLS = 500;
const EGRESS_IN_FLIGHT = 16;
const EGRESS_MAX_CALLS = 100_000;
const SECONDS = Number(process.env.BENCH_SECONDS ?? "5");
/** Calls per path for the CPU-per-call section (one at a time, one path after the other). */
const CPU_CALLS = 2000;

/** One path's figures. */
export interface EgressRow {
  path: string;
  latency: LatencySummary;
  per_s: number;
  /** CPU µs per call, one call at a time: custos (all threads), the stand-in, the orchestrator (client and gateway). */
  cpu_us: { custos: number; standIn: number; orchestrator: number };
}

/** What the egress group reports. */
export interface EgressResult {
  /** SendExchangeRequest, sign-then-send, and the gateway (a bot's HTTP request → SendExchangeRequest). */
  rows: [EgressRow, EgressRow, EgressRow];
  added_p50_us: number;
  added_p99_us: number;
  /** The gateway over SendExchangeRequest called directly. */
  gateway_added_p50_us: number;
  gateway_added_p99_us: number;
  target_p50_us: number;
}

interface Ready {
  ready: true;
  grpc: string;
  caPath: string;
  client: { certPath: string; keyPath: string };
}

/** Runs the group on DIR's token (the bench keys imported already); `log` gets progress lines. */
export async function egressBench(dir: string, log: (line: string) => void): Promise<EgressResult> {
  const tls = await standInTls();
  const caFile = join(dir, "bench-exchange-ca.pem");
  writeFileSync(caFile, tls.caPem);
  const standIn = new JsonChild([benchScript("egress.js"), "stand-in"], { BENCH_STAND_IN_TLS: JSON.stringify(tls) });
  const { url } = await standIn.next<{ url: string }>(30_000);
  // EGRESS_CPU_PROF_DIR: custos runs under --cpu-prof (its profile is written there at the stop).
  const profDir = process.env.EGRESS_CPU_PROF_DIR;
  const execArgv = profDir ? ["--cpu-prof", "--cpu-prof-dir", profDir] : [];
  const custos = new JsonChild(
    [benchScript("serve-for-bench.js"), "custos", dir],
    {
      BENCH_DISPATCH: "auto",
      BENCH_ABLATE: "",
      BENCH_AUDIT_FLUSH_MS: "",
      BENCH_EGRESS_ORIGIN: url,
      BENCH_EGRESS_CA_FILE: caFile,
    },
    execArgv,
  );
  const ready = await custos.next<Ready>(180_000);
  const signer = signerClient(ready.grpc, { caPath: ready.caPath, ...ready.client });
  // The client's own sender: the same keep-alive settings as custos's egress pool.
  const pool = new Pool(url, { connections: 16, pipelining: 1, connect: { ca: tls.caPem, rejectUnauthorized: true } });
  const gateway = await gatewayPath(signer);
  try {
    const paths = { send: () => viaCustos(signer), signThenSend: () => signThenSend(signer, pool, url), gateway: gateway.call };
    log(`egress: warm-up, then ${LATENCY_CALLS} calls of each path one at a time, interleaved`);
    for (let i = 0; i < WARMUP_CALLS; i++) {
      await paths.send();
      await paths.signThenSend();
      await paths.gateway();
    }
    const a = new Float64Array(LATENCY_CALLS);
    const b = new Float64Array(LATENCY_CALLS);
    const g = new Float64Array(LATENCY_CALLS);
    for (let i = 0; i < LATENCY_CALLS; i++) {
      let t = process.hrtime.bigint();
      await paths.send();
      a[i] = Number(process.hrtime.bigint() - t);
      t = process.hrtime.bigint();
      await paths.signThenSend();
      b[i] = Number(process.hrtime.bigint() - t);
      t = process.hrtime.bigint();
      await paths.gateway();
      g[i] = Number(process.hrtime.bigint() - t);
    }
    log(`egress: ${EGRESS_IN_FLIGHT} in flight, ${SECONDS} s (at most ${EGRESS_MAX_CALLS} calls) per path`);
    const sendRate = await throughput(paths.send);
    const signRate = await throughput(paths.signThenSend);
    const gatewayRate = await throughput(paths.gateway);
    log(`egress: ${CPU_CALLS} calls of each path one at a time, CPU per call`);
    const pids = { custos: custos.pid, standIn: standIn.pid };
    const windows: Record<string, [number, number]> = {};
    const measured = async (name: string, call: () => Promise<void>) => {
      const from = Number(process.hrtime.bigint() / 1000n);
      const cpu = await cpuPerCall(call, pids);
      windows[name] = [from, Number(process.hrtime.bigint() / 1000n)];
      return cpu;
    };
    const cpu = {
      send: await measured("send", paths.send),
      signThenSend: await measured("signThenSend", paths.signThenSend),
      gateway: await measured("gateway", paths.gateway),
    };
    // With a profile: each path's window on the monotonic clock the profile's timestamps use.
    if (profDir) writeFileSync(join(profDir, "windows.json"), JSON.stringify(windows));
    const la = summarize(a, LATENCY_CALLS);
    const lb = summarize(b, LATENCY_CALLS);
    const lg = summarize(g, LATENCY_CALLS);
    return {
      rows: [
        { path: "SendExchangeRequest (custos signs and sends)", latency: la, per_s: sendRate, cpu_us: cpu.send },
        { path: "SignExchangeRequest + the client sends", latency: lb, per_s: signRate, cpu_us: cpu.signThenSend },
        { path: "custos gateway (HTTP → SendExchangeRequest)", latency: lg, per_s: gatewayRate, cpu_us: cpu.gateway },
      ],
      added_p50_us: round(la.p50_us - lb.p50_us),
      added_p99_us: round(la.p99_us - lb.p99_us),
      gateway_added_p50_us: round(lg.p50_us - la.p50_us),
      gateway_added_p99_us: round(lg.p99_us - la.p99_us),
      target_p50_us: 150,
    };
  } finally {
    await gateway.close();
    signer.close();
    await pool.close();
    custos.send({ cmd: "stop" });
    await custos.exit;
    standIn.send({ cmd: "stop" });
    await standIn.exit;
  }
}

/** The group's report lines (markdown table and the added latency). */
export function egressReport(r: EgressResult): string {
  const lines = ["| path | p50 µs | p99 µs | p99.9 µs | calls/s (16 in flight) | CPU µs/call: custos / stand-in / client |", "|---|---|---|---|---|---|"];
  for (const row of r.rows) {
    const c = row.cpu_us;
    lines.push(
      `| ${row.path} | ${row.latency.p50_us} | ${row.latency.p99_us} | ${row.latency.p999_us} | ${row.per_s} | ${c.custos} / ${c.standIn} / ${c.orchestrator} |`,
    );
  }
  const met = r.added_p50_us <= r.target_p50_us ? "within" : "over";
  lines.push("", `egress added latency: p50 ${r.added_p50_us} µs, p99 ${r.added_p99_us} µs (${met} the ${r.target_p50_us} µs p50 target)`);
  lines.push(`gateway over SendExchangeRequest: p50 ${r.gateway_added_p50_us} µs, p99 ${r.gateway_added_p99_us} µs`);
  return lines.join("\n");
}

async function viaCustos(signer: SignerClient): Promise<void> {
  const res = await unary(signer, "sendExchangeRequest", exchangeRequest());
  if (res.status !== 200) throw new Error(`the stand-in refused a request custos sent: ${res.status} ${res.body.toString("utf8")}`);
}

async function signThenSend(signer: SignerClient, pool: Pool, origin: string): Promise<void> {
  const req = exchangeRequest();
  const signed = await unary(signer, "signExchangeRequest", req);
  const headers: string[] = [];
  for (const h of signed.headers) headers.push(h.name, h.value);
  const res = await pool.request({ origin, method: "POST", path: `${req.path}?${signed.query}`, headers });
  const body = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`the stand-in refused a request the client sent: ${res.statusCode} ${body}`);
}

/** CPU time of every thread of process `pid` in ns (the scheduler's own count, not 10 ms ticks). */
function processCpuNs(pid: number): number {
  let ns = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return ns;
}

/** CPU µs per call of custos, the stand-in and this process over CPU_CALLS calls one at a time. */
async function cpuPerCall(call: () => Promise<void>, pids: { custos: number; standIn: number }): Promise<EgressRow["cpu_us"]> {
  const custos0 = processCpuNs(pids.custos);
  const standIn0 = processCpuNs(pids.standIn);
  const self0 = process.cpuUsage();
  for (let i = 0; i < CPU_CALLS; i++) await call();
  const per = (ns: number) => round(ns / 1000 / CPU_CALLS);
  return {
    custos: per(processCpuNs(pids.custos) - custos0),
    standIn: per(processCpuNs(pids.standIn) - standIn0),
    orchestrator: per(cpuSinceUs(self0) * 1000),
  };
}

/** Calls per second with EGRESS_IN_FLIGHT in flight, bounded in time and count. */
async function throughput(call: () => Promise<void>): Promise<number> {
  const deadline = performance.now() + SECONDS * 1000;
  let done = 0;
  let started = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (performance.now() < deadline && started < EGRESS_MAX_CALLS) {
      started++;
      await call();
      done++;
    }
  };
  await Promise.all(Array.from({ length: EGRESS_IN_FLIGHT }, worker));
  return Math.round(done / ((performance.now() - t0) / 1000));
}

/** `egress.js stand-in`: the HTTPS stand-in in a process of its own; prints {url}, stops on {"cmd":"stop"}. */
async function serveStandIn(): Promise<void> {
  const tls = JSON.parse(process.env.BENCH_STAND_IN_TLS ?? "{}") as { certPem: string; keyPem: string };
  const standIn = new StandInBinance(new Map([[API_KEY_ID, SECRET.toString("utf8")]]));
  const url = await standIn.start({ tls });
  // The stand-in records every request; a long run keeps only the last second's.
  const trim = setInterval(() => {
    standIn.received.length = 0;
    standIn.accepted.length = 0;
  }, 1000);
  onCommands(async (cmd) => {
    if (cmd.cmd !== "stop") return { error: `unknown command ${cmd.cmd}` };
    clearInterval(trim);
    await standIn.stop();
    process.exit(0);
  });
  reply({ url });
}

if (process.argv[2] === "stand-in" && process.argv[1]?.endsWith("egress.js")) {
  serveStandIn().catch((e: unknown) => {
    process.stderr.write(`stand-in failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}
