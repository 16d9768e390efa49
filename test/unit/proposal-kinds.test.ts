import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { PROPOSAL_KIND_TABLE, kindModule, keyOf, type ProposalInput } from "../../src/governance/kinds/index.js";
import { PROPOSAL_KINDS, buildProposal, canonicalProposal, type ProposalContent } from "../../src/governance/proposal.js";
import { CustosError } from "../../src/errors.js";
import { FreezeTarget } from "../../src/gen/custos/v1/custody.js";
import { proposalInputOf } from "../../src/transport/grpc/proposal-wire.js";
import { versionObjectId } from "../../src/keys/model.js";
import { ALPHA, HOUR, alice, bob, closeFixtures, envelopeOf, fixture, importOf, rejectsWith, vote } from "./governance-fixture.js";

/** One input of every kind, as an officer would send it. */
function samples(envelope: ReturnType<typeof envelopeOf>): ProposalInput[] {
  const key = {
    keyId: "k",
    exchange: "binance",
    environment: "testnet" as const,
    label: "k",
    apiKeyId: "api",
    algorithm: "hmac-sha256" as const,
    maxAgeDays: 45,
  };
  return [
    importOf("k", envelope),
    { kind: "generate_key", key: { ...key, algorithm: "ed25519" } },
    { kind: "rotate_key", keyId: "k", apiKeyId: "api-2", graceSeconds: 60, envelope },
    { kind: "set_api_key_id", keyId: "k", apiKeyId: "api-3" },
    { kind: "destroy_version", keyId: "k", version: 1 },
    { kind: "set_grants", identity: ALPHA, name: "alpha", cidrs: ["10.0.0.0/8"], keyIds: ["k"], canFreeze: true },
    { kind: "set_policy", keyId: "k", policyJson: "{}" },
    { kind: "add_officer", officer: { ...alice.spec, id: "erin", identity: "spiffe://custos/officer/erin" } },
    { kind: "remove_officer", officerId: "bob" },
    { kind: "set_threshold", threshold: 2 },
    { kind: "thaw", target: "client", id: ALPHA },
    {
      kind: "add_credential",
      officerId: "alice",
      passkey: { id: "Y3JlZA", publicKey: "a2V5", counter: 0, transports: ["usb"], aaguid: "00", label: "yubikey" },
    },
    { kind: "remove_credential", officerId: "alice", credentialId: "Y3JlZA" },
  ];
}

