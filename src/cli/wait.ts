import type { Command } from "commander";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { ConnectionFile } from "../client/connection.js";
import { CONNECTION_FILE } from "../config/config.js";
import { CliError, dataDirOf } from "./context.js";

/** How often `custos wait` asks, and how long one question may take. */
const POLL_MS = 250;
const PROBE_TIMEOUT_MS = 2_000;

/**
 * Waits until the service of a data dir answers: its connection.json exists (written once
 * serving, removed when it stops) and the HTTP listener it names answers /readyz with 200
 * (HSM and store ready). A file left by a killed service is not enough: nobody answers it.
 * Returns the connection, or throws a CliError saying what it last saw.
 */
export async function waitUntilServing(dataDir: string, timeoutMs: number): Promise<ConnectionFile> {
  const deadline = Date.now() + timeoutMs;
  let lastSeen = `no ${CONNECTION_FILE} yet`;
  for (;;) {
    const conn = readConnection(dataDir);
    if (conn) {
      try {
        const res = await fetch(`${conn.http}/readyz`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
        if (res.status === 200) return conn;
        lastSeen = `${conn.http}/readyz answered ${res.status}`;
      } catch {
        lastSeen = `nothing answers at ${conn.http} (a ${CONNECTION_FILE} left by a service that did not stop cleanly?)`;
      }
    }
    if (Date.now() + POLL_MS > deadline) throw new CliError(`custos is not ready after ${Math.round(timeoutMs / 1000)} s (data dir ${dataDir}): ${lastSeen}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function readConnection(dataDir: string): ConnectionFile | undefined {
  const file = join(dataDir, CONNECTION_FILE);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, "utf8")) as ConnectionFile;
  } catch {
    return undefined; // removed between the check and the read
  }
}

/** `custos wait [--data-dir DIR] [--timeout S]`. */
export function registerWaitCommand(program: Command): void {
  program
    .command("wait")
    .description("wait until the custos serving this data dir answers (for scripts: after `npm run serve &`)")
    .option("--data-dir <dir>", "data directory")
    .option("--timeout <seconds>", "give up after this many seconds", "60")
    .action(async (o: { dataDir?: string; timeout: string }) => {
      const seconds = Number(o.timeout);
      if (!Number.isFinite(seconds) || seconds <= 0) throw new CliError("--timeout takes a positive number of seconds");
      const conn = await waitUntilServing(dataDirOf(o), seconds * 1000);
      // Replicas: the file names every live one; the first answered.
      const replicas = conn.addresses && conn.addresses.length > 1 ? ` (replicas: ${conn.addresses.join(", ")})` : "";
      console.log(`custos is ready: gRPC ${conn.grpc}${replicas}`);
    });
}
