import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { CustosError, type CustosErrorCode } from "../../src/errors.js";
import type { OfficerRecord, PasskeyRecord, ProposalRecord } from "../../src/governance/model.js";
import type { KeyRecord, KeyVersionRecord } from "../../src/keys/model.js";
import type { ClientRecord } from "../../src/signing/clients.js";
import type { Store, StoredAuditEvent, StoredConsoleSession } from "../../src/store/store.js";

/**
 * The store contract: what every Store implementation must do, whatever its backend. Run it with
 * a function that makes a fresh, empty, migrated store (test/unit/store-contract.test.ts runs it
 * on SQLite; a PostgreSQL store runs it unchanged).
 */
export function storeContract(backend: string, makeStore: () => Promise<Store>): void {
  describe(`store contract: ${backend}`, () => {
    const opened: Store[] = [];
    const fresh = async (): Promise<Store> => {
      const s = await makeStore();
      opened.push(s);
      return s;
    };
    after(async () => {
      for (const s of opened) await s.close().catch(() => undefined);
    });

    it("keys: creates a key with its first version, refuses a second with the same id, lists them in id order", async () => {
      const s = await fresh();
      await s.keys.createKey(keyRecord("k-b"), version("k-b", 1, "active"));
      await s.keys.createKey(keyRecord("k-a"), version("k-a", 1, "active"));
      await rejectsWith(s.keys.createKey(keyRecord("k-a"), version("k-a", 1, "active")), "KEY_EXISTS");
      const a = await s.keys.getKey("k-a");
      assert.deepEqual(a, { ...keyRecord("k-a"), frozenAt: null, frozenReason: null, exchangePermissions: null, versions: [version("k-a", 1, "active")] });
      assert.deepEqual(
        (await s.keys.listKeys()).map((k) => k.id),
        ["k-a", "k-b"],
      );
      assert.equal(await s.keys.getKey("k-none"), undefined);
    });

    it("keys: a rotation retires the active version until its date and activates the next", async () => {
      const s = await fresh();
      await s.keys.createKey(keyRecord("k"), version("k", 1, "active"));
      await s.keys.rotateKey("k", version("k", 2, "active"), at(90));
      const k = (await s.keys.getKey("k"))!;
      assert.deepEqual(
        k.versions.map((v) => [v.version, v.state, v.retireAt]),
        [
          [1, "retiring", at(90)],
          [2, "active", null],
        ],
      );
      await s.keys.updateVersionState("k", 1, "destroyed");
      assert.equal((await s.keys.getKey("k"))!.versions[0]!.state, "destroyed");
    });

    it("keys: a pending version signs nothing until activated with its API key id; activating none is PRECONDITION_FAILED", async () => {
      const s = await fresh();
      await s.keys.createKey(keyRecord("k"), version("k", 1, "active"));
      await s.keys.addPendingVersion({ ...version("k", 2, "pending"), activatedAt: null });
      await rejectsWith(s.keys.activatePendingVersion("k", 3, "api-3", at(5), at(60)), "PRECONDITION_FAILED");
      await s.keys.activatePendingVersion("k", 2, "api-2", at(5), at(60));
      const k = (await s.keys.getKey("k"))!;
      assert.deepEqual(
        k.versions.map((v) => [v.state, v.apiKeyId, v.activatedAt, v.retireAt]),
        [
          ["retiring", null, at(0), at(60)],
          ["active", "api-2", at(5), null],
        ],
      );
    });

    it("keys: freeze and thaw, the API key id of the key and its active version, policies replaced", async () => {
      const s = await fresh();
      await s.keys.createKey(keyRecord("k"), version("k", 1, "active"));
      await s.keys.setKeyFrozen("k", { at: at(1), reason: "anomaly" });
      assert.deepEqual(pick(await s.keys.getKey("k"), "frozenAt", "frozenReason"), { frozenAt: at(1), frozenReason: "anomaly" });
      await s.keys.setKeyFrozen("k", null);
      assert.equal((await s.keys.getKey("k"))!.frozenAt, null);
      await rejectsWith(s.keys.setKeyFrozen("k-none", null), "KEY_NOT_FOUND");
      await s.keys.setApiKeyId("k", "api-new");
      const k = (await s.keys.getKey("k"))!;
      assert.equal(k.apiKeyId, "api-new");
      assert.equal(k.versions[0]!.apiKeyId, "api-new");
      await rejectsWith(s.keys.setApiKeyId("k-none", "x"), "KEY_NOT_FOUND");
      assert.equal(await s.keys.getPolicy("k"), undefined);
      await s.keys.setPolicy("k", '{"a":1}', at(2));
      await s.keys.setPolicy("k", '{"a":2}', at(3));
      assert.equal(await s.keys.getPolicy("k"), '{"a":2}');
    });

    it("keys: the last exchange-side permission verdict, none until a check records one, replaced by the next", async () => {
      const s = await fresh();
      await s.keys.createKey(keyRecord("k"), version("k", 1, "active"));
      assert.equal((await s.keys.getKey("k"))!.exchangePermissions, null);
      await s.keys.setExchangePermissions("k", { verdict: "unsafe: withdrawals", checkedAt: at(1) });
      await s.keys.setExchangePermissions("k", { verdict: "safe", checkedAt: at(2) });
      assert.deepEqual((await s.keys.getKey("k"))!.exchangePermissions, { verdict: "safe", checkedAt: at(2) });
      assert.deepEqual((await s.keys.listKeys())[0]!.exchangePermissions, { verdict: "safe", checkedAt: at(2) });
      await rejectsWith(s.keys.setExchangePermissions("k-none", { verdict: "safe", checkedAt: at(3) }), "KEY_NOT_FOUND");
    });

    it("clients: upsert keeps the creation time, grants are added once and replaced as a whole", async () => {
      const s = await fresh();
      await s.keys.createKey(keyRecord("k1"), version("k1", 1, "active"));
      await s.keys.createKey(keyRecord("k2"), version("k2", 1, "active"));
      await s.clients.upsertClient(client("id:b"));
      await s.clients.upsertClient({ ...client("id:a"), canFreeze: true });
      await s.clients.upsertClient({ ...client("id:a"), name: "renamed", createdAt: at(50), canFreeze: true });
      const a = (await s.clients.getClient("id:a"))!;
      assert.deepEqual(pick(a, "name", "createdAt", "canFreeze", "cidrs"), { name: "renamed", createdAt: at(0), canFreeze: true, cidrs: ["10.0.0.0/8"] });
      assert.deepEqual(
        (await s.clients.listClients()).map((c) => c.identity),
        ["id:a", "id:b"],
      );
      await s.clients.addGrant("id:a", "k1");
      await s.clients.addGrant("id:a", "k1");
      assert.deepEqual([...(await s.clients.listGrants()).get("id:a")!], ["k1"]);
      await s.clients.setClientAccess({ ...client("id:a"), name: "a2" }, ["k2"]);
      assert.deepEqual([...(await s.clients.listGrants()).get("id:a")!], ["k2"]);
      await s.clients.setClientAccess(client("id:new"), ["k1", "k2"]);
      assert.deepEqual([...(await s.clients.listGrants()).get("id:new")!].sort(), ["k1", "k2"]);
      await s.clients.setClientFrozen("id:b", { at: at(3), reason: "r" });
      assert.equal((await s.clients.getClient("id:b"))!.frozenAt, at(3));
      await rejectsWith(s.clients.setClientFrozen("id:none", null), "UNKNOWN_CLIENT");
    });

    it("governance: initialised once; officers unique by id and by identity; threshold and status change", async () => {
      const s = await fresh();
      assert.equal(await s.governance.getGovernance(), undefined);
      await s.governance.initGovernance(2, [officer("alice"), officer("bob")], at(0));
      await rejectsWith(s.governance.initGovernance(1, [officer("carol")], at(1)), "GOVERNANCE_EXISTS");
      assert.deepEqual(await s.governance.getGovernance(), { threshold: 2, initialisedAt: at(0) });
      await rejectsWith(s.governance.addOfficer(officer("alice")), "PRECONDITION_FAILED");
      await rejectsWith(s.governance.addOfficer({ ...officer("mallory"), identity: officer("bob").identity }), "PRECONDITION_FAILED");
      await s.governance.addOfficer(officer("carol"));
      await s.governance.setOfficerStatus("bob", "removed");
      await s.governance.setThreshold(3);
      assert.deepEqual(
        (await s.governance.listOfficers()).map((o) => [o.id, o.status]),
        [
          ["alice", "active"],
          ["bob", "removed"],
          ["carol", "active"],
        ],
      );
      assert.equal((await s.governance.getGovernance())!.threshold, 3);
    });

    it("governance: passkeys registered once, their counter only moves forward, removed once", async () => {
      const s = await fresh();
      await s.governance.initGovernance(1, [officer("alice")], at(0));
      await s.governance.addPasskey(passkey("cred-1", "alice"));
      await rejectsWith(s.governance.addPasskey(passkey("cred-1", "alice")), "PRECONDITION_FAILED");
      assert.equal(await s.governance.recordPasskeyUse("cred-1", 5, at(1)), true);
      assert.equal(await s.governance.recordPasskeyUse("cred-1", 5, at(2)), false, "a replayed counter");
      assert.equal(await s.governance.recordPasskeyUse("cred-1", 4, at(2)), false, "a counter going back");
      assert.deepEqual(pick(await s.governance.getPasskey("cred-1"), "counter", "lastUsedAt"), { counter: 5, lastUsedAt: at(1) });
      assert.deepEqual(
        (await s.governance.listPasskeys("alice")).map((k) => k.id),
        ["cred-1"],
      );
      assert.deepEqual(await s.governance.listPasskeys("bob"), []);
      await s.governance.removePasskey("cred-1");
      await rejectsWith(s.governance.removePasskey("cred-1"), "PRECONDITION_FAILED");
      assert.equal(await s.governance.getPasskey("cred-1"), undefined);
    });

    it("governance: a proposal moves only from the state it is in (false: a concurrent change won); a final state drops its envelope", async () => {
      const s = await fresh();
      await s.governance.initGovernance(1, [officer("alice")], at(0));
      await s.governance.createProposal(proposal("p1", at(1)));
      await s.governance.createProposal(proposal("p2", at(2)));
      assert.equal(await s.governance.updateProposal("p1", "executing", { state: "failed" }), false);
      assert.equal(await s.governance.updateProposal("p1", "pending", { state: "executing" }), true);
      assert.equal(await s.governance.updateProposal("p1", "pending", { state: "executing" }), false, "the second of two racing transitions");
      assert.equal(await s.governance.updateProposal("p1", "executing", { step: "hsm" }), true);
      const p1 = (await s.governance.getProposal("p1"))!;
      assert.deepEqual(pick(p1, "state", "step", "envelope"), { state: "executing", step: "hsm", envelope: "{}" });
      assert.equal(await s.governance.updateProposal("p2", "pending", { state: "expired" }), true);
      assert.equal((await s.governance.getProposal("p2"))!.envelope, null);
      assert.deepEqual(
        (await s.governance.listProposals("executing")).map((p) => p.id),
        ["p1"],
      );
      assert.deepEqual(
        (await s.governance.listProposals()).map((p) => p.id),
        ["p1", "p2"],
      );
      assert.equal(await s.governance.getProposal("p-none"), undefined);
    });

    it("governance: markExecuted marks an executing proposal executed (envelope gone); anything else is PRECONDITION_FAILED", async () => {
      const s = await fresh();
      await s.governance.createProposal(proposal("p", at(1)));
      await rejectsWith(s.governance.markExecuted("p", at(2)), "PRECONDITION_FAILED");
      await s.governance.updateProposal("p", "pending", { state: "executing" });
      await s.governance.markExecuted("p", at(3));
      assert.deepEqual(pick(await s.governance.getProposal("p"), "state", "step", "envelope", "executedAt"), {
        state: "executed",
        step: "done",
        envelope: null,
        executedAt: at(3),
      });
      await rejectsWith(s.governance.markExecuted("p", at(4)), "PRECONDITION_FAILED");
    });

    it("governance: a vote is kept as first cast", async () => {
      const s = await fresh();
      await s.governance.initGovernance(1, [officer("alice"), officer("bob")], at(0));
      await s.governance.createProposal(proposal("p", at(1)));
      await s.governance.addVote({ proposalId: "p", officerId: "bob", decision: "approve", digest: "d", signature: "sig-1", at: at(2) });
      await s.governance.addVote({ proposalId: "p", officerId: "bob", decision: "approve", digest: "d", signature: "sig-2", at: at(3) });
      await s.governance.addVote({
        proposalId: "p",
        officerId: "alice",
        decision: "reject",
        digest: "d",
        signature: "sig-3",
        at: at(4),
        credentialKind: "passkey",
        credentialId: "cred",
      });
      const votes = await s.governance.listVotes("p");
      assert.deepEqual(
        votes.map((v) => [v.officerId, v.signature, v.credentialKind]),
        [
          ["bob", "sig-1", "ed25519"],
          ["alice", "sig-3", "passkey"],
        ],
      );
      assert.equal(votes[1]!.credentialId, "cred");
    });

    it("console: a token is spent once until it expires", async () => {
      const s = await fresh();
      assert.equal(await s.console.spendToken("enroll:a", at(10), at(0)), true);
      assert.equal(await s.console.spendToken("enroll:a", at(10), at(10)), false);
      assert.equal(await s.console.spendToken("enroll:a", at(30), at(11)), true, "forgotten once expired");
    });

    it("console: sessions are bounded by the live ones, read back by hash, deleted", async () => {
      const s = await fresh();
      assert.equal(await s.console.putConsoleSession(session("h1", at(10)), 2, at(0)), true);
      assert.equal(await s.console.putConsoleSession(session("h2", at(20)), 2, at(0)), true);
      assert.equal(await s.console.putConsoleSession(session("h3", at(20)), 2, at(1)), false, "two live already");
      assert.equal(await s.console.putConsoleSession(session("h3", at(20)), 2, at(10)), true, "h1 expired");
      assert.deepEqual(await s.console.getConsoleSession("h2"), session("h2", at(20)));
      await s.console.deleteConsoleSession("h2");
      assert.equal(await s.console.getConsoleSession("h2"), undefined);
    });

    it("console: a challenge is taken once, not after it expires, and each limit's prefix bounds how many are outstanding", async () => {
      const s = await fresh();
      const limits = (source: string) => [
        { prefix: "login:", max: 3 },
        { prefix: `login:${source}:`, max: 2 },
      ];
      assert.equal(await s.console.putChallenge("login:10.0.0.1:a", "v-a", at(5), limits("10.0.0.1"), at(0)), true);
      assert.equal(await s.console.putChallenge("login:10.0.0.1:b", "v-b", at(5), limits("10.0.0.1"), at(0)), true);
      assert.equal(await s.console.putChallenge("login:10.0.0.1:c", "v-c", at(5), limits("10.0.0.1"), at(0)), false, "per-source limit");
      assert.equal(await s.console.putChallenge("login:10.0.0.2:d", "v-d", at(5), limits("10.0.0.2"), at(0)), true);
      assert.equal(await s.console.putChallenge("login:10.0.0.3:e", "v-e", at(5), limits("10.0.0.3"), at(0)), false, "total limit");
      assert.equal(await s.console.putChallenge("approve:x", "v-x", at(5), [{ prefix: "approve:", max: 1 }], at(0)), true, "another pool");
      assert.equal(await s.console.takeChallenge("login:10.0.0.1:a", at(1)), "v-a");
      assert.equal(await s.console.takeChallenge("login:10.0.0.1:a", at(1)), undefined, "single use");
      assert.equal(await s.console.takeChallenge("login:10.0.0.1:b", at(5)), undefined, "expired");
      assert.equal(await s.console.putChallenge("login:10.0.0.3:e", "v-e", at(9), limits("10.0.0.3"), at(6)), true, "expired ones no longer count");
    });

    it("audit: events appended in order, read after a seq with a limit, counted up to a seq; checkpoints listed by time", async () => {
      const s = await fresh();
      assert.equal(await s.audit.lastAudit(), undefined);
      const events = [1, 2, 3, 4].map((seq) => ({ seq, body: `{"i":${seq}}`, prevHash: `h${seq - 1}`, hash: `h${seq}` }));
      await s.audit.appendAudit(events.slice(0, 2));
      await s.audit.appendAudit(events.slice(2));
      assert.deepEqual(await s.audit.lastAudit(), events[3]);
      assert.deepEqual(await s.audit.readAudit(1, 2), events.slice(1, 3));
      assert.equal(await s.audit.countAudit(3), 3);
      await assert.rejects(s.audit.appendAudit([events[0]!]), "a seq is written once");
      const cp = (seq: number, minute: number) => ({ seq, hash: `h${seq}`, at: at(minute), keyFingerprint: "sha256:f", signature: "c2ln" });
      await s.audit.appendCheckpoint(cp(4, 2));
      await s.audit.appendCheckpoint(cp(2, 1));
      assert.deepEqual(await s.audit.listCheckpoints(), [cp(2, 1), cp(4, 2)]);
    });

    it("audit: appendChained continues the stored head, read in the insert's transaction, and returns what it wrote", async () => {
      const s = await fresh();
      const heads: Array<number | undefined> = [];
      const link = (bodies: string[]) => (head: StoredAuditEvent | undefined) => {
        heads.push(head?.seq);
        let seq = head?.seq ?? 0;
        let prev = head?.hash ?? "h0";
        return bodies.map((body) => {
          const row = { seq: ++seq, body, prevHash: prev, hash: `${prev}>${body}` };
          prev = row.hash;
          return row;
        });
      };
      assert.deepEqual(
        (await s.audit.appendChained(link(["a", "b"]))).map((e) => e.seq),
        [1, 2],
      );
      // Rows stored another way (a second writer's) are the head the next batch continues.
      await s.audit.appendAudit([{ seq: 3, body: "other", prevHash: "h0>a>b", hash: "h0>a>b>other" }]);
      const written = await s.audit.appendChained(link(["c"]));
      assert.deepEqual(written, [{ seq: 4, body: "c", prevHash: "h0>a>b>other", hash: "h0>a>b>other>c" }]);
      assert.deepEqual(heads, [undefined, 3]);
      assert.deepEqual(await s.audit.lastAudit(), written[0]);
      assert.deepEqual(await s.audit.appendChained(() => []), [], "nothing to write: nothing written");
      await assert.rejects(
        s.audit.appendChained(() => [{ seq: 4, body: "fork", prevHash: "h0>a>b>other", hash: "x" }]),
        "a link that would fork the chain is refused",
      );
      assert.equal(await s.audit.countAudit(10), 4);
    });

    it("transaction: what the callback writes, across aggregates, commits together and its result is returned", async () => {
      const s = await fresh();
      await s.governance.createProposal({ ...proposal("p", at(1)), state: "executing" });
      const result = await s.transaction(async (tx) => {
        await tx.keys.createKey(keyRecord("k"), version("k", 1, "active"));
        await tx.clients.setClientAccess(client("id:a"), ["k"]);
        await tx.governance.markExecuted("p", at(2));
        assert.ok(await tx.keys.getKey("k"), "the transaction reads its own writes");
        return "ok";
      });
      assert.equal(result, "ok");
      assert.ok(await s.keys.getKey("k"));
      assert.deepEqual([...(await s.clients.listGrants()).get("id:a")!], ["k"]);
      assert.equal((await s.governance.getProposal("p"))!.state, "executed");
    });

    it("transaction: a throw inside leaves nothing behind and is rethrown as is", async () => {
      const s = await fresh();
      await s.governance.createProposal(proposal("p", at(1)));
      const boom = new Error("boom");
      await assert.rejects(
        s.transaction(async (tx) => {
          await tx.keys.createKey(keyRecord("k"), version("k", 1, "active"));
          await tx.clients.upsertClient(client("id:a"));
          throw boom;
        }),
        (e) => e === boom,
      );
      // The change and the "executed" mark commit together or not at all: the proposal is not executing.
      await rejectsWith(
        s.transaction(async (tx) => {
          await tx.keys.createKey(keyRecord("k2"), version("k2", 1, "active"));
          await tx.governance.markExecuted("p", at(2));
        }),
        "PRECONDITION_FAILED",
      );
      assert.deepEqual(await s.keys.listKeys(), []);
      assert.deepEqual(await s.clients.listClients(), []);
      assert.equal((await s.governance.getProposal("p"))!.state, "pending");
    });

    it("transaction: calls made outside it while it is open neither join it nor see its writes, and run after it", async () => {
      const s = await fresh();
      let outsideWrite: Promise<void> | undefined;
      let outsideRead: Promise<unknown> | undefined;
      await assert.rejects(
        s.transaction(async (tx) => {
          await tx.keys.createKey(keyRecord("k-in"), version("k-in", 1, "active"));
          outsideWrite = s.clients.upsertClient(client("id:outside"));
          outsideRead = s.keys.getKey("k-in");
          await new Promise((resolve) => setImmediate(resolve)); // let the outside calls have their turn, if they could
          throw new Error("roll back");
        }),
      );
      await outsideWrite;
      assert.equal(await outsideRead, undefined, "never saw the uncommitted key");
      assert.ok(await s.clients.getClient("id:outside"), "the outside write was not rolled back with the transaction");
      assert.equal(await s.keys.getKey("k-in"), undefined);
    });

    it("transaction: concurrent transactions run one after the other", async () => {
      const s = await fresh();
      const order: string[] = [];
      const run = (name: string) =>
        s.transaction(async (tx) => {
          order.push(`${name}:start`);
          await tx.keys.createKey(keyRecord(name), version(name, 1, "active"));
          await new Promise((resolve) => setImmediate(resolve));
          order.push(`${name}:end`);
        });
      await Promise.all([run("k1"), run("k2"), run("k3")]);
      assert.deepEqual(order, ["k1:start", "k1:end", "k2:start", "k2:end", "k3:start", "k3:end"]);
      assert.equal((await s.keys.listKeys()).length, 3);
    });

    it("transaction: its tables refuse use after it ended", async () => {
      const s = await fresh();
      let leaked: Parameters<Parameters<Store["transaction"]>[0]>[0] | undefined;
      await s.transaction(async (tx) => {
        leaked = tx;
      });
      await rejectsWith(leaked!.keys.createKey(keyRecord("late"), version("late", 1, "active")), "INTERNAL");
      assert.equal(await s.keys.getKey("late"), undefined);
    });
  });
}

