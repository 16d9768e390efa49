import assert from "node:assert/strict";
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, randomInt, verify, type KeyObject } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { CustosError } from "../../src/errors.js";
import { buildEnvelope } from "../../src/hsm/envelope.js";
import type { SecretObjectRef } from "../../src/hsm/hsm.js";
import { Pkcs11Hsm } from "../../src/hsm/pkcs11/pkcs11-hsm.js";
import { findObjects, findSlotByLabel, loadModule, pkcs11js, type Handle, type Module } from "../../src/hsm/pkcs11/module.js";
import { createLogger } from "../../src/log.js";
import { versionObjectId } from "../../src/keys/model.js";
import { status } from "@grpc/grpc-js";
import { unary } from "../../src/client/connection.js";
import { Algorithm, Environment } from "../../src/gen/custos/v1/custody.js";
import { SignatureEncoding } from "../../src/gen/custos/v1/signer.js";
import { auditEvents, envelopeFor, expectDenied, importSecret, proposeAndApprove, runCli, startInProcess, type InProcessService } from "../helpers/harness.js";

/**
 * Ed25519 exchange keys at the HSM layer, against the real SoftHSM2 token: the key pair is
 * generated inside the HSM, only the public key comes out, and every dispatch mode signs.
 */

const CKR_ATTRIBUTE_READ_ONLY = 0x10;
const CKR_ATTRIBUTE_SENSITIVE = 0x11;
const CKR_KEY_UNEXTRACTABLE = 0x6a;
const CKK_EC_EDWARDS = 0x40;
const p = pkcs11js;

/** Test ids outside "custos:", so start-up orphan reconciliation would never claim them. */
const ref = (name: string): SecretObjectRef => ({ objectId: `test-ed25519:${name}:v1`, label: `test/${name}/v1` });

const isCustos = (code: string) => (e: unknown) => e instanceof CustosError && e.code === code;
/** pkcs11js 2.1.7 puts no `code` on errors of C_SetAttributeValue, C_CopyObject and
 *  C_CreateObject (left out of its wrapper): the CKR is then only in the message. */
const ckr = (code: number) => (e: unknown) => {
  const err = e as { code?: unknown; message?: unknown };
  return err.code === code || (err.code === undefined && new RegExp(`^CKR_\\w+:${code}$`).test(String(err.message)));
};

