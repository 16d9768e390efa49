/**
 * The shared setup of the GovernanceService tests (governance-service-*.test.ts):
 * GovernanceService on a real store and audit log, the in-memory HSM, officers with real
 * Ed25519 keys.
 */
import assert from "node:assert/strict";
import { createHmac, type KeyObject } from "node:crypto";
import { PassThrough } from "node:stream";
import { AuditLog, type AuditRecord } from "../../src/audit/audit-log.js";
import { CustosError, type CustosErrorCode } from "../../src/errors.js";
import { GovernanceService, type GovernanceOptions, type ProposalView } from "../../src/governance/governance-service.js";
import { generateOfficerKey, loadOfficerPrivateKey, signApproval } from "../../src/governance/officer-key.js";
import type { Decision } from "../../src/governance/proposal.js";
import type { OfficerSpec, ProposalInput } from "../../src/governance/proposal-input.js";
import { buildEnvelope, type ImportEnvelope } from "../../src/hsm/envelope.js";
import { createLogger } from "../../src/log.js";
import { AccessDirectory } from "../../src/signing/directory.js";
import type { CallerContext } from "../../src/signing/sign-service.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { FakeHsm } from "./fake-hsm.js";

export const IP = "10.0.0.7";
export const ALPHA = "spiffe://custos/engine/alpha"; // a trading client
export const RISK = "spiffe://custos/engine/risk"; // a trading client that may freeze
export const STRANGER = "spiffe://custos/engine/stranger";
export const HOUR = 3_600_000;

export interface Officer {
  id: string;
  spec: OfficerSpec;
  key: KeyObject;
  caller: CallerContext;
}

function newOfficer(id: string): Officer {
  const passphrase = `passphrase of ${id}`;
  const pair = generateOfficerKey(passphrase);
  const identity = `spiffe://custos/officer/${id}`;
  return {
    id,
    spec: { id, displayName: id, identity, publicKeyPem: pair.publicKeyPem },
    key: loadOfficerPrivateKey(pair.privateKeyPem, passphrase),
    caller: { identity, ip: IP },
  };
}

/** Four officers with real Ed25519 keys; fixtures initialise alice, bob and carol by default. */
export const [alice, bob, carol, dave] = ["alice", "bob", "carol", "dave"].map(newOfficer) as [Officer, Officer, Officer, Officer];

export interface Fixture {
  store: SqliteStore;
  hsm: FakeHsm;
  audit: AuditLog;
  directory: AccessDirectory;
  gov: GovernanceService;
  opts: GovernanceOptions;
  /** Governance's clock: real time plus what the test advanced it by. */
  clock: TestClock;
  logs(): string;
}

/** A clock that follows real time, and jumps ahead when a test advances it (instead of sleeping). */
export class TestClock {
  private offset = 0;
  readonly now = (): number => Date.now() + this.offset;
  advance(ms: number): void {
    this.offset += ms;
  }
}

const fixtures: Fixture[] = [];

/** Closes every fixture made since the last call: each test file runs it in `afterEach`. */
export async function closeFixtures(): Promise<void> {
  for (const f of fixtures.splice(0)) {
    await f.audit.close();
    await f.store.close();
  }
}

/** A fresh service; initialised with `officers` (default alice, bob, carol) at `threshold` unless init is false. */
export async function fixture(o: { officers?: Officer[]; threshold?: number; init?: boolean } & Partial<GovernanceOptions> = {}): Promise<Fixture> {
  const store = new SqliteStore(":memory:");
  const hsm = new FakeHsm();
  let logText = "";
  const sink = new PassThrough();
  sink.on("data", (d: Buffer) => (logText += d.toString()));
  const logger = createLogger("debug", sink);
  const audit = await AuditLog.open(store, logger, { flushIntervalMs: 3_600_000 });
  const directory = new AccessDirectory();
  await directory.reload(store);
  const clock = new TestClock();
  const opts: GovernanceOptions = {
    proposerCounts: o.proposerCounts ?? false,
    veto: o.veto ?? true,
    bootstrapAdmins: o.bootstrapAdmins ?? [],
    autoGrant: o.autoGrant ?? [],
    proposalTtlMs: o.proposalTtlMs ?? 24 * HOUR,
    ...(o.maxProposalTtlMs ? { maxProposalTtlMs: o.maxProposalTtlMs } : {}),
    now: clock.now,
  };
  const gov = new GovernanceService(store, hsm, audit, directory, logger, opts);
  await gov.load();
  if (o.init ?? true)
    await gov.init(
      null,
      (o.officers ?? [alice, bob, carol]).map((x) => x.spec),
      o.threshold ?? 2,
    );
  const f = { store, hsm, audit, directory, gov, opts, clock, logs: () => logText };
  fixtures.push(f);
  return f;
}

/** A second service on the same store and HSM: what a restart sees. */
export async function restarted(f: Fixture): Promise<GovernanceService> {
  const gov = new GovernanceService(f.store, f.hsm, f.audit, f.directory, createLogger("info", new PassThrough()), f.opts);
  await gov.load();
  return gov;
}

export type AuditBody = AuditRecord;

export async function auditSince(f: Fixture, afterSeq = 0): Promise<AuditBody[]> {
  await f.audit.flush();
  return (await f.store.audit.readAudit(afterSeq, 100_000)).map((e) => JSON.parse(e.body) as AuditBody);
}

export async function lastSeq(f: Fixture): Promise<number> {
  await f.audit.flush();
  return (await f.store.audit.lastAudit())?.seq ?? 0;
}

export const brief = (events: AuditBody[]) => events.map((e) => [e.kind, e.actor, e.outcome, e.reason].filter((x) => x !== undefined).join(" "));

export async function vote(f: Fixture, who: Officer, id: string, decision: Decision = "approve", reason = ""): Promise<ProposalView> {
  const { digest } = (await f.store.governance.getProposal(id))!;
  return f.gov.vote(who.caller, id, decision, digest, signApproval(who.key, decision, digest), reason);
}

/** Proposes as `proposer` and approves by each of `approvers` in turn; returns the last view. */
export async function pass(f: Fixture, input: ProposalInput, approvers: Officer[], proposer = alice): Promise<ProposalView> {
  let view = await f.gov.propose(proposer.caller, input);
  for (const who of approvers) view = await vote(f, who, view.record.id);
  assert.equal(view.record.state, "executed", `${input.kind} did not execute`);
  return view;
}

export const isCode = (code: CustosErrorCode) => (e: unknown) => e instanceof CustosError && e.code === code;
export const rejectsWith = (p: Promise<unknown>, code: CustosErrorCode) => assert.rejects(p, isCode(code));

export const envelopeOf = (f: Fixture, secret: Buffer) => buildEnvelope(secret, f.hsm.wrappingKey());
export const importOf = (keyId: string, envelope: ImportEnvelope): ProposalInput => ({
  kind: "import_key",
  key: { keyId, exchange: "binance", environment: "testnet", label: keyId, apiKeyId: `api-${keyId}`, algorithm: "hmac-sha256", maxAgeDays: 45 },
  envelope,
});
export const grantsOf = (identity: string, keyIds: string[] = [], canFreeze = false): ProposalInput => ({
  kind: "set_grants",
  identity,
  name: "",
  cidrs: ["10.0.0.0/8"],
  keyIds,
  canFreeze,
});
export const hmac = (secret: Buffer, data: Buffer) => createHmac("sha256", secret).update(data).digest();
export const unwraps = (f: Fixture) => f.hsm.calls.filter((c) => c.startsWith("unwrap:"));
