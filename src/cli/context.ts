import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Metadata } from "@grpc/grpc-js";
import { custodyClient, readConnectionFile, signerClient, type ClientIdentity, type ConnectionFile } from "../client/connection.js";
import type { CustodyClient } from "../gen/custos/v1/custody.js";
import type { SignerClient } from "../gen/custos/v1/signer.js";
import { CONNECTION_FILE, FINGERPRINT_FILE } from "../config/config.js";

/** Options every connecting command accepts. */
export interface ConnectOptions {
  dataDir: string;
  address?: string;
  ca?: string;
  cert?: string;
  certKey?: string;
}

export function dataDirOf(opts: { dataDir?: string }): string {
  return resolve(opts.dataDir ?? process.env.CUSTOS_DATA_DIR ?? ".custos");
}

/** A user-facing failure: printed as one line, exit code 1. */
export class CliError extends Error {}

export type Role = "admin" | "client" | "officer";

/**
 * Which identity a command acts with: --cert/--cert-key if given, otherwise (embedded
 * default) the data dir's dev administrator, trading-client or officer certificate.
 */
export function identityFor(opts: ConnectOptions, conn: ConnectionFile, role: Role): ClientIdentity {
  const caPath = opts.ca ?? conn.caPath;
  if (opts.cert || opts.certKey) {
    if (!opts.cert || !opts.certKey) throw new CliError("--cert and --cert-key go together");
    return { caPath, certPath: opts.cert, keyPath: opts.certKey };
  }
  const dev = conn[role];
  if (!dev) throw new CliError(`no ${role} certificate in ${opts.dataDir}: pass --cert and --cert-key`);
  return { caPath, certPath: dev.certPath, keyPath: dev.keyPath };
}

/** True when acting as the embedded default's own dev officer (no --cert): proposals are approved at once. */
export function actsAsDevOfficer(opts: ConnectOptions, conn: ConnectionFile): boolean {
  return !opts.cert && !opts.certKey && conn.officer !== undefined;
}

export function connect(opts: ConnectOptions, role: "admin" | "officer"): { conn: ConnectionFile; custody: CustodyClient };
export function connect(opts: ConnectOptions, role: "client"): { conn: ConnectionFile; signer: SignerClient };
export function connect(opts: ConnectOptions, role: Role) {
  if (!opts.address && !existsSync(join(opts.dataDir, CONNECTION_FILE))) throw notRunning(opts.dataDir);
  const conn = readConnectionFile(opts.dataDir);
  const id = identityFor(opts, conn, role);
  const address = opts.address ?? conn.grpc;
  dialled = { address, dataDir: opts.dataDir };
  return role === "client" ? { conn, signer: signerClient(address, id, conn.serverName) } : { conn, custody: custodyClient(address, id, conn.serverName) };
}

/** The fingerprint the officer pinned: --fingerprint, else the data dir's first-use record. */
export function pinnedFingerprint(opts: { dataDir: string; fingerprint?: string }): string {
  if (opts.fingerprint) return opts.fingerprint;
  const file = join(opts.dataDir, FINGERPRINT_FILE);
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  throw new CliError(`no pinned wrapping-key fingerprint: pass --fingerprint sha256:… (see \`custos hsm init\`)`);
}

/** The service this command last dialled, so a failure to reach it can say which and what to run. */
let dialled: { address: string; dataDir: string } | undefined;

function notRunning(dataDir: string, address?: string): CliError {
  const where = address ? `at ${address} (data dir ${dataDir})` : `for data dir ${dataDir} (no ${CONNECTION_FILE})`;
  const start = `\`npm run serve -- --data-dir ${dataDir}\`, then \`custos wait --data-dir ${dataDir}\``;
  return new CliError(`the service is not running ${where}: start it with ${start}`);
}

/** gRPC's UNAVAILABLE for a service nobody answers at (refused, unknown host, timed out); not a custos refusal. */
function unreachable(details: string): boolean {
  return /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|No connection established|Failed to connect/.test(details);
}

/** Turns a gRPC failure into one line: "NOT_FOUND (KEY_NOT_FOUND): no key …". */
export function describeRpcError(e: unknown): string {
  const err = e as { code?: number; details?: string; metadata?: Metadata; message?: string };
  if (typeof err.code !== "number") return err.message ?? String(e);
  // grpc-js's own text here is its internals ("Last error: … Resolution note: …"): say what is wrong instead.
  if (err.code === 14 && dialled && !err.metadata?.get("custos-reason").length && unreachable(err.details ?? "")) {
    return notRunning(dialled.dataDir, dialled.address).message;
  }
  const reason = err.metadata?.get("custos-reason")[0];
  const names: Record<number, string> = {
    3: "INVALID_ARGUMENT",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    16: "UNAUTHENTICATED",
  };
  return `${names[err.code] ?? `status ${err.code}`}${reason ? ` (${reason.toString()})` : ""}: ${err.details ?? err.message}`;
}
