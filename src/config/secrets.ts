import { randomBytes } from "node:crypto";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { CustosError } from "../errors.js";

/**
 * Reads a PIN from a file that only its owner can read. A PIN never comes from argv and
 * never from a group- or world-readable file.
 */
export function readSecretFile(path: string): string {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (e) {
    throw new CustosError("INVALID_ARGUMENT", `cannot read PIN file ${path}`, { cause: e });
  }
  if ((mode & 0o077) !== 0) {
    throw new CustosError("INVALID_ARGUMENT", `PIN file ${path} must not be readable by group or others (chmod 600)`);
  }
  const value = readFileSync(path, "utf8").trim();
  if (!value) throw new CustosError("INVALID_ARGUMENT", `PIN file ${path} is empty`);
  return value;
}

/** Reads a PIN from an environment variable. */
export function readSecretEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new CustosError("INVALID_ARGUMENT", `environment variable ${name} (HSM PIN) is not set`);
  return value;
}

/** Writes a fresh random PIN to a new 0600 file; never overwrites. */
export function createSecretFile(path: string): string {
  const pin = randomBytes(24).toString("base64url");
  writeFileSync(path, pin + "\n", { mode: 0o600, flag: "wx" });
  return pin;
}
