/**
 * The Hsm contract: one suite every HSM backend must pass, run on FakeHsm (test/unit) and on
 * Pkcs11Hsm with a real SoftHSM2 token (test/integration). What a backend holds is inspected
 * through an HsmProbe: the PKCS#11 module itself for the real token, the fake's model for the fake.
 */
import assert from "node:assert/strict";
import { sign as cryptoSign, createHmac, createPublicKey, generateKeyPairSync, randomBytes, verify } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { CustosError, type CustosErrorCode } from "../../src/errors.js";
import { algorithmSpec, type HmacAlgorithm } from "../../src/hsm/algorithms.js";
import { verifyCheckpointSignature, type CheckpointHead } from "../../src/hsm/checkpoint-statement.js";
import { buildEnvelope, padHmacSecret, spkiFingerprint, type ImportEnvelope } from "../../src/hsm/envelope.js";
import type { AuditCheckpointSigner, Hsm, SecretObjectRef } from "../../src/hsm/hsm.js";

/** What a backend says about one object under a CKA_ID. */
export interface ObjectFacts {
  class: "secret" | "private" | "public";
  /** A token object (false: a session copy). */
  token: boolean;
  /** Secret and private objects: CKA_SENSITIVE and CKA_EXTRACTABLE. */
  sensitive?: boolean;
  extractable?: boolean;
  /** The usages the object allows, of sign, verify, encrypt, decrypt, wrap, unwrap, derive. */
  usage: string[];
  /** Secret and private objects: could its value be read, or wrapped out of the HSM? */
  valueReadable?: boolean;
  wrapsOut?: boolean;
}

/** Looks at what the backend holds, beside its Hsm interface. */
export interface HsmProbe {
  objectsWithId(objectId: string): Promise<ObjectFacts[]>;
  /** Every object the backend holds (token and session objects): a failed call must not change it. */
  objectCount(): Promise<number>;
}

/** A backend under test; `close` ends it (the suite opens one per run). */
export interface HsmUnderTest {
  hsm: Hsm & AuditCheckpointSigner;
  probe: HsmProbe;
  close(): Promise<void>;
}

/** The checkpoint key's and the wrapping key's CKA_IDs: token objects no key version may take. */
const CHECKPOINT_KEY_ID = "custos-audit-checkpoint-v1";
const WRAPPING_KEY_ID = "custos-wrapping-key-v1";
const HMAC_ALGORITHMS: HmacAlgorithm[] = ["hmac-sha256", "hmac-sha384", "hmac-sha512"];
const PAYLOADS = [0, 1, 64, 1000].map((n) => randomBytes(n));

const rejectsWith = (code: CustosErrorCode) => (e: unknown) => {
  assert.ok(e instanceof CustosError, `expected CustosError ${code}, got ${String(e)}`);
  assert.equal(e.code, code);
  return true;
};

/** Sensitive, never extractable, value unreadable, not wrappable: the facts of every secret or private object. */
const SEALED = { sensitive: true, extractable: false, valueReadable: false, wrapsOut: false } as const;

