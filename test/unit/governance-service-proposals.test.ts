import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes, verify, type KeyObject } from "node:crypto";
import type { CustosErrorCode } from "../../src/errors.js";
import type { ProposalInput } from "../../src/governance/proposal-input.js";
import { versionObjectId } from "../../src/keys/model.js";
import {
  IP,
  HOUR,
  ALPHA,
  RISK,
  STRANGER,
  alice,
  bob,
  carol,
  dave,
  closeFixtures,
  fixture,
  auditSince,
  lastSeq,
  brief,
  vote,
  pass,
  isCode,
  rejectsWith,
  envelopeOf,
  importOf,
  grantsOf,
  hmac,
} from "./governance-fixture.js";

/** GovernanceService: proposals refused at Propose, key versions, freeze and thaw, no secret material in audit or logs (setup in governance-fixture.ts). */

afterEach(closeFixtures);

describe("GovernanceService proposals refused at Propose", () => {
  it("bad metadata, a foreign envelope or an existing key id are refused without touching the HSM", async () => {
    const f = await fixture({ threshold: 1 });
    const good = envelopeOf(f, randomBytes(32));
    await pass(f, importOf("k-taken", good), [bob]);
    const callsBefore = f.hsm.calls.length;
    const base = importOf("k-new", good) as Extract<ProposalInput, { kind: "import_key" }>;
    const cases: Array<[string, ProposalInput, CustosErrorCode]> = [
      ["key id with spaces", { ...base, key: { ...base.key, keyId: "bad key" } }, "INVALID_ARGUMENT"],
      ["upper-case exchange", { ...base, key: { ...base.key, exchange: "Binance" } }, "UNKNOWN_EXCHANGE"],
      ["max age 0", { ...base, key: { ...base.key, maxAgeDays: 0 } }, "INVALID_ARGUMENT"],
      ["another wrapping key", { ...base, envelope: { ...good, wrappingKeyFingerprint: "sha256:" + "ab".repeat(32) } }, "ENVELOPE_INVALID"],
      ["unknown format", { ...base, envelope: { ...good, format: "custos.rsa-oaep-aes-kwp.v0" } }, "ENVELOPE_INVALID"],
      ["OAEP hash the HSM does not use", { ...base, envelope: { ...good, oaepHash: "sha1" } }, "ENVELOPE_INVALID"],
      ["existing key id", importOf("k-taken", good), "KEY_EXISTS"],
    ];
    for (const [what, input, code] of cases) {
      const seq = await lastSeq(f);
      await assert.rejects(f.gov.propose(alice.caller, input), isCode(code), what);
      const events = await auditSince(f, seq);
      assert.deepEqual(brief(events), [`proposal.create alice denied ${code}`], what);
      assert.equal(events[0]!.details?.proposalKind, "import_key", what);
    }
    assert.equal(f.hsm.calls.length, callsBefore);
    assert.equal((await f.store.governance.listProposals()).length, 1, "only the first import was stored");
  });

  it("a second rotation (or import) of a key while one is open → PRECONDITION_FAILED", async () => {
    const f = await fixture({ threshold: 1 });
    await pass(f, importOf("k-rot", envelopeOf(f, randomBytes(32))), [bob]);
    const rotate: ProposalInput = { kind: "rotate_key", keyId: "k-rot", apiKeyId: "", graceSeconds: 60, envelope: envelopeOf(f, randomBytes(32)) };
    await f.gov.propose(alice.caller, rotate);
    await rejectsWith(f.gov.propose(bob.caller, rotate), "PRECONDITION_FAILED");
    await f.gov.propose(alice.caller, importOf("k-other", envelopeOf(f, randomBytes(32))));
    await rejectsWith(f.gov.propose(bob.caller, importOf("k-other", envelopeOf(f, randomBytes(32)))), "PRECONDITION_FAILED");
    assert.deepEqual(brief((await auditSince(f)).filter((e) => e.outcome === "denied")), [
      "proposal.create bob denied PRECONDITION_FAILED",
      "proposal.create bob denied PRECONDITION_FAILED",
    ]);
  });

  it("a trading client → ROLE_NOT_ALLOWED, an unknown identity → NOT_AN_OFFICER, no identity → UNAUTHENTICATED", async () => {
    const f = await fixture();
    await f.store.clients.upsertClient({ identity: ALPHA, name: "alpha", role: "trader", cidrs: ["10.0.0.0/8"], createdAt: new Date().toISOString() });
    await f.directory.reload(f.store);
    const seq = await lastSeq(f);
    await rejectsWith(f.gov.propose({ identity: ALPHA, ip: IP }, grantsOf(ALPHA)), "ROLE_NOT_ALLOWED");
    await rejectsWith(f.gov.propose({ identity: STRANGER, ip: IP }, grantsOf(ALPHA)), "NOT_AN_OFFICER");
    await rejectsWith(f.gov.propose({ identity: null, ip: IP }, grantsOf(ALPHA)), "UNAUTHENTICATED");
    const events = await auditSince(f, seq);
    assert.deepEqual(
      events.map((e) => [e.kind, e.actor, e.outcome, e.reason, e.peer]),
      [
        ["proposal.create", ALPHA, "denied", "ROLE_NOT_ALLOWED", IP],
        ["proposal.create", STRANGER, "denied", "NOT_AN_OFFICER", IP],
        ["proposal.create", "unknown", "denied", "UNAUTHENTICATED", IP],
      ],
    );
    assert.deepEqual(await f.store.governance.listProposals(), []);
  });

  it("init a second time → GOVERNANCE_EXISTS, officers and threshold unchanged", async () => {
    const f = await fixture({ threshold: 2 });
    await rejectsWith(f.gov.init(null, [dave.spec], 1), "GOVERNANCE_EXISTS");
    assert.equal((await f.store.governance.getGovernance())?.threshold, 2);
    assert.deepEqual(
      (await f.store.governance.listOfficers()).map((o) => o.id),
      ["alice", "bob", "carol"],
    );
    assert.deepEqual(brief(await auditSince(f)), ["governance.init system ok", "governance.init system denied GOVERNANCE_EXISTS"]);
  });

  it("a bootstrap administrator outside its CIDRs → ADDRESS_NOT_ALLOWED for init and reads; inside them, init works once", async () => {
    const admin = "spiffe://custos/admin/ops";
    const f = await fixture({ init: false, bootstrapAdmins: [{ identity: admin, cidrs: ["10.0.0.0/8"] }] });
    const seq = await lastSeq(f);
    for (const ip of ["127.0.0.1", "11.0.0.1", null]) {
      await rejectsWith(f.gov.init({ identity: admin, ip }, [alice.spec, bob.spec], 1), "ADDRESS_NOT_ALLOWED");
      await rejectsWith(f.gov.governance({ identity: admin, ip }), "ADDRESS_NOT_ALLOWED");
      assert.throws(() => f.gov.wrappingKey({ identity: admin, ip }), isCode("ADDRESS_NOT_ALLOWED"));
    }
    assert.equal(f.gov.initialised, false);
    assert.deepEqual(brief(await auditSince(f, seq)).slice(0, 3), [
      "governance.init spiffe://custos/admin/ops denied ADDRESS_NOT_ALLOWED",
      "governance.get spiffe://custos/admin/ops denied ADDRESS_NOT_ALLOWED",
      "wrapping_key.get spiffe://custos/admin/ops denied ADDRESS_NOT_ALLOWED",
    ]);
    await f.gov.init({ identity: admin, ip: "10.200.0.9" }, [alice.spec, bob.spec], 1);
    assert.equal((await f.gov.governance({ identity: admin, ip: "10.0.0.1" })).threshold, 1);
  });

  it("a proposal asking to live longer than the configured maximum → INVALID_ARGUMENT; up to it, it expires when asked", async () => {
    const f = await fixture({ proposalTtlMs: 24 * HOUR, maxProposalTtlMs: 7 * 24 * HOUR });
    for (const ttl of [4_294_967_295_000, 7 * 24 * HOUR + 1000, 0, -1, 1.5]) {
      await rejectsWith(f.gov.propose(alice.caller, grantsOf(ALPHA), ttl), "INVALID_ARGUMENT");
    }
    assert.deepEqual(await f.store.governance.listProposals(), []);
    const before = Date.now();
    const view = await f.gov.propose(alice.caller, grantsOf(ALPHA), 7 * 24 * HOUR);
    const expires = Date.parse(view.record.expiresAt);
    assert.ok(expires >= before + 7 * 24 * HOUR && expires <= Date.now() + 7 * 24 * HOUR, view.record.expiresAt);
    const unset = await f.gov.propose(alice.caller, grantsOf(RISK));
    assert.ok(Date.parse(unset.record.expiresAt) <= Date.now() + 24 * HOUR, "no ttl: the default lifetime");
  });

  it("propose before init → GOVERNANCE_NOT_INITIALISED", async () => {
    const f = await fixture({ init: false });
    assert.equal(f.gov.initialised, false);
    await rejectsWith(f.gov.propose(alice.caller, grantsOf(ALPHA)), "GOVERNANCE_NOT_INITIALISED");
    assert.deepEqual(await f.store.governance.listProposals(), []);
  });
});

