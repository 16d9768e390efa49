import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, existsSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, it } from "node:test";
import { REPO, tempDir } from "../helpers/harness.js";

/**
 * `npm run serve` runs hsm/bootstrap.sh first: it builds only when a source, config or lock
 * file is newer than dist/.build-stamp (the start of the last successful build). The real
 * script runs; `npx` (which it builds with) is a stand-in that records its arguments, so the
 * test rebuilds nothing on a machine shared with the rest of the suite.
 */
const fakeBin = tempDir("custos-fake-npx-");
const calls = join(fakeBin, "calls");
writeFileSync(join(fakeBin, "npx"), `#!/bin/sh\necho "$*" >> '${calls}'\n`);
chmodSync(join(fakeBin, "npx"), 0o755);
after(() => rmSync(fakeBin, { recursive: true, force: true }));

function bootstrap(): Promise<{ code: number | null; stderr: string }> {
  rmSync(calls, { force: true });
  return new Promise((resolve) => {
    const env = { ...process.env, PATH: `${fakeBin}:${process.env.PATH}` };
    const proc = spawn("bash", ["hsm/bootstrap.sh", "serve"], { cwd: REPO, env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => proc.kill("SIGKILL"), 60_000);
    proc.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

it("skips the build when dist is current and rebuilds when a source is newer than the stamp", { timeout: 150_000 }, async () => {
  const stamp = join(REPO, "dist/.build-stamp");
  const output = join(REPO, "dist/src/cli/main.js");
  assert.ok(existsSync(stamp), "the test run's build left its stamp");

  // This run was built from these sources: a stamp of now is newer than all of them.
  const now = new Date();
  utimesSync(stamp, now, now);
  const builtAt = statSync(output).mtimeMs;
  const current = await bootstrap();
  assert.equal(current.code, 0, current.stderr);
  assert.match(current.stderr, /^custos: build is up to date$/m);
  assert.doesNotMatch(current.stderr, /^custos: building$/m);
  assert.equal(existsSync(calls), false, "no tsc run");
  assert.equal(statSync(output).mtimeMs, builtAt, "dist untouched");

  // Every source is newer than a stamp from 1970.
  utimesSync(stamp, new Date(0), new Date(0));
  const before = Date.now();
  const stale = await bootstrap();
  assert.equal(stale.code, 0, stale.stderr);
  assert.match(stale.stderr, /^custos: building$/m);
  assert.equal(readFileSync(calls, "utf8"), "--no-install tsc -p tsconfig.json\n", "one tsc build");
  assert.ok(statSync(stamp).mtimeMs >= Math.floor(before / 1000) * 1000, "the stamp records this build");
});

it("installs the compiler toolchain npm's native modules need when the machine has none", { timeout: 60_000 }, async () => {
  // A PATH with what the script itself runs, python3 and g++, but no make; apt-get and npx record their arguments.
  const bin = tempDir("custos-no-make-");
  try {
    for (const tool of ["dirname", "id", "find", "mkdir", "mktemp", "mv", "python3", "g++"]) {
      const found = ["/usr/bin", "/bin"].map((d) => join(d, tool)).find((p) => existsSync(p));
      assert.ok(found, `${tool} is on this machine`);
      symlinkSync(found, join(bin, tool));
    }
    const log = join(bin, "calls");
    for (const tool of ["apt-get", "npx"]) {
      writeFileSync(join(bin, tool), `#!/bin/sh\necho "${tool} $*" >> '${log}'\n`);
      chmodSync(join(bin, tool), 0o755);
    }
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const proc = spawn("/bin/bash", ["hsm/bootstrap.sh", "serve"], { cwd: REPO, env: { ...process.env, PATH: bin }, stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      proc.on("close", (code) => resolve({ code, stderr }));
    });
    assert.equal(result.code, 0, result.stderr);
    const installs = readFileSync(log, "utf8").split("\n").filter((l) => l.startsWith("apt-get install"));
    assert.equal(installs.length, 1, readFileSync(log, "utf8"));
    assert.deepEqual(installs[0]!.split(" ").slice(-1), ["make"], "only the missing tool is installed");
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
});