/** Defines the contract suite for one backend. */
export function defineHsmContract(name: string, open: () => Promise<HsmUnderTest>): void {
  describe(`Hsm contract: ${name}`, () => {
    let under: HsmUnderTest;
    let hsm: Hsm & AuditCheckpointSigner;
    let probe: HsmProbe;
    let n = 0;
    /** Runs of the suite may share one token: each takes ids of its own. */
    const run = randomBytes(4).toString("hex");
    /** A fresh version id for each use, outside "custos:" (start-up reconciliation never claims it). */
    const ref = (what: string): SecretObjectRef => ({ objectId: `contract-${run}:${what}-${++n}:v1`, label: `contract/${what}-${n}/v1` });

    before(async () => {
      under = await open();
      ({ hsm, probe } = under);
    });
    after(async () => under?.close());

    const envelopeOf = (secret: Buffer) => buildEnvelope(secret, hsm.wrappingKey());
    async function importHmac(algorithm: HmacAlgorithm, secret = randomBytes(algorithmSpec(algorithm).minKeyBytes)) {
      const target = ref(algorithm);
      await hsm.unwrapSecret(envelopeOf(padHmacSecret(secret, algorithm)), target);
      return { target, secret };
    }
    /** Token objects only: session copies a backend makes to sign from are checked separately. */
    const tokenObjects = async (objectId: string) => (await probe.objectsWithId(objectId)).filter((o) => o.token);
    /** Runs `fn`, which must fail with `code`, and checks that the backend holds what it held before. */
    async function failsLeavingNothing(code: CustosErrorCode, fn: () => Promise<unknown>, target?: SecretObjectRef) {
      const before = await probe.objectCount();
      await assert.rejects(fn(), rejectsWith(code));
      assert.equal(await probe.objectCount(), before, "objects left behind by a failed call");
      if (target) {
        assert.equal(await hsm.hasSecret(target.objectId), false);
        assert.deepEqual(await probe.objectsWithId(target.objectId), []);
      }
    }

    it("is ready, and publishes its RSA wrapping key with its fingerprint", async () => {
      assert.equal(hsm.status().ready, true);
      hsm.check();
      const w = hsm.wrappingKey();
      const key = createPublicKey(w.spkiPem);
      assert.equal(key.asymmetricKeyType, "rsa");
      assert.equal(w.fingerprint, spkiFingerprint(key.export({ type: "spki", format: "der" })));
    });

    it("unwraps HMAC secrets into sealed sign-only token objects whose MACs match node:crypto", async () => {
      for (const algorithm of HMAC_ALGORITHMS) {
        const { target, secret } = await importHmac(algorithm);
        assert.deepEqual(await tokenObjects(target.objectId), [{ class: "secret", token: true, usage: ["sign"], ...SEALED }]);
        for (const payload of PAYLOADS) {
          assert.deepEqual(await hsm.sign(target.objectId, algorithm, payload), createHmac(algorithmSpec(algorithm).nodeHash, secret).update(payload).digest());
        }
        // Whatever a backend signs from (a session copy on a real token) is sealed as well.
        for (const o of await probe.objectsWithId(target.objectId)) {
          assert.deepEqual({ ...o, token: true }, { class: "secret", token: true, usage: ["sign"], ...SEALED });
        }
        assert.equal(await hsm.hasSecret(target.objectId), true);
        assert.equal(await hsm.publicKey(target.objectId), undefined, "an HMAC version has no public key");
      }
    });

    it("refuses an HMAC key shorter than the hash's minimum at sign time: HSM_KEY_SIZE", async () => {
      const { target } = await importHmac("hmac-sha256", randomBytes(32));
      await assert.rejects(hsm.sign(target.objectId, "hmac-sha512", Buffer.from("p")), rejectsWith("HSM_KEY_SIZE"));
    });

    it("generates Ed25519 pairs: a sealed sign-only private key, a verify-only public key, signatures node:crypto verifies", async () => {
      const target = ref("ed25519");
      const { spkiDer } = await hsm.generateKeyPair("ed25519", target);
      const publicKey = createPublicKey({ key: spkiDer, format: "der", type: "spki" });
      assert.equal(publicKey.asymmetricKeyType, "ed25519");
      assert.deepEqual(await hsm.publicKey(target.objectId), spkiDer);
      const objects = await tokenObjects(target.objectId);
      assert.deepEqual(
        objects.sort((a, b) => a.class.localeCompare(b.class)),
        [
          { class: "private", token: true, usage: ["sign"], ...SEALED },
          { class: "public", token: true, usage: ["verify"] },
        ],
      );
      for (const payload of PAYLOADS) assert.ok(verify(null, payload, publicKey, await hsm.sign(target.objectId, "ed25519", payload)));
      assert.equal(await hsm.hasSecret(target.objectId), true);
    });

    it("unwraps an Ed25519 PKCS#8 key checked against its public key; a mismatch or a bad public key leaves nothing", async () => {
      const pair = generateKeyPairSync("ed25519");
      const spki = pair.publicKey.export({ type: "spki", format: "der" });
      const envelope = () => envelopeOf(pair.privateKey.export({ type: "pkcs8", format: "der" }));
      const other = generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "der" });
      const mismatch = ref("ed25519-mismatch");
      await failsLeavingNothing("ENVELOPE_INVALID", () => hsm.unwrapPrivateKey("ed25519", envelope(), mismatch, other), mismatch);
      const p256 = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "der" });
      const notEd = ref("ed25519-not-ed");
      await failsLeavingNothing("INVALID_ARGUMENT", () => hsm.unwrapPrivateKey("ed25519", envelope(), notEd, p256), notEd);

      const target = ref("ed25519-import");
      await hsm.unwrapPrivateKey("ed25519", envelope(), target, spki);
      assert.deepEqual(await hsm.publicKey(target.objectId), spki);
      const payload = Buffer.from("migrated");
      // Ed25519 is deterministic (RFC 8032): the HSM's signature is node:crypto's, byte for byte.
      assert.deepEqual(await hsm.sign(target.objectId, "ed25519", payload), cryptoSign(null, payload, pair.privateKey));
      const objects = (await tokenObjects(target.objectId)).sort((a, b) => a.class.localeCompare(b.class));
      assert.deepEqual(objects, [
        { class: "private", token: true, usage: ["sign"], ...SEALED },
        { class: "public", token: true, usage: ["verify"] },
      ]);
    });

    it("KEY_EXISTS for any create onto a taken CKA_ID, the existing object untouched", async () => {
      const { target, secret } = await importHmac("hmac-sha256");
      const pair = ref("taken-pair");
      await hsm.generateKeyPair("ed25519", pair);
      const pairSpki = await hsm.publicKey(pair.objectId);
      const ed = generateKeyPairSync("ed25519");
      const edEnvelope = envelopeOf(ed.privateKey.export({ type: "pkcs8", format: "der" }));
      const edSpki = ed.publicKey.export({ type: "spki", format: "der" });
      for (const taken of [target, pair, { objectId: CHECKPOINT_KEY_ID, label: "x" }, { objectId: WRAPPING_KEY_ID, label: "x" }]) {
        await failsLeavingNothing("KEY_EXISTS", () => hsm.unwrapSecret(envelopeOf(randomBytes(32)), taken));
        await failsLeavingNothing("KEY_EXISTS", () => hsm.generateKeyPair("ed25519", taken));
        await failsLeavingNothing("KEY_EXISTS", () => hsm.unwrapPrivateKey("ed25519", edEnvelope, taken, edSpki));
      }
      const payload = Buffer.from("still the same key");
      assert.deepEqual(await hsm.sign(target.objectId, "hmac-sha256", payload), createHmac("sha256", secret).update(payload).digest());
      assert.deepEqual(await hsm.publicKey(pair.objectId), pairSpki);
    });

    it("ENVELOPE_INVALID for an envelope that does not open here (its header checked before the id), leaving nothing behind", async () => {
      const good = envelopeOf(randomBytes(32));
      const flip = (b: Buffer) => Buffer.from(b.map((x, i) => (i === b.length - 1 ? x ^ 1 : x)));
      const stranger = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey;
      const foreign = buildEnvelope(randomBytes(32), {
        spkiPem: stranger.export({ type: "spki", format: "pem" }).toString(),
        fingerprint: spkiFingerprint(stranger.export({ type: "spki", format: "der" })),
        oaepHash: hsm.wrappingKey().oaepHash,
      });
      // [what, envelope, refused from its header alone (before the HSM is asked whether the id is free)]
      const bad: Array<[string, ImportEnvelope, boolean]> = [
        ["unknown format", { ...good, format: "custos-envelope-v0" }, true],
        ["another wrapping key's fingerprint", { ...good, wrappingKeyFingerprint: foreign.wrappingKeyFingerprint }, true],
        ["another OAEP hash", { ...good, oaepHash: good.oaepHash === "sha1" ? "sha256" : "sha1" }, true],
        ["AES key encrypted to another RSA key", { ...good, encryptedAesKey: foreign.encryptedAesKey }, false],
        ["tampered AES key", { ...good, encryptedAesKey: flip(good.encryptedAesKey) }, false],
        ["tampered wrapped key", { ...good, wrappedKey: flip(good.wrappedKey) }, false],
      ];
      const { target: taken } = await importHmac("hmac-sha256");
      for (const [what, envelope, headerOnly] of bad) {
        const target = ref("bad-envelope");
        const refused = failsLeavingNothing("ENVELOPE_INVALID", () => hsm.unwrapSecret(envelope, target), target);
        await refused.catch((e: Error) => assert.fail(`${what}: ${e.message}`));
        await assert.rejects(hsm.unwrapSecret(envelope, taken), rejectsWith(headerOnly ? "ENVELOPE_INVALID" : "KEY_EXISTS"), what);
      }
      // A refused envelope is the envelope's fault, not the device's: the HSM stays ready and imports.
      assert.equal(hsm.status().ready, true);
      const target = ref("after-bad");
      await hsm.unwrapSecret(good, target);
      assert.equal(await hsm.hasSecret(target.objectId), true);
    });

    it("INVALID_ARGUMENT for a key pair of an HMAC algorithm, leaving nothing behind", async () => {
      const target = ref("hmac-pair");
      await failsLeavingNothing("INVALID_ARGUMENT", () => hsm.generateKeyPair("hmac-sha256" as "ed25519", target), target);
    });

    it("signs only with an existing key version of the matching type: HSM_ERROR otherwise", async () => {
      const edKey = ref("ed-mismatch");
      await hsm.generateKeyPair("ed25519", edKey);
      await assert.rejects(hsm.sign("contract:never-made:v1", "hmac-sha256", Buffer.from("p")), rejectsWith("HSM_ERROR"));
      // Not asserted here: EdDSA with an HMAC secret, which SoftHSM2 answers with CKR_GENERAL_ERROR
      // at C_SignInit, and Pkcs11Hsm takes for a lost session (HSM_UNAVAILABLE, sessions reopened).
      await assert.rejects(hsm.sign(edKey.objectId, "hmac-sha256", Buffer.from("p")), rejectsWith("HSM_ERROR"));
      // The checkpoint key signs checkpoint statements only: the sign API cannot reach it.
      await assert.rejects(hsm.sign(CHECKPOINT_KEY_ID, "ed25519", Buffer.from("p")), rejectsWith("HSM_ERROR"));
      await assert.rejects(hsm.sign(CHECKPOINT_KEY_ID, "hmac-sha256", Buffer.from("p")), rejectsWith("HSM_ERROR"));
    });

    it("lists every key version's id once, and neither the checkpoint nor the wrapping key", async () => {
      const { target: hmacKey } = await importHmac("hmac-sha384");
      const edKey = ref("listed");
      await hsm.generateKeyPair("ed25519", edKey);
      const ids = await hsm.listSecretIds();
      assert.equal(new Set(ids).size, ids.length, "an id listed twice");
      assert.ok(ids.includes(hmacKey.objectId) && ids.includes(edKey.objectId));
      assert.ok(!ids.includes(CHECKPOINT_KEY_ID) && !ids.includes(WRAPPING_KEY_ID));
      assert.equal(await hsm.hasSecret(CHECKPOINT_KEY_ID), false);
    });

    it("destroys every object of a version, session copies included; destroying again, or what never was, is a no-op", async () => {
      const { target: hmacKey } = await importHmac("hmac-sha256");
      const edKey = ref("destroyed");
      await hsm.generateKeyPair("ed25519", edKey);
      const { target: bystander, secret } = await importHmac("hmac-sha256");
      for (const t of [hmacKey, edKey]) await hsm.sign(t.objectId, t === edKey ? "ed25519" : "hmac-sha256", Buffer.from("make a copy"));
      for (const t of [hmacKey, edKey]) {
        await hsm.destroySecret(t.objectId);
        assert.deepEqual(await probe.objectsWithId(t.objectId), []);
        assert.equal(await hsm.hasSecret(t.objectId), false);
        assert.equal(await hsm.publicKey(t.objectId), undefined);
        assert.ok(!(await hsm.listSecretIds()).includes(t.objectId));
        await assert.rejects(hsm.sign(t.objectId, t === edKey ? "ed25519" : "hmac-sha256", Buffer.from("p")), rejectsWith("HSM_ERROR"));
        const count = await probe.objectCount();
        await hsm.destroySecret(t.objectId);
        assert.equal(await probe.objectCount(), count);
      }
      await hsm.destroySecret("contract:never-made:v1");
      const payload = Buffer.from("bystander");
      assert.deepEqual(await hsm.sign(bystander.objectId, "hmac-sha256", payload), createHmac("sha256", secret).update(payload).digest());
    });

    it("keeps a sealed P-256 checkpoint key that signs checkpoint statements node:crypto verifies, and that destroySecret cannot reach", async () => {
      const spki = await hsm.checkpointPublicKey();
      const publicKey = createPublicKey({ key: spki, format: "der", type: "spki" });
      assert.equal(publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
      const objects = (await tokenObjects(CHECKPOINT_KEY_ID)).sort((a, b) => a.class.localeCompare(b.class));
      assert.deepEqual(objects, [
        { class: "private", token: true, usage: ["sign"], ...SEALED },
        { class: "public", token: true, usage: ["verify"] },
      ]);
      await hsm.destroySecret(CHECKPOINT_KEY_ID);
      const head: CheckpointHead = { seq: 42, hash: "ab".repeat(32), at: "2026-12-02T10:00:00.000Z" };
      const signature = await hsm.signCheckpoint(head);
      assert.equal(signature.length, 64);
      assert.ok(verifyCheckpointSignature(head, signature, publicKey));
      assert.ok(!verifyCheckpointSignature({ ...head, seq: 43 }, signature, publicKey), "a signature of another head");
      assert.deepEqual(await hsm.checkpointPublicKey(), spki);
    });
  });
}
