import { afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHmac, randomBytes, type KeyObject } from "node:crypto";
import { PassThrough } from "node:stream";
import { AuditLog } from "../../src/audit/audit-log.js";
import { CustosError, type CustosErrorCode } from "../../src/errors.js";
import { GovernanceService, type GovernanceOptions, type ProposalView } from "../../src/governance/governance-service.js";
import { generateOfficerKey, loadOfficerPrivateKey, signApproval } from "../../src/governance/officer-key.js";
import type { Decision } from "../../src/governance/proposal.js";
import type { OfficerSpec, ProposalInput } from "../../src/governance/proposal-input.js";
import { validateRules } from "../../src/governance/quorum.js";
import { buildEnvelope, type ImportEnvelope } from "../../src/hsm/envelope.js";
import { versionObjectId } from "../../src/keys/model.js";
import { createLogger } from "../../src/log.js";
import { AccessDirectory } from "../../src/signing/directory.js";
import type { CallerContext } from "../../src/signing/sign-service.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { FakeHsm } from "./fake-hsm.js";

/** GovernanceService on a real store and audit log, the in-memory HSM, officers with real Ed25519 keys. */

const IP = "10.0.0.7";
const ALPHA = "spiffe://custos/engine/alpha"; // a trading client
const RISK = "spiffe://custos/engine/risk"; // a trading client that may freeze
const STRANGER = "spiffe://custos/engine/stranger";
const HOUR = 3_600_000;

interface Officer {
  id: string;
  spec: OfficerSpec;
  key: KeyObject;
  caller: CallerContext;
}

function newOfficer(id: string): Officer {
  const passphrase = `passphrase of ${id}`;
  const pair = generateOfficerKey(passphrase);
  const identity = `spiffe://custos/officer/${id}`;
  return { id, spec: { id, displayName: id, identity, publicKeyPem: pair.publicKeyPem }, key: loadOfficerPrivateKey(pair.privateKeyPem, passphrase), caller: { identity, ip: IP } };
}

let alice: Officer, bob: Officer, carol: Officer, dave: Officer;
before(() => {
  [alice, bob, carol, dave] = ["alice", "bob", "carol", "dave"].map(newOfficer) as [Officer, Officer, Officer, Officer];
});

interface Fixture {
  store: SqliteStore;
  hsm: FakeHsm;
  audit: AuditLog;
  directory: AccessDirectory;
  gov: GovernanceService;
  opts: GovernanceOptions;
  logs(): string;
}

const fixtures: Fixture[] = [];
afterEach(async () => {
  for (const f of fixtures.splice(0)) {
    await f.audit.close();
    await f.store.close();
  }
});

/** A fresh service; initialised with `officers` (default alice, bob, carol) at `threshold` unless init is false. */
async function fixture(o: { officers?: Officer[]; threshold?: number; init?: boolean } & Partial<GovernanceOptions> = {}): Promise<Fixture> {
  const store = new SqliteStore(":memory:");
  const hsm = new FakeHsm();
  let logText = "";
  const sink = new PassThrough();
  sink.on("data", (d: Buffer) => (logText += d.toString()));
  const logger = createLogger("debug", sink);
  const audit = await AuditLog.open(store, logger, { flushIntervalMs: 3_600_000 });
  const directory = new AccessDirectory();
  await directory.reload(store);
  const opts: GovernanceOptions = { proposerCounts: o.proposerCounts ?? false, veto: o.veto ?? true, bootstrapAdmins: o.bootstrapAdmins ?? [], autoGrant: o.autoGrant ?? [], proposalTtlMs: o.proposalTtlMs ?? 24 * HOUR };
  const gov = new GovernanceService(store, hsm, audit, directory, logger, opts);
  await gov.load();
  if (o.init ?? true) await gov.init(null, (o.officers ?? [alice, bob, carol]).map((x) => x.spec), o.threshold ?? 2);
  const f = { store, hsm, audit, directory, gov, opts, logs: () => logText };
  fixtures.push(f);
  return f;
}

