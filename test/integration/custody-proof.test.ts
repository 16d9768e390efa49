import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { createHmac, randomBytes, randomInt } from "node:crypto";
import { accessSync, constants, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { delimiter, join, relative } from "node:path";
import { once } from "node:events";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import { signerClient, unary } from "../../src/client/connection.js";
import { SignatureEncoding } from "../../src/gen/custos/v1/signer.js";
import { REPO, runCli, spawnService, tempDir } from "../helpers/harness.js";
import { Scanner, secretNeedles, type Hit } from "../helpers/memory-scan.js";

/**
 * The custody proof: an exchange secret imported through the CLI is never present in
 * the service's memory, files or output, in any usual encoding, even after it signed
 * with it 1,000 times. The secret only ever exists in plaintext inside SoftHSM2, which
 * keeps private objects encrypted in memory.
 */

const run = promisify(execFile);
const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** A random 64-char ASCII secret, the shape of a Binance API secret. */
const randomSecret = () => Array.from({ length: 64 }, () => ALNUM[randomInt(ALNUM.length)]).join("");

function onPath(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return join(dir, cmd);
    } catch {
      /* not here */
    }
  }
  return undefined;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

function requireGcore(): string {
  const gcore = onPath("gcore");
  assert.ok(gcore, "gcore not found on PATH: the custody proof needs it (Debian: apt-get install gdb)");
  return gcore;
}

/** Core of a live process, scanned and deleted. -a: every mapping, MADV_DONTDUMP ones and the coredump_filter's exclusions too. */
async function scanCore(scanner: Scanner, pid: number, dir: string): Promise<{ hits: Hit[]; summary: string }> {
  let started = performance.now();
  await run(requireGcore(), ["-a", "-o", join(dir, "core"), String(pid)], { timeout: 300_000, maxBuffer: 64 << 20 });
  const core = join(dir, `core.${pid}`);
  try {
    assert.ok(existsSync(core), `gcore wrote no ${core}`);
    const bytes = statSync(core).size;
    assert.ok(bytes > 10 << 20, `the core of ${pid} (${bytes} bytes) is too small to be a real dump`);
    const dumpMs = performance.now() - started;
    started = performance.now();
    const hits = scanner.scanFile(core);
    const summary = `core ${(bytes / 2 ** 20).toFixed(0)} MiB dumped in ${dumpMs.toFixed(0)} ms, ${scanner.needles.length} needles scanned in ${(performance.now() - started).toFixed(0)} ms`;
    return { hits, summary };
  } finally {
    rmSync(core, { force: true });
  }
}

const describeHits = (where: string, hits: Hit[]) => hits.slice(0, 20).map((h) => `${where} @${h.offset} ${h.label}: ${h.context}`);

