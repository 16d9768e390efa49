import assert from "node:assert/strict";
import { createHmac, createPublicKey, generateKeyPairSync, randomBytes, verify } from "node:crypto";
import { describe, it } from "node:test";
import { CustosError } from "../../src/errors.js";
import { Algorithm } from "../../src/gen/custos/v1/custody.js";
import { ALGORITHMS, algorithmSpec, hmacSpec, isHmacAlgorithm, isSigningAlgorithm, type SigningAlgorithm } from "../../src/hsm/algorithms.js";
import { ed25519SpkiFromEcPoint } from "../../src/hsm/pkcs11/eddsa.js";
import { ALGORITHM_ENUM, ALGORITHM_NAMES } from "../../src/transport/grpc/enums.js";
import { FakeHsm } from "./fake-hsm.js";

const isCode = (code: string) => (e: unknown) => e instanceof CustosError && e.code === code;
const NAMES = Object.keys(ALGORITHMS) as SigningAlgorithm[];

describe("the algorithm table", () => {
  it("names every entry by its key, and tells HMAC from EdDSA by kind", () => {
    for (const name of NAMES) assert.equal(ALGORITHMS[name].name, name);
    assert.deepEqual(NAMES.filter(isHmacAlgorithm), ["hmac-sha256", "hmac-sha384", "hmac-sha512"]);
    assert.deepEqual(
      NAMES.map((n) => [n, ALGORITHMS[n].kind]),
      [
        ["hmac-sha256", "hmac"],
        ["hmac-sha384", "hmac"],
        ["hmac-sha512", "hmac"],
        ["ed25519", "eddsa"],
      ],
    );
  });

  it("gives each HMAC its mechanism, MAC length (= node:crypto's), minimum key ≤ block size", () => {
    const mechanisms = { "hmac-sha256": 0x251, "hmac-sha384": 0x261, "hmac-sha512": 0x271 };
    for (const name of NAMES.filter(isHmacAlgorithm)) {
      const spec = hmacSpec(name);
      assert.equal(spec.mechanism, mechanisms[name]);
      assert.equal(spec.macBytes, createHmac(spec.nodeHash, "k").digest().length);
      assert.ok(spec.minKeyBytes <= spec.blockBytes, name);
    }
  });

  it("gives Ed25519 CKM_EDDSA and a 64-byte output, and none of the HMAC-only fields", () => {
    const spec = algorithmSpec("ed25519");
    assert.deepEqual({ ...spec }, { kind: "eddsa", name: "ed25519", mechanism: 0x1057, macBytes: 64, nodeKeyType: "ed25519" });
    for (const field of ["minKeyBytes", "blockBytes", "nodeHash"]) assert.ok(!(field in spec), field);
  });

  it("knows ed25519 as a signing algorithm but not as an HMAC: hmacSpec refuses it with INVALID_ARGUMENT", () => {
    assert.equal(isSigningAlgorithm("ed25519"), true);
    assert.equal(isHmacAlgorithm("ed25519"), false);
    assert.equal(isSigningAlgorithm("ed448"), false);
    assert.equal(isHmacAlgorithm("toString"), false);
    assert.throws(() => hmacSpec("ed25519"), isCode("INVALID_ARGUMENT"));
  });

  it("is frozen", () => {
    assert.ok(Object.isFrozen(ALGORITHMS));
  });
});

describe("wire algorithm enum", () => {
  it("maps every algorithm both ways, Ed25519 included, and never maps ALGORITHM_UNSPECIFIED to an algorithm", () => {
    for (const name of NAMES) assert.equal(ALGORITHM_NAMES[ALGORITHM_ENUM[name]], name);
    assert.equal(ALGORITHM_ENUM.ed25519, Algorithm.ALGORITHM_ED25519);
    assert.equal(ALGORITHM_NAMES[Algorithm.ALGORITHM_UNSPECIFIED], undefined);
  });
});

describe("ed25519SpkiFromEcPoint", () => {
  const { publicKey } = generateKeyPairSync("ed25519");
  const spki = publicKey.export({ format: "der", type: "spki" });
  const raw = spki.subarray(12);

  it("turns CKA_EC_POINT (DER OCTET STRING 04 20 ‖ key, or the 32 raw bytes) into node:crypto's SPKI", () => {
    assert.deepEqual(ed25519SpkiFromEcPoint(Buffer.concat([Buffer.from([0x04, 0x20]), raw])), spki);
    assert.deepEqual(ed25519SpkiFromEcPoint(Buffer.from(raw)), spki);
    assert.equal(createPublicKey({ key: ed25519SpkiFromEcPoint(raw), format: "der", type: "spki" }).asymmetricKeyType, "ed25519");
  });

  it("refuses anything else with HSM_ERROR", () => {
    for (const bad of [
      Buffer.alloc(0),
      raw.subarray(1),
      Buffer.concat([Buffer.from([0x04, 0x21]), raw, Buffer.from([0])]),
      Buffer.concat([Buffer.from([0x03, 0x20]), raw]),
      Buffer.alloc(65, 4),
    ]) {
      assert.throws(() => ed25519SpkiFromEcPoint(bad), isCode("HSM_ERROR"), bad.toString("hex"));
    }
  });
});

describe("FakeHsm Ed25519 (for unit tests of other components)", () => {
  it("generates, exposes the public key, signs verifiably, refuses taken ids and mismatched algorithms, destroys", async () => {
    const hsm = new FakeHsm();
    const target = { objectId: "custos:k-ed:v1", label: "k-ed" };
    const { spkiDer } = await hsm.generateKeyPair("ed25519", target);
    assert.deepEqual(await hsm.publicKey(target.objectId), spkiDer);
    const key = createPublicKey({ key: spkiDer, format: "der", type: "spki" });
    for (const data of [Buffer.alloc(0), randomBytes(1), randomBytes(65_536)]) {
      const sig = await hsm.sign(target.objectId, "ed25519", data);
      assert.equal(sig.length, 64);
      assert.ok(verify(null, data, key, sig));
    }
    await assert.rejects(hsm.generateKeyPair("ed25519", target), isCode("KEY_EXISTS"));
    hsm.put("custos:k-hmac:v1", randomBytes(32));
    await assert.rejects(hsm.generateKeyPair("ed25519", { objectId: "custos:k-hmac:v1", label: "x" }), isCode("KEY_EXISTS"));
    await assert.rejects(hsm.sign(target.objectId, "hmac-sha256", Buffer.from("x")), isCode("HSM_ERROR"));
    await assert.rejects(hsm.sign("custos:k-hmac:v1", "ed25519", Buffer.from("x")), isCode("HSM_ERROR"));
    assert.equal(await hsm.publicKey("custos:k-hmac:v1"), undefined);
    assert.deepEqual((await hsm.listSecretIds()).sort(), ["custos:k-ed:v1", "custos:k-hmac:v1"]);
    assert.equal(await hsm.hasSecret(target.objectId), true);

    await hsm.destroySecret(target.objectId);
    assert.equal(await hsm.hasSecret(target.objectId), false);
    assert.equal(await hsm.publicKey(target.objectId), undefined);
    await assert.rejects(hsm.sign(target.objectId, "ed25519", Buffer.from("x")), isCode("HSM_ERROR"));
    assert.deepEqual(
      hsm.calls.filter((c) => !c.startsWith("sign:")),
      ["generate:custos:k-ed:v1", "generate:custos:k-ed:v1", "generate:custos:k-hmac:v1", "destroy:custos:k-ed:v1"],
    );
  });
});
