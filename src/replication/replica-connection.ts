/**
 * DIR/connection.json for replicas: it names every live replica of the data dir (`addresses`,
 * oldest first) and, for clients and scripts that read one address, the oldest one in `grpc`
 * and `http` (it is the likeliest to stay; a replica started later does not move them).
 *
 * Replicas start and stop on their own, so each one that registers or leaves rewrites the file
 * from the registry and reads the registry again after writing: if a replica came or went in
 * between, it writes again. The last writer's check comes after every write, so the file ends
 * naming exactly the live replicas.
 */
import { readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { ConnectionFile } from "../client/connection.js";
import { CONNECTION_FILE } from "../config/config.js";
import { writePrivateFile } from "../private-file.js";
import { liveReplicas, registerReplica, type ReplicaEntry } from "./replica-registry.js";

/** A rewrite that keeps meeting a changing registry gives up after this many rounds (the next start or stop writes again). */
const MAX_ROUNDS = 5;

/** How often a serving replica rewrites connection.json, dropping a replica that died without leaving (SIGKILL). */
const RESYNC_MS = 5_000;

/** A replica's place in DIR/replicas/ and connection.json while it serves. */
export interface ReplicaMembership {
  readonly id: string;
  /** Leaves the registry and rewrites connection.json for the others (removed with the last one). */
  leave(): void;
}

/**
 * Registers this process as a replica of `dataDir`, names it in connection.json and keeps the
 * file current until `leave()`. A failed rewrite on the timer or on leaving is reported to
 * `onError`, never thrown: it must not stop a replica from serving or from stopping.
 */
export function joinReplicaSet(dataDir: string, own: ConnectionFile, onError: (e: unknown) => void): ReplicaMembership {
  const registration = registerReplica(dataDir, { grpc: own.grpc, http: own.http, ...(own.console ? { console: own.console } : {}) });
  syncReplicaConnection(dataDir, own);
  const resync = () => {
    try {
      syncReplicaConnection(dataDir, own);
    } catch (e) {
      onError(e);
    }
  };
  const timer = setInterval(resync, RESYNC_MS);
  timer.unref();
  return {
    id: registration.entry.id,
    leave() {
      clearInterval(timer);
      registration.remove();
      resync();
    },
  };
}

/** Writes connection.json atomically (0600: endpoints and paths only, but only this data dir's user has a use for it). */
export function writeConnectionFile(dataDir: string, connection: ConnectionFile): string {
  const text = JSON.stringify(connection, null, 2) + "\n";
  const tmp = join(dataDir, `${CONNECTION_FILE}.${process.pid}.tmp`);
  writePrivateFile(tmp, text);
  renameSync(tmp, join(dataDir, CONNECTION_FILE));
  return text;
}

/**
 * Rewrites connection.json from the live replicas (`template` gives the fields every replica of
 * the data dir shares: CA, server name, certificate paths); removes it when none is left.
 */
export function syncReplicaConnection(dataDir: string, template: ConnectionFile, isAlive?: (pid: number) => boolean): ReplicaEntry[] {
  let live = liveReplicas(dataDir, isAlive);
  for (let round = 1; ; round++) {
    const first = live[0];
    if (first) writeIfChanged(dataDir, replicaConnection(template, first, live));
    else rmSync(join(dataDir, CONNECTION_FILE), { force: true });
    const now = liveReplicas(dataDir, isAlive);
    if (sameReplicas(now, live) || round >= MAX_ROUNDS) return now;
    live = now;
  }
}

/** The connection file naming `live` (oldest first). */
export function replicaConnection(template: ConnectionFile, first: ReplicaEntry, live: readonly ReplicaEntry[]): ConnectionFile {
  const { console: _ownConsole, ...shared } = template;
  return {
    ...shared,
    grpc: first.grpc,
    http: first.http,
    ...(first.console ? { console: first.console } : {}),
    addresses: live.map((r) => r.grpc),
  };
}

/** Cheap when nothing changed: replicas also call this on a timer, to drop a SIGKILLed one's address. */
function writeIfChanged(dataDir: string, connection: ConnectionFile): void {
  const text = JSON.stringify(connection, null, 2) + "\n";
  let current: string | undefined;
  try {
    current = readFileSync(join(dataDir, CONNECTION_FILE), "utf8");
  } catch {
    current = undefined;
  }
  if (current !== text) writeConnectionFile(dataDir, connection);
}

function sameReplicas(a: readonly ReplicaEntry[], b: readonly ReplicaEntry[]): boolean {
  return a.length === b.length && a.every((r, i) => r.id === b[i]?.id && r.grpc === b[i]?.grpc);
}