describe("GovernanceService key lifecycle", () => {
  it("rotation: the new version is active, the old one retiring until now + grace, then destroyed by retireDue", async () => {
    const f = await fixture({ threshold: 1 });
    const [s1, s2] = [randomBytes(32), randomBytes(32)];
    await pass(f, importOf("k", envelopeOf(f, s1)), [bob]);
    const grace = 3600;
    const started = Date.now();
    await pass(f, { kind: "rotate_key", keyId: "k", apiKeyId: "api-k-2", graceSeconds: grace, envelope: envelopeOf(f, s2) }, [bob]);
    const finished = Date.now();
    const [v1, v2] = (await f.store.keys.getKey("k"))!.versions;
    assert.deepEqual([v1!.state, v2!.state, v2!.version, v2!.apiKeyId], ["retiring", "active", 2, "api-k-2"]);
    const retireAt = Date.parse(v1!.retireAt!);
    assert.equal(retireAt, Date.parse(v2!.activatedAt!) + grace * 1000);
    assert.ok(retireAt >= started + grace * 1000 && retireAt <= finished + grace * 1000);
    const data = Buffer.from("x");
    assert.deepEqual(await f.hsm.sign(versionObjectId("k", 2), "hmac-sha256", data), hmac(s2, data));
    assert.ok(f.hsm.objects.has(versionObjectId("k", 1)));

    await f.gov.retireDue(retireAt - 1);
    assert.equal((await f.store.keys.getKey("k"))!.versions[0]!.state, "retiring");
    await f.gov.retireDue(retireAt);
    assert.deepEqual(
      (await f.store.keys.getKey("k"))!.versions.map((v) => v.state),
      ["destroyed", "active"],
    );
    assert.deepEqual([...f.hsm.objects.keys()], [versionObjectId("k", 2)]);
    const destroyed = (await auditSince(f)).filter((e) => e.kind === "key.destroy_version");
    assert.deepEqual(
      destroyed.map((e) => [e.actor, e.key, e.version, e.details?.reason]),
      [["system", "k", 1, "grace period ended"]],
    );
    assert.deepEqual(brief((await auditSince(f)).filter((e) => e.kind === "key.rotate")), ["key.rotate alice ok"]);
  });

  it("destroy_version: the active version is refused, a retiring one is destroyed by proposal", async () => {
    const f = await fixture({ threshold: 1 });
    await pass(f, importOf("k", envelopeOf(f, randomBytes(32))), [bob]);
    await rejectsWith(f.gov.propose(alice.caller, { kind: "destroy_version", keyId: "k", version: 1 }), "PRECONDITION_FAILED");
    await rejectsWith(f.gov.propose(alice.caller, { kind: "destroy_version", keyId: "k", version: 7 }), "VERSION_NOT_FOUND");
    assert.ok(f.hsm.objects.has(versionObjectId("k", 1)));
    await pass(f, { kind: "rotate_key", keyId: "k", apiKeyId: "", graceSeconds: 3600, envelope: envelopeOf(f, randomBytes(32)) }, [bob]);
    await pass(f, { kind: "destroy_version", keyId: "k", version: 1 }, [bob]);
    assert.deepEqual(
      (await f.store.keys.getKey("k"))!.versions.map((v) => v.state),
      ["destroyed", "active"],
    );
    assert.equal(f.hsm.objects.has(versionObjectId("k", 1)), false);
    await rejectsWith(f.gov.propose(alice.caller, { kind: "destroy_version", keyId: "k", version: 1 }), "PRECONDITION_FAILED");
  });

  it("an envelope that does not open fails the proposal: the vote answers ENVELOPE_INVALID, nothing is left behind", async () => {
    const f = await fixture({ threshold: 1 });
    const good = envelopeOf(f, randomBytes(32));
    const bad = { ...good, wrappedKey: Buffer.from(good.wrappedKey).fill(0, 4, 8) };
    const p = await f.gov.propose(alice.caller, importOf("k-bad", bad));
    await rejectsWith(vote(f, bob, p.record.id), "ENVELOPE_INVALID");
    const stored = (await f.store.governance.getProposal(p.record.id))!;
    assert.equal(stored.state, "failed");
    assert.ok(stored.failure);
    assert.equal(stored.envelope, null);
    assert.equal(await f.store.keys.getKey("k-bad"), undefined);
    assert.equal(f.hsm.objects.size, 0);
    assert.deepEqual(brief((await auditSince(f)).slice(-2)), ["proposal.execute system ok", "proposal.failed system failed ENVELOPE_INVALID"]);
    await pass(f, importOf("k-bad", good), [bob]); // nothing half-done blocks the id
  });
});