describe("Ed25519 key pairs generated in SoftHSM2", () => {
  let svc: InProcessService;
  /** The service's HSM: dispatch "worker" (auto on SoftHSM2). */
  let hsm: Pkcs11Hsm;
  /** Two more handles on the same token, same process: the other dispatch modes. */
  let syncHsm: Pkcs11Hsm;
  let asyncHsm: Pkcs11Hsm;
  let mod: Module;
  let session: Handle;

  before(async () => {
    svc = await startInProcess();
    hsm = svc.service.hsm;
    assert.equal(hsm.status().dispatch, "worker");
    const h = svc.config.hsm;
    const pin = readFileSync(h.pinFile!, "utf8").trim();
    const open = (dispatch: "sync" | "async") =>
      Pkcs11Hsm.open({ modulePath: h.modulePath, tokenLabel: h.tokenLabel, pin, sessions: 4, dispatch, oaepHash: h.oaepHash, logger: createLogger("silent") });
    syncHsm = await open("sync");
    asyncHsm = await open("async");
    // Same process → the service's initialised, logged-in module: our session sees its private objects.
    mod = loadModule(h.modulePath);
    const slot = findSlotByLabel(mod, h.tokenLabel);
    assert.ok(slot, "token not found");
    session = mod.C_OpenSession(slot, p.CKF_SERIAL_SESSION | p.CKF_RW_SESSION);
  });
  after(async () => {
    mod.C_CloseSession(session);
    await svc.stop();
    // Their close() closes every session of the slot: only once the service is down.
    await syncHsm.close();
    await asyncHsm.close();
  });

  /** Every object with this CKA_ID, any class, token objects and session copies alike. */
  const objectsWithId = (objectId: string) => findObjects(mod, session, [{ type: p.CKA_ID, value: Buffer.from(objectId) }]);
  const ofClass = (objectId: string, cls: number) =>
    findObjects(mod, session, [
      { type: p.CKA_CLASS, value: cls },
      { type: p.CKA_ID, value: Buffer.from(objectId) },
    ]);
  const isToken = (handle: Handle) => (mod.C_GetAttributeValue(session, handle, [{ type: p.CKA_TOKEN }])[0]!.value as Buffer)[0] === 1;
  /** CK_BBOOL attributes (one-byte buffers in pkcs11js) by name. */
  function flags(handle: Handle, names: Array<keyof typeof pkcs11js>): Record<string, boolean> {
    const attrs = mod.C_GetAttributeValue(
      session,
      handle,
      names.map((n) => ({ type: p[n] as number })),
    );
    return Object.fromEntries(names.map((n, i) => [n, (attrs[i]!.value as Buffer)[0] === 1]));
  }
  const ulong = (handle: Handle, type: number) => (mod.C_GetAttributeValue(session, handle, [{ type }])[0]!.value as Buffer).readUIntLE(0, 4);

  async function generate(name: string): Promise<{ target: SecretObjectRef; publicKey: KeyObject; spkiDer: Buffer }> {
    const target = ref(name);
    const { spkiDer } = await hsm.generateKeyPair("ed25519", target);
    return { target, spkiDer, publicKey: createPublicKey({ key: spkiDer, format: "der", type: "spki" }) };
  }

  /** Empty, tiny, around the SHA-512 block edges, 64 KiB, and random lengths. */
  function payloads(random: number): Buffer[] {
    const sizes = [0, 1, 31, 32, 63, 64, 127, 128, 129, 1000, 65_536];
    for (let i = 0; i < random; i++) sizes.push(randomInt(0, 4096));
    return sizes.map((n) => randomBytes(n));
  }

  it("generates a key pair: the SPKI is Ed25519, publicKey() returns it, and the objects carry the version's id and label", async () => {
    const { target, spkiDer, publicKey } = await generate("gen");
    assert.equal(publicKey.asymmetricKeyType, "ed25519");
    assert.deepEqual(publicKey.export({ format: "der", type: "spki" }), spkiDer, "SPKI is not in canonical DER");
    assert.equal(spkiDer.length, 44);

    assert.deepEqual(await hsm.publicKey(target.objectId), spkiDer);
    assert.deepEqual(await syncHsm.publicKey(target.objectId), spkiDer);
    assert.equal(await hsm.publicKey("test-ed25519:absent:v1"), undefined);
    assert.equal(await hsm.publicKey("custos-wrapping-key-v1"), undefined, "the RSA wrapping key is not an Ed25519 public key");

    // Exactly two token objects under the id: one private, one public.
    const [priv, ...morePriv] = ofClass(target.objectId, p.CKO_PRIVATE_KEY);
    const [pub, ...morePub] = ofClass(target.objectId, p.CKO_PUBLIC_KEY);
    assert.ok(priv && pub, "private or public object missing");
    assert.deepEqual([morePriv.length, morePub.length, objectsWithId(target.objectId).length], [0, 0, 2]);

    assert.equal(ulong(priv, p.CKA_KEY_TYPE), CKK_EC_EDWARDS);
    assert.equal(ulong(pub, p.CKA_KEY_TYPE), CKK_EC_EDWARDS);
    for (const h of [priv, pub]) {
      const [label, id] = mod.C_GetAttributeValue(session, h, [{ type: p.CKA_LABEL }, { type: p.CKA_ID }]);
      assert.equal((label!.value as Buffer).toString(), target.label);
      assert.equal((id!.value as Buffer).toString(), target.objectId);
    }
    // The public key the token holds is the one returned (CKA_EC_POINT = 04 20 ‖ key).
    const point = mod.C_GetAttributeValue(session, pub, [{ type: p.CKA_EC_POINT }])[0]!.value as Buffer;
    assert.deepEqual(point, Buffer.concat([Buffer.from([0x04, 0x20]), spkiDer.subarray(12)]));

    assert.deepEqual(
      flags(priv, [
        "CKA_TOKEN",
        "CKA_PRIVATE",
        "CKA_SENSITIVE",
        "CKA_EXTRACTABLE",
        "CKA_SIGN",
        "CKA_SIGN_RECOVER",
        "CKA_DECRYPT",
        "CKA_UNWRAP",
        "CKA_DERIVE",
        "CKA_COPYABLE",
      ]),
      {
        CKA_TOKEN: true,
        CKA_PRIVATE: true,
        CKA_SENSITIVE: true,
        CKA_EXTRACTABLE: false,
        CKA_SIGN: true,
        CKA_SIGN_RECOVER: false,
        CKA_DECRYPT: false,
        CKA_UNWRAP: false,
        CKA_DERIVE: false,
        CKA_COPYABLE: true,
      },
    );
    // Made on the token and never sensitive-less or extractable in its life: it was generated
    // there, not imported.
    assert.deepEqual(flags(priv, ["CKA_LOCAL", "CKA_ALWAYS_SENSITIVE", "CKA_NEVER_EXTRACTABLE"]), {
      CKA_LOCAL: true,
      CKA_ALWAYS_SENSITIVE: true,
      CKA_NEVER_EXTRACTABLE: true,
    });
    assert.deepEqual(flags(pub, ["CKA_TOKEN", "CKA_PRIVATE", "CKA_VERIFY", "CKA_ENCRYPT", "CKA_WRAP", "CKA_DERIVE", "CKA_MODIFIABLE"]), {
      CKA_TOKEN: true,
      CKA_PRIVATE: false,
      CKA_VERIFY: true,
      CKA_ENCRYPT: false,
      CKA_WRAP: false,
      CKA_DERIVE: false,
      CKA_MODIFIABLE: false,
    });
  });

  it("signs in the HSM on every dispatch (sync, async, worker): 64-byte signatures that verify with node:crypto", async () => {
    const { target, publicKey } = await generate("sign");
    const data = payloads(100);
    const byMode: Record<string, Buffer[]> = {};
    for (const [mode, h] of [
      ["sync", syncHsm],
      ["async", asyncHsm],
      ["worker (lone calls: main thread)", hsm],
    ] as const) {
      assert.equal(h.status().dispatch, mode.split(" ")[0]);
      const sigs: Buffer[] = [];
      for (const d of data) {
        const sig = await h.sign(target.objectId, "ed25519", d);
        assert.equal(sig.length, 64, `${mode}: ${d.length}-byte payload`);
        assert.ok(verify(null, d, publicKey, sig), `${mode}: signature over a ${d.length}-byte payload does not verify`);
        sigs.push(sig);
      }
      byMode[mode] = sigs;
    }
    // Ed25519 is deterministic: every mode signed with the same key.
    const [first, ...rest] = Object.values(byMode);
    for (const sigs of rest) assert.deepEqual(sigs, first);

    // A burst within one event-loop turn goes to the signing thread (all but the first call).
    const worker = (hsm as unknown as { worker: { inFlight: number } }).worker;
    const pending = data.map((d) => hsm.sign(target.objectId, "ed25519", d));
    assert.ok(worker.inFlight >= data.length - 1, `only ${worker.inFlight} of ${data.length} calls went to the signing thread`);
    const burst = await Promise.all(pending);
    assert.deepEqual(burst, first, "the signing thread's signatures differ");
    for (const [i, sig] of burst.entries()) assert.ok(verify(null, data[i]!, publicKey, sig));

    // Sanity: the check can fail.
    const tampered = Buffer.from(first![4]!);
    tampered[0]! ^= 1;
    assert.equal(verify(null, data[4]!, publicKey, tampered), false);
  });

  it("seals the private key: CKA_VALUE unreadable, wrapping refused, attributes not downgradable, session copies as sealed", async () => {
    const { target } = await generate("sealed");
    await syncHsm.sign(target.objectId, "ed25519", randomBytes(32)); // makes a session copy
    const privs = ofClass(target.objectId, p.CKO_PRIVATE_KEY);
    const token = privs.filter(isToken);
    const copies = privs.filter((h) => !isToken(h));
    assert.equal(token.length, 1);
    assert.ok(copies.length >= 1, "no session copy after signing");
    const priv = token[0]!;

    for (const h of [priv, ...copies]) {
      assert.throws(() => mod.C_GetAttributeValue(session, h, [{ type: p.CKA_VALUE }]), ckr(CKR_ATTRIBUTE_SENSITIVE));
      assert.deepEqual(flags(h, ["CKA_SENSITIVE", "CKA_EXTRACTABLE", "CKA_DECRYPT", "CKA_UNWRAP"]), {
        CKA_SENSITIVE: true,
        CKA_EXTRACTABLE: false,
        CKA_DECRYPT: false,
        CKA_UNWRAP: false,
      });
    }
    assert.throws(() => mod.C_SetAttributeValue(session, priv, [{ type: p.CKA_SENSITIVE, value: false }]), ckr(CKR_ATTRIBUTE_READ_ONLY));
    assert.throws(() => mod.C_SetAttributeValue(session, priv, [{ type: p.CKA_EXTRACTABLE, value: true }]), ckr(CKR_ATTRIBUTE_READ_ONLY));

    // A wrap-capable AES session key of our own cannot carry the private key out.
    const aes = mod.C_GenerateKey(session, { mechanism: p.CKM_AES_KEY_GEN }, [
      { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
      { type: p.CKA_KEY_TYPE, value: p.CKK_AES },
      { type: p.CKA_TOKEN, value: false },
      { type: p.CKA_VALUE_LEN, value: 32 },
      { type: p.CKA_WRAP, value: true },
    ]);
    try {
      for (const h of [priv, ...copies]) {
        assert.throws(() => mod.C_WrapKey(session, { mechanism: p.CKM_AES_KEY_WRAP_PAD }, aes, h, Buffer.alloc(1024)), ckr(CKR_KEY_UNEXTRACTABLE));
      }
    } finally {
      mod.C_DestroyObject(session, aes);
    }
  });

  it("refuses an id that is taken (by an Ed25519 key or an HMAC secret) with KEY_EXISTS, leaving the existing key as it was", async () => {
    const { target, spkiDer, publicKey } = await generate("taken");
    await assert.rejects(hsm.generateKeyPair("ed25519", target), isCustos("KEY_EXISTS"));
    await assert.rejects(syncHsm.generateKeyPair("ed25519", { ...target, label: "other" }), isCustos("KEY_EXISTS"));
    assert.equal(objectsWithId(target.objectId).filter(isToken).length, 2);
    assert.deepEqual(await hsm.publicKey(target.objectId), spkiDer);
    const d = randomBytes(77);
    assert.ok(verify(null, d, publicKey, await hsm.sign(target.objectId, "ed25519", d)));

    // Nor can a secret be unwrapped under an Ed25519 key's id.
    const w = hsm.wrappingKey();
    const envelope = buildEnvelope(randomBytes(32), { spkiPem: w.spkiPem, fingerprint: w.fingerprint, oaepHash: w.oaepHash });
    await assert.rejects(hsm.unwrapSecret(envelope, target), isCustos("KEY_EXISTS"));
    assert.equal(ofClass(target.objectId, p.CKO_SECRET_KEY).length, 0);

    // An HMAC version's id is taken too.
    await importSecret(svc.custody, "k-ed-hmac", randomBytes(32));
    const hmacId = versionObjectId("k-ed-hmac", 1);
    await assert.rejects(hsm.generateKeyPair("ed25519", { objectId: hmacId, label: "x" }), isCustos("KEY_EXISTS"));
    assert.deepEqual([ofClass(hmacId, p.CKO_PRIVATE_KEY).length, ofClass(hmacId, p.CKO_PUBLIC_KEY).length], [0, 0]);
    assert.equal(await hsm.publicKey(hmacId), undefined, "an HMAC version has no public key");

    // And nothing but EdDSA generates.
    await assert.rejects(hsm.generateKeyPair("hmac-sha256" as "ed25519", ref("not-eddsa")), isCustos("INVALID_ARGUMENT"));
    assert.equal(objectsWithId(ref("not-eddsa").objectId).length, 0);
  });

  it("hasSecret and listSecretIds see the private key (each id once, beside the HMAC secrets)", async () => {
    const { target } = await generate("listed");
    await syncHsm.sign(target.objectId, "ed25519", randomBytes(8)); // a session copy must not be listed
    assert.equal(await hsm.hasSecret(target.objectId), true);
    assert.equal(await hsm.hasSecret("test-ed25519:absent:v1"), false);
    const ids = await hsm.listSecretIds();
    assert.equal(ids.filter((id) => id === target.objectId).length, 1, `listed ${ids.filter((id) => id === target.objectId).length} times`);
    assert.equal(new Set(ids).size, ids.length, "an id is listed twice");
    assert.ok(ids.includes(versionObjectId("k-ed-hmac", 1)), "HMAC secrets are still listed");
    assert.ok(!ids.includes("custos-wrapping-key-v1"), "the wrapping key is listed");
  });

  it("destroySecret removes the private key, its session copies and the public key; every dispatch then fails to sign", async () => {
    const { target, spkiDer } = await generate("destroyed");
    // Session copies on the main thread of every handle and on the signing thread.
    for (const h of [syncHsm, asyncHsm, hsm]) await h.sign(target.objectId, "ed25519", randomBytes(16));
    await Promise.all(Array.from({ length: 8 }, () => hsm.sign(target.objectId, "ed25519", randomBytes(16))));
    assert.ok(objectsWithId(target.objectId).length > 2, "no session copies were made");

    await hsm.destroySecret(target.objectId);
    assert.deepEqual(objectsWithId(target.objectId), [], "objects left under the id");
    assert.equal(await hsm.hasSecret(target.objectId), false);
    assert.equal(await hsm.publicKey(target.objectId), undefined);
    assert.ok(!(await hsm.listSecretIds()).includes(target.objectId));

    for (const h of [syncHsm, asyncHsm, hsm]) {
      await assert.rejects(h.sign(target.objectId, "ed25519", randomBytes(16)), isCustos("HSM_ERROR"), h.status().dispatch);
    }
    const burst = await Promise.allSettled(Array.from({ length: 8 }, () => hsm.sign(target.objectId, "ed25519", randomBytes(16))));
    assert.deepEqual(
      burst.map((r) => r.status),
      Array(8).fill("rejected"),
    );
    assert.equal(hsm.status().ready, true, "a missing key must not look like a lost HSM");

    await hsm.destroySecret(target.objectId); // idempotent
    // The id is free again: a new key, not the old one.
    const again = await hsm.generateKeyPair("ed25519", target);
    assert.notDeepEqual(again.spkiDer, spkiDer);
    const d = randomBytes(40);
    const again1 = createPublicKey({ key: again.spkiDer, format: "der", type: "spki" });
    for (const h of [syncHsm, asyncHsm, hsm]) assert.ok(verify(null, d, again1, await h.sign(target.objectId, "ed25519", d)), h.status().dispatch);
  });

  it("start-up reconciliation destroys an Ed25519 orphan (both objects), as it does an HMAC one", async () => {
    const orphan = { objectId: "custos:ed-orphan:v1", label: "orphan" };
    await hsm.generateKeyPair("ed25519", orphan);
    const destroyed = await svc.service.governance.destroyOrphans();
    assert.deepEqual(destroyed, [orphan.objectId]);
    assert.deepEqual(objectsWithId(orphan.objectId), []);
  });

  it("the officer CLI takes an ed25519 key only as a PKCS#8 file (0600), never as a typed secret, and refuses other key types", async () => {
    const r = await runCli(["key", "import", "--data-dir", svc.dir, "--key", "k-ed-cli", "--raw", "--algorithm", "ed25519"], { input: "not-a-secret\n" });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /ed25519 keys are generated inside the HSM .* or migrated with --pkcs8-file/);
    const dir = mkdtempSync(join(tmpdir(), "custos-pkcs8-"));
    const rsaFile = join(dir, "rsa.pem");
    writeFileSync(rsaFile, generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "pem", type: "pkcs8" }), { mode: 0o600 });
    const rsa = await runCli(["key", "import", "--data-dir", svc.dir, "--key", "k-ed-cli", "--raw", "--algorithm", "ed25519", "--pkcs8-file", rsaFile]);
    assert.equal(rsa.code, 1, rsa.stderr);
    assert.match(rsa.stderr, /holds a rsa key, not Ed25519/);
    const open = join(dir, "ed.pem");
    writeFileSync(open, generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }), { mode: 0o644 });
    const loose = await runCli(["key", "import", "--data-dir", svc.dir, "--key", "k-ed-cli", "--raw", "--algorithm", "ed25519", "--pkcs8-file", open]);
    assert.equal(loose.code, 1, loose.stderr);
    assert.match(loose.stderr, /chmod 600/);
    rmSync(dir, { recursive: true, force: true });
    assert.equal(await hsm.hasSecret(versionObjectId("k-ed-cli", 1)), false);
  });

  it("migrating an existing Ed25519 key (wrapped PKCS#8): Debian's stock SoftHSM2 2.6.1 cannot unwrap one, so the import fails closed — typed error, nothing on the token, envelope gone, audited", async () => {
    const dir = mkdtempSync(join(tmpdir(), "custos-pkcs8-"));
    const file = join(dir, "binance-ed25519.pem");
    const existing = generateKeyPairSync("ed25519");
    writeFileSync(file, existing.privateKey.export({ format: "pem", type: "pkcs8" }), { mode: 0o600 });
    const r = await runCli([
      "key",
      "import",
      "--data-dir",
      svc.dir,
      "--key",
      "bn-ed-migrated",
      "--exchange",
      "binance",
      "--algorithm",
      "ed25519",
      "--api-key-id",
      "migrated",
      "--pkcs8-file",
      file,
    ]);
    rmSync(dir, { recursive: true, force: true });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /HSM_UNSUPPORTED|cannot unwrap an Ed25519 private key/);

    const { proposals } = await unary(svc.custody, "listProposals", { state: "" });
    const p = proposals.filter((x) => x.kind === "import_key" && x.target === "bn-ed-migrated").at(-1)!;
    assert.equal(p.state, "failed");
    assert.match(p.failure, /cannot unwrap an Ed25519 private key/);
    // What the officers approved names the key's public half, so a migration cannot swap keys.
    const shown = await unary(svc.custody, "getProposal", { id: p.id });
    assert.ok(
      shown.canonical.includes(JSON.stringify(existing.publicKey.export({ format: "pem", type: "spki" }).toString()).slice(1, -1)),
      "the public key is in the signed content",
    );
    assert.deepEqual(objectsWithId(versionObjectId("bn-ed-migrated", 1)), [], "no private or public key object left behind");
    assert.ok(!(await unary(svc.custody, "listKeys", {})).keys.some((k) => k.keyId === "bn-ed-migrated"));
    const store = new SqliteStore(join(svc.dir, "custos.db"), { readonly: true });
    try {
      assert.equal((await store.governance.getProposal(p.id))?.envelope, null, "the envelope is deleted when the proposal fails");
    } finally {
      await store.close();
    }
    const failed = (await auditEvents(svc.dir)).find((e) => e.kind === "proposal.failed" && e.details?.proposal === p.id);
    assert.equal(failed?.reason, "HSM_UNSUPPORTED");
  });

  it("a generate_key proposal (the quorum's decision) creates the key in the HSM; it signs and only its public key leaves", async () => {
    const p = await proposeAndApprove(svc.custody, {
      kind: {
        $case: "generateKey",
        generateKey: {
          keyId: "gen-ed",
          exchange: "raw",
          environment: Environment.ENVIRONMENT_TESTNET,
          label: "",
          apiKeyId: "",
          algorithm: Algorithm.ALGORITHM_ED25519,
          maxAgeDays: 0,
        },
      },
      ttlSeconds: 0,
    });
    assert.equal(p.state, "executed", p.failure);
    const { keys } = await unary(svc.custody, "listKeys", {});
    const info = keys.find((k) => k.keyId === "gen-ed")!;
    assert.equal(info.algorithm, Algorithm.ALGORITHM_ED25519);
    assert.equal(info.activeVersion, 1);
    const publicKey = createPublicKey(info.publicKeyPem);
    assert.equal(publicKey.asymmetricKeyType, "ed25519");
    // The dev trading client (granted every key on the embedded default) signs with it.
    const payload = randomBytes(200);
    const res = await unary(svc.signer, "sign", { keyId: "gen-ed", version: 0, payload, encoding: SignatureEncoding.SIGNATURE_ENCODING_RAW });
    assert.equal(res.signature.length, 64);
    assert.ok(verify(null, payload, publicKey, res.signature), "signature verifies with the listed public key");
    // The chain records the generation with the public key's digest, never key material.
    const events = await auditEvents(svc.dir);
    const generated = events.find((e) => e.kind === "key.generate" && e.key === "gen-ed")!;
    assert.equal(
      generated.details?.publicKeySha256,
      createHash("sha256")
        .update(publicKey.export({ type: "spki", format: "der" }))
        .digest("hex"),
    );
  });

  it("refuses an ed25519 import without its public key (or with another key type's) and an HMAC generate, at Propose", async () => {
    const key = { keyId: "nope", exchange: "raw", environment: Environment.ENVIRONMENT_TESTNET, label: "", apiKeyId: "", maxAgeDays: 0 };
    await expectDenied(
      proposeAndApprove(svc.custody, { kind: { $case: "generateKey", generateKey: { ...key, algorithm: Algorithm.ALGORITHM_HMAC_SHA256 } }, ttlSeconds: 0 }),
      status.INVALID_ARGUMENT,
      "INVALID_ARGUMENT",
    );
    const wrapping = await unary(svc.custody, "getWrappingKey", {});
    const envelope = buildEnvelope(randomBytes(32), { spkiPem: wrapping.spkiPem, fingerprint: wrapping.fingerprint, oaepHash: wrapping.oaepHash as "sha1" });
    await expectDenied(
      proposeAndApprove(svc.custody, {
        kind: { $case: "importKey", importKey: { ...key, algorithm: Algorithm.ALGORITHM_ED25519, envelope, publicKeyPem: "", signedPassphrase: "" } },
        ttlSeconds: 0,
      }),
      status.INVALID_ARGUMENT,
      "INVALID_ARGUMENT",
    );
    const rsaPublic = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ format: "pem", type: "spki" }).toString();
    await expectDenied(
      proposeAndApprove(svc.custody, {
        kind: { $case: "importKey", importKey: { ...key, algorithm: Algorithm.ALGORITHM_ED25519, envelope, publicKeyPem: rsaPublic, signedPassphrase: "" } },
        ttlSeconds: 0,
      }),
      status.INVALID_ARGUMENT,
      "INVALID_ARGUMENT",
    );
  });

  it("a Binance Ed25519 key: generated, its API key id set by proposal, then orders signed the way Binance documents (base64, URL-encoded)", async () => {
    const generated = await proposeAndApprove(svc.custody, {
      kind: {
        $case: "generateKey",
        generateKey: {
          keyId: "bn-ed",
          exchange: "binance",
          environment: Environment.ENVIRONMENT_TESTNET,
          label: "",
          apiKeyId: "",
          algorithm: Algorithm.ALGORITHM_ED25519,
          maxAgeDays: 0,
        },
      },
      ttlSeconds: 0,
    });
    assert.equal(generated.state, "executed", generated.failure);
    const order = {
      keyId: "bn-ed",
      version: 0,
      method: "POST",
      path: "/fapi/v1/order",
      query: "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01",
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
    // Until the officers record the API key id Binance assigned to the public key, nothing can be sent.
    await expectDenied(unary(svc.signer, "signExchangeRequest", order), status.FAILED_PRECONDITION, "NO_API_KEY_ID");
    const set = await proposeAndApprove(svc.custody, {
      kind: { $case: "setApiKeyId", setApiKeyId: { keyId: "bn-ed", apiKeyId: "ed-api-key" } },
      ttlSeconds: 0,
    });
    assert.equal(set.state, "executed", set.failure);

    const res = await unary(svc.signer, "signExchangeRequest", order);
    assert.deepEqual(
      res.headers.map((h) => [h.name, h.value]),
      [["X-MBX-APIKEY", "ed-api-key"]],
    );
    assert.equal(res.apiKeyId, "ed-api-key");
    const cut = res.query.lastIndexOf("&signature=");
    const signedPayload = res.query.slice(0, cut);
    assert.equal(res.query.slice(cut + "&signature=".length), encodeURIComponent(res.signature), "the base64 signature is percent-encoded in the query");
    const { keys } = await unary(svc.custody, "listKeys", {});
    const publicKey = createPublicKey(keys.find((k) => k.keyId === "bn-ed")!.publicKeyPem);
    assert.ok(
      verify(null, Buffer.from(signedPayload), publicKey, Buffer.from(res.signature, "base64")),
      "Ed25519 signature over the query (with timestamp) verifies",
    );

    // The WebSocket API login with the same key: session.logon over "apiKey=…&timestamp=…".
    const logon = await unary(svc.signer, "signWebSocketAuth", {
      keyId: "bn-ed",
      version: 0,
      timestampMs: "0",
      nonce: "",
      expires: "0",
      challenge: "",
      channel: "",
      event: "",
      passphrase: "",
      wsMethod: "",
      wsParams: [],
    });
    const message = JSON.parse(logon.message) as { method: string; params: { apiKey: string; signature: string; timestamp: number } };
    assert.equal(message.method, "session.logon");
    assert.equal(message.params.apiKey, "ed-api-key");
    assert.equal(String(message.params.timestamp), logon.timestamp);
    assert.ok(
      verify(null, Buffer.from(`apiKey=ed-api-key&timestamp=${logon.timestamp}`), publicKey, Buffer.from(message.params.signature, "base64")),
      "session.logon signature verifies",
    );
  });

  it("rotates a Binance Ed25519 key: a new pair generated in the HSM stays pending until the exchange's API key id is set, then takes over while the old one retires", async () => {
    const order = {
      keyId: "bn-ed",
      version: 0,
      method: "POST",
      path: "/fapi/v1/order",
      query: "symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.02",
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
    const signedBy = (res: { query: string; signature: string }, pem: string) =>
      verify(null, Buffer.from(res.query.slice(0, res.query.lastIndexOf("&signature="))), createPublicKey(pem), Buffer.from(res.signature, "base64"));
    const keyInfo = async () => (await unary(svc.custody, "listKeys", {})).keys.find((k) => k.keyId === "bn-ed")!;
    const v1Pem = (await keyInfo()).publicKeyPem;
    const rotate = (extra: { envelope?: Awaited<ReturnType<typeof envelopeFor>>; apiKeyId?: string } = {}) =>
      unary(svc.custody, "propose", {
        kind: {
          $case: "rotateKey",
          rotateKey: { keyId: "bn-ed", envelope: extra.envelope, apiKeyId: extra.apiKeyId ?? "", graceSeconds: 3600, signedPassphrase: "" },
        },
        ttlSeconds: 0,
      });

    // An envelope or an API key id cannot come with an Ed25519 rotation: the pair is generated, the id assigned later.
    await expectDenied(rotate({ envelope: await envelopeFor(svc.custody, randomBytes(32)) }), status.INVALID_ARGUMENT, "INVALID_ARGUMENT");
    await expectDenied(rotate({ apiKeyId: "guess" }), status.INVALID_ARGUMENT, "INVALID_ARGUMENT");

    const rotated = await proposeAndApprove(svc.custody, {
      kind: { $case: "rotateKey", rotateKey: { keyId: "bn-ed", envelope: undefined, apiKeyId: "", graceSeconds: 3600, signedPassphrase: "" } },
      ttlSeconds: 0,
    });
    assert.equal(rotated.state, "executed", rotated.failure);
    const pending = (await keyInfo()).versions.find((v) => v.version === 2)!;
    assert.equal(pending.state, "pending");
    assert.equal(pending.apiKeyId, "", "no API key id before the exchange assigns one");
    assert.match(pending.publicKeyPem, /BEGIN PUBLIC KEY/);
    assert.notEqual(pending.publicKeyPem, v1Pem, "a new key pair");
    assert.equal(createPublicKey(pending.publicKeyPem).asymmetricKeyType, "ed25519");
    const audited = (await auditEvents(svc.dir)).find((e) => e.kind === "key.rotate" && e.key === "bn-ed");
    assert.equal(audited?.version, 2);
    assert.equal(
      audited?.details?.publicKeySha256,
      createHash("sha256")
        .update(createPublicKey(pending.publicKeyPem).export({ format: "der", type: "spki" }))
        .digest("hex"),
    );

    // Pending: v1 still signs every order; v2 signs nothing, even pinned; a second rotation waits.
    const before = await unary(svc.signer, "signExchangeRequest", order);
    assert.equal(before.keyVersion, 1);
    assert.ok(signedBy(before, v1Pem));
    await expectDenied(unary(svc.signer, "signExchangeRequest", { ...order, version: 2 }), status.FAILED_PRECONDITION, "VERSION_NOT_USABLE");
    await expectDenied(rotate(), status.FAILED_PRECONDITION, "PRECONDITION_FAILED");

    // The officers registered v2's public key at Binance, which assigned it an API key id.
    const activated = await proposeAndApprove(svc.custody, {
      kind: { $case: "setApiKeyId", setApiKeyId: { keyId: "bn-ed", apiKeyId: "ed-api-key-2" } },
      ttlSeconds: 0,
    });
    assert.equal(activated.state, "executed", activated.failure);
    const info = await keyInfo();
    assert.equal(info.activeVersion, 2);
    assert.equal(info.publicKeyPem, pending.publicKeyPem);
    const v1 = info.versions.find((v) => v.version === 1)!;
    assert.equal(v1.state, "retiring");
    assert.equal(Date.parse(v1.retireAt) - Date.parse(activated.executedAt), 3600_000, "the rotation's grace runs from activation");

    const after = await unary(svc.signer, "signExchangeRequest", order);
    assert.equal(after.keyVersion, 2);
    assert.equal(after.apiKeyId, "ed-api-key-2");
    assert.deepEqual(
      after.headers.map((h) => [h.name, h.value]),
      [["X-MBX-APIKEY", "ed-api-key-2"]],
    );
    assert.ok(signedBy(after, pending.publicKeyPem), "v2 signs, verified with the public key registered at the exchange");
    const pinned = await unary(svc.signer, "signExchangeRequest", { ...order, version: 1 });
    assert.equal(pinned.apiKeyId, "ed-api-key", "the retiring version keeps its own API key id");
    assert.ok(signedBy(pinned, v1Pem));
  });

  it("the officer CLI rotates an Ed25519 key without reading any secret, prints the new public key, and set-api-key-id activates it", async () => {
    const gen = await runCli(["key", "generate", "--data-dir", svc.dir, "--key", "bn-ed-cli", "--exchange", "binance", "--api-key-id", "cli-1"]);
    assert.equal(gen.code, 0, gen.stderr);
    const rot = await runCli(["key", "rotate", "--data-dir", svc.dir, "--key", "bn-ed-cli", "--grace", "1h"]);
    assert.equal(rot.code, 0, rot.stderr);
    const printed = /-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----\n/.exec(rot.stdout)?.[0];
    assert.ok(printed, rot.stdout);
    const key = (await unary(svc.custody, "listKeys", {})).keys.find((k) => k.keyId === "bn-ed-cli")!;
    assert.equal(key.versions.find((v) => v.state === "pending")?.publicKeyPem, printed, "the printed key is the pending version's");
    assert.equal(key.activeVersion, 1);
    const set = await runCli(["key", "set-api-key-id", "--data-dir", svc.dir, "--key", "bn-ed-cli", "--api-key-id", "cli-2"]);
    assert.equal(set.code, 0, set.stderr);
    const after = (await unary(svc.custody, "listKeys", {})).keys.find((k) => k.keyId === "bn-ed-cli")!;
    assert.deepEqual(
      after.versions.map((v) => [v.version, v.state, v.apiKeyId]),
      [
        [1, "retiring", "cli-1"],
        [2, "active", "cli-2"],
      ],
    );
  });
});
