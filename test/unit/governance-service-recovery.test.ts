import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { signApproval } from "../../src/governance/officer-key.js";
import { versionObjectId } from "../../src/keys/model.js";
import {
  ALPHA,
  RISK,
  alice,
  bob,
  closeFixtures,
  fixture,
  restarted,
  auditSince,
  lastSeq,
  brief,
  pass,
  envelopeOf,
  importOf,
  grantsOf,
  unwraps,
} from "./governance-fixture.js";

/** GovernanceService after a crash: resume and orphaned HSM objects (setup in governance-fixture.ts). */

afterEach(closeFixtures);

describe("GovernanceService crash recovery", () => {
  for (const unwrapped of [false, true]) {
    it(`resume finishes an executing import exactly once (HSM object ${unwrapped ? "already unwrapped" : "not yet created"})`, async () => {
      const f = await fixture({ threshold: 1 });
      const secret = randomBytes(32);
      const envelope = envelopeOf(f, secret);
      const p = await f.gov.propose(alice.caller, importOf("k-crash", envelope));
      // What a crash leaves: approved and marked executing, the envelope still stored, maybe the secret already in the HSM.
      assert.ok(await f.store.governance.updateProposal(p.record.id, "pending", { state: "executing" }));
      if (unwrapped) await f.hsm.unwrapSecret(envelope, { objectId: versionObjectId("k-crash", 1), label: "binance/k-crash/v1" });
      const seq = await lastSeq(f);
      const unwrapsBefore = unwraps(f).length;

      const gov = await restarted(f);
      await gov.resume();
      await gov.resume(); // a second start-up finds nothing to do
      assert.equal((await f.store.governance.getProposal(p.record.id))!.state, "executed");
      assert.deepEqual(
        (await f.store.keys.getKey("k-crash"))!.versions.map((v) => [v.version, v.state]),
        [[1, "active"]],
      );
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
    await f.store.governance.addVote({
      proposalId: p.record.id,
      officerId: "bob",
      decision: "approve",
      digest: p.record.digest,
      signature: sig,
      at: new Date().toISOString(),
    });
    // Another one crashed after its change was recorded, before proposal.executed was audited.
    const q = await f.gov.propose(alice.caller, grantsOf(RISK));
    await f.store.governance.updateProposal(q.record.id, "pending", { state: "executing" });
    await f.store.transaction(async (tx) => {
      await tx.clients.setClientAccess({ identity: RISK, name: RISK, role: "trader", cidrs: [], createdAt: new Date().toISOString() }, []);
      await tx.governance.markExecuted(q.record.id, new Date().toISOString());
    });
    const seq = await lastSeq(f);

    const gov = await restarted(f);
    await gov.resume();
    await gov.resume();
    assert.equal((await f.store.governance.getProposal(p.record.id))!.state, "executed");
    assert.equal((await f.store.clients.getClient(ALPHA))?.role, "trader");
    assert.equal((await f.store.governance.getProposal(q.record.id))!.step, "audited");
    const executed = (await auditSince(f, seq)).filter((e) => e.kind === "proposal.executed").map((e) => e.details?.proposal);
    assert.deepEqual(executed.sort(), [p.record.id, q.record.id].sort());
  });

  it("resume writes only the completion records a crash left out, however much was audited after them", async () => {
    const f = await fixture({ threshold: 1 });
    const p = await f.gov.propose(alice.caller, importOf("k-half", envelopeOf(f, randomBytes(32))));
    // The crash: executed (change and mark in one transaction), key.import audited, proposal.executed not yet.
    assert.ok(await f.store.governance.updateProposal(p.record.id, "pending", { state: "executed", step: "recorded", executedAt: new Date().toISOString() }));
    const ref = { proposal: p.record.id, digest: p.record.digest };
    await f.audit.recordNow({ kind: "key.import", actor: alice.caller.identity!, outcome: "ok", key: "k-half", version: 1, details: ref });
    // Other traffic lands on the chain before the restart: more than one page of the backward walk.
    for (let i = 0; i < 1_234; i++) f.audit.record({ kind: "sign", actor: ALPHA, outcome: "allowed", key: "other" });
    const seq = await lastSeq(f);

    await (await restarted(f)).resume();
    assert.equal((await f.store.governance.getProposal(p.record.id))!.step, "audited");
    assert.deepEqual(brief(await auditSince(f, seq)), ["reconcile.complete system ok", "proposal.executed system ok"]);
    const all = await auditSince(f);
    assert.equal(all.filter((e) => e.kind === "key.import" && e.details?.proposal === p.record.id).length, 1);
  });

  it("a quorum reached before expiry and a restart after it: the proposal's state and its effect agree", async () => {
    const f = await fixture({ threshold: 1 });
    await pass(f, importOf("k", envelopeOf(f, randomBytes(32))), [bob]);
    await pass(f, { kind: "rotate_key", keyId: "k", apiKeyId: "", graceSeconds: 3600, envelope: envelopeOf(f, randomBytes(32)) }, [bob]);
    const p = await f.gov.propose(alice.caller, { kind: "destroy_version", keyId: "k", version: 1 }, 30);
    const sig = signApproval(bob.key, "approve", p.record.digest).toString("base64");
    await f.store.governance.addVote({
      proposalId: p.record.id,
      officerId: "bob",
      decision: "approve",
      digest: p.record.digest,
      signature: sig,
      at: new Date().toISOString(),
    });
    f.clock.advance(60);
    const seq = await lastSeq(f);
    await (await restarted(f)).resume();
    const state = (await f.store.governance.getProposal(p.record.id))!.state;
    const v1 = (await f.store.keys.getKey("k"))!.versions[0]!;
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
    await f.store.governance.updateProposal(inFlight.record.id, "pending", { state: "executing" });
    await f.hsm.unwrapSecret(envelope, { objectId: versionObjectId("k-flight", 1), label: "k-flight" });
    f.hsm.put(versionObjectId("k-ghost", 1), randomBytes(32));
    f.hsm.put("other-app:key", randomBytes(32));
    const seq = await lastSeq(f);

    assert.deepEqual(await f.gov.destroyOrphans(), [versionObjectId("k-ghost", 1)]);
    assert.deepEqual([...f.hsm.objects.keys()].sort(), [versionObjectId("k", 1), versionObjectId("k-flight", 1), "other-app:key"].sort());
    const events = await auditSince(f, seq);
    assert.deepEqual(
      events.map((e) => [e.kind, e.details?.objectId]),
      [["reconcile.destroy_orphan", versionObjectId("k-ghost", 1)]],
    );
  });
});