/** A second service on the same store and HSM: what a restart sees. */
async function restarted(f: Fixture): Promise<GovernanceService> {
  const gov = new GovernanceService(f.store, f.hsm, f.audit, f.directory, createLogger("info", new PassThrough()), f.opts);
  await gov.load();
  return gov;
}

type AuditBody = { seq: number; kind: string; actor: string; outcome: string; reason?: string; key?: string; version?: number; peer?: string; details?: Record<string, unknown> };

async function auditSince(f: Fixture, afterSeq = 0): Promise<AuditBody[]> {
  await f.audit.flush();
  return (await f.store.readAudit(afterSeq, 100_000)).map((e) => JSON.parse(e.body) as AuditBody);
}

async function lastSeq(f: Fixture): Promise<number> {
  await f.audit.flush();
  return (await f.store.lastAudit())?.seq ?? 0;
}

const brief = (events: AuditBody[]) => events.map((e) => [e.kind, e.actor, e.outcome, e.reason].filter((x) => x !== undefined).join(" "));

async function vote(f: Fixture, who: Officer, id: string, decision: Decision = "approve", reason = ""): Promise<ProposalView> {
  const { digest } = (await f.store.getProposal(id))!;
  return f.gov.vote(who.caller, id, decision, digest, signApproval(who.key, decision, digest), reason);
}

/** Proposes as `proposer` and approves by each of `approvers` in turn; returns the last view. */
async function pass(f: Fixture, input: ProposalInput, approvers: Officer[], proposer = alice): Promise<ProposalView> {
  let view = await f.gov.propose(proposer.caller, input);
  for (const who of approvers) view = await vote(f, who, view.record.id);
  assert.equal(view.record.state, "executed", `${input.kind} did not execute`);
  return view;
}

const isCode = (code: CustosErrorCode) => (e: unknown) => e instanceof CustosError && e.code === code;
const rejectsWith = (p: Promise<unknown>, code: CustosErrorCode) => assert.rejects(p, isCode(code));

const envelopeOf = (f: Fixture, secret: Buffer) => buildEnvelope(secret, f.hsm.wrappingKey());
const importOf = (keyId: string, envelope: ImportEnvelope): ProposalInput => ({
  kind: "import_key",
  key: { keyId, exchange: "binance", environment: "testnet", label: keyId, apiKeyId: `api-${keyId}`, algorithm: "hmac-sha256", maxAgeDays: 45 },
  envelope,
});
const grantsOf = (identity: string, keyIds: string[] = [], canFreeze = false): ProposalInput => ({ kind: "set_grants", identity, name: "", cidrs: ["10.0.0.0/8"], keyIds, canFreeze });
const hmac = (secret: Buffer, data: Buffer) => createHmac("sha256", secret).update(data).digest();
const unwraps = (f: Fixture) => f.hsm.calls.filter((c) => c.startsWith("unwrap:"));

