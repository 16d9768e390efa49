/**
 * Bench-only server launcher, run as its own process so that its CPU is measured apart
 * from the load generators'. Modes:
 *
 *   custos DIR   the real service (src/service.ts) on the embedded default in DIR, with the
 *                rate limits raised so the buckets are evaluated on every call but never
 *                deny; HSM dispatch from $BENCH_DISPATCH (sync | async | worker | auto).
 *   floor DIR    a bare grpc-js server with the same mTLS setup (DIR's dev CA and server
 *                certificate, TLS 1.3 only, client certificate required) answering
 *                custos.v1.Signer with node:crypto HMAC-SHA256 from an in-memory secret.
 *   hsm-raw DIR  raw pkcs11js HMAC ops/s on DIR's token and the benchmark key object:
 *                a synchronous C_SignInit + C_Sign loop, then C_SignAsync with 1/4/8 in
 *                flight. Prints one JSON line and exits.
 *
 * Server modes print {"ready": …} once serving, then answer JSON commands on stdin:
 *   {"cmd":"begin"}  zero the counters (CPU, calls, event-loop delay, GC time, syscalls)
 *   {"cmd":"end"}    report them since "begin"
 *   {"cmd":"stop"}   stop gracefully and exit (so --cpu-prof can write its profile)
 *
 * Server-side call counts: the floor counts its own answers; custos's are counted at
 * SignService's observer (the hook behind custos_sign_requests_total), in-process.
 * Diagnosis knobs for the custos mode (never set by `npm run bench`): BENCH_ABLATE and
 * BENCH_AUDIT_FLUSH_MS, see below.
 */
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { BlockList } from "node:net";
import { join } from "node:path";
import { monitorEventLoopDelay, performance as perfHooks, PerformanceObserver, type IntervalHistogram } from "node:perf_hooks";
import tls from "node:tls";
import { Server, ServerCredentials, status, type ServerDuplexStream, type ServerUnaryCall, type sendUnaryData } from "@grpc/grpc-js";
import { AuditLog } from "../src/audit/audit-log.js";
import { embeddedConfig } from "../src/config/config.js";
import { postgresSetting } from "../src/config/config-sections.js";
import {
  SignerService,
  type ExchangeRequest,
  type ExchangeResponse,
  type SignRequest,
  type SignResponse,
  type SignStreamRequest,
  type SignStreamResponse,
  type SignedExchangeRequest,
  type SignedWebSocketAuth,
  type SignerServer,
  type WebSocketAuthRequest,
} from "../src/gen/custos/v1/signer.js";
import { Pkcs11Hsm } from "../src/hsm/index.js";
import { findObjects, findSlotByLabel, loadModule, pkcs11js, type Handle } from "../src/hsm/pkcs11/module.js";
import { secretQuery } from "../src/hsm/pkcs11/templates.js";
import { versionObjectId } from "../src/keys/model.js";
import { createLogger } from "../src/log.js";
import { startService } from "../src/service.js";
import { RateLimiter } from "../src/signing/rate-limiter.js";
import { Metrics } from "../src/transport/http/metrics.js";
import { API_KEY_ID, KEY_ID, PAYLOAD, SECRET, onCommands, reply, round } from "./common.js";

const [mode, dirArg] = process.argv.slice(2);
if (!mode || !dirArg) {
  process.stderr.write("usage: serve-for-bench.js custos|floor|hsm-raw DATA_DIR\n");
  process.exit(2);
}
const dir = dirArg;

// ---- what every server mode reports ----------------------------------------------------------

/** Event-loop delay sampled every millisecond; values include that 1 ms interval. */
const ELD_RESOLUTION_MS = 1;

/** read/write-family syscall counts of this process (Linux /proc/self/io), or zeros. */
function syscalls(): { r: number; w: number } {
  try {
    const io = readFileSync("/proc/self/io", "utf8");
    return { r: Number(/^syscr: (\d+)/m.exec(io)?.[1] ?? 0), w: Number(/^syscw: (\d+)/m.exec(io)?.[1] ?? 0) };
  } catch {
    return { r: 0, w: 0 };
  }
}

