import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import { unary } from "../../src/client/connection.js";
import type { ExchangeRequest } from "../../src/gen/custos/v1/signer.js";
import { auditEvents, cliOk, expectDenied, runCli, startInProcess, tempDir, writeSecretFile, type InProcessService } from "../helpers/harness.js";

/**
 * A KuCoin Futures key's passphrase, end to end: `custos key import --api-passphrase-file` (the
 * officer's CLI) sends only base64(HMAC-SHA256(secret, passphrase)) in the proposal; the quorum
 * approves it; every request signed over gRPC carries it as KC-API-PASSPHRASE while the HSM signs
 * the request string only. The passphrase itself reaches neither the service's database nor its
 * audit records or logs, and a request carrying one is refused rather than HMACed.
 */

const SECRET = "kucoin-cli-secret-0123456789abcdef";
const PASSPHRASE = "Kc-Passphrase!4711";
const SECRET_2 = "kucoin-cli-secret-rotated-fedcba987654";
const PASSPHRASE_2 = "Kc-Passphrase!rotated-0815";
const T = 1_700_000_000_000;

const b64mac = (secret: string, text: string) => createHmac("sha256", secret).update(text).digest("base64");

function request(keyId: string, over: Partial<ExchangeRequest> = {}): ExchangeRequest {
  return {
    keyId,
    version: 0,
    method: "POST",
    path: "/api/v1/orders",
    query: "",
    queryParams: [],
    body: Buffer.from('{"clientOid":"c1","side":"buy","symbol":"XBTUSDTM","type":"market","size":1}'),
    timestampMs: String(T),
    nonce: "",
    expires: "0",
    recvWindowMs: 0,
    passphrase: "",
    apiKeyVersion: "",
    omitNonce: false,
    ...over,
  };
}

