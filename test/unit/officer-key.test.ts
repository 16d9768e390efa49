import { execFileSync } from "node:child_process";
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CustosError, type CustosErrorCode } from "../../src/errors.js";
import {
  generateOfficerKey,
  loadOfficerPrivateKey,
  parseOfficerPublicKey,
  publicKeyFingerprint,
  signApproval,
  verifyApproval,
  writeOfficerKeyFile,
} from "../../src/governance/officer-key.js";
import { approvalMessage } from "../../src/governance/proposal.js";

const has = (code: CustosErrorCode) => (e: unknown) => e instanceof CustosError && e.code === code;

const PASS = "correct horse battery";
const DIGEST = createHash("sha256").update("proposal").digest("hex");
const OTHER_DIGEST = createHash("sha256").update("another proposal").digest("hex");

describe("officer keys", () => {
  const alice = generateOfficerKey(PASS);
  const bob = generateOfficerKey("bob's passphrase");
  const alicePrivate = loadOfficerPrivateKey(alice.privateKeyPem, PASS);
  const alicePublic = parseOfficerPublicKey(alice.publicKeyPem);
  const bobPublic = parseOfficerPublicKey(bob.publicKeyPem);

  it("encrypts with PBES2 — PBKDF2-HMAC-SHA256 at 600,000 iterations, AES-256-CBC — which the openssl CLI reads back", () => {
    const dir = mkdtempSync(join(tmpdir(), "custos-officer-"));
    try {
      const pem = join(dir, "alice.key");
      const pass = join(dir, "alice.pass");
      writeFileSync(pem, alice.privateKeyPem, { mode: 0o600 });
      writeFileSync(pass, PASS, { mode: 0o600 });
      const structure = execFileSync("openssl", ["asn1parse", "-in", pem], { encoding: "utf8" });
      for (const part of [/:PBES2\b/, /:PBKDF2\b/, /:hmacWithSHA256\b/, /:aes-256-cbc\b/]) assert.match(structure, part);
      assert.match(structure, /INTEGER\s+:0927C0\b/, "600,000 iterations (0x927C0)");
      assert.equal(execFileSync("openssl", ["pkey", "-in", pem, "-passin", `file:${pass}`, "-pubout"], { encoding: "utf8" }), alice.publicKeyPem);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("still loads a key file written with OpenSSL's default PKCS#8 encryption (2,048 iterations)", () => {
    const { publicKey, privateKey } = generateKeyPairSync("ed25519", {
      publicKeyEncoding: { type: "spki", format: "pem" },
      privateKeyEncoding: { type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: PASS },
    });
    const loaded = loadOfficerPrivateKey(privateKey, PASS);
    assert.equal(createPublicKey(loaded).export({ type: "spki", format: "pem" }), publicKey);
  });

  it("writes the private key as encrypted PKCS#8 and the public key as SPKI PEM", () => {
    assert.match(alice.privateKeyPem, /^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
    assert.ok(!alice.privateKeyPem.includes("-----BEGIN PRIVATE KEY-----"));
    assert.match(alice.publicKeyPem, /^-----BEGIN PUBLIC KEY-----\n/);
    assert.equal(alicePrivate.asymmetricKeyType, "ed25519");
    assert.equal(alicePublic.asymmetricKeyType, "ed25519");
    assert.notEqual(alice.fingerprint, bob.fingerprint);
  });

  it("refuses passphrases shorter than 8 characters", () => {
    for (const p of ["", "short", "1234567", "😀😀😀😀😀😀😀"]) assert.throws(() => generateOfficerKey(p), has("INVALID_ARGUMENT"));
    assert.doesNotThrow(() => generateOfficerKey("12345678"));
  });

  it("loads only with the right passphrase: a wrong one is UNAUTHENTICATED", () => {
    for (const wrong of ["correct horse battery ", "Correct horse battery", "", "bob's passphrase"]) {
      assert.throws(
        () => loadOfficerPrivateKey(alice.privateKeyPem, wrong),
        (e: unknown) => {
          return has("UNAUTHENTICATED")(e) && (e as Error).message === "wrong passphrase for the officer key";
        },
      );
    }
    // The loaded key is the one whose public half was generated with it.
    assert.equal(publicKeyFingerprint(createPublicKey(alicePrivate)), alice.fingerprint);
    assert.equal(publicKeyFingerprint(alicePrivate), alice.fingerprint);
  });

  it("refuses an unencrypted key, a non-key, and a non-Ed25519 key", () => {
    const plain = alicePrivate.export({ type: "pkcs8", format: "pem" }).toString();
    assert.throws(() => loadOfficerPrivateKey(plain, PASS), has("INVALID_ARGUMENT"));
    assert.throws(() => loadOfficerPrivateKey("not a key", PASS), has("INVALID_ARGUMENT"));
    assert.throws(() => loadOfficerPrivateKey(alice.publicKeyPem, PASS), has("INVALID_ARGUMENT"));
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    const encryptedEc = ec.export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: PASS }).toString();
    assert.throws(() => loadOfficerPrivateKey(encryptedEc, PASS), has("INVALID_ARGUMENT"));
  });

  it("signs and verifies approvals and rejections", () => {
    for (const decision of ["approve", "reject"] as const) {
      const sig = signApproval(alicePrivate, decision, DIGEST);
      assert.equal(sig.length, 64);
      assert.equal(verifyApproval(alicePublic, decision, DIGEST, sig), true);
      assert.equal(verifyApproval(alicePublic, decision, DIGEST, new Uint8Array(sig)), true, "any Uint8Array");
    }
  });

  it("signs exactly approvalMessage(decision, digest)", () => {
    const sig = signApproval(alicePrivate, "approve", DIGEST);
    assert.deepEqual(sig, sign(null, approvalMessage("approve", DIGEST), alicePrivate)); // Ed25519 is deterministic
  });

  describe("verification fails", () => {
    const sig = signApproval(alicePrivate, "approve", DIGEST);

    it("for another officer's key", () => {
      assert.equal(verifyApproval(bobPublic, "approve", DIGEST, sig), false);
    });

    it("for another digest", () => {
      assert.equal(verifyApproval(alicePublic, "approve", OTHER_DIGEST, sig), false);
    });

    it("for an approval presented as a rejection, and the reverse", () => {
      assert.equal(verifyApproval(alicePublic, "reject", DIGEST, sig), false);
      const rejection = signApproval(alicePrivate, "reject", DIGEST);
      assert.equal(verifyApproval(alicePublic, "approve", DIGEST, rejection), false);
    });

    it("for a signature over the bare digest (no domain separation)", () => {
      const bare = sign(null, Buffer.from(DIGEST, "hex"), alicePrivate);
      assert.equal(verifyApproval(alicePublic, "approve", DIGEST, bare), false);
    });

    it("for truncated, extended, flipped, empty and garbage signatures, without throwing", () => {
      const flipped = Buffer.from(sig);
      flipped[10]! ^= 1;
      const bad = [
        sig.subarray(0, 63),
        Buffer.concat([sig, Buffer.from([0])]),
        flipped,
        Buffer.alloc(0),
        Buffer.alloc(64),
        Buffer.alloc(64, 0xff),
        Buffer.from("garbage"),
      ];
      for (const s of bad) assert.equal(verifyApproval(alicePublic, "approve", DIGEST, s), false);
    });

    it("for malformed inputs and wrong key types, without throwing", () => {
      assert.equal(verifyApproval(alicePublic, "approve", "not a digest", sig), false);
      assert.equal(verifyApproval(alicePublic, "abstain" as "approve", DIGEST, sig), false);
      assert.equal(verifyApproval(alicePrivate, "approve", DIGEST, sig), false, "a private key is not a verification key");
      assert.equal(verifyApproval(generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey, "approve", DIGEST, sig), false);
      assert.equal(verifyApproval(alicePublic, "approve", DIGEST, "x".repeat(64) as unknown as Uint8Array), false);
    });
  });

  it("signApproval refuses a public key and a malformed digest", () => {
    assert.throws(() => signApproval(alicePublic, "approve", DIGEST), has("INVALID_ARGUMENT"));
    assert.throws(() => signApproval(alicePrivate, "approve", DIGEST.toUpperCase()), has("INVALID_ARGUMENT"));
  });

  it("fingerprint is SHA256: + unpadded base64 of SHA-256 over the SPKI DER", () => {
    const der = createPublicKey(alice.publicKeyPem).export({ type: "spki", format: "der" });
    const expected = "SHA256:" + createHash("sha256").update(der).digest("base64").replace(/=/g, "");
    assert.equal(alice.fingerprint, expected);
    assert.equal(publicKeyFingerprint(alice.publicKeyPem), expected);
    assert.equal(publicKeyFingerprint(alicePublic), expected);
    assert.match(expected, /^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it("parseOfficerPublicKey refuses RSA, EC and Ed448 keys, private keys, several keys and junk", () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "pem" }).toString();
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "pem" }).toString();
    const ed448 = generateKeyPairSync("ed448").publicKey.export({ type: "spki", format: "pem" }).toString();
    const plainPrivate = createPrivateKey({ key: alice.privateKeyPem, passphrase: PASS }).export({ type: "pkcs8", format: "pem" }).toString();
    for (const pem of [rsa, ec, ed448, plainPrivate, alice.privateKeyPem, "", "junk", alice.publicKeyPem + bob.publicKeyPem]) {
      assert.throws(() => parseOfficerPublicKey(pem), has("INVALID_ARGUMENT"));
    }
    assert.throws(() => parseOfficerPublicKey(rsa), /must be Ed25519, this public key is rsa/);
    assert.doesNotThrow(() => parseOfficerPublicKey(`\n  ${alice.publicKeyPem}\n\n`), "surrounding whitespace is fine");
  });
});