describe("GovernanceService quorum", () => {
  it("2 of 3: the first approval leaves an import pending, the second executes it", async () => {
    const f = await fixture({ threshold: 2 });
    const secret = randomBytes(32);
    const proposed = await f.gov.propose(alice.caller, importOf("k1", envelopeOf(f, secret)));
    assert.deepEqual([proposed.record.state, proposed.quorum.needed], ["pending", 2]);

    const first = await vote(f, bob, proposed.record.id);
    assert.deepEqual([first.record.state, first.quorum.needed, first.quorum.approvals], ["pending", 1, ["bob"]]);
    assert.equal(f.hsm.objects.size, 0);
    assert.deepEqual(f.hsm.calls, []);
    assert.equal(await f.store.getKey("k1"), undefined);

    const second = await vote(f, carol, proposed.record.id);
    assert.equal(second.record.state, "executed");
    assert.ok(second.record.executedAt);
    assert.equal(second.record.envelope, null);
    assert.equal(second.record.step, "audited");
    const key = (await f.store.getKey("k1"))!;
    assert.deepEqual(key.versions.map((v) => [v.version, v.state, v.objectId]), [[1, "active", versionObjectId("k1", 1)]]);
    assert.deepEqual(f.hsm.objects.get(versionObjectId("k1", 1)), secret);
    const data = Buffer.from("timestamp=1");
    assert.deepEqual(await f.hsm.sign(versionObjectId("k1", 1), "hmac-sha256", data), hmac(secret, data));

    const events = await auditSince(f);
    assert.deepEqual(brief(events), [
      "governance.init system ok",
      "proposal.create alice ok",
      "proposal.approve bob ok",
      "proposal.approve carol ok",
      "proposal.execute system ok",
      "key.import alice ok",
      "proposal.executed system ok",
    ]);
    assert.ok(events.slice(1).every((e) => e.key === "k1" && e.details?.proposal === proposed.record.id));
    assert.equal(events.find((e) => e.kind === "key.import")!.version, 1);
  });

  for (const proposerCounts of [false, true]) {
    it(`the proposer's approval ${proposerCounts ? "counts" : "does not count"} with proposerCounts=${proposerCounts}`, async () => {
      const f = await fixture({ threshold: proposerCounts ? 2 : 1, proposerCounts });
      const p = await f.gov.propose(alice.caller, grantsOf(ALPHA));
      const own = await vote(f, alice, p.record.id);
      assert.deepEqual([own.record.state, own.quorum.approvals, own.quorum.needed], ["pending", proposerCounts ? ["alice"] : [], 1]);
      assert.equal((await f.store.listVotes(p.record.id)).length, 1, "the proposer's vote is kept either way");
      const done = await vote(f, bob, p.record.id);
      assert.equal(done.record.state, "executed");
      assert.equal((await f.store.getClient(ALPHA))?.role, "trader");
    });
  }

  it("a second approval by the same officer is idempotent", async () => {
    const f = await fixture({ threshold: 2 });
    const p = await f.gov.propose(alice.caller, grantsOf(ALPHA));
    for (let i = 0; i < 2; i++) {
      const v = await vote(f, bob, p.record.id);
      assert.deepEqual([v.record.state, v.quorum.approvals, v.quorum.needed], ["pending", ["bob"], 1]);
    }
    assert.equal((await f.store.listVotes(p.record.id)).length, 1);
    assert.equal((await vote(f, carol, p.record.id)).record.state, "executed");
    assert.equal((await auditSince(f)).filter((e) => e.kind === "proposal.execute").length, 1);
  });

  it("veto: one rejection rejects the proposal and deletes its envelope", async () => {
    const f = await fixture({ threshold: 2 });
    const p = await f.gov.propose(alice.caller, importOf("k-veto", envelopeOf(f, randomBytes(32))));
    assert.notEqual((await f.store.getProposal(p.record.id))!.envelope, null);
    await vote(f, bob, p.record.id);
    const v = await vote(f, carol, p.record.id, "reject", "wrong API key id");
    assert.deepEqual([v.record.state, v.quorum.rejections], ["rejected", ["carol"]]);
    assert.equal((await f.store.getProposal(p.record.id))!.envelope, null);
    await rejectsWith(vote(f, bob, p.record.id), "PROPOSAL_CLOSED");
    assert.deepEqual(f.hsm.calls, []);
    assert.equal(await f.store.getKey("k-veto"), undefined);
    const events = await auditSince(f);
    const reject = events.find((e) => e.kind === "proposal.reject")!;
    assert.deepEqual([reject.actor, reject.outcome, reject.details?.reason], ["carol", "ok", "wrong API key id"]);
    const rejected = events.find((e) => e.kind === "proposal.rejected")!;
    assert.deepEqual([rejected.actor, rejected.details?.by], ["system", "carol"]);
  });

  it("an approval by an officer removed since stops counting", async () => {
    const f = await fixture({ officers: [alice, bob, carol, dave], threshold: 2 });
    const p = await f.gov.propose(alice.caller, grantsOf(ALPHA));
    assert.equal((await vote(f, dave, p.record.id)).quorum.needed, 1);
    await pass(f, { kind: "remove_officer", officerId: "dave" }, [bob, carol]);
    const after = await f.gov.getProposal(alice.caller, p.record.id);
    assert.deepEqual([after.record.state, after.quorum.approvals, after.quorum.needed], ["pending", [], 2]);
    await rejectsWith(vote(f, dave, p.record.id), "NOT_AN_OFFICER");
    assert.equal((await vote(f, bob, p.record.id)).quorum.needed, 1);
    assert.equal((await vote(f, carol, p.record.id)).record.state, "executed");
  });

  it("removing an officer never leaves a threshold no proposal can reach", async () => {
    const f = await fixture({ threshold: 2 });
    const p = await f.gov.propose(alice.caller, { kind: "remove_officer", officerId: "carol" }).catch(() => undefined);
    if (p) for (const who of [bob, carol]) await vote(f, who, p.record.id).catch(() => undefined);
    const active = (await f.store.listOfficers()).filter((o) => o.status === "active").length;
    const threshold = (await f.store.getGovernance())!.threshold;
    assert.doesNotThrow(() => validateRules({ threshold, proposerCounts: false, veto: true }, active), `${active} officers, threshold ${threshold}`);
  });

  it("set_threshold changes what later proposals need", async () => {
    const f = await fixture({ threshold: 1 });
    await rejectsWith(f.gov.propose(alice.caller, { kind: "set_threshold", threshold: 3 }), "INVALID_ARGUMENT"); // 2 approvers besides the proposer
    await pass(f, { kind: "set_threshold", threshold: 2 }, [bob]);
    assert.equal((await f.store.getGovernance())?.threshold, 2);
    const p = await f.gov.propose(alice.caller, grantsOf(ALPHA));
    assert.equal(p.quorum.needed, 2);
    assert.equal((await vote(f, bob, p.record.id)).record.state, "pending");
    assert.equal((await vote(f, carol, p.record.id)).record.state, "executed");
  });
});

