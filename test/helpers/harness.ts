/**
 * Test harness: a real custos (SoftHSM2 token, SQLite, dev PKI, gRPC over mTLS) in a
 * fresh temp data dir, either in this process or as a child process.
 *
 * SoftHSM2 reads SOFTHSM2_CONF once per process (at C_Initialize), so a test process may
 * host at most ONE in-process service data dir; use spawnService for more.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { PassThrough } from "node:stream";
import { fileURLToPath } from "node:url";
import { status } from "@grpc/grpc-js";
import { custodyClient, readConnectionFile, signerClient, unary, type ConnectionFile } from "../../src/client/connection.js";
import { embeddedConfig, type CustosConfig } from "../../src/config/config.js";
import type { KeyObject } from "node:crypto";
import { loadOfficerKey, propose } from "../../src/client/officer.js";
import { Environment, type CustodyClient, type ProposalInfo, type ProposeRequest, type WrappedKeyEnvelope } from "../../src/gen/custos/v1/custody.js";
import { ALGORITHM_ENUM } from "../../src/transport/grpc/enums.js";
import type { SignerClient } from "../../src/gen/custos/v1/signer.js";
import { buildEnvelope, padHmacSecret, type SigningAlgorithm } from "../../src/hsm/index.js";
import { createLogger } from "../../src/log.js";
import { startService, type RunningService } from "../../src/service.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";

export const REPO = resolve(fileURLToPath(new URL("../../../", import.meta.url)));
export const CLI = join(REPO, "bin/custos.js");

export function tempDir(prefix = "custos-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface InProcessService {
  dir: string;
  config: CustosConfig;
  service: RunningService;
  conn: ConnectionFile;
  /** The embedded default's dev officer (threshold 1: its approval executes a proposal). */
  custody: CustodyClient;
  /** The embedded default's trading client (granted every imported key). */
  signer: SignerClient;
  /** Everything the service logged so far. */
  logs(): string;
  stop(): Promise<void>;
}