const at = (minute: number) => new Date(Date.UTC(2026, 10, 24, 12, minute)).toISOString();

async function rejectsWith(p: Promise<unknown>, code: CustosErrorCode): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof CustosError && e.code === code);
}

function pick<T extends object, K extends keyof T>(o: T | undefined, ...keys: K[]): Pick<T, K> {
  assert.ok(o, "the record exists");
  return Object.fromEntries(keys.map((k) => [k, o[k]])) as Pick<T, K>;
}

function keyRecord(id: string): KeyRecord {
  return { id, exchange: "binance", environment: "testnet", label: id, apiKeyId: "", algorithm: "hmac-sha256", maxAgeDays: 90, createdAt: at(0) };
}

function version(keyId: string, n: number, state: KeyVersionRecord["state"]): KeyVersionRecord {
  return {
    keyId,
    version: n,
    objectId: `custos:${keyId}:v${n}`,
    state,
    createdAt: at(0),
    activatedAt: at(0),
    apiKeyId: null,
    retireAt: null,
    signedPassphrase: null,
  };
}

function client(identity: string): ClientRecord {
  return { identity, name: identity, role: "trader", cidrs: ["10.0.0.0/8"], createdAt: at(0), canFreeze: false, frozenAt: null, frozenReason: null };
}

function officer(id: string): OfficerRecord {
  return {
    id,
    displayName: id,
    identity: `spiffe://custos/officer/${id}`,
    publicKeyPem: `pem-${id}\n`,
    fingerprint: `fp-${id}`,
    status: "active",
    createdAt: at(0),
  };
}

function passkey(id: string, officerId: string): PasskeyRecord {
  return { id, officerId, publicKey: "cose", counter: 0, transports: ["usb"], aaguid: "00", label: "yubikey", createdAt: at(0), lastUsedAt: null };
}

function proposal(id: string, createdAt: string): ProposalRecord {
  return {
    id,
    kind: "set_threshold",
    target: "governance",
    canonical: "{}",
    digest: `digest-${id}`,
    proposer: "alice",
    state: "pending",
    step: null,
    envelope: "{}",
    createdAt,
    expiresAt: at(59),
    executedAt: null,
    failure: null,
  };
}

function session(idHash: string, expiresAt: string): StoredConsoleSession {
  return { idHash, officerId: "alice", scope: "officer", csrf: "csrf", credentialId: null, createdAt: at(0), expiresAt };
}