class RunStats {
  private cpu = process.cpuUsage();
  private io = syscalls();
  private started = performance.now();
  private elu = perfHooks.eventLoopUtilization();
  private mainTicks = 0;
  private eld: IntervalHistogram = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });
  private gcMs = 0;
  private gcCount = 0;
  private readonly gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      this.gcMs += e.duration;
      this.gcCount++;
    }
  });

  constructor() {
    this.eld.enable();
    this.gc.observe({ entryTypes: ["gc"] });
  }

  begin(): void {
    this.eld.reset();
    this.gcMs = 0;
    this.gcCount = 0;
    this.cpu = process.cpuUsage();
    this.io = syscalls();
    this.elu = perfHooks.eventLoopUtilization();
    this.mainTicks = mainThreadTicks();
    this.started = performance.now();
  }

  /** Counters since begin(); `calls` is the server-side count of successful signs. */
  end(calls: number, other: Record<string, number> = {}) {
    const cpu = process.cpuUsage(this.cpu);
    const wallMs = performance.now() - this.started;
    const io = syscalls();
    const elu = perfHooks.eventLoopUtilization(this.elu);
    const mainMs = (mainThreadTicks() - this.mainTicks) * 10;
    const cpuUs = cpu.user + cpu.system;
    const ms = (ns: number) => round(Math.max(0, ns / 1e6 - ELD_RESOLUTION_MS), 3);
    return {
      calls,
      ...other,
      wall_ms: round(wallMs),
      cpu_us: cpuUs,
      cpu_user_us: cpu.user,
      cpu_system_us: cpu.system,
      /** CPU cores busy on average (all threads of the process). */
      cores: round(cpuUs / 1000 / wallMs, 2),
      cpu_us_per_call: calls ? round(cpuUs / calls, 2) : null,
      /** The event loop's share of wall time spent running (1.0 = saturated), and the main thread's CPU. */
      loop_utilization: round(elu.utilization, 2),
      main_thread_cores: round(mainMs / wallMs, 2),
      /** Event-loop delay beyond the 1 ms sampling interval. */
      eld_p50_ms: ms(this.eld.percentile(50)),
      eld_p99_ms: ms(this.eld.percentile(99)),
      eld_max_ms: ms(this.eld.max),
      gc_ms: round(this.gcMs),
      gc_count: this.gcCount,
      gc_share: round(this.gcMs / wallMs, 3),
      /** read- and write-family syscalls (sockets, files) per call: batching on the wire. */
      syscr: io.r - this.io.r,
      syscw: io.w - this.io.w,
      syscr_per_call: calls ? round((io.r - this.io.r) / calls, 2) : null,
      syscw_per_call: calls ? round((io.w - this.io.w) / calls, 2) : null,
    };
  }
}

/** The main thread's user + system CPU in clock ticks (10 ms), from /proc. */
function mainThreadTicks(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

function stopOn(stop: () => Promise<void>): void {
  const bye = () =>
    stop().then(
      () => process.exit(0),
      (e: unknown) => {
        process.stderr.write(`stop failed: ${String(e)}\n`);
        process.exit(1);
      },
    );
  process.once("SIGTERM", bye);
  process.stdin.once("end", bye); // the orchestrator went away
}

// ---- custos -------------------------------------------------------------------------------

/**
 * Diagnosis only (never in `npm run bench`): BENCH_ABLATE=hsm,audit,metrics,limits,address
 * replaces one step of the sign path in this process so its marginal cost can be measured.
 * hsm: node:crypto HMAC instead of PKCS#11 (same bytes); audit: record() does nothing;
 * metrics: observe() does nothing; limits: buckets always allow; address: allowlist check
 * always passes.
 */
function ablate(list: string): string[] {
  const done: string[] = [];
  for (const what of list
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean)) {
    switch (what) {
      case "hsm":
        Pkcs11Hsm.prototype.sign = async (_objectId, _algorithm, data) => createHmac("sha256", SECRET).update(data).digest();
        break;
      case "audit":
        AuditLog.prototype.record = () => undefined;
        break;
      case "metrics": // applied by the counting hook in serveCustos
        break;
      case "limits":
        RateLimiter.prototype.take = () => true;
        break;
      case "address":
        BlockList.prototype.check = () => true;
        break;
      default:
        throw new Error(`BENCH_ABLATE: unknown step ${what}`);
    }
    done.push(what);
  }
  return done;
}

