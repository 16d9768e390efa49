import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import Database from "better-sqlite3";
import { unary } from "../../src/client/connection.js";
import { Algorithm, Environment } from "../../src/gen/custos/v1/custody.js";
import { SignatureEncoding } from "../../src/gen/custos/v1/signer.js";
import { envelopeFor, expectDenied, importSecret, proposeAndApprove, runCli, startInProcess, type InProcessService } from "../helpers/harness.js";

/**
 * The exchange a key is imported with, through the officer's CLI and the real service (SoftHSM2,
 * gRPC over mTLS, SQLite): ccxt's id for a venue becomes the dialect's id, a typo is refused, a
 * raw-only key is asked for with --raw, and every raw-only key says so in key list and ListKeys.
 */

const SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
const lines = (s: string) =>
  s
    .trimEnd()
    .split("\n")
    .filter((l) => l.length > 0);

describe("exchange names of imported keys", () => {
  let svc: InProcessService;
  before(async () => {
    svc = await startInProcess();
  });
  after(async () => svc?.stop());

  const cli = (args: string[], input?: string) => runCli([...args, "--data-dir", svc.dir], input === undefined ? {} : { input });
  const proposalCount = async () => (await unary(svc.custody, "listProposals", { state: "" })).proposals.length;
  const listed = async (keyId: string) => (await unary(svc.custody, "listKeys", {})).keys.find((k) => k.keyId === keyId);
  const signRaw = (keyId: string, payload: Buffer) =>
    unary(svc.signer, "sign", { keyId, version: 0, payload, encoding: SignatureEncoding.SIGNATURE_ENCODING_RAW });

  it("ccxt's id binanceusdm imports a binance key: the CLI says so, the approved content and ListKeys say binance, raw Sign is refused", async () => {
    const r = await cli(["key", "import", "--key", "bn-usdm", "--exchange", "binanceusdm", "--api-key-id", "usdm-api"], SECRET);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /binanceusdm is ccxt's id for binance/);
    const proposal = (await unary(svc.custody, "listProposals", { state: "executed" })).proposals.find((p) => p.target === "bn-usdm");
    assert.equal((JSON.parse(proposal!.canonical) as { params: { exchange: string } }).params.exchange, "binance");
    const key = await listed("bn-usdm");
    assert.deepEqual({ exchange: key?.exchange, rawOnly: key?.rawOnly }, { exchange: "binance", rawOnly: false });
    // The dialect's rules apply: raw bytes (a withdrawal query, say) are not signed with it.
    await expectDenied(
      signRaw("bn-usdm", Buffer.from("coin=BTC&address=bc1qexample&amount=1&timestamp=1700000000000")),
      status.PERMISSION_DENIED,
      "POLICY_DENIED",
    );
  });

  it("refuses a typo or another venue in the CLI (one stderr line, nothing proposed) and at Propose", async () => {
    const before = await proposalCount();
    for (const name of ["binance-futures", "kraken", "coinbase", "Binance"]) {
      const r = await cli(["key", "import", "--key", "typo", "--exchange", name], SECRET);
      assert.notEqual(r.code, 0, `${name} was accepted`);
      assert.equal(lines(r.stderr).length, 1, r.stderr);
      assert.match(r.stderr, /^custos: INVALID_ARGUMENT \(UNKNOWN_EXCHANGE\): /, name);
    }
    const generate = await cli(["key", "generate", "--key", "typo-ed", "--exchange", "binance-futures"]);
    assert.match(generate.stderr, /INVALID_ARGUMENT \(UNKNOWN_EXCHANGE\)/);
    for (const args of [["--raw", "--exchange", "binance"], []]) {
      const r = await cli(["key", "import", "--key", "typo", ...args], SECRET);
      assert.notEqual(r.code, 0, `accepted ${args.join(" ") || "no exchange"}`);
    }
    assert.equal(await proposalCount(), before, "a refused name made a proposal");
    // A client that bypasses the CLI meets the same rule in the service.
    const importKey = {
      keyId: "typo-grpc",
      exchange: "kraken",
      environment: Environment.ENVIRONMENT_TESTNET,
      label: "",
      apiKeyId: "",
      algorithm: Algorithm.ALGORITHM_HMAC_SHA256,
      envelope: await envelopeFor(svc.custody, randomBytes(32)),
      maxAgeDays: 0,
      publicKeyPem: "",
      signedPassphrase: "",
    };
    await expectDenied(unary(svc.custody, "propose", { kind: { $case: "importKey", importKey }, ttlSeconds: 0 }), status.INVALID_ARGUMENT, "UNKNOWN_EXCHANGE");
    assert.equal(await listed("typo-grpc"), undefined);
  });

  it("--raw imports a raw-only key that signs raw bytes; key list (text and --json) and ListKeys flag it; --json prints enum names", async () => {
    const r = await cli(["key", "import", "--key", "raw-k", "--raw"], SECRET);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /raw-k signs raw bytes only/);
    assert.deepEqual({ exchange: (await listed("raw-k"))?.exchange, rawOnly: (await listed("raw-k"))?.rawOnly }, { exchange: "raw", rawOnly: true });
    const payload = Buffer.from("anything at all");
    assert.deepEqual((await signRaw("raw-k", payload)).signature, createHmac("sha256", SECRET).update(payload).digest());

    const text = await cli(["key", "list"]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^raw-k\traw \(RAW-ONLY: no request policy\)\tactive v1\t/m);
    assert.match(text.stdout, /^bn-usdm\tbinance\tactive v1\t/m);

    const json = await cli(["key", "list", "--json"]);
    assert.equal(json.code, 0, json.stderr);
    type Entry = { keyId: string; exchange: string; rawOnly: boolean; environment: unknown; algorithm: unknown; versions: Array<{ state: unknown }> };
    const entries = JSON.parse(json.stdout) as Entry[];
    const pick = (id: string) => {
      const e = entries.find((x) => x.keyId === id);
      return e && { exchange: e.exchange, rawOnly: e.rawOnly, environment: e.environment, algorithm: e.algorithm, states: e.versions.map((v) => v.state) };
    };
    assert.deepEqual(pick("raw-k"), { exchange: "raw", rawOnly: true, environment: "mainnet", algorithm: "hmac-sha256", states: ["active"] });
    assert.deepEqual(pick("bn-usdm"), { exchange: "binance", rawOnly: false, environment: "mainnet", algorithm: "hmac-sha256", states: ["active"] });
  });

  it("a key stored under a name without a dialect (before names were checked) keeps signing raw bytes and is flagged everywhere", async () => {
    await importSecret(svc.custody, "legacy", randomBytes(32), { exchange: "raw" });
    // What a database from before this check holds: the exchange as the officer typed it.
    const db = new Database(join(svc.dir, "custos.db"));
    try {
      db.prepare("UPDATE keys SET exchange = 'binance-futures' WHERE id = 'legacy'").run();
    } finally {
      db.close();
    }
    assert.deepEqual(
      { exchange: (await listed("legacy"))?.exchange, rawOnly: (await listed("legacy"))?.rawOnly },
      { exchange: "binance-futures", rawOnly: true },
    );
    // A rotation: its summary warns the officers, and once executed (the signer reloads the key) v2 signs raw bytes.
    const secret = randomBytes(32);
    const rotated = await proposeAndApprove(svc.custody, {
      kind: {
        $case: "rotateKey",
        rotateKey: { keyId: "legacy", apiKeyId: "", graceSeconds: 60, envelope: await envelopeFor(svc.custody, secret), signedPassphrase: "" },
      },
      ttlSeconds: 0,
    });
    assert.equal(rotated.state, "executed", rotated.failure);
    assert.ok(
      rotated.summary.some((l) => l.startsWith("RAW-ONLY key") && l.includes('"binance-futures"')),
      rotated.summary.join("\n"),
    );
    const payload = Buffer.from("legacy raw payload");
    const res = await signRaw("legacy", payload);
    assert.deepEqual({ version: res.keyVersion, signature: res.signature }, { version: 2, signature: createHmac("sha256", secret).update(payload).digest() });
    const text = await cli(["key", "list"]);
    assert.match(text.stdout, /^legacy\tbinance-futures \(RAW-ONLY: no request policy\)\t/m);
  });
});
