/**
 * `custos stop` and `custos replicas`: the processes serving a data dir. On SQLite one process
 * holds the data dir's lock and names itself in DIR/custos.pid; on PostgreSQL every replica
 * registers in DIR/replicas/ (src/replication/replica-registry.ts), and `custos stop` stops all of
 * them, or the one `--replica ID` names.
 */
import type { Command } from "commander";
import { existsSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { isCustosProcess, liveReplicas, type ReplicaEntry } from "../replication/replica-registry.js";
import { isDataDirServed, PID_FILE, servingPid } from "../store/sqlite/data-dir-lock.js";
import { CliError, dataDirOf } from "./context.js";

/** How often `custos stop` looks whether its processes are gone, and says whom it still waits for. */
const POLL_MS = 100;
const WAITING_NOTE_MS = 5_000;

interface StopOptions {
  dataDir?: string;
  replica?: string;
  timeout: string;
}

export function registerStopCommands(program: Command): void {
  program
    .command("stop")
    .description("stop the custos serving this data dir, or every replica of it (SIGTERM: drains calls, flushes the audit log)")
    .option("--data-dir <dir>", "data directory")
    .option("--replica <id>", "replicas on PostgreSQL: stop only this one (ids: custos replicas)")
    .option("--timeout <seconds>", "fail if they have not exited after this many seconds", "30")
    .action(async (o: StopOptions) => {
      const dataDir = dataDirOf(o);
      const seconds = Number(o.timeout);
      if (!Number.isFinite(seconds) || seconds <= 0) throw new CliError("--timeout takes a positive number of seconds");
      await stopServing(dataDir, o.replica, seconds * 1000);
    });

  program
    .command("replicas")
    .description("list the replicas serving this data dir (PostgreSQL store), oldest first")
    .option("--data-dir <dir>", "data directory")
    .action((o: { dataDir?: string }) => {
      const dataDir = dataDirOf(o);
      const live = liveReplicas(dataDir);
      if (live.length === 0) throw new CliError(`no replica is registered in ${join(dataDir, "replicas")}`);
      for (const r of live) console.log(`${r.id}  pid ${r.pid}  gRPC ${r.grpc}  HTTP ${r.http}  since ${r.startedAt}`);
    });
}

/** Stops the SQLite process, or the replicas (all, or the one named), and waits for each to exit. */
export async function stopServing(dataDir: string, replicaId: string | undefined, timeoutMs: number): Promise<void> {
  // The lock, not the pid file, says whether a SQLite custos serves DIR: after a SIGKILL the pid may be another process's.
  if (isDataDirServed(dataDir)) {
    if (replicaId !== undefined) throw new CliError(`${dataDir} is served by one process on SQLite, which has no replicas: drop --replica`);
    const pid = servingPid(dataDir);
    if (pid === undefined) throw new CliError(`a custos is serving ${dataDir} but left no ${PID_FILE}: stop it by its process id`);
    await stopAndWait([{ label: "custos", pid }], timeoutMs);
    return;
  }
  const live = liveReplicas(dataDir);
  if (live.length === 0) {
    const stale = existsSync(join(dataDir, PID_FILE)) ? ` (its ${PID_FILE} is stale: the process that wrote it is gone)` : "";
    throw new CliError(`no custos is serving ${dataDir}${stale}`);
  }
  const chosen = replicaId === undefined ? live : live.filter((r) => r.id === replicaId);
  if (chosen.length === 0) throw new CliError(`no replica ${replicaId} serves ${dataDir}; live: ${live.map((r) => r.id).join(", ")}`);
  // A pid means something only on its own host: a replica of another machine is stopped there.
  const elsewhere = chosen.filter((r) => r.host !== hostname());
  const here = chosen.filter((r) => r.host === hostname());
  await stopAndWait(
    here.map((r) => ({ label: `replica ${r.id}`, pid: r.pid })),
    timeoutMs,
  );
  if (elsewhere.length) throw new CliError(`not stopped, they run on other hosts: ${elsewhere.map(describe).join(", ")}`);
}

/** SIGTERM to each, then waits for all of them, saying which exited and whom it still waits for. */
async function stopAndWait(targets: Array<{ label: string; pid: number }>, timeoutMs: number): Promise<void> {
  for (const t of targets) {
    process.stderr.write(`stopping ${t.label} (pid ${t.pid})\n`);
    try {
      process.kill(t.pid, "SIGTERM");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EPERM") throw new CliError(`${t.label} (pid ${t.pid}) belongs to another user: stop it as that user`);
      // ESRCH: it exited in between; the wait below sees it gone.
    }
  }
  const started = Date.now();
  let waiting = [...targets];
  let lastNote = started;
  while (waiting.length) {
    const stillRunning = waiting.filter((t) => isCustosProcess(t.pid));
    for (const t of waiting) if (!stillRunning.includes(t)) console.log(`${t.label} (pid ${t.pid}) stopped`);
    waiting = stillRunning;
    if (!waiting.length) return;
    const now = Date.now();
    if (now - started >= timeoutMs) {
      throw new CliError(`${waiting.map((t) => `${t.label} (pid ${t.pid})`).join(", ")} did not stop within ${Math.round(timeoutMs / 1000)} s`);
    }
    if (now - lastNote >= WAITING_NOTE_MS) {
      lastNote = now;
      process.stderr.write(`waiting for ${waiting.map((t) => t.label).join(", ")} (${Math.round((now - started) / 1000)} s)\n`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function describe(r: ReplicaEntry): string {
  return `${r.id} (host ${r.host}, pid ${r.pid})`;
}
