import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { constants, createDecipheriv, createHash, createHmac, generateKeyPairSync, privateDecrypt, randomBytes, type KeyObject } from "node:crypto";
import { CustosError } from "../../src/errors.js";
import { ALGORITHMS, hmacSpec, isHmacAlgorithm } from "../../src/hsm/algorithms.js";
import { ENVELOPE_FORMAT, buildEnvelope, envelopeDigest, padHmacSecret, spkiFingerprint, type ImportEnvelope } from "../../src/hsm/envelope.js";

const ALGS = Object.keys(ALGORITHMS).filter(isHmacAlgorithm);

describe("padHmacSecret", () => {
  // RFC 2104: keys shorter than the block are zero-padded, so padding must not change any MAC.
  for (const alg of ALGS) {
    it(`keeps HMAC unchanged for ${alg}, secrets of 1..200 bytes`, () => {
      const spec = hmacSpec(alg);
      const message = randomBytes(97);
      for (let len = 1; len <= 200; len++) {
        const secret = randomBytes(len);
        const padded = padHmacSecret(secret, alg);
        assert.equal(padded.length, Math.max(len, spec.minKeyBytes), `length for ${len}`);
        assert.ok(padded.length <= Math.max(len, spec.blockBytes), "never padded past the block size");
        assert.deepEqual(
          createHmac(spec.nodeHash, padded).update(message).digest(),
          createHmac(spec.nodeHash, secret).update(message).digest(),
          `HMAC differs for a ${len}-byte secret`,
        );
      }
    });
  }

  it("returns a new buffer the caller can zero-fill without touching the input", () => {
    for (const len of [5, 64, 100]) {
      const secret = randomBytes(len);
      const before = Buffer.from(secret);
      const padded = padHmacSecret(secret, "hmac-sha256");
      padded.fill(0);
      assert.deepEqual(secret, before);
    }
  });

  for (const alg of ALGS) {
    it(`refuses an empty secret for ${alg} with INVALID_ARGUMENT`, () => {
      assert.throws(
        () => padHmacSecret(Buffer.alloc(0), alg),
        (e: unknown) => e instanceof CustosError && e.code === "INVALID_ARGUMENT",
      );
    });
  }

  it("refuses a non-HMAC algorithm (an Ed25519 key is generated in the HSM, never imported) with INVALID_ARGUMENT", () => {
    for (const len of [1, 32, 64]) {
      assert.throws(
        () => padHmacSecret(randomBytes(len), "ed25519"),
        (e: unknown) => e instanceof CustosError && e.code === "INVALID_ARGUMENT",
      );
    }
  });
});

describe("spkiFingerprint", () => {
  it('is "sha256:" + hex SHA-256 of the DER', () => {
    const der = randomBytes(300);
    assert.equal(spkiFingerprint(der), "sha256:" + createHash("sha256").update(der).digest("hex"));
    assert.match(spkiFingerprint(der), /^sha256:[0-9a-f]{64}$/);
  });
});

describe("buildEnvelope", () => {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 3072 });
  const spkiPem = publicKey.export({ type: "spki", format: "pem" }).toString();
  const fingerprint = spkiFingerprint(publicKey.export({ type: "spki", format: "der" }));

  /** What the HSM does (CKM_RSA_AES_KEY_WRAP): RSA-OAEP, then AES key unwrap with padding. */
  function open(env: ImportEnvelope, key: KeyObject): Buffer {
    const aesKey = privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: env.oaepHash }, env.encryptedAesKey);
    assert.equal(aesKey.length, 32, "AES-256 key");
    const d = createDecipheriv("id-aes256-wrap-pad", aesKey, Buffer.from("a65959a6", "hex"));
    return Buffer.concat([d.update(env.wrappedKey), d.final()]);
  }

  for (const oaepHash of ["sha1", "sha256"] as const) {
    for (const len of [1, 7, 8, 32, 64, 65, 200]) {
      it(`opens to the original ${len}-byte secret (OAEP ${oaepHash})`, () => {
        const secret = randomBytes(len);
        const env = buildEnvelope(secret, { spkiPem, fingerprint, oaepHash });
        assert.equal(env.format, ENVELOPE_FORMAT);
        assert.equal(env.oaepHash, oaepHash);
        assert.equal(env.wrappingKeyFingerprint, fingerprint);
        assert.equal(env.encryptedAesKey.length, 384, "one RSA-3072 block");
        assert.deepEqual(open(env, privateKey), secret);
      });
    }
  }

  it("uses a fresh AES key per envelope", () => {
    const secret = randomBytes(32);
    const a = buildEnvelope(secret, { spkiPem, fingerprint, oaepHash: "sha256" });
    const b = buildEnvelope(secret, { spkiPem, fingerprint, oaepHash: "sha256" });
    assert.notDeepEqual(a.wrappedKey, b.wrappedKey);
    assert.notEqual(envelopeDigest(a), envelopeDigest(b));
  });

  it("does not open with the wrong OAEP hash", () => {
    const env = buildEnvelope(randomBytes(32), { spkiPem, fingerprint, oaepHash: "sha256" });
    assert.throws(() => open({ ...env, oaepHash: "sha1" }, privateKey));
  });

  it("refuses a fingerprint that does not match the SPKI with ENVELOPE_INVALID", () => {
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey;
    const wrong = [
      spkiFingerprint(other.export({ type: "spki", format: "der" })),
      fingerprint.replace(/.$/, (c) => (c === "0" ? "1" : "0")),
      fingerprint.slice("sha256:".length), // bare hex without the prefix
      "",
    ];
    for (const fp of wrong) {
      assert.throws(
        () => buildEnvelope(randomBytes(32), { spkiPem, fingerprint: fp, oaepHash: "sha256" }),
        (e: unknown) => e instanceof CustosError && e.code === "ENVELOPE_INVALID",
        `fingerprint ${JSON.stringify(fp)}`,
      );
    }
  });
});

describe("envelopeDigest", () => {
  it("is SHA-256 over the encrypted AES key then the wrapped key", () => {
    const env: ImportEnvelope = {
      format: ENVELOPE_FORMAT,
      oaepHash: "sha1",
      encryptedAesKey: randomBytes(256),
      wrappedKey: randomBytes(40),
      wrappingKeyFingerprint: "x",
    };
    const expected = createHash("sha256")
      .update(Buffer.concat([env.encryptedAesKey, env.wrappedKey]))
      .digest("hex");
    assert.equal(envelopeDigest(env), expected);
  });
});
