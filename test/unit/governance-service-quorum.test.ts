import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { signApproval } from "../../src/governance/officer-key.js";
import type { Decision } from "../../src/governance/proposal.js";
import { validateRules } from "../../src/governance/quorum.js";
import { versionObjectId } from "../../src/keys/model.js";
import {
  ALPHA,
  RISK,
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

/** GovernanceService: what counts toward a quorum, and which votes are refused (setup in governance-fixture.ts). */

afterEach(closeFixtures);

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
    assert.equal(await f.store.keys.getKey("k1"), undefined);

    const second = await vote(f, carol, proposed.record.id);
    assert.equal(second.record.state, "executed");
    assert.ok(second.record.executedAt);
    assert.equal(second.record.envelope, null);
    assert.equal(second.record.step, "audited");
    const key = (await f.store.keys.getKey("k1"))!;
    assert.deepEqual(
      key.versions.map((v) => [v.version, v.state, v.objectId]),
      [[1, "active", versionObjectId("k1", 1)]],
    );
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
      assert.equal((await f.store.governance.listVotes(p.record.id)).length, 1, "the proposer's vote is kept either way");
      const done = await vote(f, bob, p.record.id);
      assert.equal(done.record.state, "executed");
      assert.equal((await f.store.clients.getClient(ALPHA))?.role, "trader");
    });
  }

  it("a second approval by the same officer is idempotent", async () => {
    const f = await fixture({ threshold: 2 });
    const p = await f.gov.propose(alice.caller, grantsOf(ALPHA));
    for (let i = 0; i < 2; i++) {
      const v = await vote(f, bob, p.record.id);
      assert.deepEqual([v.record.state, v.quorum.approvals, v.quorum.needed], ["pending", ["bob"], 1]);
    }
    assert.equal((await f.store.governance.listVotes(p.record.id)).length, 1);
    assert.equal((await vote(f, carol, p.record.id)).record.state, "executed");
    assert.equal((await auditSince(f)).filter((e) => e.kind === "proposal.execute").length, 1);
  });

  it("veto: one rejection rejects the proposal and deletes its envelope", async () => {
    const f = await fixture({ threshold: 2 });
    const p = await f.gov.propose(alice.caller, importOf("k-veto", envelopeOf(f, randomBytes(32))));
    assert.notEqual((await f.store.governance.getProposal(p.record.id))!.envelope, null);
    await vote(f, bob, p.record.id);
    const v = await vote(f, carol, p.record.id, "reject", "wrong API key id");
    assert.deepEqual([v.record.state, v.quorum.rejections], ["rejected", ["carol"]]);
    assert.equal((await f.store.governance.getProposal(p.record.id))!.envelope, null);
    await rejectsWith(vote(f, bob, p.record.id), "PROPOSAL_CLOSED");
    assert.deepEqual(f.hsm.calls, []);
    assert.equal(await f.store.keys.getKey("k-veto"), undefined);
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
    const active = (await f.store.governance.listOfficers()).filter((o) => o.status === "active").length;
    const threshold = (await f.store.governance.getGovernance())!.threshold;
    assert.doesNotThrow(() => validateRules({ threshold, proposerCounts: false, veto: true }, active), `${active} officers, threshold ${threshold}`);
  });

  it("set_threshold changes what later proposals need", async () => {
    const f = await fixture({ threshold: 1 });
    await rejectsWith(f.gov.propose(alice.caller, { kind: "set_threshold", threshold: 3 }), "INVALID_ARGUMENT"); // 2 approvers besides the proposer
    await pass(f, { kind: "set_threshold", threshold: 2 }, [bob]);
    assert.equal((await f.store.governance.getGovernance())?.threshold, 2);
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
    assert.deepEqual(await f.store.governance.listVotes(p.record.id), []);
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
    assert.deepEqual(await f.store.governance.listVotes(p.record.id), []);
    assert.equal((await f.store.governance.getProposal(p.record.id))!.state, "pending");
  });

  it("a digest that is not the proposal's → DIGEST_MISMATCH", async () => {
    const f = await fixture();
    const p = await f.gov.propose(alice.caller, grantsOf(ALPHA));
    const other = await f.gov.propose(alice.caller, grantsOf(RISK));
    const d = other.record.digest; // validly signed, for the wrong proposal
    await rejectsWith(f.gov.vote(bob.caller, p.record.id, "approve", d, signApproval(bob.key, "approve", d)), "DIGEST_MISMATCH");
    await rejectsWith(f.gov.vote(bob.caller, p.record.id, "approve", "not hex", new Uint8Array(64)), "DIGEST_MISMATCH");
    await rejectsWith(f.gov.vote(bob.caller, "no-such-id", "approve", d, signApproval(bob.key, "approve", d)), "PROPOSAL_NOT_FOUND");
    assert.deepEqual(
      brief(await auditSince(f, 0)).filter((e) => e.includes("denied")),
      ["proposal.approve bob denied DIGEST_MISMATCH", "proposal.approve bob denied DIGEST_MISMATCH", "proposal.approve bob denied PROPOSAL_NOT_FOUND"],
    );
    assert.deepEqual(await f.store.governance.listVotes(p.record.id), []);
    assert.deepEqual(await f.store.governance.listVotes(other.record.id), []);
  });

  it("an expired proposal cannot be approved → PROPOSAL_CLOSED, state expired, envelope deleted", async () => {
    const f = await fixture({ threshold: 1 });
    const p = await f.gov.propose(alice.caller, importOf("k-late", envelopeOf(f, randomBytes(32))), 1);
    f.clock.advance(10);
    await rejectsWith(vote(f, bob, p.record.id), "PROPOSAL_CLOSED");
    const stored = (await f.store.governance.getProposal(p.record.id))!;
    assert.deepEqual([stored.state, stored.envelope], ["expired", null]);
    assert.deepEqual(f.hsm.calls, []);
    assert.deepEqual(brief((await auditSince(f)).slice(-2)), ["proposal.expired system ok", "proposal.approve bob denied PROPOSAL_CLOSED"]);

    // The sweep ends proposals nobody votes on, at their expiry and not before.
    const q = await f.gov.propose(alice.caller, grantsOf(ALPHA));
    await f.gov.expireDue(Date.parse(q.record.expiresAt) - 1);
    assert.equal((await f.store.governance.getProposal(q.record.id))!.state, "pending");
    await f.gov.expireDue(Date.parse(q.record.expiresAt));
    assert.equal((await f.store.governance.getProposal(q.record.id))!.state, "expired");
  });

  it("an executed proposal cannot be voted on again → PROPOSAL_CLOSED", async () => {
    const f = await fixture({ threshold: 1 });
    const p = await pass(f, grantsOf(ALPHA), [bob]);
    await rejectsWith(vote(f, carol, p.record.id), "PROPOSAL_CLOSED");
    await rejectsWith(vote(f, bob, p.record.id), "PROPOSAL_CLOSED");
    await rejectsWith(vote(f, carol, p.record.id, "reject"), "PROPOSAL_CLOSED");
    assert.equal((await f.store.governance.getProposal(p.record.id))!.state, "executed");
    assert.equal((await auditSince(f)).filter((e) => e.kind === "proposal.executed").length, 1);
  });
});
