/**
 * Test harness: a real custos (SoftHSM2 token, SQLite, dev PKI, gRPC over mTLS) in a
 * fresh temp data dir, either in this process or as a child process.
 *
 * SoftHSM2 reads SOFTHSM2_CONF once per process (at C_Initialize), so a test process may
 * host at most ONE in-process service data dir; use spawnService for more.
 */
import assert from "node:assert/strict";
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { PassThrough } from "node:stream";
import { fileURLToPath, pathToFileURL } from "node:url";
import { status } from "@grpc/grpc-js";
import { custodyClient, readConnectionFile, signerClient, unary, type ConnectionFile } from "../../src/client/connection.js";
import { defaultSofthsmModule, embeddedConfig, loadConfig, type CustosConfig } from "../../src/config/config.js";
import { createDevCa, issueClientCert, issueServerCert, writeIssued } from "../../src/pki/index.js";
import { createHmac, type KeyObject } from "node:crypto";
import { loadOfficerKey, propose } from "../../src/client/officer.js";
import { Environment, type CustodyClient, type ProposalInfo, type ProposeRequest, type WrappedKeyEnvelope } from "../../src/gen/custos/v1/custody.js";
import { ALGORITHM_ENUM } from "../../src/transport/grpc/enums.js";
import type { SignerClient } from "../../src/gen/custos/v1/signer.js";
import { buildEnvelope, padHmacSecret, type SigningAlgorithm } from "../../src/hsm/index.js";
import type { AuditRecord } from "../../src/audit/audit-log.js";
import { createLogger } from "../../src/log.js";
import { startService, type RunningService, type StartOptions } from "../../src/service.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { liveReplicas } from "../../src/replication/replica-registry.js";

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

