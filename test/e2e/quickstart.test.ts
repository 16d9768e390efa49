import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, it } from "node:test";
import { REPO, tempDir } from "../helpers/harness.js";

/**
 * Runs the README's quickstart block exactly as written, in a fresh data dir
 * (CUSTOS_DATA_DIR), and checks the signature it prints against Binance's documented one.
 */
const dataDir = tempDir("custos-quickstart-");

after(() => {
  // Whatever happens, leave no custos running on this data dir.
  try {
    const pid = readFileSync(join(dataDir, "custos.pid"), "utf8").trim();
    execFileSync("kill", [pid]);
  } catch {
    /* none left */
  }
  rmSync(dataDir, { recursive: true, force: true });
});

function quickstartScript(): string {
  const readme = readFileSync(join(REPO, "README.md"), "utf8");
  const m = /<!-- quickstart:begin -->\s*```bash\n([\s\S]*?)```\s*<!-- quickstart:end -->/.exec(readme);
  assert.ok(m, "README has a quickstart block between the quickstart markers");
  return m[1]!;
}

it("the README quickstart runs as written and signs Binance's documented example", { timeout: 240_000 }, async () => {
  const script = join(dataDir, "quickstart.sh");
  writeFileSync(script, "set -euo pipefail\n" + quickstartScript());
  const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const proc = spawn("bash", [script], { cwd: REPO, env: { ...process.env, CUSTOS_DATA_DIR: dataDir }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    proc.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    proc.on("close", (code) => resolve({ code, stdout, stderr }));
  });
  assert.equal(result.code, 0, `quickstart failed:\n${result.stderr}`);
  const lines = result.stdout.split("\n").map((l) => l.trim());
  assert.ok(lines.includes("imported demo version 1"), result.stdout);
  // The service's own log lines (pino JSON from `npm run serve &`) share stdout: keep the CLI's object.
  const signed = lines
    .filter((l) => l.startsWith('{"headers"'))
    .map((l) => JSON.parse(l) as { signature: string; headers: Record<string, string>; query: string });
  assert.equal(signed.length, 1, result.stdout);
  assert.equal(signed[0]!.signature, "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71", "Binance's documented signature");
  assert.equal(signed[0]!.headers["X-MBX-APIKEY"], "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A");
  assert.match(signed[0]!.query, /&recvWindow=5000&timestamp=1499827319559&signature=c8db5682/);
  // The withdrawal is refused by the default policy, with its reason on stderr.
  assert.ok(lines.includes("refused"), result.stdout);
  assert.match(result.stderr, /PERMISSION_DENIED \(POLICY_DENIED\)/);
  assert.ok(
    lines.some((l) => /^audit chain ok: \d+ events/.test(l)),
    result.stdout,
  );
  // Started by `npm run serve`, stopped by `custos stop`, which waits for the exit.
  assert.match(result.stdout, /custos \(pid \d+\) stopped/);
  assert.equal(existsSync(join(dataDir, "custos.pid")), false, "pid file removed on exit");
});
