import type { KeyObject } from "node:crypto";
import { readSecretFile } from "../config/secrets.js";
import { readConnectionFile } from "../client/connection.js";
import { loadOfficerKey, propose } from "../client/officer.js";
import type { ProposalInfo, ProposeRequest } from "../gen/custos/v1/custody.js";
import { actsAsDevOfficer, connect, CliError, dataDirOf, type ConnectOptions } from "./context.js";
import { readSecret } from "./secret-input.js";

export type Opts = Record<string, string | undefined>;

export function connectOpts(o: Opts): ConnectOptions {
  return {
    dataDir: dataDirOf(o),
    ...(o.address ? { address: o.address } : {}),
    ...(o.ca ? { ca: o.ca } : {}),
    ...(o.cert ? { cert: o.cert } : {}),
    ...(o.certKey ? { certKey: o.certKey } : {}),
  };
}

/**
 * The passphrase of an officer key: --passphrase-file (0600), else $CUSTOS_OFFICER_PASSPHRASE,
 * else a hidden prompt. Never argv.
 */
export async function officerPassphrase(o: Opts, fallbackFile?: string): Promise<string> {
  const file = o.passphraseFile ?? (o.officerKey ? undefined : fallbackFile);
  if (file) return readSecretFile(file);
  if (process.env.CUSTOS_OFFICER_PASSPHRASE) return process.env.CUSTOS_OFFICER_PASSPHRASE;
  if (!process.stdin.isTTY) throw new CliError("no passphrase: pass --passphrase-file FILE (0600) or set CUSTOS_OFFICER_PASSPHRASE");
  const b = await readSecret("officer key passphrase: ");
  const s = b.toString("utf8");
  b.fill(0);
  return s;
}

/** The officer's signing key: --officer-key, else (embedded default) the dev officer's. */
export async function officerSigningKey(o: Opts): Promise<KeyObject> {
  const opts = connectOpts(o);
  const dev = opts.cert ? undefined : readConnectionFile(opts.dataDir).officer;
  const keyPath = o.officerKey ?? dev?.officerKeyPath;
  if (!keyPath) throw new CliError("pass --officer-key FILE (the officer's encrypted Ed25519 key)");
  return loadOfficerKey(keyPath, await officerPassphrase(o, o.officerKey ? undefined : dev?.passphraseFile));
}

/**
 * Proposes as the calling officer. On the embedded default, acting as its own dev officer
 * (threshold 1), the proposal is approved in the same step; otherwise it waits for the quorum.
 */
export async function proposeFromCli(o: Opts, request: ProposeRequest): Promise<ProposalInfo> {
  const opts = connectOpts(o);
  const { conn, custody } = connect(opts, "officer");
  try {
    const dev = actsAsDevOfficer(opts, conn) ? conn.officer : undefined;
    const approveWith = dev ? loadOfficerKey(dev.officerKeyPath, readSecretFile(dev.passphraseFile)) : undefined;
    return await propose(custody, request, approveWith);
  } finally {
    custody.close();
  }
}

/**
 * Prints what became of a proposal. Its last stdout line is the result once executed (the
 * embedded default's one-step flow), else the proposal id for the officers to approve.
 */
export function reportProposal(p: ProposalInfo, done: string): void {
  if (p.state === "executed") {
    console.error(`proposal ${p.id} executed`);
    console.log(done);
    return;
  }
  if (p.state === "pending") {
    console.error(`proposal ${p.kind} ${p.target}: waiting for ${p.needed} more approval(s); digest ${p.digest}`);
    console.log(p.id);
    return;
  }
  throw new CliError(`proposal ${p.id} (${p.kind} ${p.target}) is ${p.state}${p.failure ? `: ${p.failure}` : ""}`);
}
