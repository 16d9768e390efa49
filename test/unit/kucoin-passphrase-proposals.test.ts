import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, createHmac, randomBytes } from "node:crypto";
import { CustosError } from "../../src/errors.js";
import { signedPassphraseFingerprint, type NewKeyMetadata, type ProposalInput } from "../../src/governance/proposal-input.js";
import { validateInput } from "../../src/governance/kinds/index.js";
import { alice, bob, closeFixtures, envelopeOf, fixture, isCode, pass, rejectsWith, vote } from "./governance-fixture.js";

/**
 * A KuCoin Futures key's passphrase is fixed by the quorum with its secret: the import (and each
 * rotation with a new secret) carries base64(HMAC-SHA256(secret, passphrase)), which the signed
 * content binds and the key version stores; no other key carries one.
 */

afterEach(closeFixtures);

const signedOf = (secret: Buffer, passphrase: string) => createHmac("sha256", secret).update(passphrase).digest("base64");
const kucoinKey = (keyId: string, over: Partial<NewKeyMetadata> = {}): NewKeyMetadata => ({
  keyId,
  exchange: "kucoinfutures",
  environment: "testnet",
  label: keyId,
  apiKeyId: `api-${keyId}`,
  algorithm: "hmac-sha256",
  maxAgeDays: 45,
  ...over,
});
const codeOf = (fn: () => void): string | undefined => {
  try {
    fn();
  } catch (e) {
    return e instanceof CustosError ? e.code : "not a CustosError";
  }
  return undefined;
};

describe("signed passphrase: proposal validation", () => {
  // validateInput checks shapes only: the envelope's contents do not matter here.
  const envelope = { format: "custos.rsa-oaep-aes-kwp.v1", oaepHash: "sha256" as const, encryptedAesKey: Buffer.alloc(1), wrappedKey: Buffer.alloc(1) };
  const imp = (key: NewKeyMetadata): ProposalInput => ({ kind: "import_key", key, envelope: { ...envelope, wrappingKeyFingerprint: "" } });
  const good = signedOf(randomBytes(32), "kc-pass");

  it("a kucoinfutures import needs one: base64 of exactly 32 bytes, canonical", () => {
    assert.equal(
      codeOf(() => validateInput(imp(kucoinKey("k", { signedPassphrase: good })))),
      undefined,
    );
    const bad: Array<[string, string | undefined]> = [
      ["none", undefined],
      ["empty", ""],
      ["the raw passphrase", "kc-pass"],
      ["31 bytes", Buffer.alloc(31, 1).toString("base64")],
      ["33 bytes", Buffer.alloc(33, 1).toString("base64")],
      ["base64url", Buffer.alloc(32, 0xfb).toString("base64url") + "="],
      ["non-canonical padding bits", good.slice(0, 42) + "B="],
      ["a trailing newline", `${good}\n`],
    ];
    for (const [what, signedPassphrase] of bad) {
      const key = kucoinKey("k", signedPassphrase === undefined ? {} : { signedPassphrase });
      assert.equal(
        codeOf(() => validateInput(imp(key))),
        "INVALID_ARGUMENT",
        what,
      );
    }
  });

  it("any other exchange's import carries none, and a kucoinfutures key cannot be generated (no secret to HMAC with)", () => {
    assert.equal(
      codeOf(() => validateInput(imp(kucoinKey("k", { exchange: "okx", signedPassphrase: good })))),
      "INVALID_ARGUMENT",
    );
    assert.equal(
      codeOf(() => validateInput(imp(kucoinKey("k", { exchange: "raw" })))),
      undefined,
    );
    assert.equal(
      codeOf(() => validateInput({ kind: "generate_key", key: kucoinKey("k", { algorithm: "ed25519" }) })),
      "INVALID_ARGUMENT",
    );
    const generated = kucoinKey("k", { exchange: "binance", algorithm: "ed25519", signedPassphrase: good });
    assert.equal(
      codeOf(() => validateInput({ kind: "generate_key", key: generated })),
      "INVALID_ARGUMENT",
    );
  });

  it("a rotation's signed passphrase is shape-checked like an import's", () => {
    const rotate = (signedPassphrase?: string): ProposalInput => ({
      kind: "rotate_key",
      keyId: "k",
      apiKeyId: "",
      graceSeconds: 60,
      envelope: { ...envelope, wrappingKeyFingerprint: "" },
      ...(signedPassphrase === undefined ? {} : { signedPassphrase }),
    });
    assert.equal(
      codeOf(() => validateInput(rotate(good))),
      undefined,
    );
    assert.equal(
      codeOf(() => validateInput(rotate(undefined))),
      undefined,
      "whether it is needed depends on the key: checked at Propose",
    );
    assert.equal(
      codeOf(() => validateInput(rotate("kc-pass"))),
      "INVALID_ARGUMENT",
    );
  });
});

