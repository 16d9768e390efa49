import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { runCli, spawnService, type ChildService, type CliResult } from "../helpers/harness.js";

/** The officer's and operator's CLI against a `custos serve` child process, and the audit chain it leaves. */

const lastLine = (s: string) => s.trimEnd().split("\n").at(-1) ?? "";
const lines = (s: string) =>
  s
    .trimEnd()
    .split("\n")
    .filter((l) => l.length > 0);

function ok(r: CliResult, what: string): void {
  assert.equal(r.code, 0, `${what} exited ${r.code}: ${r.stderr}`);
}

/** A user-facing failure: non-zero exit, exactly one line on stderr. */
function failedOneLine(r: CliResult, what: string): string {
  assert.notEqual(r.code, 0, `${what} should fail; stdout: ${r.stdout}`);
  assert.equal(lines(r.stderr).length, 1, `${what}: stderr is not one line:\n${r.stderr}`);
  return r.stderr.trim();
}

describe("custos CLI and audit verification", () => {
  let svc: ChildService;
  let dir: string;
  const secret = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
  // A payload a shell would mangle if the CLI passed it through one.
  const payload = "symbol=BTCUSDT&side=BUY&type=LIMIT&price=0.1&timestamp=1700000000000";

  before(async () => {
    svc = await spawnService();
    dir = svc.dir;
  });
  after(async () => {
    await svc.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const cli = (...args: string[]) => runCli([...args, "--data-dir", dir]);

  it("imports a secret from stdin and signs with it (hex and base64 on the last stdout line)", async () => {
    // echo-style trailing newline: not part of the secret.
    const imported = await runCli(["key", "import", "--data-dir", dir, "--key", "k", "--raw"], { input: secret + "\n" });
    ok(imported, "key import");
    assert.match(imported.stdout, /imported k version 1/);
    assert.ok(!imported.stdout.includes(secret) && !imported.stderr.includes(secret), "the secret was echoed");

    const expected = createHmac("sha256", secret).update(payload).digest();
    const hex = await cli("sign", "--key", "k", "--payload", payload, "--encoding", "hex");
    ok(hex, "sign hex");
    assert.equal(lastLine(hex.stdout), expected.toString("hex"));
    const b64 = await cli("sign", "--key", "k", "--payload", payload, "--encoding", "base64");
    ok(b64, "sign base64");
    assert.equal(lastLine(b64.stdout), expected.toString("base64"));
  });

  it("refuses to import under a wrong pinned fingerprint, naming it", async () => {
    const wrong = "sha256:" + "0".repeat(64);
    const r = await runCli(["key", "import", "--data-dir", dir, "--key", "k-pinned", "--raw", "--fingerprint", wrong], { input: secret });
    const message = failedOneLine(r, "import with a wrong fingerprint");
    assert.ok(message.includes(wrong), message);
    const list = await cli("key", "list", "--json");
    ok(list, "key list");
    const ids = (JSON.parse(list.stdout) as Array<{ keyId: string }>).map((k) => k.keyId);
    assert.deepEqual(ids, ["k"]);
  });

  it("reports an unknown key on one stderr line with its reason", async () => {
    const r = await cli("sign", "--key", "no-such-key", "--payload", "p");
    const message = failedOneLine(r, "sign with an unknown key");
    assert.match(message, /NOT_FOUND \(KEY_NOT_FOUND\)/);
    assert.equal(r.stdout, "");
  });

  it("verifies the audit chain after a real run, and names the one event altered afterwards", async () => {
    // Stopping drains calls and flushes the batched sign events.
    assert.equal(await svc.stop(), 0, svc.stderr());
    const verified = await cli("audit", "verify");
    ok(verified, "audit verify");
    const events = Number(/audit chain ok: (\d+) events/.exec(verified.stdout)?.[1]);
    assert.ok(events >= 8, verified.stdout);

    const db = new Database(join(dir, "custos.db"));
    try {
      const bodies = (db.prepare("SELECT body FROM audit_events ORDER BY seq").all() as Array<{ body: string }>).map(
        (r) => JSON.parse(r.body) as Record<string, unknown>,
      );
      // The run's decisions are all there: import, both signatures, the unknown-key denial, the stop.
      const has = (m: Record<string, unknown>) => bodies.some((b) => Object.entries(m).every(([k, v]) => b[k] === v));
      assert.ok(has({ kind: "key.import", outcome: "ok", key: "k" }));
      assert.equal(bodies.filter((b) => b.kind === "sign" && b.outcome === "allowed" && b.key === "k").length, 2);
      assert.ok(has({ kind: "sign", outcome: "denied", reason: "KEY_NOT_FOUND", key: "no-such-key" }));
      assert.ok(has({ kind: "service.stop", outcome: "ok" }));

      // One character of event 3's body: its timestamp's first digit.
      const { body } = db.prepare("SELECT body FROM audit_events WHERE seq = 3").get() as { body: string };
      const altered = body.replace(/"at":"(\d)/, (_m, d: string) => `"at":"${(Number(d) + 1) % 10}`);
      assert.equal(altered.length, body.length);
      assert.notEqual(altered, body);
      db.prepare("UPDATE audit_events SET body = ? WHERE seq = 3").run(altered);
    } finally {
      db.close();
    }
    const broken = await cli("audit", "verify");
    const message = failedOneLine(broken, "audit verify of an altered chain");
    assert.match(message, /\bevent 3\b/);
    assert.match(message, /2 events verified before it/);
  });

  it("answers --help for every command with exit 0", async () => {
    const commands = [
      [],
      ["serve"],
      ["hsm"],
      ["hsm", "init"],
      ["hsm", "create-token"],
      ["pki", "issue-client"],
      ["audit"],
      ["audit", "verify"],
      ["key"],
      ["key", "import"],
      ["key", "list"],
      ["client"],
      ["client", "add"],
      ["client", "grant"],
      ["client", "list"],
      ["sign"],
    ];
    const results = await Promise.all(commands.map((c) => runCli([...c, "--help"])));
    for (const [i, r] of results.entries()) {
      const name = ["custos", ...commands[i]!].join(" ");
      ok(r, `${name} --help`);
      assert.match(r.stdout, /^Usage: /m, `${name} --help printed no usage`);
    }
  });
});
