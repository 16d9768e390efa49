import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, describe, it } from "node:test";
import ts from "typescript";
import { CLI, REPO, spawnService, tempDir, type ChildService } from "../helpers/harness.js";

/**
 * What a new user meets: running custos twice, killing, restarting and stopping it, waiting for
 * it, the banner's commands and the README's client snippet as printed, a key without an API
 * key id, and the version.
 */

// Binance's documented HMAC example key (as in the README quickstart).
const SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
const API_KEY_ID = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";

const started: ChildProcess[] = [];
const dirs: string[] = [];
after(() => {
  for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end, killed (code null) if it outlives `ms`: a serve that should have been refused must not hang the test. */
function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string; ms?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const proc = spawn(cmd, args, { cwd: opts.cwd ?? REPO, env: { ...process.env, ...opts.env }, stdio: ["pipe", "pipe", "pipe"] });
    started.push(proc);
    let stdout = "";
    let stderr = "";
    proc.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => proc.kill("SIGKILL"), opts.ms ?? 60_000);
    proc.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    proc.stdin.end(opts.input ?? "");
  });
}

const custos = (args: string[], opts: { input?: string; ms?: number } = {}) => run(process.execPath, [CLI, ...args], opts);

function hmacHex(message: string): string {
  return createHmac("sha256", SECRET).update(message).digest("hex");
}

