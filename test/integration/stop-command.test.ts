import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { ReplicaEntry } from "../../src/replication/replica-registry.js";
import { runCli, spawnService, tempDir } from "../helpers/harness.js";

/**
 * `custos stop`'s edges: a registered replica that does not exit (a process that ignores
 * SIGTERM and names itself custos, standing in for a hung replica), a replica of another host,
 * and a SQLite data dir, where --replica has no meaning and nothing else changed.
 */
describe("custos stop: timeouts, other hosts, SQLite", () => {
  const dirs: string[] = [];
  const children: ChildProcess[] = [];
  after(() => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const dataDir = () => {
    const d = tempDir("custos-stop-");
    dirs.push(d);
    mkdirSync(join(d, "replicas"), { recursive: true, mode: 0o700 });
    return d;
  };
  const register = (dir: string, e: Pick<ReplicaEntry, "id" | "pid" | "host">) => {
    const entry: ReplicaEntry = { ...e, grpc: "127.0.0.1:1", http: "http://127.0.0.1:1", startedAt: new Date().toISOString() };
    writeFileSync(join(dir, "replicas", `${e.id}.json`), JSON.stringify(entry), { mode: 0o600 });
  };

  it("a replica that does not exit within --timeout: progress while waiting, then a failure naming it", { timeout: 30_000 }, async () => {
    const dir = dataDir();
    // Ignores SIGTERM; its argv names it custos, as a real replica's does.
    const hung = spawn(process.execPath, ["-e", "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)", "custos-hung-replica"], { stdio: "ignore" });
    children.push(hung);
    assert.ok(hung.pid);
    register(dir, { id: `${hostname()}-${hung.pid}`, pid: hung.pid, host: hostname() });
    const r = await runCli(["stop", "--data-dir", dir, "--timeout", "6"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`stopping replica ${hostname()}-${hung.pid} \\(pid ${hung.pid}\\)`));
    assert.match(r.stderr, new RegExp(`waiting for replica ${hostname()}-${hung.pid} \\(5 s\\)`));
    assert.match(r.stderr, new RegExp(`replica ${hostname()}-${hung.pid} \\(pid ${hung.pid}\\) did not stop within 6 s`));
    assert.equal(hung.exitCode, null, "still running: custos stop does not escalate to SIGKILL");
  });

  it("a replica of another host is named and left alone (exit 1); a bad --timeout is refused", async () => {
    const dir = dataDir();
    register(dir, { id: "elsewhere-42", pid: 42, host: "elsewhere" });
    const r = await runCli(["stop", "--data-dir", dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not stopped, they run on other hosts: elsewhere-42 \(host elsewhere, pid 42\)/);
    const bad = await runCli(["stop", "--data-dir", dir, "--timeout", "soon"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--timeout takes a positive number of seconds/);
  });

  it("SQLite: one process, no replicas folder; --replica is refused and custos stop stops it as before", { timeout: 120_000 }, async () => {
    const svc = await spawnService();
    dirs.push(svc.dir);
    try {
      assert.equal(existsSync(join(svc.dir, "replicas")), false, "a SQLite service registers no replica");
      assert.deepEqual(svc.conn.addresses, [svc.conn.grpc]);
      const refused = await runCli(["stop", "--data-dir", svc.dir, "--replica", "x"]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /served by one process on SQLite, which has no replicas: drop --replica/);
      const stopped = await runCli(["stop", "--data-dir", svc.dir]);
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.match(stopped.stdout, new RegExp(`custos \\(pid ${svc.proc.pid}\\) stopped`));
      assert.equal(existsSync(join(svc.dir, "connection.json")), false);
    } finally {
      await svc.stop();
    }
  });
});