/** Starts the embedded default in this process on free ports. `tweak` edits the config first; `options` go to startService (e.g. a clock). */
export async function startInProcess(tweak: (c: CustosConfig) => void = () => undefined, options: StartOptions = {}): Promise<InProcessService> {
  const dir = tempDir();
  const config = embeddedConfig(dir);
  config.grpc.port = 0;
  config.http.port = 0;
  config.audit.flushIntervalMs = 50;
  // In-process tests talk to stand-ins they start: a test that wants custos to read key permissions asks for it.
  config.egress.permissionChecks = false;
  tweak(config);
  const sink = new PassThrough();
  let logText = "";
  sink.on("data", (d: Buffer) => (logText += d.toString()));
  const service = await startService(config, createLogger("info", sink), options);
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

/**
 * Imports a secret the way an officer's CLI does: envelope built here, unwrapped in the HSM.
 * `apiPassphrase` (KuCoin Futures keys): its HMAC under the secret goes into the proposal, as
 * `custos key import --api-passphrase-file` sends it; `signedPassphrase` sends a value as is.
 */
export async function importSecret(
  custody: CustodyClient,
  keyId: string,
  secret: Buffer,
  opts: { algorithm?: SigningAlgorithm; exchange?: string; apiKeyId?: string; apiPassphrase?: string; signedPassphrase?: string } = {},
): Promise<ProposalInfo> {
  const algorithm = opts.algorithm ?? "hmac-sha256";
  const signedPassphrase =
    opts.signedPassphrase ?? (opts.apiPassphrase === undefined ? "" : createHmac("sha256", secret).update(opts.apiPassphrase).digest("base64"));
  const envelope = await envelopeFor(custody, secret, algorithm);
  const p = await proposeAndApprove(custody, {
    kind: {
      $case: "importKey",
      importKey: {
        keyId,
        exchange: opts.exchange ?? "raw", // raw-only: no dialect, raw Sign allowed
        environment: Environment.ENVIRONMENT_TESTNET,
        label: keyId,
        apiKeyId: opts.apiKeyId ?? `api-${keyId}`,
        algorithm: ALG_ENUM[algorithm],
        envelope,
        maxAgeDays: 0,
        publicKeyPem: "",
        signedPassphrase,
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
export async function setGrants(
  custody: CustodyClient,
  identity: string,
  access: { cidrs: string[]; keyIds: string[]; name?: string; canFreeze?: boolean },
): Promise<ProposalInfo> {
  return proposeAndApprove(custody, {
    kind: {
      $case: "setGrants",
      setGrants: { identity, name: access.name ?? "", cidrs: access.cidrs, keyIds: access.keyIds, canFreeze: access.canFreeze ?? false },
    },
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

export async function spawnService(dir = tempDir(), env: NodeJS.ProcessEnv = {}, extraArgs: string[] = []): Promise<ChildService> {
  const connFile = join(dir, "connection.json");
  // Replicas (PostgreSQL): connection.json names the oldest live replica; this one is found by its pid in DIR/replicas/.
  const replicated = Boolean(env.CUSTOS_POSTGRES_URL || extraArgs.includes("--postgres") || configuredPostgres(dir));
  if (!replicated) rmSync(connFile, { force: true });
  const proc = spawn(process.execPath, [CLI, "serve", "--data-dir", dir, "--grpc-port", "0", "--http-port", "0", ...extraArgs], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  const deadline = Date.now() + 60_000;
  const own = () => liveReplicas(dir).find((r) => r.pid === proc.pid);
  while (!existsSync(connFile) || (replicated && !own())) {
    if (proc.exitCode !== null) throw new Error(`custos serve exited ${proc.exitCode}: ${err}`);
    if (Date.now() > deadline) throw new Error(`custos serve did not become ready: ${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const file = JSON.parse(readFileSync(connFile, "utf8")) as ConnectionFile;
  const entry = own();
  return {
    dir,
    proc,
    conn: entry ? { ...file, grpc: entry.grpc, http: entry.http } : file,
    stdout: () => out,
    stderr: () => err,
    async stop() {
      if (proc.exitCode === null) proc.kill("SIGTERM");
      return exited;
    },
  };
}

/** Whether the data dir's custos.json puts the store on PostgreSQL. */
function configuredPostgres(dir: string): boolean {
  try {
    return Boolean((JSON.parse(readFileSync(join(dir, "custos.json"), "utf8")) as { store?: { postgres?: unknown } }).store?.postgres);
  } catch {
    return false;
  }
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
export type AuditBody = AuditRecord;

/** Every audit event written so far in a data dir (read-only; the service keeps writing). */
export async function auditEvents(dir: string): Promise<AuditBody[]> {
  const store = new SqliteStore(join(dir, "custos.db"), { readonly: true });
  try {
    return (await store.audit.readAudit(0, 1_000_000)).map((e) => JSON.parse(e.body) as AuditBody);
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

// ---- officers, CLI output and token contents (e2e tests of configured deployments) -------------

/** The last non-empty line of a command's stdout: a proposing command's proposal id or result. */
export function lastLine(text: string): string {
  return text.trim().split("\n").at(-1) ?? "";
}

/** Asserts a CLI run succeeded and returns its last output line (e.g. a proposal id). */
export function cliOk(r: CliResult, what: string): string {
  assert.equal(r.code, 0, `${what}: ${r.stderr}`);
  return lastLine(r.stdout);
}

/** Writes a secret (an officer's passphrase) to a new 0600 file: never on a command line. */
export function writeSecretFile(path: string, text: string): string {
  writeFileSync(path, text + "\n", { mode: 0o600, flag: "wx" });
  return path;
}

/** An officer made through the CLI: `custos officer keygen` and `custos pki issue-officer`. */
export interface CliOfficer {
  name: string;
  identity: string;
  /** Encrypted Ed25519 key and its public half (FILE.pub). */
  keyPath: string;
  publicKeyPath: string;
  passphraseFile: string;
  /** The officer's mTLS certificate and its key, from DATA_DIR/pki/ca. */
  certPath: string;
  certKeyPath: string;
}

/** Creates officer `name`: key files under `into`, certificate issued by the data dir's CA. */
export async function createOfficer(dataDir: string, name: string, into: string): Promise<CliOfficer> {
  const passphraseFile = writeSecretFile(join(into, `${name}.passphrase`), `passphrase of officer ${name}, long enough`);
  const keyPath = join(into, `${name}.key.pem`);
  const keygen = await runCli(["officer", "keygen", "--out", keyPath, "--passphrase-file", passphraseFile]);
  assert.equal(keygen.code, 0, keygen.stderr);
  const issued = await runCli(["pki", "issue-officer", name, "--data-dir", dataDir]);
  assert.equal(issued.code, 0, issued.stderr);
  const certPath = /^certificate (.+)$/m.exec(issued.stderr)?.[1];
  const certKeyPath = /^key (.+)$/m.exec(issued.stderr)?.[1];
  assert.ok(certPath && certKeyPath, issued.stderr);
  return { name, identity: lastLine(issued.stdout), keyPath, publicKeyPath: `${keyPath}.pub`, passphraseFile, certPath, certKeyPath };
}

/** `--data-dir DIR --cert … --cert-key …`: act with this officer's certificate. */
export function officerArgs(dataDir: string, officer: CliOfficer): string[] {
  return ["--data-dir", dataDir, "--cert", officer.certPath, "--cert-key", officer.certKeyPath];
}

/** `custos proposal approve ID` with `officer`'s certificate, signed with `keyOf`'s key (a forgery when they differ). */
export function approveAs(dataDir: string, id: string, officer: CliOfficer, keyOf: CliOfficer = officer): Promise<CliResult> {
  return runCli(["proposal", "approve", id, ...officerArgs(dataDir, officer), "--officer-key", keyOf.keyPath, "--passphrase-file", keyOf.passphraseFile]);
}

/**
 * CKA_IDs of the secret-key token objects on a data dir's token, one entry per object. Read
 * in a child process: SoftHSM2 reads SOFTHSM2_CONF once per process, and this process may
 * already have loaded another one.
 */
export async function tokenSecretIds(dataDir: string): Promise<string[]> {
  const { hsm } = loadConfig(dataDir);
  assert.ok(hsm.pinFile && hsm.softhsmConf, "the token must be reachable by its own softhsm2.conf and PIN file");
  const script = `
    import { readFileSync } from "node:fs";
    const [moduleJs, modulePath, label, pinFile] = process.argv.slice(1);
    const { loadModule, findSlotByLabel, findObjects, pkcs11js: p } = await import(moduleJs);
    const mod = loadModule(modulePath);
    const slot = findSlotByLabel(mod, label);
    if (!slot) throw new Error("no token " + label);
    const s = mod.C_OpenSession(slot, p.CKF_SERIAL_SESSION);
    mod.C_Login(s, p.CKU_USER, readFileSync(pinFile, "utf8").trim());
    const ids = findObjects(mod, s, [{ type: p.CKA_CLASS, value: p.CKO_SECRET_KEY }, { type: p.CKA_TOKEN, value: true }])
      .map((h) => mod.C_GetAttributeValue(s, h, [{ type: p.CKA_ID }])[0].value.toString());
    mod.C_Logout(s);
    mod.C_CloseSession(s);
    mod.C_Finalize();
    process.stdout.write(JSON.stringify(ids));`;
  const moduleJs = pathToFileURL(join(REPO, "dist/src/hsm/pkcs11/module.js")).href;
  const out = await new Promise<string>((resolvePromise, reject) => {
    execFile(
      process.execPath,
      ["--input-type=module", "-e", script, moduleJs, hsm.modulePath, hsm.tokenLabel, hsm.pinFile!],
      { env: { ...process.env, SOFTHSM2_CONF: hsm.softhsmConf! } },
      (e, stdout, stderr) => (e ? reject(new Error(`listing the token's objects failed: ${stderr || e.message}`)) : resolvePromise(stdout)),
    );
  });
  return (JSON.parse(out) as string[]).sort();
}

/**
 * The files of a configured deployment in `dir`, as an operator makes them: a SoftHSM2 token
 * and its wrapping key (hsm/create-token.sh, PINs in 0600 files), an ops PKI (CA, server, the
 * bootstrap admin "ops", the trading client "alpha") and custos.json (`extra` merged in).
 */
export async function writeConfiguredDeployment(dir: string, extra: Record<string, unknown> = {}): Promise<{ fingerprint: string; pki: string }> {
  const out = execFileSync("bash", [join(REPO, "hsm/create-token.sh"), join(dir, "hsm"), "prod"], { encoding: "utf8" });
  const fingerprint = /sha256:[0-9a-f]{64}/.exec(out)?.[0];
  assert.ok(fingerprint, out);
  const pki = join(dir, "pki");
  mkdirSync(pki);
  const ca = await createDevCa("ops CA");
  await writeIssued(pki, "ca", ca);
  await writeIssued(pki, "server", await issueServerCert(ca, { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] }));
  await writeIssued(pki, "ops", await issueClientCert(ca, { name: "ops", uri: "spiffe://custos/admin/ops" }));
  await writeIssued(pki, "alpha", await issueClientCert(ca, { name: "alpha", uri: "spiffe://custos/engine/alpha" }));
  await writeIssued(pki, "beta", await issueClientCert(ca, { name: "beta", uri: "spiffe://custos/engine/beta" }));
  writeFileSync(
    join(dir, "custos.json"),
    JSON.stringify({
      grpc: { port: 0 },
      http: { port: 0 },
      tls: { caPath: "pki/ca.crt", certPath: "pki/server.crt", keyPath: "pki/server.key" },
      hsm: { modulePath: defaultSofthsmModule(), tokenLabel: "prod", pinFile: "hsm/user.pin", softhsmConf: "hsm/softhsm2.conf" },
      bootstrapAdmins: [{ identity: "spiffe://custos/admin/ops" }],
      ...extra,
    }),
  );
  return { fingerprint, pki };
}