async function serveCustos(): Promise<void> {
  const config = embeddedConfig(dir);
  config.grpc.port = 0;
  config.http.port = 0;
  // Evaluated on every call (the cost stays in the measurement) but never denies.
  const unlimited = { perSecond: 10_000_000, burst: 10_000_000 };
  config.limits = { client: unlimited, key: unlimited };
  const dispatch = process.env.BENCH_DISPATCH ?? "auto";
  if (dispatch !== "sync" && dispatch !== "async" && dispatch !== "worker" && dispatch !== "auto") throw new Error(`BENCH_DISPATCH=${dispatch}`);
  config.hsm.dispatch = dispatch;
  // Diagnosis only: the audit flush interval (default 250 ms) sets the size of each batch
  // written on the event loop, hence the longest stall a call can meet.
  if (process.env.BENCH_AUDIT_FLUSH_MS) config.audit.flushIntervalMs = Number(process.env.BENCH_AUDIT_FLUSH_MS);
  // The acknowledgement comparison: answer once the record is written (default) or once queued.
  if (process.env.BENCH_AUDIT_ACK === "queued" || process.env.BENCH_AUDIT_ACK === "written") config.audit.acknowledge = process.env.BENCH_AUDIT_ACK;
  // The replicas group (bench/replicas.ts): the store is this PostgreSQL database.
  if (process.env.BENCH_POSTGRES_URL) config.store = { ...config.store, postgres: postgresSetting(process.env.BENCH_POSTGRES_URL, "BENCH_POSTGRES_URL") };
  // The egress group (bench/egress.ts): Binance USDⓈ-M requests go to its local HTTPS stand-in.
  if (process.env.BENCH_EGRESS_ORIGIN) {
    config.egress = { ...config.egress, hosts: { binance: { "/fapi/": process.env.BENCH_EGRESS_ORIGIN } } };
    if (process.env.BENCH_EGRESS_CA_FILE) config.egress.trustedCaFile = process.env.BENCH_EGRESS_CA_FILE;
  }
  const ablated = ablate(process.env.BENCH_ABLATE ?? "");
  // Server-side counts: every sign decision passes SignService's observer (the Metrics
  // instance behind custos_sign_requests_total); count them here, in-process.
  const counts = { ok: 0, denied: 0, failed: 0 };
  const observe = Metrics.prototype.observe;
  const skipMetrics = ablated.includes("metrics");
  Metrics.prototype.observe = function (this: Metrics, outcome, reason, seconds, client, key) {
    if (outcome === "allowed") counts.ok++;
    else if (outcome === "denied") counts.denied++;
    else counts.failed++;
    if (!skipMetrics) observe.call(this, outcome, reason, seconds, client, key);
  };
  const service = await startService(config, createLogger(process.env.BENCH_LOG_LEVEL ?? "warn"));
  const c = service.connection;

  // Event-loop time inside Hsm.sign with sync dispatch (C_SignInit + C_Sign run before it
  // returns its promise). Two performance.now() calls, ~0.1 µs a call.
  const hsm = service.hsm;
  const hsmSign = hsm.sign.bind(hsm);
  let hsmMs = 0;
  hsm.sign = (objectId, algorithm, data) => {
    const t = performance.now();
    const p = hsmSign(objectId, algorithm, data);
    hsmMs += performance.now() - t;
    return p;
  };

  const stats = new RunStats();
  let base = { ...counts };
  const stop = async () => service.stop();
  stopOn(stop);
  onCommands(async (cmd) => {
    switch (cmd.cmd) {
      case "begin":
        base = { ...counts };
        stats.begin();
        hsmMs = 0;
        return { ok: true };
      case "end": {
        const calls = counts.ok - base.ok;
        return {
          ...stats.end(calls, { denied: counts.denied - base.denied, failed: counts.failed - base.failed }),
          // With async dispatch the work runs after an await, outside this wrapper: not measured.
          hsm_loop_us_per_call: calls && service.hsm.status().dispatch === "sync" ? round((hsmMs * 1000) / calls, 2) : null,
        };
      }
      case "stop":
        await stop();
        process.exit(0);
    }
    throw new Error(`unknown command ${cmd.cmd}`);
  });
  reply({
    ready: true,
    mode: "custos",
    grpc: c.grpc,
    http: c.http,
    caPath: c.caPath,
    client: c.client,
    admin: c.admin,
    dispatch: service.hsm.status().dispatch,
    ...(ablated.length ? { ablated } : {}),
    pid: process.pid,
  });
}

