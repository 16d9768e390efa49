import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes, verify } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import { unary } from "../../src/client/connection.js";
import { Algorithm, Environment } from "../../src/gen/custos/v1/custody.js";
import { SignatureEncoding } from "../../src/gen/custos/v1/signer.js";
import { buildEnvelope } from "../../src/hsm/envelope.js";
import { findObjects, findSlotByLabel, loadModule, pkcs11js as p, type Handle, type Module } from "../../src/hsm/pkcs11/module.js";
import { versionObjectId } from "../../src/keys/model.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import {
  auditEvents,
  expectDenied,
  proposeAndApprove,
  lastLine,
  runCli,
  spawnService,
  startInProcess,
  tempDir,
  type InProcessService,
} from "../helpers/harness.js";
import { eddsaUnwrapModule } from "../helpers/softhsm-eddsa.js";

/**
 * Migrating an existing Ed25519 exchange key: the officer's CLI wraps its PKCS#8 for the
 * HSM's wrapping key, the quorum approves the proposal (which names the public key), and the
 * HSM unwraps it. Against SoftHSM2 2.6.1 with its EdDSA unwrap branch (hsm/softhsm2-eddsa/):
 * Debian's stock module cannot unwrap Ed25519, and test/integration/ed25519.test.ts shows the
 * import failing closed there.
 */

const CKR_ATTRIBUTE_SENSITIVE = 0x11;
const CKK_EC_EDWARDS = 0x40;

