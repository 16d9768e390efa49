import assert from "node:assert/strict";
import { createHmac, randomBytes, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import { unary } from "../../src/client/connection.js";
import { castVote, loadOfficerKey } from "../../src/client/officer.js";
import { Algorithm, Environment, type ImportKeyProposal } from "../../src/gen/custos/v1/custody.js";
import { SignatureEncoding } from "../../src/gen/custos/v1/signer.js";
import { buildEnvelope, envelopeDigest, type ImportEnvelope } from "../../src/hsm/envelope.js";
import { findObjects, findSlotByLabel, loadModule, pkcs11js, type Handle, type Module } from "../../src/hsm/pkcs11/module.js";
import { secretQuery } from "../../src/hsm/pkcs11/templates.js";
import { versionObjectId } from "../../src/keys/model.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { auditEvents, expectDenied, importSecret, startInProcess, type AuditBody, type InProcessService } from "../helpers/harness.js";

/**
 * Imports through governance (Propose + Vote, the embedded dev officer at threshold 1): the
 * secret is sealed in the HSM, and a bad envelope or request leaves nothing behind but a
 * failed or refused proposal and its audit records.
 */

const CKR_ATTRIBUTE_SENSITIVE = 0x11;
const CKR_KEY_UNEXTRACTABLE = 0x6a;
const p = pkcs11js;

describe("key import into SoftHSM2", () => {
  let svc: InProcessService;
  let mod: Module;
  let session: Handle;
  let officerKey: KeyObject;

  before(async () => {
    svc = await startInProcess();
    // Same process → the service's initialised, logged-in module: our session sees its private objects.
    mod = loadModule(svc.config.hsm.modulePath);
    const slot = findSlotByLabel(mod, svc.config.hsm.tokenLabel);
    assert.ok(slot, "token not found");
    session = mod.C_OpenSession(slot, p.CKF_SERIAL_SESSION | p.CKF_RW_SESSION);
    const o = svc.conn.officer!;
    officerKey = loadOfficerKey(o.officerKeyPath, readFileSync(o.passphraseFile, "utf8").trim());
  });
  after(async () => {
    // Only our own session: C_Logout / C_CloseAllSessions would pull the rug from the service.
    mod.C_CloseSession(session);
    await svc.stop();
  });

  const secretObjects = (keyId: string) => findObjects(mod, session, secretQuery(versionObjectId(keyId, 1)));
  const keyIds = async () => (await unary(svc.custody, "listKeys", {})).keys.map((k) => k.keyId);
  const lastSeq = async () => (await auditEvents(svc.dir)).at(-1)?.seq ?? 0;
  // Sign decisions are batched and may land at any point: only the awaited governance records.
  const eventsSince = async (seq: number) => (await auditEvents(svc.dir)).filter((e) => e.seq > seq && e.kind !== "sign");
  const summary = (e: AuditBody) => [e.kind, e.outcome, e.reason, e.key];

  function request(keyId: string, envelope: ImportEnvelope, over: { environment?: Environment; exchange?: string } = {}): ImportKeyProposal {
    return {
      keyId,
      exchange: over.exchange ?? "raw",
      environment: over.environment ?? Environment.ENVIRONMENT_TESTNET,
      label: keyId,
      apiKeyId: `api-${keyId}`,
      algorithm: Algorithm.ALGORITHM_HMAC_SHA256,
      envelope,
      maxAgeDays: 0,
      publicKeyPem: "",
      signedPassphrase: "",
    };
  }

  const propose = (importKey: ImportKeyProposal) => unary(svc.custody, "propose", { kind: { $case: "importKey", importKey }, ttlSeconds: 0 });
  /** The dev officer's approval: threshold 1, so this vote executes the proposal. */
  const approve = (id: string) => castVote(svc.custody, id, "approve", officerKey);

  async function envelopeFor(secret: Buffer): Promise<ImportEnvelope> {
    const w = await unary(svc.custody, "getWrappingKey", {});
    return buildEnvelope(secret, { spkiPem: w.spkiPem, fingerprint: w.fingerprint, oaepHash: w.oaepHash as "sha1" });
  }

  /** The stored proposal, read from the data dir's database (the service keeps running). */
  async function storedProposal(id: string) {
    const store = new SqliteStore(join(svc.dir, "custos.db"), { readonly: true });
    try {
      return await store.governance.getProposal(id);
    } finally {
      await store.close();
    }
  }

  const flip = (b: Buffer, at: number) => {
    const c = Buffer.from(b);
    c[at]! ^= 0x01;
    return c;
  };

  it("seals the secret: CKA_VALUE unreadable, sign-only attributes, wrapping refused", async () => {
    const secret = randomBytes(64);
    await importSecret(svc.custody, "k-sealed", secret);
    const [handle, ...extra] = secretObjects("k-sealed");
    assert.ok(handle, "no HSM object for k-sealed v1");
    assert.equal(extra.length, 0);

    assert.throws(
      () => mod.C_GetAttributeValue(session, handle, [{ type: p.CKA_VALUE }]),
      (e: { code?: number }) => e.code === CKR_ATTRIBUTE_SENSITIVE,
    );

    const expected: Array<[string, number, boolean]> = [
      ["CKA_TOKEN", p.CKA_TOKEN, true],
      ["CKA_SENSITIVE", p.CKA_SENSITIVE, true],
      ["CKA_EXTRACTABLE", p.CKA_EXTRACTABLE, false],
      ["CKA_SIGN", p.CKA_SIGN, true],
      ["CKA_VERIFY", p.CKA_VERIFY, false],
      ["CKA_ENCRYPT", p.CKA_ENCRYPT, false],
      ["CKA_DECRYPT", p.CKA_DECRYPT, false],
      ["CKA_WRAP", p.CKA_WRAP, false],
      ["CKA_UNWRAP", p.CKA_UNWRAP, false],
      ["CKA_DERIVE", p.CKA_DERIVE, false],
    ];
    const attrs = mod.C_GetAttributeValue(
      session,
      handle,
      expected.map(([, type]) => ({ type })),
    );
    // pkcs11js returns CK_BBOOL attributes as one-byte buffers.
    const actual = Object.fromEntries(expected.map(([name], i) => [name, (attrs[i]!.value as Buffer)[0] === 1]));
    assert.deepEqual(actual, Object.fromEntries(expected.map(([name, , v]) => [name, v])));

    // A wrap-capable AES session key of our own cannot carry the secret out.
    const aes = mod.C_GenerateKey(session, { mechanism: p.CKM_AES_KEY_GEN }, [
      { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
      { type: p.CKA_KEY_TYPE, value: p.CKK_AES },
      { type: p.CKA_TOKEN, value: false },
      { type: p.CKA_VALUE_LEN, value: 32 },
      { type: p.CKA_WRAP, value: true },
    ]);
    try {
      assert.throws(
        () => mod.C_WrapKey(session, { mechanism: p.CKM_AES_KEY_WRAP_PAD }, aes, handle, Buffer.alloc(256)),
        (e: { code?: number }) => e.code === CKR_KEY_UNEXTRACTABLE,
      );
    } finally {
      mod.C_DestroyObject(session, aes);
    }

    // And it is the right object: the service signs with it as node:crypto does.
    const payload = Buffer.from("recvWindow=5000&timestamp=1700000000000");
    const res = await unary(svc.signer, "sign", { keyId: "k-sealed", version: 0, payload, encoding: SignatureEncoding.SIGNATURE_ENCODING_RAW });
    assert.deepEqual(res.signature, createHmac("sha256", secret).update(payload).digest());

    // The signer signs from an in-HSM session copy (faster on SoftHSM2); the copy is as sealed
    // as the token object, and the token still holds exactly one object for the version.
    const all = secretObjects("k-sealed");
    const isToken = (h: Handle) => (mod.C_GetAttributeValue(session, h, [{ type: p.CKA_TOKEN }])[0]!.value as Buffer)[0] === 1;
    assert.equal(all.filter(isToken).length, 1);
    const copies = all.filter((h) => !isToken(h));
    assert.equal(copies.length, 1, "one session copy after signing");
    const copy = copies[0]!;
    assert.throws(
      () => mod.C_GetAttributeValue(session, copy, [{ type: p.CKA_VALUE }]),
      (e: { code?: number }) => e.code === CKR_ATTRIBUTE_SENSITIVE,
    );
    const [sensitive, extractable, encrypt] = mod.C_GetAttributeValue(session, copy, [
      { type: p.CKA_SENSITIVE },
      { type: p.CKA_EXTRACTABLE },
      { type: p.CKA_ENCRYPT },
    ]);
    assert.deepEqual([sensitive!.value, extractable!.value, encrypt!.value], [Buffer.from([1]), Buffer.from([0]), Buffer.from([0])]);
  });

  it("an envelope that does not open fails the approved proposal: no key, no HSM object, the proposal failed and audited", async () => {
    const secret = randomBytes(48);
    const good = await envelopeFor(secret);
    const cases: Array<[string, ImportEnvelope]> = [
      ["wrappedKey byte flipped", { ...good, wrappedKey: flip(good.wrappedKey, 5) }],
      ["encryptedAesKey byte flipped", { ...good, encryptedAesKey: flip(good.encryptedAesKey, 100) }],
    ];
    for (const [what, envelope] of cases) {
      const before = await lastSeq();
      // Format, fingerprint and OAEP hash are right: only the HSM can tell, when it executes.
      const proposed = await propose(request("k-tamper", envelope));
      assert.equal(proposed.state, "pending", what);
      await expectDenied(approve(proposed.id), status.INVALID_ARGUMENT, "ENVELOPE_INVALID");
      // Same connection right after the failure: a stale OpenSSL error left by SoftHSM2 used to drop it.
      assert.ok(!(await keyIds()).includes("k-tamper"), `${what}: key record exists`);
      assert.equal(secretObjects("k-tamper").length, 0, `${what}: HSM object exists`);

      const info = await unary(svc.custody, "getProposal", { id: proposed.id });
      assert.equal(info.state, "failed", what);
      assert.notEqual(info.failure, "", what);
      // The proposal signed for exactly these envelope bytes, and they are gone now.
      assert.equal((JSON.parse(info.canonical) as { materialSha256?: string }).materialSha256, envelopeDigest(envelope), what);
      assert.equal((await storedProposal(proposed.id))?.envelope, null, `${what}: envelope kept after failure`);

      // Decisions on proposals are written before the answer: no waiting needed.
      const events = await eventsSince(before);
      assert.deepEqual(
        events.map(summary),
        [
          ["proposal.create", "ok", undefined, "k-tamper"],
          ["proposal.approve", "ok", undefined, "k-tamper"],
          ["proposal.execute", "ok", undefined, "k-tamper"],
          ["proposal.failed", "failed", "ENVELOPE_INVALID", "k-tamper"],
        ],
        what,
      );
      assert.ok(
        events.every((e) => e.details?.proposal === proposed.id),
        what,
      );
    }
    // A bad envelope is the caller's fault: the HSM kept its sessions and login (no recovery cycle).
    assert.equal(svc.service.hsm.status().ready, true);
    assert.doesNotMatch(svc.logs(), /hsm\.unavailable/);

    // Nothing half-done blocks the id: the genuine envelope imports and signs.
    const before = await lastSeq();
    const ok = await propose(request("k-tamper", good));
    const executed = await approve(ok.id);
    assert.equal(executed.state, "executed");
    assert.equal(secretObjects("k-tamper").length, 1);
    assert.deepEqual((await eventsSince(before)).map(summary), [
      ["proposal.create", "ok", undefined, "k-tamper"],
      ["proposal.approve", "ok", undefined, "k-tamper"],
      ["proposal.execute", "ok", undefined, "k-tamper"],
      ["key.import", "ok", undefined, "k-tamper"],
      ["proposal.executed", "ok", undefined, "k-tamper"],
    ]);
    const payload = randomBytes(100);
    const res = await unary(svc.signer, "sign", { keyId: "k-tamper", version: 0, payload, encoding: SignatureEncoding.SIGNATURE_ENCODING_RAW });
    assert.deepEqual(res.signature, createHmac("sha256", secret).update(payload).digest());
  });

  it("refuses at Propose an envelope for another wrapping key, format or OAEP hash: no proposal, a denied audit record", async () => {
    const good = await envelopeFor(randomBytes(48));
    const cases: Array<[string, ImportEnvelope]> = [
      ["another wrapping key's fingerprint", { ...good, wrappingKeyFingerprint: "sha256:" + "ab".repeat(32) }],
      ["unknown format", { ...good, format: "custos.rsa-oaep-aes-kwp.v0" }],
      ["OAEP hash this HSM does not unwrap", { ...good, oaepHash: "sha256" }],
    ];
    const proposalsBefore = (await unary(svc.custody, "listProposals", { state: "" })).proposals.length;
    for (const [what, envelope] of cases) {
      const before = await lastSeq();
      await expectDenied(propose(request("k-refused", envelope)), status.INVALID_ARGUMENT, "ENVELOPE_INVALID");
      assert.ok(!(await keyIds()).includes("k-refused"), `${what}: key record exists`);
      assert.equal(secretObjects("k-refused").length, 0, `${what}: HSM object exists`);
      const events = await eventsSince(before);
      assert.deepEqual(
        events.map((e) => [e.kind, e.outcome, e.reason, e.details?.proposalKind]),
        [["proposal.create", "denied", "ENVELOPE_INVALID", "import_key"]],
        what,
      );
    }
    assert.equal((await unary(svc.custody, "listProposals", { state: "" })).proposals.length, proposalsBefore, "a refused proposal was stored");
  });

  it("refuses a duplicate key id and keeps the original secret", async () => {
    const first = randomBytes(32);
    await importSecret(svc.custody, "k-dup", first);
    const before = await lastSeq();
    await expectDenied(importSecret(svc.custody, "k-dup", randomBytes(32)), status.ALREADY_EXISTS, "KEY_EXISTS");
    assert.equal(secretObjects("k-dup").length, 1);
    assert.deepEqual(
      (await eventsSince(before)).map((e) => [e.kind, e.outcome, e.reason, e.details?.proposalKind]),
      [["proposal.create", "denied", "KEY_EXISTS", "import_key"]],
    );
    const payload = Buffer.from("still the first secret");
    const res = await unary(svc.signer, "sign", { keyId: "k-dup", version: 0, payload, encoding: SignatureEncoding.SIGNATURE_ENCODING_RAW });
    assert.deepEqual(res.signature, createHmac("sha256", first).update(payload).digest());
  });

  it("refuses bad metadata at Propose, before touching the HSM", async () => {
    const envelope = await envelopeFor(randomBytes(32));
    const cases: Array<[string, ImportKeyProposal]> = [
      ["key id with spaces", request("bad key", envelope)],
      ["key id starting with a dot", request(".hidden", envelope)],
      ["environment unspecified", request("k-meta-env", envelope, { environment: Environment.ENVIRONMENT_UNSPECIFIED })],
      ["algorithm unspecified", { ...request("k-meta-alg", envelope), algorithm: Algorithm.ALGORITHM_UNSPECIFIED }],
    ];
    const proposalsBefore = (await unary(svc.custody, "listProposals", { state: "" })).proposals.length;
    for (const [what, req] of cases) {
      const before = await lastSeq();
      await expectDenied(propose(req), status.INVALID_ARGUMENT, "INVALID_ARGUMENT");
      assert.equal(secretObjects(req.keyId).length, 0, what);
      assert.deepEqual(
        (await eventsSince(before)).map((e) => [e.kind, e.outcome, e.reason, e.details?.proposalKind]),
        [["proposal.create", "denied", "INVALID_ARGUMENT", "import_key"]],
        what,
      );
    }
    assert.deepEqual(
      (await keyIds()).filter((id) => id.startsWith("k-meta") || id.includes(" ") || id.startsWith(".")),
      [],
    );
    assert.equal((await unary(svc.custody, "listProposals", { state: "" })).proposals.length, proposalsBefore, "a refused proposal was stored");
  });
});