// ---- floor: bare grpc-js + node:crypto -----------------------------------------------------

async function serveFloor(): Promise<void> {
  const pki = join(dir, "pki");
  tls.DEFAULT_MIN_VERSION = "TLSv1.3"; // as custos does (grpc-js has no minimum-version option)
  const server = new Server({
    "grpc.max_receive_message_length": 64 * 1024 + 4096,
    "grpc.keepalive_permit_without_calls": 1,
  });
  const secrets = new Map([[KEY_ID, SECRET]]);
  let ok = 0;
  let notFound = 0;
  const sign = (req: SignRequest): SignResponse | undefined => {
    const secret = secrets.get(req.keyId);
    if (!secret) return undefined;
    return { signature: createHmac("sha256", secret).update(req.payload).digest(), signatureText: "", keyVersion: 1, apiKeyId: API_KEY_ID };
  };
  const handlers: SignerServer = {
    sign(call: ServerUnaryCall<SignRequest, SignResponse>, callback: sendUnaryData<SignResponse>) {
      const res = sign(call.request);
      if (!res) {
        notFound++;
        callback({ code: status.NOT_FOUND, details: "no such key" });
        return;
      }
      ok++;
      callback(null, res);
    },
    signExchangeRequest(_call: ServerUnaryCall<ExchangeRequest, SignedExchangeRequest>, callback: sendUnaryData<SignedExchangeRequest>) {
      callback({ code: status.UNIMPLEMENTED, details: "the floor signs raw payloads only" });
    },
    sendExchangeRequest(_call: ServerUnaryCall<ExchangeRequest, ExchangeResponse>, callback: sendUnaryData<ExchangeResponse>) {
      callback({ code: status.UNIMPLEMENTED, details: "the floor signs raw payloads only" });
    },
    signWebSocketAuth(_call: ServerUnaryCall<WebSocketAuthRequest, SignedWebSocketAuth>, callback: sendUnaryData<SignedWebSocketAuth>) {
      callback({ code: status.UNIMPLEMENTED, details: "the floor signs raw payloads only" });
    },
    signStream(stream: ServerDuplexStream<SignStreamRequest, SignStreamResponse>) {
      stream.on("data", (msg: SignStreamRequest) => {
        const res = msg.kind?.$case === "request" ? sign(msg.kind.request) : undefined;
        if (res) ok++;
        else notFound++;
        const out: SignStreamResponse = res
          ? { requestId: msg.requestId, result: { $case: "response", response: res } }
          : { requestId: msg.requestId, result: { $case: "denial", denial: { code: 5, reason: "KEY_NOT_FOUND", message: "no such key", rule: "" } } };
        if (!stream.destroyed && stream.writable) stream.write(out);
      });
      stream.on("end", () => stream.end());
      stream.on("error", () => undefined);
    },
  };
  server.addService(SignerService, handlers);
  const credentials = ServerCredentials.createSsl(
    readFileSync(join(pki, "ca.crt")),
    [{ private_key: readFileSync(join(pki, "server.key")), cert_chain: readFileSync(join(pki, "server.crt")) }],
    true,
  );
  const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", credentials, (e, p) => (e ? reject(e) : resolve(p))));
  const stats = new RunStats();
  let base = { ok: 0, notFound: 0 };
  const stop = () => new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  stopOn(stop);
  onCommands(async (cmd) => {
    switch (cmd.cmd) {
      case "begin":
        base = { ok, notFound };
        stats.begin();
        return { ok: true };
      case "end":
        return stats.end(ok - base.ok, { denied: notFound - base.notFound, failed: 0 });
      case "stop":
        await stop();
        process.exit(0);
    }
    throw new Error(`unknown command ${cmd.cmd}`);
  });
  reply({
    ready: true,
    mode: "floor",
    grpc: `127.0.0.1:${port}`,
    caPath: join(pki, "ca.crt"),
    client: { certPath: join(pki, "client.crt"), keyPath: join(pki, "client.key") },
    pid: process.pid,
  });
}