describe("Ed25519 key migration (wrapped PKCS#8) into SoftHSM2 with EdDSA unwrap", () => {
  let svc: InProcessService;
  let mod: Module;
  let session: Handle;
  const dir = mkdtempSync(join(tmpdir(), "custos-pkcs8-"));

  before(async () => {
    svc = await startInProcess((c) => (c.hsm.modulePath = eddsaUnwrapModule()));
    // Same process → the service's initialised, logged-in module: our session sees its private objects.
    mod = loadModule(svc.config.hsm.modulePath);
    const slot = findSlotByLabel(mod, svc.config.hsm.tokenLabel);
    assert.ok(slot, "token not found");
    session = mod.C_OpenSession(slot, p.CKF_SERIAL_SESSION | p.CKF_RW_SESSION);
  });
  after(async () => {
    mod.C_CloseSession(session);
    await svc.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const ofClass = (objectId: string, cls: number) =>
    findObjects(mod, session, [
      { type: p.CKA_CLASS, value: cls },
      { type: p.CKA_ID, value: Buffer.from(objectId) },
    ]);
  const attribute = (handle: Handle, type: number) => mod.C_GetAttributeValue(session, handle, [{ type }])[0]!.value as Buffer;
  const ckrOf = (e: unknown) => (e as { code?: number }).code;

  function pkcs8File(name: string) {
    const pair = generateKeyPairSync("ed25519");
    const file = join(dir, `${name}.pem`);
    writeFileSync(file, pair.privateKey.export({ format: "pem", type: "pkcs8" }), { mode: 0o600 });
    return { file, pair, publicKeyPem: pair.publicKey.export({ format: "pem", type: "spki" }).toString() };
  }

  it("an officer migrates a Binance Ed25519 key by CLI: unwrapped inside the HSM, sensitive and unextractable, and it signs what the old key signed", async () => {
    const existing = pkcs8File("binance-ed25519");
    const r = await runCli([
      "key",
      "import",
      "--data-dir",
      svc.dir,
      "--key",
      "bn-migrated",
      "--exchange",
      "binance",
      "--algorithm",
      "ed25519",
      "--api-key-id",
      "migrated-api-key",
      "--pkcs8-file",
      existing.file,
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);

    const { keys } = await unary(svc.custody, "listKeys", {});
    const info = keys.find((k) => k.keyId === "bn-migrated")!;
    assert.equal(info.algorithm, Algorithm.ALGORITHM_ED25519);
    assert.equal(info.activeVersion, 1);
    assert.equal(info.publicKeyPem, existing.publicKeyPem, "the exchange keeps the public key it already has");

    // On the token: the private half is a CKK_EC_EDWARDS private key nobody can read out.
    const objectId = versionObjectId("bn-migrated", 1);
    const [priv] = ofClass(objectId, p.CKO_PRIVATE_KEY);
    assert.ok(priv, "private key object");
    assert.equal(ofClass(objectId, p.CKO_PUBLIC_KEY).length, 1, "public key object");
    assert.equal(attribute(priv, p.CKA_KEY_TYPE).readUIntLE(0, 4), CKK_EC_EDWARDS);
    assert.equal(attribute(priv, p.CKA_SENSITIVE)[0], 1);
    assert.equal(attribute(priv, p.CKA_EXTRACTABLE)[0], 0);
    assert.equal(attribute(priv, p.CKA_TOKEN)[0], 1);
    assert.throws(
      () => attribute(priv, p.CKA_VALUE),
      (e) => ckrOf(e) === CKR_ATTRIBUTE_SENSITIVE,
    );

    // A Binance order signed in the HSM verifies with the key the bot used to hold (node:crypto).
    const order = {
      keyId: "bn-migrated",
      version: 0,
      method: "POST",
      path: "/fapi/v1/order",
      query: "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=50000",
      queryParams: [],
      body: Buffer.alloc(0),
      timestampMs: "0",
      nonce: "",
      expires: "0",
      recvWindowMs: 0,
      passphrase: "",
      apiKeyVersion: "",
      omitNonce: false,
    };
    const res = await unary(svc.signer, "signExchangeRequest", order);
    assert.deepEqual(
      res.headers.map((h) => [h.name, h.value]),
      [["X-MBX-APIKEY", "migrated-api-key"]],
    );
    const cut = res.query.lastIndexOf("&signature=");
    assert.ok(verify(null, Buffer.from(res.query.slice(0, cut)), existing.pair.publicKey, Buffer.from(res.signature, "base64")));

    // The envelope went with the executed proposal; the import is audited.
    const { proposals } = await unary(svc.custody, "listProposals", { state: "" });
    const proposal = proposals.find((x) => x.kind === "import_key" && x.target === "bn-migrated")!;
    assert.equal(proposal.state, "executed");
    const store = new SqliteStore(join(svc.dir, "custos.db"), { readonly: true });
    try {
      assert.equal((await store.governance.getProposal(proposal.id))?.envelope, null);
    } finally {
      await store.close();
    }
    assert.ok((await auditEvents(svc.dir)).some((e) => e.kind === "key.import" && e.key === "bn-migrated" && e.outcome === "ok"));
  });

  it("a raw-sign key migrated the same way signs arbitrary payloads the old key verifies", async () => {
    const existing = pkcs8File("custom-ed25519");
    const r = await runCli([
      "key",
      "import",
      "--data-dir",
      svc.dir,
      "--key",
      "custom-migrated",
      "--raw",
      "--algorithm",
      "ed25519",
      "--pkcs8-file",
      existing.file,
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const size of [0, 1, 64, 1000, 65_536]) {
      const payload = randomBytes(size);
      const res = await unary(svc.signer, "sign", { keyId: "custom-migrated", version: 0, payload, encoding: SignatureEncoding.SIGNATURE_ENCODING_RAW });
      assert.ok(verify(null, payload, existing.pair.publicKey, res.signature), `payload of ${size} bytes`);
    }
  });

  it("a wrapped key that is not the one the proposal names is refused after the unwrap, and nothing stays on the token", async () => {
    const wrapped = generateKeyPairSync("ed25519");
    const claimed = generateKeyPairSync("ed25519").publicKey.export({ format: "pem", type: "spki" }).toString();
    const wrapping = await unary(svc.custody, "getWrappingKey", {});
    const der = wrapped.privateKey.export({ format: "der", type: "pkcs8" });
    const envelope = buildEnvelope(der, { spkiPem: wrapping.spkiPem, fingerprint: wrapping.fingerprint, oaepHash: wrapping.oaepHash as "sha1" });
    await expectDenied(
      proposeAndApprove(svc.custody, {
        kind: {
          $case: "importKey",
          importKey: {
            keyId: "swapped",
            exchange: "raw",
            environment: Environment.ENVIRONMENT_TESTNET,
            label: "",
            apiKeyId: "",
            algorithm: Algorithm.ALGORITHM_ED25519,
            envelope,
            maxAgeDays: 0,
            publicKeyPem: claimed,
            signedPassphrase: "",
          },
        },
        ttlSeconds: 0,
      }),
      status.INVALID_ARGUMENT,
      "ENVELOPE_INVALID",
    );
    const objectId = versionObjectId("swapped", 1);
    assert.deepEqual(findObjects(mod, session, [{ type: p.CKA_ID, value: Buffer.from(objectId) }]), []);
    assert.ok(!(await unary(svc.custody, "listKeys", {})).keys.some((k) => k.keyId === "swapped"));
    const { proposals } = await unary(svc.custody, "listProposals", { state: "" });
    assert.equal(proposals.find((x) => x.target === "swapped")?.state, "failed");
  });

  it("the embedded default takes its module from CUSTOS_PKCS11_MODULE: a served data dir migrates a key the same way", async () => {
    const served = await spawnService(tempDir("custos-pkcs8-served-"), { CUSTOS_PKCS11_MODULE: eddsaUnwrapModule() });
    try {
      const existing = pkcs8File("served-ed25519");
      const r = await runCli(["key", "import", "--data-dir", served.dir, "--key", "served", "--raw", "--algorithm", "ed25519", "--pkcs8-file", existing.file]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const payload = "migrated key, served by the embedded default";
      const signed = await runCli(["sign", "--data-dir", served.dir, "--key", "served", "--payload", payload]);
      assert.equal(signed.code, 0, signed.stderr);
      assert.ok(verify(null, Buffer.from(payload), existing.pair.publicKey, Buffer.from(lastLine(signed.stdout), "hex")), "signed by the migrated key");
    } finally {
      assert.equal(await served.stop(), 0, served.stderr());
      rmSync(served.dir, { recursive: true, force: true });
    }
  });
});