describe("GovernanceService Ed25519 migration (a wrapped PKCS#8 key, on an HSM that can unwrap one)", () => {
  const ed25519Import = (f: Awaited<ReturnType<typeof fixture>>, keyId: string, privateKey: KeyObject, publicKey: KeyObject): ProposalInput => ({
    kind: "import_key",
    key: {
      keyId,
      exchange: "binance",
      environment: "testnet",
      label: keyId,
      apiKeyId: "",
      algorithm: "ed25519",
      maxAgeDays: 45,
      publicKeyPem: publicKey.export({ format: "pem", type: "spki" }).toString(),
    },
    envelope: envelopeOf(f, privateKey.export({ format: "der", type: "pkcs8" })),
  });

  it("the approved public key's private half is unwrapped in the HSM and signs; the public key is the one approved", async () => {
    const f = await fixture({ threshold: 1 });
    const existing = generateKeyPairSync("ed25519");
    await pass(f, ed25519Import(f, "k-migrated", existing.privateKey, existing.publicKey), [bob]);
    const objectId = versionObjectId("k-migrated", 1);
    assert.deepEqual(
      f.hsm.calls.filter((c) => c.startsWith("unwrap")),
      [`unwrap-private:${objectId}`],
    );
    const signature = await f.hsm.sign(objectId, "ed25519", Buffer.from("order"));
    assert.ok(verify(null, Buffer.from("order"), existing.publicKey, signature));
    assert.deepEqual(await f.hsm.publicKey(objectId), existing.publicKey.export({ format: "der", type: "spki" }));
    assert.equal((await f.store.keys.getKey("k-migrated"))?.algorithm, "ed25519");
  });

  it("a private key that does not pair with the approved public key fails the proposal with nothing left behind", async () => {
    const f = await fixture({ threshold: 1 });
    const wrapped = generateKeyPairSync("ed25519");
    const claimed = generateKeyPairSync("ed25519");
    const p = await f.gov.propose(alice.caller, ed25519Import(f, "k-swapped", wrapped.privateKey, claimed.publicKey));
    await rejectsWith(vote(f, bob, p.record.id), "ENVELOPE_INVALID");
    assert.equal((await f.store.governance.getProposal(p.record.id))?.state, "failed");
    assert.equal(await f.store.keys.getKey("k-swapped"), undefined);
    assert.equal(await f.hsm.hasSecret(versionObjectId("k-swapped", 1)), false);
  });

  it("refuses, at Propose, an ed25519 import without a public key and a public key on an HMAC import", async () => {
    const f = await fixture({ threshold: 1 });
    const pair = generateKeyPairSync("ed25519");
    const input = ed25519Import(f, "k-x", pair.privateKey, pair.publicKey) as Extract<ProposalInput, { kind: "import_key" }>;
    const { publicKeyPem: _, ...withoutPublicKey } = input.key;
    await rejectsWith(f.gov.propose(alice.caller, { ...input, key: withoutPublicKey }), "INVALID_ARGUMENT");
    const hmacImport = importOf("k-y", envelopeOf(f, randomBytes(32))) as Extract<ProposalInput, { kind: "import_key" }>;
    await rejectsWith(f.gov.propose(alice.caller, { ...hmacImport, key: { ...hmacImport.key, publicKeyPem: input.key.publicKeyPem! } }), "INVALID_ARGUMENT");
  });
});