describe("GovernanceService votes that are refused", () => {
  it("a signature by another officer's key → BAD_SIGNATURE, audited, not counted", async () => {
    const f = await fixture();
    const p = await f.gov.propose(alice.caller, grantsOf(ALPHA));
    const seq = await lastSeq(f);
    await rejectsWith(f.gov.vote(bob.caller, p.record.id, "approve", p.record.digest, signApproval(carol.key, "approve", p.record.digest)), "BAD_SIGNATURE");
    const events = await auditSince(f, seq);
    assert.deepEqual(brief(events), ["proposal.approve bob denied BAD_SIGNATURE"]);
    assert.deepEqual(events[0]!.details, { proposal: p.record.id, digest: p.record.digest });
    assert.deepEqual(await f.store.listVotes(p.record.id), []);
  });

  it("a signature over another digest, or over the other decision → BAD_SIGNATURE", async () => {
    const f = await fixture();
    const p = await f.gov.propose(alice.caller, grantsOf(ALPHA));
    const other = await f.gov.propose(alice.caller, grantsOf(RISK));
    const d = p.record.digest;
    const cases: Array<[string, Decision, Uint8Array]> = [
      ["approval of another proposal", "approve", signApproval(bob.key, "approve", other.record.digest)],
      ["approval sent as a rejection", "reject", signApproval(bob.key, "approve", d)],
      ["rejection sent as an approval", "approve", signApproval(bob.key, "reject", d)],
      ["truncated signature", "approve", signApproval(bob.key, "approve", d).subarray(0, 63)],
      ["no signature", "approve", new Uint8Array(0)],
    ];
    for (const [what, decision, signature] of cases) {
      await assert.rejects(f.gov.vote(bob.caller, p.record.id, decision, d, signature), isCode("BAD_SIGNATURE"), what);
    }
    assert.deepEqual(await f.store.listVotes(p.record.id), []);
    assert.equal((await f.store.getProposal(p.record.id))!.state, "pending");
  });

  it("a digest that is not the proposal's → DIGEST_MISMATCH", async () => {
    const f = await fixture();
    const p = await f.gov.propose(alice.caller, grantsOf(ALPHA));
    const other = await f.gov.propose(alice.caller, grantsOf(RISK));
    const d = other.record.digest; // validly signed, for the wrong proposal
    await rejectsWith(f.gov.vote(bob.caller, p.record.id, "approve", d, signApproval(bob.key, "approve", d)), "DIGEST_MISMATCH");
    await rejectsWith(f.gov.vote(bob.caller, p.record.id, "approve", "not hex", new Uint8Array(64)), "DIGEST_MISMATCH");
    await rejectsWith(f.gov.vote(bob.caller, "no-such-id", "approve", d, signApproval(bob.key, "approve", d)), "PROPOSAL_NOT_FOUND");
    assert.deepEqual(brief(await auditSince(f, 0)).filter((e) => e.includes("denied")), [
      "proposal.approve bob denied DIGEST_MISMATCH",
      "proposal.approve bob denied DIGEST_MISMATCH",
      "proposal.approve bob denied PROPOSAL_NOT_FOUND",
    ]);
    assert.deepEqual(await f.store.listVotes(p.record.id), []);
    assert.deepEqual(await f.store.listVotes(other.record.id), []);
  });

  it("an expired proposal cannot be approved → PROPOSAL_CLOSED, state expired, envelope deleted", async () => {
    const f = await fixture({ threshold: 1 });
    const p = await f.gov.propose(alice.caller, importOf("k-late", envelopeOf(f, randomBytes(32))), 1);
    await new Promise((r) => setTimeout(r, 10));
    await rejectsWith(vote(f, bob, p.record.id), "PROPOSAL_CLOSED");
    const stored = (await f.store.getProposal(p.record.id))!;
    assert.deepEqual([stored.state, stored.envelope], ["expired", null]);
    assert.deepEqual(f.hsm.calls, []);
    assert.deepEqual(brief((await auditSince(f)).slice(-2)), ["proposal.expired system ok", "proposal.approve bob denied PROPOSAL_CLOSED"]);

    // The sweep ends proposals nobody votes on, at their expiry and not before.
    const q = await f.gov.propose(alice.caller, grantsOf(ALPHA));
    await f.gov.expireDue(Date.parse(q.record.expiresAt) - 1);
    assert.equal((await f.store.getProposal(q.record.id))!.state, "pending");
    await f.gov.expireDue(Date.parse(q.record.expiresAt));
    assert.equal((await f.store.getProposal(q.record.id))!.state, "expired");
  });

  it("an executed proposal cannot be voted on again → PROPOSAL_CLOSED", async () => {
    const f = await fixture({ threshold: 1 });
    const p = await pass(f, grantsOf(ALPHA), [bob]);
    await rejectsWith(vote(f, carol, p.record.id), "PROPOSAL_CLOSED");
    await rejectsWith(vote(f, bob, p.record.id), "PROPOSAL_CLOSED");
    await rejectsWith(vote(f, carol, p.record.id, "reject"), "PROPOSAL_CLOSED");
    assert.equal((await f.store.getProposal(p.record.id))!.state, "executed");
    assert.equal((await auditSince(f)).filter((e) => e.kind === "proposal.executed").length, 1);
  });
});

