/**
 * h2load as the unary capacity generator. h2load (nghttp2) is written in C and spends a
 * few µs of CPU per request, so it can saturate a Node gRPC server that a grpc-js client
 * (≈ 84 µs of CPU per unary call) cannot.
 *
 * Debian 12's h2load (nghttp2 1.52) has no option to present a TLS client certificate,
 * and custos requires one. A 20-line LD_PRELOAD shim fixes that: it wraps OpenSSL's
 * SSL_CTX_new and loads the certificate and key named by BENCH_TLS_CERT/BENCH_TLS_KEY
 * into every context h2load creates. It is compiled with the system C compiler into the
 * run's temp dir (no OpenSSL headers needed: the two functions are declared here).
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { round } from "./common.js";

const SHIM_C = `
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_method_st SSL_METHOD;
extern int SSL_CTX_use_certificate_chain_file(SSL_CTX *ctx, const char *file);
extern int SSL_CTX_use_PrivateKey_file(SSL_CTX *ctx, const char *file, int type);
extern int SSL_CTX_check_private_key(const SSL_CTX *ctx);
SSL_CTX *SSL_CTX_new(const SSL_METHOD *method) {
  static SSL_CTX *(*real)(const SSL_METHOD *);
  if (!real) real = (SSL_CTX *(*)(const SSL_METHOD *))dlsym(RTLD_NEXT, "SSL_CTX_new");
  SSL_CTX *ctx = real(method);
  const char *cert = getenv("BENCH_TLS_CERT"), *key = getenv("BENCH_TLS_KEY");
  if (ctx && cert && key) {
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 || SSL_CTX_use_PrivateKey_file(ctx, key, 1 /* PEM */) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
      fprintf(stderr, "h2load mTLS shim: cannot load %s / %s\\n", cert, key);
      abort();
    }
  }
  return ctx;
}
`;

export interface H2loadSetup {
  ok: boolean;
  shim?: string;
  reason?: string;
}

/** Finds h2load and builds the client-certificate shim; `ok: false` says why not. */
export function prepareH2load(tmp: string): H2loadSetup {
  try {
    execFileSync("h2load", ["--version"], { stdio: "ignore" });
  } catch {
    return { ok: false, reason: "h2load is not installed (Debian: nghttp2-client)" };
  }
  const src = join(tmp, "h2load-mtls-shim.c");
  const so = join(tmp, "h2load-mtls-shim.so");
  writeFileSync(src, SHIM_C);
  try {
    execFileSync(process.env.CC ?? "cc", ["-shared", "-fPIC", "-O2", "-o", so, src, "-ldl"], { stdio: ["ignore", "ignore", "pipe"] });
  } catch (e) {
    return { ok: false, reason: `cannot compile the client-certificate shim: ${(e as { stderr?: Buffer }).stderr?.toString() ?? String(e)}` };
  }
  return existsSync(so) ? { ok: true, shim: so } : { ok: false, reason: "shim build produced nothing" };
}

export interface H2loadRun {
  requests: number;
  succeeded: number;
  failed: number;
  errored: number;
  seconds: number;
  per_s: number;
  /** h2load's own request time (it reports no percentiles). */
  mean_ms: number;
  max_ms: number;
  /** h2load's CPU (user + system, from the shell's `times`). */
  cpu_us: number;
  cpu_us_per_call: number;
  cores: number;
}

/** One h2load run of `n` unary Sign calls over `connections` × `streams` in flight. */
export async function runH2load(opts: {
  setup: H2loadSetup;
  grpc: string;
  bodyFile: string;
  n: number;
  connections: number;
  streams: number;
  certPath: string;
  keyPath: string;
  /** Signer method (default Sign). */
  method?: string;
}): Promise<H2loadRun> {
  const args = [
    "-n",
    String(opts.n),
    "-c",
    String(opts.connections),
    "-m",
    String(opts.streams),
    "-t",
    "1",
    "--header",
    "content-type: application/grpc",
    "--header",
    "te: trailers",
    "-d",
    opts.bodyFile,
    `https://${opts.grpc}/custos.v1.Signer/${opts.method ?? "Sign"}`,
  ];
  // bash's `times` prints the children's user and system CPU after h2load exits.
  const script = 'h2load "$@"; rc=$?; times >&2; exit $rc';
  const proc = spawn("bash", ["-c", script, "h2load", ...args], {
    env: { ...process.env, LD_PRELOAD: opts.setup.shim!, BENCH_TLS_CERT: opts.certPath, BENCH_TLS_KEY: opts.keyPath },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stdout.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((r) => proc.once("close", r));
  if (code !== 0) throw new Error(`h2load exited ${code}:\n${out}\n${err}`);

  const req = /requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(out);
  const fin = /finished in ([\d.]+)(ms|s), ([\d.]+) req\/s/.exec(out);
  const time = /time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)/.exec(out);
  const times = [...err.matchAll(/(\d+)m([\d.]+)s (\d+)m([\d.]+)s/g)];
  if (!req || !fin || !time || times.length < 2) throw new Error(`cannot parse h2load output:\n${out}\n${err}`);
  const child = times[1]!;
  const cpuUs = Math.round((Number(child[1]) * 60 + Number(child[2]) + Number(child[3]) * 60 + Number(child[4])) * 1e6);
  const toMs = (v: string, unit: string) => Number(v) * (unit === "us" ? 0.001 : unit === "s" ? 1000 : 1);
  const seconds = toMs(fin[1]!, fin[2]!) / 1000;
  const succeeded = Number(req[2]);
  if (succeeded === 0 || Number(req[3]) + Number(req[4]) > 0) throw new Error(`h2load requests failed:\n${out}`);
  return {
    requests: Number(req[1]),
    succeeded,
    failed: Number(req[3]),
    errored: Number(req[4]),
    seconds: round(seconds, 3),
    per_s: Math.round(Number(fin[3])),
    mean_ms: round(toMs(time[5]!, time[6]!), 3),
    max_ms: round(toMs(time[3]!, time[4]!), 3),
    cpu_us: cpuUs,
    cpu_us_per_call: round(cpuUs / succeeded, 2),
    cores: round(cpuUs / 1e6 / seconds, 2),
  };
}