describe("GovernanceService freeze and thaw", () => {
  it("an officer and a client with canFreeze freeze at once; a trader without it → ROLE_NOT_ALLOWED", async () => {
    const f = await fixture({ threshold: 1 });
    await pass(f, importOf("k", envelopeOf(f, randomBytes(32))), [bob]);
    await pass(f, grantsOf(ALPHA, ["k"]), [bob]);
    await pass(f, grantsOf(RISK, [], true), [bob]);

    await f.gov.freeze(carol.caller, "key", "k", "leaked in a screenshot");
    assert.deepEqual([Boolean((await f.store.keys.getKey("k"))!.frozenAt), (await f.store.keys.getKey("k"))!.frozenReason], [true, "leaked in a screenshot"]);
    await f.gov.freeze({ identity: RISK, ip: IP }, "client", ALPHA, "runaway orders");
    assert.ok((await f.store.clients.getClient(ALPHA))!.frozenAt);
    assert.ok(f.directory.client(ALPHA)!.frozenAt, "the sign path sees the freeze");

    await rejectsWith(f.gov.freeze({ identity: ALPHA, ip: IP }, "key", "k", "me too"), "ROLE_NOT_ALLOWED");
    await rejectsWith(f.gov.freeze({ identity: STRANGER, ip: IP }, "key", "k", "me too"), "ROLE_NOT_ALLOWED");
    await rejectsWith(f.gov.freeze(carol.caller, "key", "k", "  "), "INVALID_ARGUMENT");
    const freezes = (await auditSince(f)).filter((e) => e.kind === "freeze");
    assert.deepEqual(
      freezes.map((e) => [e.actor, e.outcome, e.reason, e.details?.target]),
      [
        ["carol", "ok", undefined, "key:k"],
        [RISK, "ok", undefined, `client:${ALPHA}`],
        [ALPHA, "denied", "ROLE_NOT_ALLOWED", undefined],
        [STRANGER, "denied", "ROLE_NOT_ALLOWED", undefined],
      ],
    );
  });

  it("thaw needs a proposal, and only what is frozen can be thawed", async () => {
    const f = await fixture({ threshold: 1 });
    await pass(f, importOf("k", envelopeOf(f, randomBytes(32))), [bob]);
    await rejectsWith(f.gov.propose(alice.caller, { kind: "thaw", target: "key", id: "k" }), "PRECONDITION_FAILED");
    await f.gov.freeze(alice.caller, "key", "k", "drill");
    const p = await f.gov.propose(alice.caller, { kind: "thaw", target: "key", id: "k" });
    assert.ok((await f.store.keys.getKey("k"))!.frozenAt, "still frozen while the thaw is pending");
    assert.equal((await vote(f, bob, p.record.id)).record.state, "executed");
    assert.equal((await f.store.keys.getKey("k"))!.frozenAt ?? null, null);
    assert.equal(f.directory.key("k")!.frozenAt ?? null, null);
    assert.deepEqual(brief((await auditSince(f)).filter((e) => e.kind === "thaw")), ["thaw alice ok"]);
  });
});