async function until<T>(what: string, probe: () => T | undefined, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("one service per data dir: refuse, kill, restart, stop", { timeout: 240_000 }, () => {
  const dir = tempDir("custos-first-contact-");
  dirs.push(dir);
  const dd = ["--data-dir", dir];
  const connFile = join(dir, "connection.json");
  const pidFile = join(dir, "custos.pid");
  let first: ChildService;

  it("refuses a second serve on a served data dir, naming the running process; the first keeps serving", async () => {
    first = await spawnService(dir);
    started.push(first.proc);
    const connBefore = readFileSync(connFile, "utf8");
    assert.equal(readFileSync(pidFile, "utf8").trim(), String(first.proc.pid));

    const second = await custos(["serve", ...dd, "--grpc-port", "0", "--http-port", "0"], { ms: 30_000 });
    assert.equal(second.code, 1, `second serve: ${second.stderr}`);
    assert.ok(second.stderr.includes(`${dir} is already served by the custos process ${first.proc.pid}`), second.stderr);
    assert.ok(second.stderr.includes(`custos stop --data-dir ${dir}`), second.stderr);
    assert.equal(readFileSync(connFile, "utf8"), connBefore, "connection.json untouched");
    assert.equal(readFileSync(pidFile, "utf8").trim(), String(first.proc.pid), "custos.pid untouched");

    const waited = await custos(["wait", ...dd, "--timeout", "10"]);
    assert.equal(waited.code, 0, waited.stderr);
    assert.equal(waited.stdout.trim(), `custos is ready: gRPC ${first.conn.grpc}`);
  });

  it("after a SIGKILL the files left behind are not taken for a service, and a restart takes over", async () => {
    first.proc.kill("SIGKILL");
    await until("the first service to die", () => (first.proc.signalCode !== null ? true : undefined));
    assert.ok(existsSync(connFile) && existsSync(pidFile), "a killed service leaves connection.json and custos.pid");

    // A command that connects says what is wrong and what to run, not grpc-js internals.
    const list = await custos(["key", "list", ...dd]);
    assert.equal(list.code, 1);
    const notRunning = `the service is not running at ${first.conn.grpc} (data dir ${dir}): start it with \`npm run serve -- --data-dir ${dir}\``;
    assert.ok(list.stderr.includes(notRunning), list.stderr);
    assert.doesNotMatch(list.stderr, /Resolution note|Last error|No connection established/);

    const stop = await custos(["stop", ...dd]);
    assert.equal(stop.code, 1);
    assert.ok(stop.stderr.includes(`no custos is serving ${dir}`), stop.stderr);
    const staleWait = await custos(["wait", ...dd, "--timeout", "2"]);
    assert.equal(staleWait.code, 1, "a connection.json nobody answers is not readiness");

    const restarted = spawn(process.execPath, [CLI, "serve", ...dd, "--grpc-port", "0", "--http-port", "0"], { stdio: ["ignore", "ignore", "pipe"] });
    started.push(restarted);
    let restartErr = "";
    restarted.stderr.on("data", (d: Buffer) => (restartErr += d.toString()));
    const waited = await custos(["wait", ...dd, "--timeout", "120"], { ms: 130_000 });
    assert.equal(waited.code, 0, `${waited.stderr}\n${restartErr}`);
    const conn = JSON.parse(readFileSync(connFile, "utf8")) as { grpc: string };
    assert.equal(waited.stdout.trim(), `custos is ready: gRPC ${conn.grpc}`);
    assert.equal(readFileSync(pidFile, "utf8").trim(), String(restarted.pid));
    assert.equal((await custos(["key", "list", ...dd])).code, 0, "the restarted service answers");

    const stopped = await custos(["stop", ...dd], { ms: 40_000 });
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.match(stopped.stdout, new RegExp(`custos \\(pid ${restarted.pid}\\) stopped`));
    assert.equal(restarted.exitCode, 0);
    assert.equal(existsSync(connFile), false, "custos stop removes connection.json");
    assert.equal(existsSync(pidFile), false, "and custos.pid");
    const after = await custos(["key", "list", ...dd]);
    assert.equal(after.code, 1);
    assert.ok(after.stderr.includes(`the service is not running for data dir ${dir} (no connection.json)`), after.stderr);
  });
});

describe("a stop that arrives while custos starts", { timeout: 240_000 }, () => {
  it("a SIGTERM during the start (a fresh data dir, its lock just taken) waits for the start, drains and exits 0", async () => {
    const dir = tempDir("custos-early-stop-");
    dirs.push(dir);
    const serve = spawn(process.execPath, [CLI, "serve", "--data-dir", dir, "--grpc-port", "0", "--http-port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
    started.push(serve);
    let out = "";
    let err = "";
    serve.stdout.on("data", (d: Buffer) => (out += d.toString()));
    serve.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => serve.once("exit", (code, signal) => r({ code, signal })));
    // The lock is the start's first step; the dev token, PKI and database come after it (seconds).
    await until("the data dir's lock", () => (existsSync(join(dir, "custos.lock")) ? true : undefined), 60_000);
    serve.kill("SIGTERM");
    const { code, signal } = await exited;
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, err);
    assert.match(out, /"event":"service\.stopping","signal":"SIGTERM"/);
    assert.equal(existsSync(join(dir, "connection.json")), false, "a stopped service leaves no connection.json");
  });
});

describe("the banner, the README's client snippet and the first key", { timeout: 240_000 }, () => {
  const dir = tempDir("custos-first-contact-");
  dirs.push(dir);
  const dd = ["--data-dir", dir];
  let svc: ChildService;
  after(() => svc?.stop());

  it("the start banner's try lines run as printed, from another directory, and sign an order the policy allows", async () => {
    svc = await spawnService(dir);
    started.push(svc.proc);
    const lines = await until("the banner's try lines", () => {
      const all = svc.stderr().split("\n");
      const at = all.findIndex((l) => l.startsWith("  try ("));
      const commands = at < 0 ? [] : all.slice(at + 1).filter((l) => l.startsWith("    "));
      return commands.length > 0 && !commands[commands.length - 1]!.endsWith("\\") ? commands.map((l) => l.slice(4)) : undefined;
    });
    const script = lines.join("\n");
    assert.equal(script.split(`--data-dir ${dir}`).length - 1, 2, `both commands name the data dir:\n${script}`);
    assert.doesNotMatch(script, /npx/);

    const elsewhere = tempDir("custos-elsewhere-");
    dirs.push(elsewhere);
    const ran = await run("bash", ["-euo", "pipefail", "-c", script], { cwd: elsewhere, env: { SECRET, API_KEY_ID } });
    assert.equal(ran.code, 0, `${script}\n${ran.stderr}`);
    assert.match(ran.stdout, /^imported demo version 1$/m);
    const signed = JSON.parse(ran.stdout.split("\n").find((l) => l.startsWith("{"))!) as { headers: Record<string, string>; query: string; signature: string };
    assert.equal(signed.headers["X-MBX-APIKEY"], API_KEY_ID);
    const [unsigned] = signed.query.split("&signature=");
    assert.equal(signed.signature, hmacHex(unsigned!), "Binance's HMAC-SHA256 of the query");
  });

  it("the README's TypeScript snippet signs the quickstart's order", async () => {
    const readme = readFileSync(join(REPO, "README.md"), "utf8");
    const m = /<!-- client-snippet:begin -->\s*```ts\n([\s\S]*?)```\s*<!-- client-snippet:end -->/.exec(readme);
    assert.ok(m, "README has a client snippet between the markers");
    assert.doesNotMatch(m[1]!, /\bunary\(|"sign"/, "no raw Sign on an exchange key");
    const js = ts.transpileModule(m[1]!, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
    const file = join(dir, "snippet.mjs");
    writeFileSync(file, js.replaceAll("./src/client/", pathToFileURL(join(REPO, "dist/src/client/")).href));
    const ran = await run(process.execPath, [file], { env: { CUSTOS_DATA_DIR: dir } });
    assert.equal(ran.code, 0, ran.stderr);
    const query = /symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0\.1&recvWindow=5000&timestamp=\d+/.source;
    const out = new RegExp(`^POST /api/v3/order\\?(${query})&signature=([0-9a-f]{64}) (\\{.*\\})$`, "m").exec(ran.stdout);
    assert.ok(out, ran.stdout);
    assert.equal(out[2], hmacHex(out[1]!));
    assert.equal((JSON.parse(out[3]!) as Record<string, string>)["X-MBX-APIKEY"], API_KEY_ID);
  });

  it("a key imported without an API key id refuses exchange requests with FAILED_PRECONDITION (NO_API_KEY_ID) until one is set", async () => {
    const order = ["--method", "POST", "--path", "/api/v3/order", "--query", "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=20000"];
    assert.equal((await custos(["key", "import", ...dd, "--key", "nokey", "--exchange", "binance"], { input: SECRET })).code, 0);
    const refused = await custos(["sign-request", ...dd, "--key", "nokey", ...order]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^custos: FAILED_PRECONDITION \(NO_API_KEY_ID\): /);
    assert.ok(refused.stderr.includes("custos key set-api-key-id --key nokey"), refused.stderr);

    const set = await custos(["key", "set-api-key-id", ...dd, "--key", "nokey", "--api-key-id", "later-assigned-id"]);
    assert.equal(set.code, 0, set.stderr);
    const signed = await custos(["sign-request", ...dd, "--key", "nokey", ...order]);
    assert.equal(signed.code, 0, signed.stderr);
    assert.equal((JSON.parse(signed.stdout) as { headers: Record<string, string> }).headers["X-MBX-APIKEY"], "later-assigned-id");
  });

  it("custos --version prints package.json's version", async () => {
    const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string };
    const v = await custos(["--version"]);
    assert.equal(v.code, 0);
    assert.equal(v.stdout.trim(), pkg.version);
    // After a command, --version is that command's own option (sign: the key version).
    const pinned = await custos(["sign", "--data-dir", join(dir, "none"), "--key", "k", "--payload", "p", "--version", "1"]);
    assert.equal(pinned.code, 1);
    assert.equal(pinned.stdout, "");
    assert.match(pinned.stderr, /the service is not running for data dir/);
  });
});