// ---- raw pkcs11js on the custos token ------------------------------------------------------

async function hsmRaw(): Promise<void> {
  const seconds = Number(process.env.BENCH_HSM_SECONDS ?? "2");
  process.env.SOFTHSM2_CONF = join(dir, "softhsm2.conf");
  const config = embeddedConfig(dir);
  const mod = loadModule(config.hsm.modulePath); // C_Initialize with CKF_OS_LOCKING_OK
  const slot = findSlotByLabel(mod, config.hsm.tokenLabel);
  if (!slot) throw new Error(`no token "${config.hsm.tokenLabel}" in ${dir}`);
  const sessions: Handle[] = [];
  for (let i = 0; i < 8; i++) sessions.push(mod.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION));
  mod.C_Login(sessions[0]!, pkcs11js.CKU_USER, readFileSync(join(dir, "secrets/user.pin"), "utf8").trim());
  const objectId = versionObjectId(KEY_ID, 1);
  const [key] = findObjects(mod, sessions[0]!, secretQuery(objectId));
  if (!key) throw new Error(`no object with CKA_ID ${objectId}`);
  const mechanism = { mechanism: 0x251 }; // CKM_SHA256_HMAC
  const expected = createHmac("sha256", SECRET).update(PAYLOAD).digest();

  // Synchronous: C_SignInit + C_Sign on the event loop, one session.
  const s0 = sessions[0]!;
  const out = Buffer.alloc(32);
  mod.C_SignInit(s0, mechanism, key);
  if (!mod.C_Sign(s0, PAYLOAD, out).equals(expected)) throw new Error("token HMAC differs from node:crypto");
  const runSync = (ms: number) => {
    const until = performance.now() + ms;
    let n = 0;
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    while (performance.now() < until) {
      for (let i = 0; i < 256; i++) {
        mod.C_SignInit(s0, mechanism, key);
        mod.C_Sign(s0, PAYLOAD, out);
      }
      n += 256;
    }
    const wall = performance.now() - t0;
    const c = process.cpuUsage(cpu);
    return { per_s: Math.round((n / wall) * 1000), us_per_op: round((wall * 1000) / n, 2), cpu_us_per_op: round((c.user + c.system) / n, 2) };
  };
  runSync(300); // warm-up
  const sync = runSync(seconds * 1000);

  // Asynchronous: C_SignAsync, k operations in flight on k sessions (one op per session).
  const runAsync = async (k: number, ms: number) => {
    let n = 0;
    let stopAt = 0;
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    stopAt = t0 + ms;
    await Promise.all(
      sessions.slice(0, k).map(async (s) => {
        const buf = Buffer.alloc(32);
        while (performance.now() < stopAt) {
          mod.C_SignInit(s, mechanism, key);
          await mod.C_SignAsync(s, PAYLOAD, buf);
          n++;
        }
      }),
    );
    const wall = performance.now() - t0;
    const c = process.cpuUsage(cpu);
    return { in_flight: k, per_s: Math.round((n / wall) * 1000), us_per_op: round((wall * 1000) / n, 2), cpu_us_per_op: round((c.user + c.system) / n, 2) };
  };
  await runAsync(4, 300); // warm-up
  const asyncRuns = [];
  for (const k of [1, 4, 8]) asyncRuns.push(await runAsync(k, seconds * 1000));
  mod.C_Logout(s0);
  for (const s of sessions) mod.C_CloseSession(s);
  reply({ hsmRaw: { object: "token object (CKA_TOKEN=true, as custos stores keys)", seconds, sync, async: asyncRuns } });
}

const modes: Record<string, () => Promise<void>> = { custos: serveCustos, floor: serveFloor, "hsm-raw": hsmRaw };
const run = modes[mode];
if (!run) {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exit(2);
}
run().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
