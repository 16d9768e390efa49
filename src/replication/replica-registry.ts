/**
 * The replicas serving a data dir, as files in it: each `custos serve` on PostgreSQL registers
 * itself in DIR/replicas/<id>.json (pid, gRPC and HTTP addresses, start time) while it serves,
 * so `custos stop` can stop one replica or all of them and DIR/connection.json can name every
 * live replica. A replica killed with SIGKILL leaves its file: an entry whose process is gone is
 * stale, and every reader ignores and removes it. (SQLite: one process, its lock and pid file.)
 */
import { readdirSync, readFileSync, renameSync, rmSync, mkdirSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { writePrivateFile } from "../private-file.js";

/** The folder under the data dir that holds one file per serving replica. */
export const REPLICAS_DIR = "replicas";

/** One serving replica, as DIR/replicas/<id>.json says. */
export interface ReplicaEntry {
  /** `<host>-<pid>`: unique among the replicas of one data dir (containers sharing a volume have their own host names). */
  id: string;
  pid: number;
  /** The host the process runs on: a pid means something only there. */
  host: string;
  grpc: string;
  http: string;
  /** The officer console's URL, when enabled. */
  console?: string;
  startedAt: string;
}

/** This process's entry while it serves. */
export interface ReplicaRegistration {
  readonly entry: ReplicaEntry;
  /** Removes the entry (idempotent). */
  remove(): void;
}

/** The id this process registers under. */
export function ownReplicaId(): string {
  return `${hostname()}-${process.pid}`;
}

/** Writes this process's entry atomically (0600, temp file then rename): a reader never sees half of it. */
export function registerReplica(dataDir: string, where: Pick<ReplicaEntry, "grpc" | "http" | "console">, now = new Date()): ReplicaRegistration {
  const dir = join(dataDir, REPLICAS_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const entry: ReplicaEntry = {
    id: ownReplicaId(),
    pid: process.pid,
    host: hostname(),
    grpc: where.grpc,
    http: where.http,
    ...(where.console ? { console: where.console } : {}),
    startedAt: now.toISOString(),
  };
  const file = entryPath(dataDir, entry.id);
  const tmp = `${file}.tmp`;
  writePrivateFile(tmp, JSON.stringify(entry, null, 2) + "\n");
  renameSync(tmp, file);
  let removed = false;
  return {
    entry,
    remove() {
      if (removed) return;
      removed = true;
      rmSync(file, { force: true });
    },
  };
}

/**
 * The live replicas of a data dir, oldest first. Entries whose process is gone (a SIGKILLed
 * replica's) are removed on the way; entries of another host cannot be checked from here and
 * are kept (a restarted container has its host name and usually its pid again, and overwrites it).
 */
export function liveReplicas(dataDir: string, isAlive: (pid: number) => boolean = isCustosProcess): ReplicaEntry[] {
  const dir = join(dataDir, REPLICAS_DIR);
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith(".json"));
  } catch {
    return [];
  }
  const live: ReplicaEntry[] = [];
  for (const name of names) {
    const entry = readEntry(join(dir, name));
    if (entry === undefined) continue; // removed between the listing and the read
    if (entry === "unreadable" || (entry.host === hostname() && !isAlive(entry.pid))) {
      rmSync(join(dir, name), { force: true });
      continue;
    }
    live.push(entry);
  }
  return live.sort((a, b) => a.startedAt.localeCompare(b.startedAt) || a.id.localeCompare(b.id));
}

/** Whether a process with this pid runs, and (where /proc says) is a custos: after a crash the pid may be another program's. */
export function isCustosProcess(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: it exists but belongs to another user (not ours to stop, but alive).
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("custos");
  } catch {
    return true; // no /proc (not Linux), or it just exited: the signal said it was there
  }
}

function entryPath(dataDir: string, id: string): string {
  return join(dataDir, REPLICAS_DIR, `${id}.json`);
}

function readEntry(path: string): ReplicaEntry | "unreadable" | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
  try {
    const e = JSON.parse(text) as Partial<ReplicaEntry>;
    const ok = typeof e.id === "string" && Number.isSafeInteger(e.pid) && typeof e.host === "string" && typeof e.grpc === "string";
    return ok ? (e as ReplicaEntry) : "unreadable";
  } catch {
    return "unreadable";
  }
}
