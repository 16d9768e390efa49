import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { chmodSync, existsSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, it } from "node:test";
import { REPO, tempDir } from "../helpers/harness.js";

/**
 * `npm run serve` runs hsm/bootstrap.sh first: it installs npm packages only when
 * package-lock.json is newer than node_modules/.package-lock.json (npm's record of the last
 * install), and builds only when a source, config or lock file is newer than dist/.build-stamp
 * (the start of the last successful build). The real script runs; `npx` (which it builds with)
 * and `npm` are stand-ins that record their arguments, so the test installs and rebuilds
 * nothing on a machine shared with the rest of the suite.
 */
const fakeBin = tempDir("custos-fake-npx-");
const calls = join(fakeBin, "calls");
const npmCalls = join(fakeBin, "npm-calls");
/** What the stand-in npm writes to stderr, so the test can see where its run falls among the script's lines. */
const NPM_MARKER = "fake npm: running";
writeFileSync(join(fakeBin, "npx"), `#!/bin/sh\necho "$*" >> '${calls}'\n`);
// Takes a little over a second, so the script's "installed in N s" has a duration to report.
writeFileSync(join(fakeBin, "npm"), `#!/bin/sh\necho '${NPM_MARKER}' >&2\necho "$*" >> '${npmCalls}'\nsleep 1.2\n`);
chmodSync(join(fakeBin, "npx"), 0o755);
chmodSync(join(fakeBin, "npm"), 0o755);
after(() => rmSync(fakeBin, { recursive: true, force: true }));

function bootstrap(): Promise<{ code: number | null; stderr: string }> {
  rmSync(calls, { force: true });
  rmSync(npmCalls, { force: true });
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
    for (const tool of ["apt-get", "npx", "npm"]) {
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
    const installs = readFileSync(log, "utf8")
      .split("\n")
      .filter((l) => l.startsWith("apt-get install"));
    assert.equal(installs.length, 1, readFileSync(log, "utf8"));
    assert.deepEqual(installs[0]!.split(" ").slice(-1), ["make"], "only the missing tool is installed");
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
});

it("says what npm installs and how long it took, and installs only when the lock is newer than the last install", { timeout: 150_000 }, async () => {
  const lock = join(REPO, "package-lock.json");
  const installed = join(REPO, "node_modules/.package-lock.json");
  // Restored afterwards, to the nanosecond (touch -r; utimes takes float seconds): a lock left newer than the
  // install record would make the next real bootstrap run npm ci.
  const saved = [lock, installed].map((path, i) => ({ path, copy: join(fakeBin, `times-${i}`) }));
  for (const { path, copy } of saved) {
    writeFileSync(copy, "");
    execFileSync("touch", ["-r", path, copy]);
  }
  const past = Math.floor(Math.min(statSync(lock).mtimeMs, statSync(installed).mtimeMs) / 1000) - 7200;
  try {
    utimesSync(installed, past, past);
    utimesSync(lock, past + 60, past + 60);
    const started = Date.now();
    const fresh = await bootstrap();
    const elapsedSeconds = (Date.now() - started) / 1000;
    assert.equal(fresh.code, 0, fresh.stderr);
    assert.equal(readFileSync(npmCalls, "utf8"), "ci --no-audit --no-fund --loglevel=error\n", "npm ci, once");
    const lines = fresh.stderr.split("\n");
    const announced = lines.indexOf("custos: installing npm packages, compiling pkcs11js and better-sqlite3 (about 2 minutes the first time)");
    const ran = lines.indexOf(NPM_MARKER);
    const done = lines.findIndex((l) => /^custos: npm packages installed in \d+ s$/.test(l));
    assert.ok(announced >= 0 && ran > announced, `what is installed and how long it takes is said before npm runs:\n${fresh.stderr}`);
    assert.ok(done > ran, `the duration follows the install:\n${fresh.stderr}`);
    const seconds = Number(/in (\d+) s$/.exec(lines[done]!)![1]);
    assert.ok(seconds >= 1 && seconds <= Math.ceil(elapsedSeconds), `${seconds} s for an install of about 1.2 s within a run of ${elapsedSeconds} s`);

    // The install record is newer than the lock: nothing to install.
    utimesSync(installed, past + 120, past + 120);
    const current = await bootstrap();
    assert.equal(current.code, 0, current.stderr);
    assert.equal(existsSync(npmCalls), false, "npm not run");
    assert.doesNotMatch(current.stderr, /installing npm packages|npm packages installed/);
  } finally {
    for (const { path, copy } of saved) execFileSync("touch", ["-r", copy, path]);
  }
});