describe("GovernanceService proposals refused at Propose", () => {
  it("bad metadata, a foreign envelope or an existing key id are refused without touching the HSM", async () => {
    const f = await fixture({ threshold: 1 });
    const good = envelopeOf(f, randomBytes(32));
    await pass(f, importOf("k-taken", good), [bob]);
    const callsBefore = f.hsm.calls.length;
    const base = importOf("k-new", good) as Extract<ProposalInput, { kind: "import_key" }>;
    const cases: Array<[string, ProposalInput, CustosErrorCode]> = [
      ["key id with spaces", { ...base, key: { ...base.key, keyId: "bad key" } }, "INVALID_ARGUMENT"],
      ["upper-case exchange", { ...base, key: { ...base.key, exchange: "Binance" } }, "INVALID_ARGUMENT"],
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
    assert.equal((await f.store.listProposals()).length, 1, "only the first import was stored");
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
    await f.store.upsertClient({ identity: ALPHA, name: "alpha", role: "trader", cidrs: ["10.0.0.0/8"], createdAt: new Date().toISOString() });
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
    assert.deepEqual(await f.store.listProposals(), []);
  });

  it("init a second time → GOVERNANCE_EXISTS, officers and threshold unchanged", async () => {
    const f = await fixture({ threshold: 2 });
    await rejectsWith(f.gov.init(null, [dave.spec], 1), "GOVERNANCE_EXISTS");
    assert.equal((await f.store.getGovernance())?.threshold, 2);
    assert.deepEqual((await f.store.listOfficers()).map((o) => o.id), ["alice", "bob", "carol"]);
    assert.deepEqual(brief(await auditSince(f)), ["governance.init system ok", "governance.init system denied GOVERNANCE_EXISTS"]);
  });

  it("propose before init → GOVERNANCE_NOT_INITIALISED", async () => {
    const f = await fixture({ init: false });
    assert.equal(f.gov.initialised, false);
    await rejectsWith(f.gov.propose(alice.caller, grantsOf(ALPHA)), "GOVERNANCE_NOT_INITIALISED");
    assert.deepEqual(await f.store.listProposals(), []);
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
    const [v1, v2] = (await f.store.getKey("k"))!.versions;
    assert.deepEqual([v1!.state, v2!.state, v2!.version, v2!.apiKeyId], ["retiring", "active", 2, "api-k-2"]);
    const retireAt = Date.parse(v1!.retireAt!);
    assert.equal(retireAt, Date.parse(v2!.activatedAt!) + grace * 1000);
    assert.ok(retireAt >= started + grace * 1000 && retireAt <= finished + grace * 1000);
    const data = Buffer.from("x");
    assert.deepEqual(await f.hsm.sign(versionObjectId("k", 2), "hmac-sha256", data), hmac(s2, data));
    assert.ok(f.hsm.objects.has(versionObjectId("k", 1)));

    await f.gov.retireDue(retireAt - 1);
    assert.equal((await f.store.getKey("k"))!.versions[0]!.state, "retiring");
    await f.gov.retireDue(retireAt);
    assert.deepEqual((await f.store.getKey("k"))!.versions.map((v) => v.state), ["destroyed", "active"]);
    assert.deepEqual([...f.hsm.objects.keys()], [versionObjectId("k", 2)]);
    const destroyed = (await auditSince(f)).filter((e) => e.kind === "key.destroy_version");
    assert.deepEqual(destroyed.map((e) => [e.actor, e.key, e.version, e.details?.reason]), [["system", "k", 1, "grace period ended"]]);
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
    assert.deepEqual((await f.store.getKey("k"))!.versions.map((v) => v.state), ["destroyed", "active"]);
    assert.equal(f.hsm.objects.has(versionObjectId("k", 1)), false);
    await rejectsWith(f.gov.propose(alice.caller, { kind: "destroy_version", keyId: "k", version: 1 }), "PRECONDITION_FAILED");
  });

  it("an envelope that does not open fails the proposal: the vote answers ENVELOPE_INVALID, nothing is left behind", async () => {
    const f = await fixture({ threshold: 1 });
    const good = envelopeOf(f, randomBytes(32));
    const bad = { ...good, wrappedKey: Buffer.from(good.wrappedKey).fill(0, 4, 8) };
    const p = await f.gov.propose(alice.caller, importOf("k-bad", bad));
    await rejectsWith(vote(f, bob, p.record.id), "ENVELOPE_INVALID");
    const stored = (await f.store.getProposal(p.record.id))!;
    assert.equal(stored.state, "failed");
    assert.ok(stored.failure);
    assert.equal(stored.envelope, null);
    assert.equal(await f.store.getKey("k-bad"), undefined);
    assert.equal(f.hsm.objects.size, 0);
    assert.deepEqual(brief((await auditSince(f)).slice(-2)), ["proposal.execute system ok", "proposal.failed system failed ENVELOPE_INVALID"]);
    await pass(f, importOf("k-bad", good), [bob]); // nothing half-done blocks the id
  });
});

describe("GovernanceService freeze and thaw", () => {
  it("an officer and a client with canFreeze freeze at once; a trader without it → ROLE_NOT_ALLOWED", async () => {
    const f = await fixture({ threshold: 1 });
    await pass(f, importOf("k", envelopeOf(f, randomBytes(32))), [bob]);
    await pass(f, grantsOf(ALPHA, ["k"]), [bob]);
    await pass(f, grantsOf(RISK, [], true), [bob]);

    await f.gov.freeze(carol.caller, "key", "k", "leaked in a screenshot");
    assert.deepEqual([Boolean((await f.store.getKey("k"))!.frozenAt), (await f.store.getKey("k"))!.frozenReason], [true, "leaked in a screenshot"]);
    await f.gov.freeze({ identity: RISK, ip: IP }, "client", ALPHA, "runaway orders");
    assert.ok((await f.store.getClient(ALPHA))!.frozenAt);
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
    assert.ok((await f.store.getKey("k"))!.frozenAt, "still frozen while the thaw is pending");
    assert.equal((await vote(f, bob, p.record.id)).record.state, "executed");
    assert.equal((await f.store.getKey("k"))!.frozenAt ?? null, null);
    assert.equal(f.directory.key("k")!.frozenAt ?? null, null);
    assert.deepEqual(brief((await auditSince(f)).filter((e) => e.kind === "thaw")), ["thaw alice ok"]);
  });
});

describe("GovernanceService crash recovery", () => {
  for (const unwrapped of [false, true]) {
    it(`resume finishes an executing import exactly once (HSM object ${unwrapped ? "already unwrapped" : "not yet created"})`, async () => {
      const f = await fixture({ threshold: 1 });
      const secret = randomBytes(32);
      const envelope = envelopeOf(f, secret);
      const p = await f.gov.propose(alice.caller, importOf("k-crash", envelope));
      // What a crash leaves: approved and marked executing, the envelope still stored, maybe the secret already in the HSM.
      assert.ok(await f.store.updateProposal(p.record.id, "pending", { state: "executing" }));
      if (unwrapped) await f.hsm.unwrapSecret(envelope, { objectId: versionObjectId("k-crash", 1), label: "binance/k-crash/v1" });
      const seq = await lastSeq(f);
      const unwrapsBefore = unwraps(f).length;

      const gov = await restarted(f);
      await gov.resume();
      await gov.resume(); // a second start-up finds nothing to do
      assert.equal((await f.store.getProposal(p.record.id))!.state, "executed");
      assert.deepEqual((await f.store.getKey("k-crash"))!.versions.map((v) => [v.version, v.state]), [[1, "active"]]);
      assert.deepEqual([...f.hsm.objects.keys()], [versionObjectId("k-crash", 1)]);
      assert.deepEqual(f.hsm.objects.get(versionObjectId("k-crash", 1)), secret);
      assert.equal(unwraps(f).length - unwrapsBefore, unwrapped ? 0 : 1);
      assert.deepEqual(brief(await auditSince(f, seq)), [
        "reconcile.resume system ok",
        ...(unwrapped ? ["reconcile.adopt system ok"] : []),
        "key.import alice ok",
        "proposal.executed system ok",
      ]);
    });
  }

  it("resume executes a pending proposal whose quorum was reached before the crash, and audits an unaudited completion", async () => {
    const f = await fixture({ threshold: 1 });
    const p = await f.gov.propose(alice.caller, grantsOf(ALPHA));
    const sig = signApproval(bob.key, "approve", p.record.digest).toString("base64");
    await f.store.addVote({ proposalId: p.record.id, officerId: "bob", decision: "approve", digest: p.record.digest, signature: sig, at: new Date().toISOString() });
    // Another one crashed after its change was recorded, before proposal.executed was audited.
    const q = await f.gov.propose(alice.caller, grantsOf(RISK));
    await f.store.updateProposal(q.record.id, "pending", { state: "executing" });
    await f.store.setClientAccess({ identity: RISK, name: RISK, role: "trader", cidrs: [], createdAt: new Date().toISOString() }, [], { proposalId: q.record.id, at: new Date().toISOString() });
    const seq = await lastSeq(f);

    const gov = await restarted(f);
    await gov.resume();
    await gov.resume();
    assert.equal((await f.store.getProposal(p.record.id))!.state, "executed");
    assert.equal((await f.store.getClient(ALPHA))?.role, "trader");
    assert.equal((await f.store.getProposal(q.record.id))!.step, "audited");
    const executed = (await auditSince(f, seq)).filter((e) => e.kind === "proposal.executed").map((e) => e.details?.proposal);
    assert.deepEqual(executed.sort(), [p.record.id, q.record.id].sort());
  });

  it("a quorum reached before expiry and a restart after it: the proposal's state and its effect agree", async () => {
    const f = await fixture({ threshold: 1 });
    await pass(f, importOf("k", envelopeOf(f, randomBytes(32))), [bob]);
    await pass(f, { kind: "rotate_key", keyId: "k", apiKeyId: "", graceSeconds: 3600, envelope: envelopeOf(f, randomBytes(32)) }, [bob]);
    const p = await f.gov.propose(alice.caller, { kind: "destroy_version", keyId: "k", version: 1 }, 30);
    const sig = signApproval(bob.key, "approve", p.record.digest).toString("base64");
    await f.store.addVote({ proposalId: p.record.id, officerId: "bob", decision: "approve", digest: p.record.digest, signature: sig, at: new Date().toISOString() });
    await new Promise((r) => setTimeout(r, 60));
    const seq = await lastSeq(f);
    await (await restarted(f)).resume();
    const state = (await f.store.getProposal(p.record.id))!.state;
    const v1 = (await f.store.getKey("k"))!.versions[0]!;
    const events = await auditSince(f, seq);
    if (state === "executed") assert.equal(v1.state, "destroyed");
    else assert.deepEqual([state, v1.state, f.hsm.objects.has(versionObjectId("k", 1))], ["expired", "retiring", true]);
    assert.ok(!events.some((e) => e.kind === "proposal.failed" && state !== "failed"), brief(events).join("; "));
  });

  it("destroyOrphans destroys an unreferenced custos object, not a version's nor an executing proposal's nor a foreign one", async () => {
    const f = await fixture({ threshold: 1 });
    await pass(f, importOf("k", envelopeOf(f, randomBytes(32))), [bob]);
    const envelope = envelopeOf(f, randomBytes(32));
    const inFlight = await f.gov.propose(alice.caller, importOf("k-flight", envelope));
    await f.store.updateProposal(inFlight.record.id, "pending", { state: "executing" });
    await f.hsm.unwrapSecret(envelope, { objectId: versionObjectId("k-flight", 1), label: "k-flight" });
    f.hsm.put(versionObjectId("k-ghost", 1), randomBytes(32));
    f.hsm.put("other-app:key", randomBytes(32));
    const seq = await lastSeq(f);

    assert.deepEqual(await f.gov.destroyOrphans(), [versionObjectId("k-ghost", 1)]);
    assert.deepEqual([...f.hsm.objects.keys()].sort(), [versionObjectId("k", 1), versionObjectId("k-flight", 1), "other-app:key"].sort());
    const events = await auditSince(f, seq);
    assert.deepEqual(events.map((e) => [e.kind, e.details?.objectId]), [["reconcile.destroy_orphan", versionObjectId("k-ghost", 1)]]);
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
    const bodies = (await f.store.readAudit(0, 100_000)).map((e) => e.body);
    assert.ok(bodies.length > 10);
    for (const text of [...bodies, f.logs()]) {
      for (const form of forbidden) assert.ok(!text.includes(form), `secret material in: ${text.slice(0, 200)}`);
    }
  });
});