describe("proposal kinds", () => {
  after(closeFixtures);

  it("the table has one module per kind, each under its own name", () => {
    // The kinds stored proposals and audit records name: renaming one would orphan them.
    const stored = ["import_key", "rotate_key", "destroy_version", "set_grants", "set_policy", "add_officer", "remove_officer"];
    stored.push("set_threshold", "thaw", "generate_key", "set_api_key_id", "add_credential", "remove_credential");
    assert.deepEqual([...PROPOSAL_KINDS].sort(), stored.sort());
    for (const [name, m] of Object.entries(PROPOSAL_KIND_TABLE)) assert.equal(m.kind, name);
    assert.equal(keyOf({ kind: "rotate_key", target: "k" }), "k");
    assert.equal(keyOf({ kind: "set_grants", target: ALPHA }), undefined);
    assert.throws(
      () => kindModule("mint_money"),
      (e: unknown) => e instanceof CustosError && e.code === "INTERNAL",
    );
  });

  it("every kind's signed parameters read back typed from the canonical JSON the officers sign", async () => {
    const f = await fixture();
    const inputs = samples(envelopeOf(f, randomBytes(32)));
    assert.deepEqual(inputs.map((i) => i.kind).sort(), [...PROPOSAL_KINDS].sort(), "a sample of every kind");
    for (const input of inputs) {
      const m = kindModule(input.kind);
      const { target, params } = m.content(input);
      const canonical = canonicalProposal(buildProposal({ kind: input.kind, target, params, proposer: "alice" }));
      // The summary decodes the parameters: a kind whose decode disagrees with its content throws INTERNAL here.
      const lines = await m.summarise({ store: f.store }, JSON.parse(canonical) as ProposalContent, undefined);
      assert.ok(lines.length > 0 && lines.every((l) => typeof l === "string" && l.length > 0), `${input.kind}: ${JSON.stringify(lines)}`);
    }
  });

  it("every case of the Propose oneof is decoded by exactly one kind, into that kind's input", () => {
    const wireCases = Object.values(PROPOSAL_KIND_TABLE).flatMap((m) => (m.wire ? [[m.wire.case, m.kind]] : []));
    assert.deepEqual(Object.fromEntries(wireCases), {
      importKey: "import_key",
      rotateKey: "rotate_key",
      destroyVersion: "destroy_version",
      setGrants: "set_grants",
      setPolicy: "set_policy",
      addOfficer: "add_officer",
      removeOfficer: "remove_officer",
      setThreshold: "set_threshold",
      thaw: "thaw",
      generateKey: "generate_key",
      setApiKeyId: "set_api_key_id",
    });
    assert.equal(wireCases.length, 11, "no case claimed twice");
    const thawClient = proposalInputOf({ kind: { $case: "thaw", thaw: { target: FreezeTarget.FREEZE_TARGET_CLIENT, id: ALPHA } }, ttlSeconds: 0 });
    assert.deepEqual(thawClient, { kind: "thaw", target: "client", id: ALPHA });
    const rotate = proposalInputOf({
      kind: { $case: "rotateKey", rotateKey: { keyId: "k", apiKeyId: "a", graceSeconds: 0, envelope: undefined, signedPassphrase: "" } },
      ttlSeconds: 0,
    });
    assert.deepEqual(rotate, { kind: "rotate_key", keyId: "k", apiKeyId: "a", graceSeconds: 24 * 3600 }, "proto3's 0 grace is the default day");
    assert.throws(
      () => proposalInputOf({ kind: undefined, ttlSeconds: 0 }),
      (e: unknown) => e instanceof CustosError && e.code === "INVALID_ARGUMENT",
    );
  });

  it("an input handed to another kind's module is refused as a bug, not run", () => {
    assert.throws(
      () => kindModule("set_threshold").content({ kind: "thaw" }),
      (e: unknown) => e instanceof CustosError && e.code === "INTERNAL",
    );
  });

  it("a record step that cannot commit rolls back with the executed mark, and the HSM object the run created is destroyed", async () => {
    const f = await fixture({ threshold: 1 });
    const p = await f.gov.propose(alice.caller, importOf("k-full", envelopeOf(f, randomBytes(32))));
    // The disk fills between the record step and COMMIT: the store's transaction fails after the callback ran.
    const commit = f.store.transaction.bind(f.store);
    f.store.transaction = (fn) =>
      commit(async (tx) => {
        await fn(tx);
        throw new CustosError("STORE_ERROR", "disk full");
      });
    await rejectsWith(vote(f, bob, p.record.id), "STORE_ERROR");
    assert.ok(
      f.hsm.calls.some((c) => c.startsWith("unwrap:")),
      "the HSM step ran",
    );
    assert.equal(f.hsm.objects.has(versionObjectId("k-full", 1)), false, "no orphan left in the HSM");
    assert.equal(await f.store.keys.getKey("k-full"), undefined, "nothing recorded");
    assert.equal((await f.store.governance.getProposal(p.record.id))!.state, "failed");
  });

  it("governance reads time from its injected clock: a day-long proposal is closed once the clock passes its expiry", async () => {
    const f = await fixture({ threshold: 2 });
    const p = await f.gov.propose(alice.caller, { kind: "set_threshold", threshold: 1 });
    assert.equal(Date.parse(p.record.expiresAt) - Date.parse(p.record.createdAt), 24 * HOUR);
    f.clock.advance(24 * HOUR - 60_000);
    await vote(f, bob, p.record.id); // still open a minute before its expiry
    f.clock.advance(60_000);
    await rejectsWith(vote(f, alice, p.record.id), "PROPOSAL_CLOSED");
    assert.equal((await f.store.governance.getProposal(p.record.id))!.state, "expired");
  });
});
