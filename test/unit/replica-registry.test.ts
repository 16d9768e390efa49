import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { ConnectionFile } from "../../src/client/connection.js";
import { connectionAddresses } from "../../src/client/connection.js";
import { syncReplicaConnection } from "../../src/replication/replica-connection.js";
import { isCustosProcess, liveReplicas, registerReplica, type ReplicaEntry } from "../../src/replication/replica-registry.js";

/** DIR/replicas/ and the connection.json built from it, with liveness faked where a test needs custos processes. */
describe("replica registry and connection file", () => {
  const dirs: string[] = [];
  const dataDir = () => {
    const d = mkdtempSync(join(tmpdir(), "custos-replica-registry-"));
    dirs.push(d);
    return d;
  };
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const entry = (dir: string, e: Partial<ReplicaEntry> & Pick<ReplicaEntry, "pid" | "grpc">): ReplicaEntry => {
    const full: ReplicaEntry = { id: `${hostname()}-${e.pid}`, host: hostname(), http: `http://${e.grpc}`, startedAt: "2026-01-01T00:00:00.000Z", ...e };
    mkdirSync(join(dir, "replicas"), { recursive: true });
    writeFileSync(join(dir, "replicas", `${full.id}.json`), JSON.stringify(full), { mode: 0o600 });
    return full;
  };
  const template: ConnectionFile = {
    grpc: "127.0.0.1:9",
    http: "http://127.0.0.1:9",
    console: "https://127.0.0.1:9",
    serverName: "localhost",
    caPath: "/pki/ca.crt",
    wrappingKeyFingerprint: "sha256:00",
  };

  it("registers this process in a 0600 file written whole, and removes it", () => {
    const dir = dataDir();
    const reg = registerReplica(dir, { grpc: "127.0.0.1:7400", http: "http://127.0.0.1:7401" }, new Date("2026-12-03T06:00:00.000Z"));
    const file = join(dir, "replicas", `${hostname()}-${process.pid}.json`);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(readFileSync(file, "utf8")), {
      id: `${hostname()}-${process.pid}`,
      pid: process.pid,
      host: hostname(),
      grpc: "127.0.0.1:7400",
      http: "http://127.0.0.1:7401",
      startedAt: "2026-12-03T06:00:00.000Z",
    });
    assert.deepEqual(readdirSync(join(dir, "replicas")), [`${hostname()}-${process.pid}.json`], "no temp file left");
    reg.remove();
    reg.remove();
    assert.equal(existsSync(file), false);
  });

  it("lists live replicas oldest first; drops dead and unreadable entries, keeps other hosts'", () => {
    const dir = dataDir();
    const alive = new Set([101, 102]);
    entry(dir, { pid: 102, grpc: "127.0.0.1:2", startedAt: "2026-01-02T00:00:00.000Z" });
    entry(dir, { pid: 101, grpc: "127.0.0.1:1", startedAt: "2026-01-03T00:00:00.000Z" });
    entry(dir, { pid: 103, grpc: "127.0.0.1:3" }); // dead
    entry(dir, { id: "other-host-7", pid: 7, host: "other-host", grpc: "10.0.0.2:7400", startedAt: "2026-01-04T00:00:00.000Z" });
    writeFileSync(join(dir, "replicas", "garbled.json"), "{ not json", { mode: 0o600 });
    const live = liveReplicas(dir, (pid) => alive.has(pid));
    assert.deepEqual(
      live.map((r) => r.grpc),
      ["127.0.0.1:2", "127.0.0.1:1", "10.0.0.2:7400"],
    );
    assert.deepEqual(readdirSync(join(dir, "replicas")).sort(), [`${hostname()}-101.json`, `${hostname()}-102.json`, "other-host-7.json"].sort());
  });

  it("no replicas folder: nobody serves", () => {
    assert.deepEqual(liveReplicas(dataDir()), []);
  });

  it("a live pid that is not a custos process is not a replica (a pid reused after a crash)", async () => {
    const sleeper = spawn("sleep", ["30"], { stdio: "ignore" });
    try {
      assert.ok(sleeper.pid);
      assert.equal(isCustosProcess(sleeper.pid), false);
      assert.equal(isCustosProcess(999_999_9), false, "no such process");
    } finally {
      sleeper.kill();
    }
  });

  it("connection.json names every live replica, the oldest in the single-address fields; the last one leaving removes it", () => {
    const dir = dataDir();
    const alive = new Set([201, 202]);
    const isAlive = (pid: number) => alive.has(pid);
    entry(dir, { pid: 201, grpc: "127.0.0.1:201", console: "https://127.0.0.1:2010", startedAt: "2026-01-01T00:00:00.000Z" });
    entry(dir, { pid: 202, grpc: "127.0.0.1:202", startedAt: "2026-01-02T00:00:00.000Z" });
    syncReplicaConnection(dir, template, isAlive);
    const path = join(dir, "connection.json");
    const conn = JSON.parse(readFileSync(path, "utf8")) as ConnectionFile;
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(conn, {
      ...template,
      grpc: "127.0.0.1:201",
      http: "http://127.0.0.1:201",
      console: "https://127.0.0.1:2010",
      addresses: ["127.0.0.1:201", "127.0.0.1:202"],
    });
    assert.deepEqual(connectionAddresses(conn), ["127.0.0.1:201", "127.0.0.1:202"]);

    alive.delete(201); // the oldest died without leaving (SIGKILL): the next sync drops it
    syncReplicaConnection(dir, template, isAlive);
    const after = JSON.parse(readFileSync(path, "utf8")) as ConnectionFile;
    assert.deepEqual([after.grpc, after.addresses, after.console], ["127.0.0.1:202", ["127.0.0.1:202"], undefined]);

    alive.clear();
    syncReplicaConnection(dir, template, isAlive);
    assert.equal(existsSync(path), false);
  });

  it("a file without addresses (an older release, or SQLite) gives its one address", () => {
    assert.deepEqual(connectionAddresses({ grpc: "127.0.0.1:7400" }), ["127.0.0.1:7400"]);
    assert.deepEqual(connectionAddresses({ grpc: "127.0.0.1:7400", addresses: [] }), ["127.0.0.1:7400"]);
  });
});