describe("GovernanceService audit privacy", () => {
  it("neither an envelope nor the secret it carries appears in audit bodies or logs", async () => {
    const f = await fixture({ threshold: 1 });
    const secrets = [randomBytes(32), randomBytes(32), randomBytes(32), randomBytes(32)];
    const envelopes = secrets.map((s) => envelopeOf(f, s));
    await pass(f, importOf("k", envelopes[0]!), [bob]);
    await pass(f, { kind: "rotate_key", keyId: "k", apiKeyId: "", graceSeconds: 60, envelope: envelopes[1]! }, [bob]);
    const vetoed = await f.gov.propose(alice.caller, importOf("k-veto", envelopes[2]!));
    await vote(f, carol, vetoed.record.id, "reject");
    const broken = { ...envelopes[3]!, wrappedKey: Buffer.from(envelopes[3]!.wrappedKey).fill(0, 0, 4) };
    const failed = await f.gov.propose(alice.caller, importOf("k-fail", broken));
    await rejectsWith(vote(f, bob, failed.record.id), "ENVELOPE_INVALID");
    await f.gov.retireDue(Date.now() + 3_600_000);

    const forms = (b: Buffer) => [b.toString("hex"), b.toString("base64"), b.toString("base64url")];
    const forbidden = [...secrets, ...envelopes.flatMap((e) => [e.wrappedKey, e.encryptedAesKey]), broken.wrappedKey].flatMap(forms);
    await f.audit.flush();
    const bodies = (await f.store.audit.readAudit(0, 100_000)).map((e) => e.body);
    assert.ok(bodies.length > 10);
    for (const text of [...bodies, f.logs()]) {
      for (const form of forbidden) assert.ok(!text.includes(form), `secret material in: ${text.slice(0, 200)}`);
    }
  });
});