describe("custody proof", () => {
  it("the scanner finds a planted secret in every form, anywhere, also across chunk boundaries", () => {
    const secret = Buffer.from(randomSecret());
    const scanner = new Scanner(secretNeedles(secret));
    const forms: Array<[string, Buffer]> = [
      ["raw", secret.subarray(20, 30)],
      ["hex", Buffer.from(secret.subarray(3, 14).toString("hex"))],
      ["HEX", Buffer.from(secret.subarray(40, 50).toString("hex").toUpperCase())],
      ["utf16le", Buffer.from(secret.subarray(0, 12).toString("latin1"), "utf16le")],
      // Inside a larger base64 blob at each alignment: only the shifted needles catch 1 and 2.
      ...[0, 1, 2].map((k): [string, Buffer] => [
        `base64 at offset ${k} mod 3`,
        Buffer.from(Buffer.concat([randomBytes(30 + k), secret, randomBytes(5)]).toString("base64")),
      ]),
      ["base64url", Buffer.from(Buffer.concat([randomBytes(31), secret]).toString("base64url"))],
    ];
    for (const [name, form] of forms) {
      const haystack = Buffer.concat([randomBytes(1000), form, randomBytes(1000)]);
      assert.ok(scanner.scan(haystack).length > 0, `planted ${name} found`);
    }
    assert.equal(scanner.scan(randomBytes(1 << 20)).length, 0, "no false positive in random bytes");

    // A file read in 4 KiB chunks: fragments straddling every boundary are found, each once.
    const dir = tempDir("custos-scan-");
    try {
      const file = join(dir, "planted");
      const body = randomBytes(64 * 1024);
      const offsets = [4096 - 3, 8192 - 7, 30_000];
      for (const o of offsets) {
        secret.copy(body, o, 0, 8);
        // The byte after a fragment must not continue the secret: a random one does 1 time in 256,
        // and the window [1..9) then matches one byte further on (a second, true, hit).
        body[o + 8] = secret[8]! ^ 0xff;
      }
      writeFileSync(file, body);
      assert.deepEqual(
        scanner.scanFile(file, 4096).map((h) => h.offset),
        offsets,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("positive control: gcore + scan find a secret that a live Node process holds", { timeout: 300_000 }, async (t) => {
    const secretText = randomSecret();
    const scanner = new Scanner(secretNeedles(Buffer.from(secretText)));
    const dir = tempDir("custos-core-");
    // Holds the secret the way a careless service would: a JS string and a Buffer.
    const decoy = spawn(process.execPath, [
      "-e",
      "let s='';process.stdin.on('data',(d)=>(s+=d)).on('end',()=>{globalThis.kept=[s,Buffer.from(s)];console.log('ready')});setInterval(()=>{},1e6)",
    ]);
    try {
      decoy.stdin.end(secretText);
      await once(decoy.stdout, "data");
      const core = await scanCore(scanner, decoy.pid!, dir);
      t.diagnostic(`${core.summary}; ${core.hits.length} hits`);
      assert.ok(
        core.hits.some((h) => h.label.startsWith("raw")),
        "the secret found in the decoy's memory",
      );
    } finally {
      decoy.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("no file under src/ calls or mentions C_DigestKey (it digests a sensitive key)", () => {
    const offenders = filesUnder(join(REPO, "src")).filter((f) => readFileSync(f, "utf8").includes("C_DigestKey"));
    assert.deepEqual(offenders, []);
  });

  it("neither secret of a full rotation is anywhere in the running service's memory, data dir or output", { timeout: 600_000 }, async (t) => {
    requireGcore();
    const secretText = randomSecret();
    const secret = Buffer.from(secretText);
    // The second secret arrives by rotation: proposed, approved, executed; then v1 is destroyed by the officers.
    const secret2Text = randomSecret();
    const secret2 = Buffer.from(secret2Text);
    const scanner = new Scanner([...secretNeedles(secret), ...secretNeedles(secret2)]);
    const coreDir = tempDir("custos-core-");
    const svc = await spawnService();
    const pid = svc.proc.pid!;
    try {
      // The secret reaches custos the way an officer gives it: on the CLI's stdin.
      const cli = await runCli(["key", "import", "--data-dir", svc.dir, "--key", "proof", "--raw"], { input: secretText });
      assert.equal(cli.code, 0, cli.stderr);
      assert.match(cli.stdout, /imported proof version 1/);

      // 1,000 signatures: key material has been used, not just stored. All checked.
      const signer = signerClient(svc.conn.grpc, { caPath: svc.conn.caPath, ...svc.conn.client! });
      try {
        for (let i = 0; i < 1_000; i++) {
          const payload = Buffer.from(`symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=${60_000 + i}&timestamp=${Date.now()}`);
          const res = await unary(signer, "sign", { keyId: "proof", version: 0, payload, encoding: SignatureEncoding.SIGNATURE_ENCODING_RAW });
          assert.deepEqual(res.signature, createHmac("sha256", secret).update(payload).digest(), `signature ${i}`);
        }
      } finally {
        signer.close();
      }

      // Rotation through the CLI (the embedded default's dev officer approves at once), a
      // second 1,000 signatures with v2, then v1's object is destroyed ahead of its grace period
      // (the same HSM destruction housekeeping runs when a grace period ends: grace-period.test.ts).
      const rotated = await runCli(["key", "rotate", "--data-dir", svc.dir, "--key", "proof", "--grace", "1h"], { input: secret2Text });
      assert.equal(rotated.code, 0, rotated.stderr);
      assert.match(rotated.stdout, /rotated proof: version 2 active/);
      const signer2 = signerClient(svc.conn.grpc, { caPath: svc.conn.caPath, ...svc.conn.client! });
      try {
        for (let i = 0; i < 1_000; i++) {
          const payload = Buffer.from(`symbol=ETHUSDT&side=SELL&type=LIMIT&quantity=2&price=${3_000 + i}&timestamp=${Date.now()}`);
          const res = await unary(signer2, "sign", { keyId: "proof", version: 0, payload, encoding: SignatureEncoding.SIGNATURE_ENCODING_RAW });
          assert.equal(res.keyVersion, 2);
          assert.deepEqual(res.signature, createHmac("sha256", secret2).update(payload).digest(), `v2 signature ${i}`);
        }
      } finally {
        signer2.close();
      }
      const destroyed = await runCli(["key", "destroy", "--data-dir", svc.dir, "--key", "proof", "--version", "1"]);
      assert.equal(destroyed.code, 0, destroyed.stderr);
      const list = await runCli(["key", "list", "--data-dir", svc.dir]);
      assert.match(list.stdout, /v1:destroyed/, list.stdout);

      // Memory: a full core of the live process.
      const core = await scanCore(scanner, pid, coreDir);
      t.diagnostic(core.summary);
      assert.deepEqual(describeHits(`core of pid ${pid}`, core.hits), [], "secret fragments in the service's memory");

      // Files and output while running.
      const scanDir = () => filesUnder(svc.dir).flatMap((f) => describeHits(relative(svc.dir, f), scanner.scanFile(f)));
      assert.deepEqual(scanDir(), [], "secret fragments in the data dir (service running)");
      const outputs: Record<string, string> = {
        "cli stdout": cli.stdout,
        "cli stderr": cli.stderr,
        "rotate stdout": rotated.stdout,
        "rotate stderr": rotated.stderr,
      };
      const scanOutput = () => {
        Object.assign(outputs, { "service stdout": svc.stdout(), "service stderr": svc.stderr() });
        return Object.entries(outputs).flatMap(([name, text]) => describeHits(name, scanner.scan(Buffer.from(text))));
      };
      assert.deepEqual(scanOutput(), [], "secret fragments in the service's or the CLI's output");

      // A clean stop, then the files again (WAL checkpoint, final audit flush).
      assert.equal(await svc.stop(), 0, `custos serve exit code; stderr:\n${svc.stderr()}`);
      const files = filesUnder(svc.dir);
      t.diagnostic(`scanned ${files.length} files under the data dir: ${files.map((f) => relative(svc.dir, f)).join(", ")}`);
      assert.ok(files.some((f) => f.endsWith("custos.db")) && files.some((f) => f.includes("tokens")), "the data dir holds the store and the token");
      assert.deepEqual(scanDir(), [], "secret fragments in the data dir (service stopped)");
      assert.deepEqual(scanOutput(), [], "secret fragments in the service's output after stop");
    } finally {
      if (svc.proc.exitCode === null) await svc.stop();
      rmSync(coreDir, { recursive: true, force: true });
      rmSync(svc.dir, { recursive: true, force: true });
    }
  });
});
