import { chmodSync, closeSync, existsSync, fchmodSync, openSync, writeSync } from "node:fs";

/** Owner read and write only: for every file custos writes that is not meant to be public. */
export const PRIVATE_MODE = 0o600;

/**
 * Creates `path` if absent and makes it owner-only either way, before anything is written
 * to it: `open(…, mode)` alone leaves an existing file's mode as it was and is narrowed by
 * the umask only, never widened, so the mode is set on the open descriptor as well.
 */
export function ensurePrivateFile(path: string): void {
  const fd = openSync(path, "a", PRIVATE_MODE);
  try {
    fchmodSync(fd, PRIVATE_MODE);
  } finally {
    closeSync(fd);
  }
}

/** Writes `data` to `path` (replacing it), owner-only whatever the umask and whatever the file's earlier mode. */
export function writePrivateFile(path: string, data: string | Buffer): void {
  const fd = openSync(path, "w", PRIVATE_MODE);
  try {
    fchmodSync(fd, PRIVATE_MODE);
    if (typeof data === "string") writeSync(fd, data);
    else writeSync(fd, data);
  } finally {
    closeSync(fd);
  }
}

/** Makes each existing path owner-only (e.g. an older release's WAL file); absent ones are skipped. */
export function restrictExisting(paths: readonly string[]): void {
  for (const p of paths) if (existsSync(p)) chmodSync(p, PRIVATE_MODE);
}