/** Starts the embedded default in this process on free ports. `tweak` edits the config first. */
export async function startInProcess(tweak: (c: CustosConfig) => void = () => undefined): Promise<InProcessService> {
  const dir = tempDir();
  const config = embeddedConfig(dir);
  config.grpc.port = 0;
  config.http.port = 0;
  config.audit.flushIntervalMs = 50;
  tweak(config);
  const sink = new PassThrough();
  let logText = "";
  sink.on("data", (d: Buffer) => (logText += d.toString()));
  const service = await startService(config, createLogger("info", sink));
  const conn = readConnectionFile(dir);
  const custody = devOfficerClient(conn);
  const signer = signerClient(conn.grpc, { caPath: conn.caPath, ...conn.client! });
  return {
    dir,
    config,
    service,
    conn,
    custody,
    signer,
    logs: () => logText,
    async stop() {
      custody.close();
      signer.close();
      await service.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const ALG_ENUM = ALGORITHM_ENUM;

/** Officer clients whose signing key the harness holds (the embedded default's dev officer). */
const approvers = new WeakMap<CustodyClient, KeyObject>();

/** A Custody client acting as the data dir's dev officer, able to approve what it proposes. */
export function devOfficerClient(conn: ConnectionFile): CustodyClient {
  const o = conn.officer!;
  const client = custodyClient(conn.grpc, { caPath: conn.caPath, certPath: o.certPath, keyPath: o.keyPath });
  approvers.set(client, loadOfficerKey(o.officerKeyPath, readFileSync(o.passphraseFile, "utf8").trim()));
  return client;
}

/** Proposes and, if the client is a dev officer the harness holds the key of, approves. */
export async function proposeAndApprove(custody: CustodyClient, request: ProposeRequest): Promise<ProposalInfo> {
  return propose(custody, request, approvers.get(custody));
}

/** Imports a secret the way an officer's CLI does: envelope built here, unwrapped in the HSM. */
export async function importSecret(
  custody: CustodyClient,
  keyId: string,
  secret: Buffer,
  opts: { algorithm?: SigningAlgorithm; exchange?: string; apiKeyId?: string } = {},
): Promise<ProposalInfo> {
  const algorithm = opts.algorithm ?? "hmac-sha256";
  const envelope = await envelopeFor(custody, secret, algorithm);
  const p = await proposeAndApprove(custody, {
    kind: {
      $case: "importKey",
      importKey: {
        keyId,
        exchange: opts.exchange ?? "binance",
        environment: Environment.ENVIRONMENT_TESTNET,
        label: keyId,
        apiKeyId: opts.apiKeyId ?? `api-${keyId}`,
        algorithm: ALG_ENUM[algorithm],
        envelope,
        maxAgeDays: 0,
      },
    },
    ttlSeconds: 0,
  });
  if (p.state !== "executed") throw Object.assign(new Error(`import of ${keyId} is ${p.state}: ${p.failure}`), { proposal: p });
  return p;
}

/** A wrapped envelope of `secret` for the service's wrapping key, as an officer's CLI builds it. */
export async function envelopeFor(custody: CustodyClient, secret: Buffer, algorithm: SigningAlgorithm = "hmac-sha256"): Promise<WrappedKeyEnvelope> {
  const wrapping = await unary(custody, "getWrappingKey", {});
  const padded = padHmacSecret(secret, algorithm);
  try {
    return buildEnvelope(padded, { spkiPem: wrapping.spkiPem, fingerprint: wrapping.fingerprint, oaepHash: wrapping.oaepHash as "sha1" });
  } finally {
    padded.fill(0);
  }
}

/** Proposes the full access of a trading client (created if new) and approves it as the dev officer. */
export async function setGrants(custody: CustodyClient, identity: string, access: { cidrs: string[]; keyIds: string[]; name?: string; canFreeze?: boolean }): Promise<ProposalInfo> {
  return proposeAndApprove(custody, {
    kind: { $case: "setGrants", setGrants: { identity, name: access.name ?? "", cidrs: access.cidrs, keyIds: access.keyIds, canFreeze: access.canFreeze ?? false } },
    ttlSeconds: 0,
  });
}

/** A custos child process (`custos serve`) on free ports. */
export interface ChildService {
  dir: string;
  proc: ChildProcess;
  conn: ConnectionFile;
  stdout(): string;
  stderr(): string;
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(): Promise<number | null>;
}

export async function spawnService(dir = tempDir(), env: NodeJS.ProcessEnv = {}): Promise<ChildService> {
  const connFile = join(dir, "connection.json");
  rmSync(connFile, { force: true });
  const proc = spawn(process.execPath, [CLI, "serve", "--data-dir", dir, "--grpc-port", "0", "--http-port", "0"], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  const deadline = Date.now() + 60_000;
  while (!existsSync(connFile)) {
    if (proc.exitCode !== null) throw new Error(`custos serve exited ${proc.exitCode}: ${err}`);
    if (Date.now() > deadline) throw new Error(`custos serve did not become ready: ${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    dir,
    proc,
    conn: JSON.parse(readFileSync(connFile, "utf8")) as ConnectionFile,
    stdout: () => out,
    stderr: () => err,
    async stop() {
      if (proc.exitCode === null) proc.kill("SIGTERM");
      return exited;
    },
  };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the `custos` CLI with optional stdin. */
export function runCli(args: string[], opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((resolvePromise) => {
    const proc = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...opts.env }, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    proc.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    proc.on("close", (code) => resolvePromise({ code, stdout, stderr }));
    proc.stdin.end(opts.input ?? "");
  });
}

/** gRPC status code and custos reason of a failed call. */
export function failure(e: unknown): { code: number; reason: string | undefined; details: string } {
  const err = e as { code: number; details: string; metadata?: { get(k: string): unknown[] } };
  const reason = err.metadata?.get("custos-reason")[0];
  return { code: err.code, reason: reason === undefined ? undefined : String(reason), details: err.details };
}

/** An audit event body as stored (canonical JSON), for assertions. */
export interface AuditBody {
  seq: number;
  kind: string;
  actor: string;
  outcome: string;
  reason?: string;
  key?: string;
  version?: number;
  peer?: string;
  payloadSha256?: string;
  details?: Record<string, unknown>;
}

/** Every audit event written so far in a data dir (read-only; the service keeps writing). */
export async function auditEvents(dir: string): Promise<AuditBody[]> {
  const store = new SqliteStore(join(dir, "custos.db"), { readonly: true });
  try {
    return (await store.readAudit(0, 1_000_000)).map((e) => JSON.parse(e.body) as AuditBody);
  } finally {
    await store.close();
  }
}

/** Sign decisions are written in batches: poll until an event matching `match` (after `afterSeq`) is durable. */
export async function waitForAudit(dir: string, match: Partial<AuditBody>, afterSeq = 0): Promise<AuditBody> {
  const deadline = Date.now() + 3_000;
  for (;;) {
    const hit = (await auditEvents(dir)).find((e) => e.seq > afterSeq && Object.entries(match).every(([k, v]) => e[k as keyof AuditBody] === v));
    if (hit) return hit;
    if (Date.now() > deadline) assert.fail(`no audit event matching ${JSON.stringify(match)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Asserts that a call fails with this gRPC status and custos reason. */
export async function expectDenied(call: Promise<unknown>, code: status, reason: string | undefined): Promise<void> {
  try {
    await call;
  } catch (e) {
    const f = failure(e);
    assert.deepEqual({ code: status[f.code], reason: f.reason }, { code: status[code], reason }, f.details);
    return;
  }
  assert.fail(`expected ${status[code]}/${reason}, the call succeeded`);
}
