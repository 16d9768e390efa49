import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { CustosError } from "../../errors.js";
import { ensurePrivateFile, writePrivateFile } from "../../private-file.js";

/** The file whose exclusive SQLite lock marks a data dir as served. */
export const LOCK_FILE = "custos.lock";
/** The serving process's pid, for `custos stop` and for the message a second `custos serve` prints. */
export const PID_FILE = "custos.pid";

/** How long a starting service waits for the lock: covers a `custos stop` probing it at that moment. */
const ACQUIRE_WAIT_MS = 1_000;

/** The lock a serving process holds on its data dir until it stops or dies. */
export interface DataDirLock {
  /** Removes the pid file (if it is still ours) and releases the lock. */
  release(): void;
}

/**
 * Takes the data dir's serve lock: an exclusive SQLite lock (fcntl, through better-sqlite3) on
 * DIR/custos.lock, held for the life of the process. The kernel drops it when the process
 * exits, however it exits (SIGKILL included), so a stale pid file never blocks a restart.
 * A second process is refused with the holder's pid: two services on one SQLite database would
 * overwrite each other's connection.json and pid file and orphan the first.
 */
export function lockDataDir(dataDir: string): DataDirLock {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const db = tryExclusive(dataDir, ACQUIRE_WAIT_MS);
  if (!db) {
    const pid = servingPid(dataDir);
    const who = pid === undefined ? `another process (it holds ${LOCK_FILE})` : `the custos process ${pid}`;
    throw new CustosError("PRECONDITION_FAILED", `${dataDir} is already served by ${who}: stop it first with \`custos stop --data-dir ${dataDir}\``);
  }
  const pidFile = join(dataDir, PID_FILE);
  writePrivateFile(pidFile, `${process.pid}\n`);
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      if (servingPid(dataDir) === process.pid) rmSync(pidFile, { force: true });
      db.close();
    },
  };
}

/** True while some process holds the data dir's serve lock. Probes without waiting. */
export function isDataDirServed(dataDir: string): boolean {
  if (!existsSync(join(dataDir, LOCK_FILE))) return false;
  const db = tryExclusive(dataDir, 0);
  db?.close();
  return db === undefined;
}

/** The pid in DIR/custos.pid, if there is a readable one. */
export function servingPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dataDir, PID_FILE), "utf8").trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** An open connection holding the exclusive lock, or undefined when another process holds it. */
function tryExclusive(dataDir: string, waitMs: number): Database.Database | undefined {
  // Owner-only like every non-public file custos writes; SQLite gives its journal the same mode.
  ensurePrivateFile(join(dataDir, LOCK_FILE));
  const db = new Database(join(dataDir, LOCK_FILE), { timeout: waitMs });
  try {
    // EXCLUSIVE locking mode keeps the lock after the first write until the connection closes.
    db.pragma("locking_mode = EXCLUSIVE");
    db.exec("BEGIN EXCLUSIVE");
    db.exec("CREATE TABLE IF NOT EXISTS serve_lock (held INTEGER)");
    return db;
  } catch (e) {
    db.close();
    if ((e as { code?: string }).code === "SQLITE_BUSY") return undefined;
    throw e;
  }
}