describe("KuCoin Futures passphrase: fixed at import and rotation, never taken from a request", () => {
  let svc: InProcessService;
  let files: string;
  const sign = (r: ExchangeRequest) => unary(svc.signer, "signExchangeRequest", r);
  const headers = (res: { headers: Array<{ name: string; value: string }> }) => Object.fromEntries(res.headers.map((h) => [h.name, h.value]));
  // No passphrase from this process's environment unless a test sets one.
  const cli = (args: string[], input: string, env: NodeJS.ProcessEnv = {}) =>
    runCli([...args, "--data-dir", svc.dir], { input, env: { CUSTOS_API_PASSPHRASE: "", ...env } });
  const cliOutput: string[] = [];

  before(async () => {
    svc = await startInProcess();
    files = tempDir("custos-kucoin-");
  });
  after(async () => {
    await svc?.stop();
    if (files) rmSync(files, { recursive: true, force: true });
  });

  it("imports through the CLI with --api-passphrase-file: KC-API-SIGN and KC-API-PASSPHRASE match node:crypto", async () => {
    const file = writeSecretFile(join(files, "kc.passphrase"), PASSPHRASE);
    const args = ["key", "import", "--key", "kc", "--exchange", "kucoinfutures", "--api-key-id", "kc-key", "--api-passphrase-file", file];
    const r = await cli(args, `${SECRET}\n`);
    cliOutput.push(r.stdout, r.stderr);
    assert.equal(cliOk(r, "key import"), "imported kc version 1");
    const signed = b64mac(SECRET, PASSPHRASE);
    const fingerprint = createHash("sha256").update(signed).digest("hex").slice(0, 8);
    assert.match(r.stderr, new RegExp(`signed passphrase sha256 ${fingerprint}`));

    const res = await sign(request("kc"));
    const body = '{"clientOid":"c1","side":"buy","symbol":"XBTUSDTM","type":"market","size":1}';
    assert.deepEqual(headers(res), {
      "KC-API-KEY": "kc-key",
      "KC-API-SIGN": b64mac(SECRET, `${T}POST/api/v1/orders${body}`),
      "KC-API-TIMESTAMP": String(T),
      "KC-API-PASSPHRASE": signed,
      "KC-API-KEY-VERSION": "2",
      "Content-Type": "application/json",
    });

    // What the officers approved: the summary names the passphrase by fingerprint only.
    const { proposals } = await unary(svc.custody, "listProposals", { state: "executed" });
    const imported = proposals.find((p) => p.kind === "import_key" && p.target === "kc")!;
    assert.ok(imported.summary.includes(`API passphrase: set (signed passphrase sha256 ${fingerprint}…)`), imported.summary.join("\n"));
    assert.ok(!imported.summary.join("\n").includes(signed));
    assert.ok(imported.canonical.includes(signed), "the approved digest covers the signed passphrase");
  });

  it("refuses a request that carries a passphrase (no HMAC oracle), whatever it holds", async () => {
    const withdrawal = `${T}POST/api/v1/withdrawals{"currency":"USDT","address":"0xabc","amount":1000,"chain":"trc20"}`;
    await expectDenied(sign(request("kc", { passphrase: withdrawal })), status.INVALID_ARGUMENT, "INVALID_ARGUMENT");
    await expectDenied(sign(request("kc", { passphrase: PASSPHRASE })), status.INVALID_ARGUMENT, "INVALID_ARGUMENT");
    const read = request("kc", { method: "GET", path: "/api/v1/positions", body: Buffer.alloc(0), passphrase: withdrawal });
    await expectDenied(sign(read), status.INVALID_ARGUMENT, "INVALID_ARGUMENT");
  });

  it("reads the passphrase from $CUSTOS_API_PASSPHRASE; refuses a group-readable file, none at all, and the option on another exchange", async () => {
    const fromEnv = ["key", "import", "--key", "kc-env", "--exchange", "kucoinfutures", "--api-key-id", "kc-env"];
    const r = await cli(fromEnv, SECRET, { CUSTOS_API_PASSPHRASE: PASSPHRASE });
    cliOutput.push(r.stdout, r.stderr);
    cliOk(r, "key import from the environment");
    assert.equal(headers(await sign(request("kc-env")))["KC-API-PASSPHRASE"], b64mac(SECRET, PASSPHRASE));

    const loose = join(files, "loose.passphrase");
    writeFileSync(loose, PASSPHRASE, { mode: 0o644 });
    const refusals: Array<[string[], RegExp]> = [
      [["--key", "kc-loose", "--exchange", "kucoinfutures", "--api-passphrase-file", loose], /chmod 600/],
      [["--key", "kc-none", "--exchange", "kucoinfutures"], /no API passphrase/],
      [["--key", "okx-file", "--exchange", "okx", "--api-passphrase-file", writeSecretFile(join(files, "okx.passphrase"), "okx")], /is for kucoinfutures/],
    ];
    for (const [args, message] of refusals) {
      const refused = await cli(["key", "import", ...args], SECRET);
      cliOutput.push(refused.stdout, refused.stderr);
      assert.equal(refused.code, 1, `${args.join(" ")}: ${refused.stderr}`);
      assert.match(refused.stderr, message);
    }
    const { keys } = await unary(svc.custody, "listKeys", {});
    assert.deepEqual(keys.map((k) => k.keyId).sort(), ["kc", "kc-env"]);
  });

  it("rotation sets the new secret's passphrase; the old version keeps its own through the grace period", async () => {
    const file = writeSecretFile(join(files, "kc-2.passphrase"), PASSPHRASE_2);
    const r = await cli(["key", "rotate", "--key", "kc", "--api-key-id", "kc-key-2", "--grace", "1h", "--api-passphrase-file", file], SECRET_2);
    cliOutput.push(r.stdout, r.stderr);
    assert.equal(cliOk(r, "key rotate"), "rotated kc: version 2 active");

    const now = await sign(request("kc"));
    assert.equal(now.keyVersion, 2);
    assert.equal(headers(now)["KC-API-KEY"], "kc-key-2");
    assert.equal(headers(now)["KC-API-PASSPHRASE"], b64mac(SECRET_2, PASSPHRASE_2));
    assert.equal(now.signature, b64mac(SECRET_2, `${T}POST/api/v1/orders${request("kc").body.toString()}`));

    const pinned = await sign(request("kc", { version: 1 }));
    assert.equal(headers(pinned)["KC-API-PASSPHRASE"], b64mac(SECRET, PASSPHRASE));

    // A rotation without one is refused before it reaches the officers.
    const none = await cli(["key", "rotate", "--key", "kc", "--api-key-id", "kc-key-3"], SECRET);
    assert.equal(none.code, 1, none.stderr);
    assert.match(none.stderr, /no API passphrase/);
  });

  it("the passphrase is nowhere in the service: not in the SQLite files, the audit records, the logs or the CLI's output", async () => {
    const dbFiles = readdirSync(svc.dir).filter((f) => f.startsWith("custos.db"));
    assert.ok(dbFiles.includes("custos.db"), dbFiles.join(", "));
    let stored = false;
    for (const f of dbFiles) {
      const bytes = readFileSync(join(svc.dir, f));
      for (const secret of [PASSPHRASE, PASSPHRASE_2, SECRET, SECRET_2]) assert.equal(bytes.indexOf(Buffer.from(secret)), -1, `${secret} in ${f}`);
      stored ||= bytes.includes(Buffer.from(b64mac(SECRET_2, PASSPHRASE_2)));
    }
    // The control: the scan reads what the service wrote (the header value is stored by design).
    assert.ok(stored, "the signed passphrase is in the database files");
    const audit = JSON.stringify(await auditEvents(svc.dir));
    const logs = svc.logs();
    const cliText = cliOutput.join("\n");
    for (const secret of [PASSPHRASE, PASSPHRASE_2, SECRET, SECRET_2]) {
      assert.ok(!audit.includes(secret), `${secret} in the audit records`);
      assert.ok(!logs.includes(secret), `${secret} in the logs`);
      assert.ok(!cliText.includes(secret), `${secret} in the CLI's output`);
    }
    assert.ok(logs.length > 0 && audit.includes("key.rotate"), "the scans saw the run's records");
  });
});