describe("writeOfficerKeyFile", () => {
  const dir = mkdtempSync(join(tmpdir(), "custos-officer-key-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const key = generateOfficerKey(PASS);

  it("writes the key readable by its owner only", () => {
    const path = join(dir, "alice.pem");
    writeOfficerKeyFile(path, key.privateKeyPem);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(readFileSync(path, "utf8"), key.privateKeyPem);
    assert.equal(publicKeyFingerprint(loadOfficerPrivateKey(readFileSync(path, "utf8"), PASS)), key.fingerprint);
  });

  it("refuses to overwrite an existing file, and leaves it as it was", () => {
    const path = join(dir, "existing.pem");
    writeFileSync(path, "precious");
    assert.throws(
      () => writeOfficerKeyFile(path, key.privateKeyPem),
      (e: unknown) => has("INVALID_ARGUMENT")(e) && /exists/.test((e as Error).message),
    );
    assert.equal(readFileSync(path, "utf8"), "precious");
    const written = join(dir, "twice.pem");
    writeOfficerKeyFile(written, key.privateKeyPem);
    assert.throws(() => writeOfficerKeyFile(written, generateOfficerKey(PASS).privateKeyPem), has("INVALID_ARGUMENT"));
    assert.equal(readFileSync(written, "utf8"), key.privateKeyPem);
  });

  it("refuses to write a key in the clear", () => {
    const plain = loadOfficerPrivateKey(key.privateKeyPem, PASS).export({ type: "pkcs8", format: "pem" }).toString();
    assert.throws(() => writeOfficerKeyFile(join(dir, "plain.pem"), plain), has("INVALID_ARGUMENT"));
    assert.throws(() => statSync(join(dir, "plain.pem")), { code: "ENOENT" });
  });
});