describe("signed passphrase: through the quorum", () => {
  it("the import binds it in the signed content, the summary shows only a fingerprint, and v1 stores it", async () => {
    const f = await fixture({ threshold: 1 });
    const secret = randomBytes(32);
    const signed = signedOf(secret, "Pass phrase!1");
    await rejectsWith(f.gov.propose(alice.caller, { kind: "import_key", key: kucoinKey("kc"), envelope: envelopeOf(f, secret) }), "INVALID_ARGUMENT");

    const view = await f.gov.propose(alice.caller, { kind: "import_key", key: kucoinKey("kc", { signedPassphrase: signed }), envelope: envelopeOf(f, secret) });
    assert.equal((JSON.parse(view.record.canonical) as { params: { signedPassphrase?: string } }).params.signedPassphrase, signed, "the digest covers it");
    const fingerprint = createHash("sha256").update(signed).digest("hex").slice(0, 8);
    assert.equal(signedPassphraseFingerprint(signed), fingerprint);
    assert.ok(view.summary.includes(`API passphrase: set (signed passphrase sha256 ${fingerprint}…)`), view.summary.join("\n"));
    assert.ok(!view.summary.join("\n").includes(signed), "the summary never shows the value");

    const { record } = await vote(f, bob, view.record.id);
    assert.equal(record.state, "executed", record.failure ?? "");
    const key = (await f.store.keys.getKey("kc"))!;
    assert.equal(key.versions[0]!.signedPassphrase, signed);
  });

  it("a kucoinfutures rotation needs a new one (stored on the new version); other keys' rotations carry none", async () => {
    const f = await fixture({ threshold: 1 });
    const s1 = randomBytes(32);
    const s2 = randomBytes(32);
    await pass(f, { kind: "import_key", key: kucoinKey("kc", { signedPassphrase: signedOf(s1, "first") }), envelope: envelopeOf(f, s1) }, [bob]);
    const rotate = (signedPassphrase?: string): ProposalInput => ({
      kind: "rotate_key",
      keyId: "kc",
      apiKeyId: "api-kc-2",
      graceSeconds: 60,
      envelope: envelopeOf(f, s2),
      ...(signedPassphrase === undefined ? {} : { signedPassphrase }),
    });
    await rejectsWith(f.gov.propose(alice.caller, rotate()), "INVALID_ARGUMENT");
    const view = await pass(f, rotate(signedOf(s2, "second")), [bob]);
    assert.ok(
      view.summary.some((l) => l.startsWith("API passphrase: set")),
      view.summary.join("\n"),
    );
    const versions = (await f.store.keys.getKey("kc"))!.versions;
    assert.deepEqual(
      versions.map((v) => [v.version, v.state, v.signedPassphrase]),
      [
        [1, "retiring", signedOf(s1, "first")],
        [2, "active", signedOf(s2, "second")],
      ],
    );

    await pass(f, { kind: "import_key", key: kucoinKey("bn", { exchange: "binance" }), envelope: envelopeOf(f, s1) }, [bob]);
    assert.equal((await f.store.keys.getKey("bn"))!.versions[0]!.signedPassphrase, null);
    const foreign: ProposalInput = {
      kind: "rotate_key",
      keyId: "bn",
      apiKeyId: "",
      graceSeconds: 60,
      envelope: envelopeOf(f, s2),
      signedPassphrase: signedOf(s2, "x"),
    };
    await assert.rejects(f.gov.propose(alice.caller, foreign), isCode("INVALID_ARGUMENT"));
  });
});
