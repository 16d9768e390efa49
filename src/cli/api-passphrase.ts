/**
 * A KuCoin API passphrase, read on the officer's machine while it wraps the key's secret. The
 * service never receives it: the CLI sends only base64(HMAC-SHA256(secret, passphrase)), the
 * value KuCoin expects in every request's KC-API-PASSPHRASE header (key versions 2 and 3), as
 * part of the proposal the quorum signs.
 */
import { createHmac } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { CliError } from "./context.js";
import { readSecret } from "./secret-input.js";

/** Where the passphrase comes from: `--api-passphrase-file` (0600), else the environment, else a hidden prompt. */
export const API_PASSPHRASE_ENV = "CUSTOS_API_PASSPHRASE";

/**
 * The passphrase from `file` (must not be readable by group or others; one trailing newline is
 * not part of it), else `$CUSTOS_API_PASSPHRASE`, else a hidden prompt when stdin is a terminal.
 * Never from argv. Returns a Buffer the caller zero-fills.
 */
export async function readApiPassphrase(file: string | undefined, prompt: string): Promise<Buffer> {
  if (file) return readPassphraseFile(file);
  const env = process.env[API_PASSPHRASE_ENV];
  if (env) return Buffer.from(env, "utf8");
  if (!process.stdin.isTTY) throw new CliError(`no API passphrase: pass --api-passphrase-file FILE (0600) or set $${API_PASSPHRASE_ENV}`);
  return readSecret(prompt);
}

function readPassphraseFile(path: string): Buffer {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch {
    throw new CliError(`cannot read API passphrase file ${path}`);
  }
  if ((mode & 0o077) !== 0) throw new CliError(`API passphrase file ${path} must not be readable by group or others (chmod 600)`);
  const raw = readFileSync(path);
  let end = raw.length;
  if (end > 0 && raw[end - 1] === 0x0a) end--;
  if (end > 0 && raw[end - 1] === 0x0d) end--;
  const passphrase = Buffer.from(raw.subarray(0, end));
  raw.fill(0);
  if (passphrase.length === 0) throw new CliError(`API passphrase file ${path} is empty`);
  return passphrase;
}

/**
 * base64(HMAC-SHA256(secret, passphrase)), computed here with node:crypto: the same MAC the HSM
 * would make with the wrapped secret (HMAC zero-pads short keys, so padding changes nothing).
 * The caller zero-fills both inputs.
 */
export function signPassphrase(secret: Buffer, passphrase: Buffer): string {
  const mac = createHmac("sha256", secret).update(passphrase).digest();
  try {
    return mac.toString("base64");
  } finally {
    mac.fill(0);
  }
}
