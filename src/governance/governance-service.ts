import { createHash, randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { AuditEvent, AuditLog } from "../audit/audit-log.js";
import { CustosError, type CustosErrorCode } from "../errors.js";
import { ENVELOPE_FORMAT, envelopeDigest, type ImportEnvelope } from "../hsm/envelope.js";
import type { Hsm, WrappingKeyInfo } from "../hsm/hsm.js";
import { activeVersion, versionObjectId, type KeyVersionRecord, type KeyWithVersions } from "../keys/model.js";
import type { ClientRecord } from "../signing/clients.js";
import type { AccessDirectory } from "../signing/directory.js";
import type { CallerContext } from "../signing/sign-service.js";
import type { Store } from "../store/store.js";
import { faultPoint } from "./fault.js";
import type { OfficerRecord, ProposalRecord, ProposalState } from "./model.js";
import { parseOfficerPublicKey, publicKeyFingerprint, verifyApproval } from "./officer-key.js";
import { buildProposal, canonicalProposal, proposalDigest, type Decision, type ProposalContent } from "./proposal.js";
import { DEFAULT_GRACE_SECONDS, contentOf, validateInput, type NewKeyMetadata, type OfficerSpec, type ProposalInput } from "./proposal-input.js";
import { decideQuorum, validateRules, type QuorumOutcome } from "./quorum.js";

export interface GovernanceOptions {
  /** The proposer's own approval counts toward the quorum (default false). */
  proposerCounts: boolean;
  /** Any officer's rejection cancels the proposal (default true). */
  veto: boolean;
  /** Identities that may call InitGovernance, once (the configured bootstrap administrators). */
  bootstrapAdmins: readonly string[];
  /** Granted every imported key (the embedded default's dev client); empty when configured. */
  autoGrant: readonly string[];
  /** Default proposal lifetime. */
  proposalTtlMs: number;
}

/** A proposal as officers see it: its record, the quorum state and what it changes. */
export interface ProposalView {
  record: ProposalRecord;
  quorum: QuorumOutcome;
  summary: string[];
}

type Actor = { kind: "officer"; officer: OfficerRecord } | { kind: "admin"; identity: string };

/**
 * Key officers and their quorum: every change to key material, grants, policy, officers or
 * the threshold is a proposal with a canonical digest, executes once a quorum of officers
 * signed that digest, and is executed as a persisted state machine that a restart resumes.
 * Freezing is the one immediate action.
 */
export class GovernanceService {
  private officers = new Map<string, OfficerRecord>(); // by certificate identity
  private threshold: number | undefined;
  /** Proposals being executed in this process (a vote and a resume never run one twice). */
  private readonly executing = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly hsm: Hsm,
    private readonly audit: AuditLog,
    private readonly directory: AccessDirectory,
    private readonly log: Logger,
    private readonly opts: GovernanceOptions,
  ) {}

  async load(): Promise<void> {
    this.officers = new Map((await this.store.listOfficers()).map((o) => [o.identity, o]));
    this.threshold = (await this.store.getGovernance())?.threshold;
  }

  get initialised(): boolean {
    return this.threshold !== undefined;
  }

  // ---- reads -----------------------------------------------------------------------------

  wrappingKey(caller: CallerContext): WrappingKeyInfo {
    this.requireActor(caller, "wrapping_key.get", { admin: true });
    return this.hsm.wrappingKey();
  }

  /** Keys; asymmetric ones with their active version's public key (SPKI DER). */
  async listKeys(caller: CallerContext): Promise<Array<KeyWithVersions & { publicKey?: Buffer }>> {
    this.requireOfficer(caller, "key.list");
    const keys = await this.store.listKeys();
    return Promise.all(
      keys.map(async (k) => {
        const active = activeVersion(k);
        if (k.algorithm !== "ed25519" || !active) return k;
        const publicKey = await this.hsm.publicKey(active.objectId);
        return publicKey ? { ...k, publicKey } : k;
      }),
    );
  }

  async listClients(caller: CallerContext): Promise<Array<ClientRecord & { grants: string[] }>> {
    this.requireOfficer(caller, "client.list");
    const grants = await this.store.listGrants();
    return (await this.store.listClients()).map((c) => ({ ...c, grants: [...(grants.get(c.identity) ?? [])].sort() }));
  }

  async governance(caller: CallerContext): Promise<{ threshold: number | undefined; initialisedAt: string | undefined; officers: OfficerRecord[] }> {
    this.requireActor(caller, "governance.get", { admin: true });
    const g = await this.store.getGovernance();
    return { threshold: g?.threshold, initialisedAt: g?.initialisedAt, officers: await this.store.listOfficers() };
  }

  get rules(): { proposerCounts: boolean; veto: boolean } {
    return { proposerCounts: this.opts.proposerCounts, veto: this.opts.veto };
  }

  async getProposal(caller: CallerContext, id: string): Promise<ProposalView> {
    this.requireOfficer(caller, "proposal.get");
    const p = await this.store.getProposal(id);
    if (!p) throw new CustosError("PROPOSAL_NOT_FOUND", `no proposal ${id}`);
    return this.view(await this.expireIfDue(p));
  }

  async listProposals(caller: CallerContext, state?: ProposalState): Promise<ProposalView[]> {
    this.requireOfficer(caller, "proposal.list");
    await this.expireDue();
    return Promise.all((await this.store.listProposals(state)).map((p) => this.view(p)));
  }

  // ---- bootstrap -------------------------------------------------------------------------

  /** The first officer set and threshold, exactly once. `caller` null: the embedded default's own init. */
  async init(caller: CallerContext | null, specs: readonly OfficerSpec[], threshold: number): Promise<void> {
    const actor = caller ? this.requireAdminIdentity(caller, "governance.init") : "system";
    if (this.initialised) {
      await this.audit.recordNow({ kind: "governance.init", actor, outcome: "denied", reason: "GOVERNANCE_EXISTS" });
      throw new CustosError("GOVERNANCE_EXISTS", "governance is already initialised; officers and threshold change only by proposal");
    }
    const now = new Date().toISOString();
    const officers = specs.map((s) => officerRecord(s, now));
    const ids = new Set(officers.map((o) => o.id));
    if (ids.size !== officers.length || new Set(officers.map((o) => o.identity)).size !== officers.length) {
      throw new CustosError("INVALID_ARGUMENT", "officer ids and certificate identities must be distinct");
    }
    validateRules({ threshold, proposerCounts: this.opts.proposerCounts, veto: this.opts.veto }, officers.length);
    await this.store.initGovernance(threshold, officers, now);
    await this.audit.recordNow({
      kind: "governance.init",
      actor,
      outcome: "ok",
      details: { threshold, officers: officers.map((o) => `${o.id}=${o.fingerprint}`).join(",") },
    });
    await this.load();
  }

  // ---- proposals -------------------------------------------------------------------------

  async propose(caller: CallerContext, input: ProposalInput, ttlMs?: number): Promise<ProposalView> {
    const officer = this.requireOfficer(caller, "proposal.create");
    const keyId = input.kind === "import_key" ? input.key?.keyId : "keyId" in input ? input.keyId : undefined;
    try {
      validateInput(input);
      await this.checkPreconditions(input);
    } catch (e) {
      await this.audit.recordNow({ kind: "proposal.create", actor: officer.id, outcome: "denied", reason: codeOf(e), ...(keyId ? { key: keyId } : {}), details: { proposalKind: input.kind } });
      throw e;
    }
    const { kind, target, params } = contentOf(input);
    const envelope = "envelope" in input ? input.envelope : undefined;
    const content = buildProposal({
      kind,
      target,
      params,
      ...(envelope ? { materialSha256: envelopeDigest(envelope) } : {}),
      proposer: officer.id,
      ttlMs: ttlMs ?? this.opts.proposalTtlMs,
    });
    const record: ProposalRecord = {
      id: randomUUID(),
      kind,
      target,
      canonical: canonicalProposal(content),
      digest: proposalDigest(content),
      proposer: officer.id,
      state: "pending",
      step: null,
      envelope: envelope ? serialiseEnvelope(envelope) : null,
      createdAt: content.createdAt,
      expiresAt: content.expiresAt,
      executedAt: null,
      failure: null,
    };
    await this.store.createProposal(record);
    await this.audit.recordNow({ kind: "proposal.create", actor: officer.id, outcome: "ok", key: keyOf(record), details: { proposal: record.id, proposalKind: kind, target, digest: record.digest } });
    return this.view(record);
  }

  /**
   * An officer's signed decision. Checked in order: officer, proposal open, digest, signature.
   * Reaching the quorum executes the proposal before this returns.
   */
  async vote(caller: CallerContext, id: string, decision: Decision, digest: string, signature: Uint8Array, reason = ""): Promise<ProposalView> {
    const officer = this.requireOfficer(caller, `proposal.${decision}`);
    const deny = async (code: CustosErrorCode, message: string, p?: ProposalRecord): Promise<never> => {
      await this.audit.recordNow({ kind: `proposal.${decision}`, actor: officer.id, outcome: "denied", reason: code, ...(p ? { key: keyOf(p) } : {}), details: { proposal: id, digest } });
      throw new CustosError(code, message);
    };
    let p = await this.store.getProposal(id);
    if (!p) return deny("PROPOSAL_NOT_FOUND", `no proposal ${id}`);
    p = await this.expireIfDue(p);
    if (p.state !== "pending") return deny("PROPOSAL_CLOSED", `proposal ${id} is ${p.state}`, p);
    if (digest !== p.digest) return deny("DIGEST_MISMATCH", "the signed digest is not this proposal's digest", p);
    if (!verifyApproval(parseOfficerPublicKey(officer.publicKeyPem), decision, digest, signature)) {
      return deny("BAD_SIGNATURE", `signature does not verify with officer ${officer.id}'s key`, p);
    }
    await this.store.addVote({ proposalId: id, officerId: officer.id, decision, digest, signature: Buffer.from(signature).toString("base64"), at: new Date().toISOString() });
    await this.audit.recordNow({
      kind: `proposal.${decision}`,
      actor: officer.id,
      outcome: "ok",
      key: keyOf(p),
      details: { proposal: id, digest, ...(reason ? { reason: reason.slice(0, 200) } : {}) },
    });
    return this.settle(p);
  }

  /** Applies the quorum verdict to a pending proposal. */
  private async settle(p: ProposalRecord): Promise<ProposalView> {
    const quorum = await this.quorumOf(p);
    if (quorum.verdict === "approved") {
      await this.execute(p);
    } else if (quorum.verdict === "rejected") {
      if (await this.store.updateProposal(p.id, "pending", { state: "rejected" })) {
        await this.audit.recordNow({ kind: "proposal.rejected", actor: "system", outcome: "ok", key: keyOf(p), details: { proposal: p.id, digest: p.digest, by: quorum.rejections.join(",") } });
      }
    }
    return this.view((await this.store.getProposal(p.id))!);
  }

  // ---- execution (a persisted state machine) ------------------------------------------------

  /** Runs (or resumes) an approved proposal. Steps already done are skipped by their own checks. */
  private async execute(p: ProposalRecord): Promise<void> {
    if (this.executing.has(p.id)) return;
    this.executing.add(p.id);
    try {
      // Only a pending (approved) or an interrupted executing proposal runs; never an expired,
      // rejected, failed or executed one.
      if (p.state !== "pending" && p.state !== "executing") return;
      if (p.state === "pending") {
        if (!(await this.store.updateProposal(p.id, "pending", { state: "executing" }))) return; // a concurrent vote got there first
        await this.audit.recordNow({ kind: "proposal.execute", actor: "system", outcome: "ok", key: keyOf(p), details: { proposal: p.id, digest: p.digest, step: "start" } });
        p = { ...p, state: "executing" };
      }
      const content = JSON.parse(p.canonical) as ProposalContent;
      const done = { proposalId: p.id, at: new Date().toISOString() };
      try {
        await this.runStep(p, content, done);
      } catch (e) {
        await this.store.updateProposal(p.id, "executing", { state: "failed", failure: e instanceof Error ? e.message.slice(0, 500) : String(e) });
        await this.audit.recordNow({ kind: "proposal.failed", actor: "system", outcome: "failed", reason: codeOf(e), key: keyOf(p), details: { proposal: p.id, digest: p.digest } });
        this.log.warn({ event: "proposal.failed", proposal: p.id, kind: p.kind, reason: codeOf(e) }, "proposal execution failed");
        // The vote that triggered the execution answers with the execution's error.
        throw e;
      }
      await this.completed(p);
    } finally {
      this.executing.delete(p.id);
      await this.directory.reload(this.store);
      await this.load();
    }
  }

  /**
   * After the change and the executed mark (one transaction): the audit records of what
   * changed, then step "audited". A crash in between is finished by resume(), from the state
   * the change left, so the records are the same either way.
   */
  private async completed(p: ProposalRecord): Promise<void> {
    const c = JSON.parse(p.canonical) as ProposalContent;
    const base = { actor: p.proposer, outcome: "ok" as const };
    const ref = { proposal: p.id, digest: p.digest };
    if (c.kind === "import_key" || c.kind === "generate_key") {
      const k = c.params as unknown as NewKeyMetadata;
      const publicKey = c.kind === "generate_key" ? await this.hsm.publicKey(versionObjectId(c.target, 1)) : undefined;
      await this.audit.recordNow({
        ...base,
        kind: c.kind === "import_key" ? "key.import" : "key.generate",
        key: c.target,
        version: 1,
        details: { ...ref, exchange: k.exchange, environment: k.environment, algorithm: k.algorithm, ...(publicKey ? { publicKeySha256: createHash("sha256").update(publicKey).digest("hex") } : {}) },
      });
    } else if (c.kind === "rotate_key") {
      const key = await this.store.getKey(c.target);
      const active = key && activeVersion(key);
      const retiring = key?.versions.filter((v) => v.state === "retiring").at(-1);
      await this.audit.recordNow({ ...base, kind: "key.rotate", key: c.target, ...(active ? { version: active.version } : {}), details: { ...ref, ...(retiring?.retireAt ? { retiringUntil: retiring.retireAt } : {}) } });
    } else if (c.kind === "thaw") {
      await this.audit.recordNow({ ...base, kind: "thaw", ...(c.target.startsWith("key:") ? { key: c.target.slice(4) } : {}), details: { ...ref, target: c.target } });
    }
    await this.audit.recordNow({ kind: "proposal.executed", actor: "system", outcome: "ok", key: keyOf(p), details: { ...ref, proposalKind: p.kind, target: p.target } });
    await this.store.updateProposal(p.id, "executed", { step: "audited" });
  }

  private async runStep(p: ProposalRecord, c: ProposalContent, done: { proposalId: string; at: string }): Promise<void> {
    const params = c.params as Record<string, unknown>;
    switch (c.kind) {
      case "import_key": {
        const key = params as unknown as NewKeyMetadata;
        if (await this.store.getKey(key.keyId)) throw new CustosError("KEY_EXISTS", `key ${key.keyId} already exists`);
        const objectId = versionObjectId(key.keyId, 1);
        const created = await this.unwrapOnce(p, objectId, `${key.exchange}/${key.keyId}/v1`);
        faultPoint("import:after-hsm");
        const first: KeyVersionRecord = { keyId: key.keyId, version: 1, objectId, state: "active", createdAt: done.at, activatedAt: done.at, apiKeyId: null, retireAt: null };
        await this.orRollBack(created, objectId, () =>
          this.store.createKey({ id: key.keyId, exchange: key.exchange, environment: key.environment, label: key.label, apiKeyId: key.apiKeyId, algorithm: key.algorithm, maxAgeDays: key.maxAgeDays, createdAt: done.at }, first, this.opts.autoGrant, done),
        );
        faultPoint("import:after-record");
        return;
      }
      case "generate_key": {
        const key = params as unknown as NewKeyMetadata;
        if (await this.store.getKey(key.keyId)) throw new CustosError("KEY_EXISTS", `key ${key.keyId} already exists`);
        const objectId = versionObjectId(key.keyId, 1);
        // Generated inside the HSM; an interrupted run's key pair (same CKA_ID) is adopted.
        let created = false;
        if (await this.hsm.hasSecret(objectId)) {
          await this.audit.recordNow({ kind: "reconcile.adopt", actor: "system", outcome: "ok", key: key.keyId, details: { proposal: p.id, digest: p.digest, objectId } });
        } else {
          await this.hsm.generateKeyPair("ed25519", { objectId, label: `${key.exchange}/${key.keyId}/v1` });
          await this.store.updateProposal(p.id, "executing", { step: "hsm" });
          created = true;
        }
        const first: KeyVersionRecord = { keyId: key.keyId, version: 1, objectId, state: "active", createdAt: done.at, activatedAt: done.at, apiKeyId: null, retireAt: null };
        await this.orRollBack(created, objectId, () =>
          this.store.createKey({ id: key.keyId, exchange: key.exchange, environment: key.environment, label: key.label, apiKeyId: key.apiKeyId, algorithm: key.algorithm, maxAgeDays: key.maxAgeDays, createdAt: done.at }, first, this.opts.autoGrant, done),
        );
        return;
      }
      case "rotate_key": {
        const key = await this.store.getKey(c.target);
        if (!key) throw new CustosError("KEY_NOT_FOUND", `no key ${c.target}`);
        if (key.algorithm === "ed25519") throw new CustosError("PRECONDITION_FAILED", "an Ed25519 key is rotated by generating a new key pair (not yet supported): generate a new key");
        // Not recorded yet (recording marks the proposal executed in the same transaction), so
        // the new version is the next number; an interrupted run's HSM object is adopted.
        const version = Math.max(...key.versions.map((v) => v.version)) + 1;
        const objectId = versionObjectId(key.id, version);
        const created = await this.unwrapOnce(p, objectId, `${key.exchange}/${key.id}/v${version}`);
        faultPoint("rotate:after-hsm");
        const graceSeconds = params.graceSeconds as number;
        const retireAt = new Date(Date.parse(done.at) + graceSeconds * 1000).toISOString();
        const apiKeyId = (params.apiKeyId as string) || null;
        await this.orRollBack(created, objectId, () =>
          this.store.rotateKey(key.id, { keyId: key.id, version, objectId, state: "active", createdAt: done.at, activatedAt: done.at, apiKeyId, retireAt: null }, retireAt, done),
        );
        faultPoint("rotate:after-record");
        return;
      }
      case "set_api_key_id": {
        await this.store.setApiKeyId(c.target, params.apiKeyId as string, done);
        return;
      }
      case "destroy_version": {
        const version = params.version as number;
        await this.destroyVersion(c.target, version, { ...done, digest: p.digest });
        return;
      }
      case "set_grants": {
        const g = params as unknown as { name: string; cidrs: string[]; keyIds: string[]; canFreeze: boolean };
        for (const k of g.keyIds) if (!(await this.store.getKey(k))) throw new CustosError("KEY_NOT_FOUND", `no key ${k}`);
        const existing = await this.store.getClient(c.target);
        if (existing && existing.role !== "trader") throw new CustosError("PRECONDITION_FAILED", `${c.target} is not a trading client`);
        await this.store.setClientAccess(
          { identity: c.target, name: g.name || existing?.name || c.target, role: "trader", cidrs: g.cidrs, createdAt: existing?.createdAt ?? done.at, canFreeze: g.canFreeze },
          g.keyIds,
          done,
        );
        return;
      }
      case "set_policy": {
        if (!(await this.store.getKey(c.target))) throw new CustosError("KEY_NOT_FOUND", `no key ${c.target}`);
        await this.store.setPolicy(c.target, JSON.stringify(params.policy), done.at, done);
        return;
      }
      case "add_officer": {
        const o = params as unknown as { displayName: string; identity: string; publicKeyPem: string };
        await this.store.addOfficer(officerRecord({ id: c.target, ...o }, done.at), done);
        return;
      }
      case "remove_officer": {
        const active = (await this.store.listOfficers()).filter((o) => o.status === "active");
        if (!active.some((o) => o.id === c.target)) throw new CustosError("PRECONDITION_FAILED", `no active officer ${c.target}`);
        this.checkRemovable(active.length, (await this.store.getGovernance())!.threshold, c.target);
        await this.store.setOfficerStatus(c.target, "removed", done);
        return;
      }
      case "set_threshold": {
        const threshold = params.threshold as number;
        const active = (await this.store.listOfficers()).filter((o) => o.status === "active").length;
        validateRules({ threshold, proposerCounts: this.opts.proposerCounts, veto: this.opts.veto }, active);
        await this.store.setThreshold(threshold, done);
        return;
      }
      case "thaw": {
        const [target, ...rest] = c.target.split(":");
        const id = rest.join(":");
        if (target === "key") await this.store.setKeyFrozen(id, null, done);
        else await this.store.setClientFrozen(id, null, done);
        return;
      }
    }
  }

  /**
   * Unwraps the proposal's envelope into `objectId`, or adopts the object an interrupted run
   * already created (same proposal, same CKA_ID). Returns true if this call created it.
   */
  private async unwrapOnce(p: ProposalRecord, objectId: string, label: string): Promise<boolean> {
    if (await this.hsm.hasSecret(objectId)) {
      if (p.step !== "hsm") {
        // Created by this proposal's interrupted run (nothing else uses this CKA_ID: the
        // version number is new); adopt it.
        await this.audit.recordNow({ kind: "reconcile.adopt", actor: "system", outcome: "ok", key: p.target, details: { proposal: p.id, digest: p.digest, objectId } });
      }
      return false;
    }
    if (!p.envelope) throw new CustosError("PRECONDITION_FAILED", "the proposal's envelope is gone");
    await this.hsm.unwrapSecret(deserialiseEnvelope(p.envelope), { objectId, label });
    await this.store.updateProposal(p.id, "executing", { step: "hsm" });
    return true;
  }

  /** Runs the record step; if it fails, an HSM object this run created is destroyed (no orphan). */
  private async orRollBack(created: boolean, objectId: string, write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (e) {
      if (created) await this.hsm.destroySecret(objectId).catch(() => undefined);
      throw e;
    }
  }

  /** destroying (persisted) → C_DestroyObject → destroyed; each step safe to repeat after a crash. */
  private async destroyVersion(keyId: string, version: number, done?: { proposalId: string; at: string; digest: string }): Promise<void> {
    const key = await this.store.getKey(keyId);
    const v = key?.versions.find((x) => x.version === version);
    if (!key || !v) throw new CustosError("VERSION_NOT_FOUND", `key ${keyId} has no version ${version}`);
    if (v.state === "active" && done) throw new CustosError("PRECONDITION_FAILED", `version ${version} is the active version: rotate first`);
    if (v.state !== "destroying" && v.state !== "destroyed") {
      await this.store.updateVersionState(keyId, version, "destroying");
      faultPoint("destroy:after-mark");
    }
    await this.hsm.destroySecret(v.objectId);
    faultPoint("destroy:after-hsm");
    await this.store.updateVersionState(keyId, version, "destroyed", undefined, done && { proposalId: done.proposalId, at: done.at });
    await this.audit.recordNow({ kind: "key.destroy_version", actor: done ? "officers" : "system", outcome: "ok", key: keyId, version, details: { objectId: v.objectId, ...(done ? { proposal: done.proposalId, digest: done.digest } : { reason: "grace period ended" }) } });
  }

  // ---- freeze -------------------------------------------------------------------------------

  /** Immediate: any active officer, or a trading client allowed to freeze. Thaw needs a quorum. */
  async freeze(caller: CallerContext, target: "key" | "client", id: string, reason: string): Promise<string> {
    const actor = this.freezer(caller);
    if (!reason.trim()) throw new CustosError("INVALID_ARGUMENT", "a freeze needs a reason");
    const at = new Date().toISOString();
    const freeze = { at, reason: reason.slice(0, 500) };
    try {
      if (target === "key") await this.store.setKeyFrozen(id, freeze);
      else await this.store.setClientFrozen(id, freeze);
    } catch (e) {
      await this.audit.recordNow({ kind: "freeze", actor, outcome: "denied", reason: codeOf(e), details: { target: `${target}:${id}` } });
      throw e;
    }
    await this.directory.reload(this.store);
    await this.audit.recordNow({ kind: "freeze", actor, outcome: "ok", ...(target === "key" ? { key: id } : {}), details: { target: `${target}:${id}`, reason: freeze.reason } });
    this.log.warn({ event: "freeze", actor, target, id }, "frozen");
    return at;
  }

  private freezer(caller: CallerContext): string {
    const officer = caller.identity ? this.officers.get(caller.identity) : undefined;
    if (officer?.status === "active") return officer.id;
    const client = caller.identity ? this.directory.client(caller.identity) : undefined;
    if (client && client.role === "trader" && client.canFreeze && !client.frozenAt) return client.identity;
    throw this.deny(caller, "freeze", caller.identity ? "ROLE_NOT_ALLOWED" : "UNAUTHENTICATED", "only an officer or a client with the freeze grant may freeze");
  }

  // ---- background work: expiry, grace periods, crash recovery ----------------------------------

  /** Expired pending proposals end (their envelopes deleted). */
  async expireDue(now = Date.now()): Promise<void> {
    for (const p of await this.store.listProposals("pending")) await this.expireIfDue(p, now);
  }

  private async expireIfDue(p: ProposalRecord, now = Date.now()): Promise<ProposalRecord> {
    if (p.state !== "pending" || Date.parse(p.expiresAt) > now) return p;
    if (await this.store.updateProposal(p.id, "pending", { state: "expired" })) {
      await this.audit.recordNow({ kind: "proposal.expired", actor: "system", outcome: "ok", key: keyOf(p), details: { proposal: p.id, digest: p.digest } });
    }
    return (await this.store.getProposal(p.id))!;
  }

  /** Retiring versions whose grace period ended are destroyed. */
  async retireDue(now = Date.now()): Promise<void> {
    for (const key of await this.store.listKeys()) {
      for (const v of key.versions) {
        if (v.state === "retiring" && v.retireAt && Date.parse(v.retireAt) <= now) await this.destroyVersion(key.id, v.version);
      }
    }
    await this.directory.reload(this.store);
  }

  /**
   * Start-up: finish what a crash interrupted. Executing proposals resume from their last
   * step; executed ones whose completion was not audited get it; versions left `destroying`
   * are destroyed; approved-but-unexecuted pending proposals execute.
   */
  async resume(): Promise<void> {
    for (const p of await this.store.listProposals("executing")) {
      await this.audit.recordNow({ kind: "reconcile.resume", actor: "system", outcome: "ok", key: keyOf(p), details: { proposal: p.id, digest: p.digest, step: p.step ?? "start" } });
      await this.execute(p).catch(() => undefined); // a failure is recorded on the proposal and audited
    }
    for (const p of await this.store.listProposals("executed")) {
      if (p.step === "audited") continue;
      // Executed (change and mark in one transaction) but its records not yet written.
      await this.audit.recordNow({ kind: "reconcile.complete", actor: "system", outcome: "ok", key: keyOf(p), details: { proposal: p.id, digest: p.digest } });
      await this.completed(p);
    }
    for (const key of await this.store.listKeys()) {
      for (const v of key.versions) if (v.state === "destroying") await this.destroyVersion(key.id, v.version);
    }
    for (const p of await this.store.listProposals("pending")) {
      // Votes are refused after expiry, so a quorum found here was reached before it: a crash
      // between the last vote and the execution must not turn an approved proposal into an
      // expired one.
      const q = await this.quorumOf(p);
      if (q.verdict === "approved" || q.verdict === "rejected") await this.settle(p).catch(() => undefined);
      else await this.expireIfDue(p);
    }
    await this.directory.reload(this.store);
  }

  /**
   * HSM secret objects that no version (and no executing proposal) references: remnants of a
   * run that crashed before recording. Destroyed, with an audit record. Run after resume().
   */
  async destroyOrphans(): Promise<string[]> {
    const known = new Set((await this.store.listKeys()).flatMap((k) => k.versions.filter((v) => v.state !== "destroyed").map((v) => v.objectId)));
    const inFlight = new Set((await this.store.listProposals("executing")).map((p) => p.target));
    const orphans = (await this.hsm.listSecretIds()).filter((id) => id.startsWith("custos:") && !known.has(id) && !inFlight.has(id.split(":")[1] ?? ""));
    for (const id of orphans) {
      await this.hsm.destroySecret(id);
      await this.audit.recordNow({ kind: "reconcile.destroy_orphan", actor: "system", outcome: "ok", details: { objectId: id } });
    }
    return orphans;
  }

  /** Keys past their max age (for logs, /readyz and metrics). */
  async overdueKeys(now = Date.now()): Promise<Array<{ id: string; dueAt: string }>> {
    const out: Array<{ id: string; dueAt: string }> = [];
    for (const key of await this.store.listKeys()) {
      const active = activeVersion(key);
      if (!active?.activatedAt) continue;
      const due = Date.parse(active.activatedAt) + key.maxAgeDays * 86_400_000;
      if (due <= now) out.push({ id: key.id, dueAt: new Date(due).toISOString() });
    }
    return out;
  }

  // ---- helpers ------------------------------------------------------------------------------

  private async checkPreconditions(input: ProposalInput): Promise<void> {
    if (!this.initialised) throw new CustosError("GOVERNANCE_NOT_INITIALISED", "governance is not initialised: run `custos governance init` first");
    const open = async (kind: string, target: string) =>
      [...(await this.store.listProposals("pending")), ...(await this.store.listProposals("executing"))].some((p) => p.kind === kind && p.target === target && Date.parse(p.expiresAt) > Date.now());
    switch (input.kind) {
      case "generate_key":
        if (await this.store.getKey(input.key.keyId)) throw new CustosError("KEY_EXISTS", `key ${input.key.keyId} already exists`);
        if ((await open("import_key", input.key.keyId)) || (await open("generate_key", input.key.keyId))) throw new CustosError("PRECONDITION_FAILED", `a key ${input.key.keyId} is already proposed`);
        return;
      case "import_key":
        this.checkEnvelope(input.envelope);
        if (await this.store.getKey(input.key.keyId)) throw new CustosError("KEY_EXISTS", `key ${input.key.keyId} already exists`);
        if (await open("import_key", input.key.keyId)) throw new CustosError("PRECONDITION_FAILED", `an import of ${input.key.keyId} is already proposed`);
        return;
      case "rotate_key":
        this.checkEnvelope(input.envelope);
        if (!(await this.store.getKey(input.keyId))) throw new CustosError("KEY_NOT_FOUND", `no key ${input.keyId}`);
        if (await open("rotate_key", input.keyId)) throw new CustosError("PRECONDITION_FAILED", `a rotation of ${input.keyId} is already in flight`);
        return;
      case "destroy_version": {
        const key = await this.store.getKey(input.keyId);
        const v = key?.versions.find((x) => x.version === input.version);
        if (!v) throw new CustosError("VERSION_NOT_FOUND", `key ${input.keyId} has no version ${input.version}`);
        if (v.state === "active") throw new CustosError("PRECONDITION_FAILED", `version ${input.version} is the active version: rotate first`);
        if (v.state === "destroyed" || v.state === "destroying") throw new CustosError("PRECONDITION_FAILED", `version ${input.version} is already ${v.state}`);
        return;
      }
      case "set_grants":
        for (const k of input.keyIds) if (!(await this.store.getKey(k))) throw new CustosError("KEY_NOT_FOUND", `no key ${k}`);
        return;
      case "set_policy":
      case "set_api_key_id":
        if (!(await this.store.getKey(input.keyId))) throw new CustosError("KEY_NOT_FOUND", `no key ${input.keyId}`);
        return;
      case "add_officer":
        parseOfficerPublicKey(input.officer.publicKeyPem);
        if ((await this.store.listOfficers()).some((o) => o.id === input.officer.id || o.identity === input.officer.identity)) {
          throw new CustosError("PRECONDITION_FAILED", `officer ${input.officer.id} (or identity ${input.officer.identity}) exists`);
        }
        return;
      case "remove_officer": {
        const active = (await this.store.listOfficers()).filter((o) => o.status === "active");
        if (!active.some((o) => o.id === input.officerId)) throw new CustosError("PRECONDITION_FAILED", `no active officer ${input.officerId}`);
        this.checkRemovable(active.length, (await this.store.getGovernance())!.threshold, input.officerId);
        return;
      }
      case "set_threshold":
        validateRules({ threshold: input.threshold, proposerCounts: this.opts.proposerCounts, veto: this.opts.veto }, (await this.store.listOfficers()).filter((o) => o.status === "active").length);
        return;
      case "thaw":
        if (input.target === "key" ? !(await this.store.getKey(input.id))?.frozenAt : !(await this.store.getClient(input.id))?.frozenAt) {
          throw new CustosError("PRECONDITION_FAILED", `${input.target} ${input.id} is not frozen`);
        }
        return;
    }
  }

  /** The officers left after a removal must still be able to reach the threshold under the quorum rules. */
  private checkRemovable(activeCount: number, threshold: number, officerId: string): void {
    try {
      validateRules({ threshold, proposerCounts: this.opts.proposerCounts, veto: this.opts.veto }, activeCount - 1);
    } catch {
      throw new CustosError("PRECONDITION_FAILED", `removing ${officerId} would leave ${activeCount - 1} officers, too few to reach the threshold of ${threshold}: lower the threshold first`);
    }
  }

  /**
   * What can be checked without opening the envelope: its format, and that it was made for
   * this HSM's wrapping key and OAEP hash. (Whether it opens is known only when it executes.)
   */
  private checkEnvelope(e: ImportEnvelope): void {
    const w = this.hsm.wrappingKey();
    if (e.format !== ENVELOPE_FORMAT) throw new CustosError("ENVELOPE_INVALID", `unknown envelope format ${e.format}`);
    if (e.wrappingKeyFingerprint !== w.fingerprint) throw new CustosError("ENVELOPE_INVALID", "envelope was made for another wrapping key");
    if (e.oaepHash !== w.oaepHash) throw new CustosError("ENVELOPE_INVALID", `this HSM unwraps OAEP with ${w.oaepHash}, not ${e.oaepHash}`);
  }

  private async quorumOf(p: ProposalRecord): Promise<QuorumOutcome> {
    const officers = await this.store.listOfficers();
    const g = await this.store.getGovernance();
    return decideQuorum({
      digest: p.digest,
      proposer: p.proposer,
      expiresAt: Date.parse(p.expiresAt),
      now: Date.now(),
      executed: p.state === "executed" || p.state === "executing",
      activeOfficers: new Set(officers.filter((o) => o.status === "active").map((o) => o.id)),
      votes: (await this.store.listVotes(p.id)).map((v) => ({ officer: v.officerId, decision: v.decision, digest: v.digest })),
      rules: { threshold: g?.threshold ?? Number.MAX_SAFE_INTEGER, proposerCounts: this.opts.proposerCounts, veto: this.opts.veto },
    });
  }

  private async view(p: ProposalRecord): Promise<ProposalView> {
    return { record: p, quorum: await this.quorumOf(p), summary: await this.summarise(p) };
  }

  /** What the proposal changes, before → after, in words an officer checks before signing. */
  private async summarise(p: ProposalRecord): Promise<string[]> {
    const c = JSON.parse(p.canonical) as ProposalContent;
    const params = c.params as Record<string, unknown>;
    const key = KEY_KINDS.has(c.kind) ? await this.store.getKey(c.target) : undefined;
    const versions = (k: KeyWithVersions | undefined) => (k ? k.versions.map((v) => `v${v.version} ${v.state}`).join(", ") : "none");
    switch (c.kind) {
      case "generate_key":
        return [`generate key ${c.target} inside the HSM (${String(params.exchange)} ${String(params.environment)}, ${String(params.algorithm)}); only its public key leaves the HSM`, `versions: none → v1 active`];
      case "import_key":
        return [`import key ${c.target} (${String(params.exchange)} ${String(params.environment)}, ${String(params.algorithm)}, API key id ${JSON.stringify(params.apiKeyId)})`, `versions: none → v1 active`, `wrapped secret sha256 ${c.materialSha256 ?? "?"}`];
      case "rotate_key": {
        const next = key ? Math.max(...key.versions.map((v) => v.version)) + 1 : 1;
        const active = key && activeVersion(key);
        return [
          `rotate key ${c.target}: v${next} becomes active${active ? `, v${active.version} retiring for ${String(params.graceSeconds)} s then destroyed` : ""}`,
          `versions: ${versions(key)} → v${next} active${active ? `, v${active.version} retiring` : ""}`,
          `API key id: ${JSON.stringify(key?.apiKeyId ?? "")} → ${JSON.stringify(params.apiKeyId || key?.apiKeyId || "")}`,
          `wrapped secret sha256 ${c.materialSha256 ?? "?"}`,
        ];
      }
      case "set_api_key_id": {
        const active = key && activeVersion(key);
        return [`API key id of ${c.target}${active ? ` v${active.version}` : ""}: ${JSON.stringify(active?.apiKeyId || key?.apiKeyId || "")} → ${JSON.stringify(params.apiKeyId)}`];
      }
      case "destroy_version":
        return [`destroy key ${c.target} version ${String(params.version)} (its HSM object is deleted; pinned signs fail)`, `versions: ${versions(key)}`];
      case "set_grants": {
        const existing = await this.store.getClient(c.target);
        const before = (await this.store.listGrants()).get(c.target);
        return [
          `client ${c.target}${existing ? "" : " (new)"}`,
          `grants: [${[...(before ?? [])].sort().join(", ")}] → [${(params.keyIds as string[]).join(", ")}]`,
          `CIDRs: [${(existing?.cidrs ?? []).join(", ")}] → [${(params.cidrs as string[]).join(", ")}]`,
          `may freeze: ${String(existing?.canFreeze ?? false)} → ${String(params.canFreeze)}`,
        ];
      }
      case "set_policy":
        return [`policy of key ${c.target}: ${(await this.store.getPolicy(c.target)) ?? "none"} → ${JSON.stringify(params.policy)}`];
      case "add_officer":
        return [`add officer ${c.target} (${String(params.displayName)}, certificate ${String(params.identity)}, key ${publicKeyFingerprint(String(params.publicKeyPem))})`];
      case "remove_officer":
        return [`remove officer ${c.target} (their pending approvals stop counting)`];
      case "set_threshold":
        return [`threshold: ${String((await this.store.getGovernance())?.threshold)} → ${String(params.threshold)}`];
      case "thaw":
        return [`thaw ${c.target.replace(":", " ")}: frozen → active`];
      default:
        return [`${c.kind} ${c.target}`];
    }
  }

  private requireOfficer(caller: CallerContext, action: string): OfficerRecord {
    const actor = this.requireActor(caller, action, { admin: false });
    return (actor as { officer: OfficerRecord }).officer;
  }

  private requireActor(caller: CallerContext, action: string, allow: { admin: boolean }): Actor {
    if (!caller.identity) throw this.deny(caller, action, "UNAUTHENTICATED", "no client identity in the certificate");
    const officer = this.officers.get(caller.identity);
    if (officer?.status === "active") return { kind: "officer", officer };
    if (allow.admin && this.opts.bootstrapAdmins.includes(caller.identity)) return { kind: "admin", identity: caller.identity };
    const client = this.directory.client(caller.identity);
    if (client) throw this.deny(caller, action, "ROLE_NOT_ALLOWED", "an officer certificate is required");
    // Before init nobody is an officer yet: say what is missing.
    if (!this.initialised) throw this.deny(caller, action, "GOVERNANCE_NOT_INITIALISED", "governance is not initialised: run `custos governance init` first");
    throw this.deny(caller, action, "NOT_AN_OFFICER", "not an active officer");
  }

  private requireAdminIdentity(caller: CallerContext, action: string): string {
    if (!caller.identity) throw this.deny(caller, action, "UNAUTHENTICATED", "no client identity in the certificate");
    if (!this.opts.bootstrapAdmins.includes(caller.identity)) throw this.deny(caller, action, "ROLE_NOT_ALLOWED", "only a configured bootstrap administrator may initialise governance");
    return caller.identity;
  }

  /** A refused call is a decision too: queue its audit record, then throw. */
  private deny(caller: CallerContext, kind: string, code: CustosErrorCode, message: string): CustosError {
    const event: AuditEvent = { kind, actor: caller.identity ?? "unknown", outcome: "denied", reason: code };
    if (caller.ip) event.peer = caller.ip;
    this.audit.record(event);
    return new CustosError(code, message);
  }
}

const KEY_KINDS = new Set(["import_key", "generate_key", "rotate_key", "destroy_version", "set_policy", "set_api_key_id"]);

function keyOf(p: ProposalRecord): string | undefined {
  return KEY_KINDS.has(p.kind) ? p.target : undefined;
}

function codeOf(e: unknown): CustosErrorCode {
  return e instanceof CustosError ? e.code : "INTERNAL";
}

function officerRecord(s: OfficerSpec, at: string): OfficerRecord {
  const publicKey = parseOfficerPublicKey(s.publicKeyPem);
  return { id: s.id, displayName: s.displayName || s.id, identity: s.identity, publicKeyPem: s.publicKeyPem.trim() + "\n", fingerprint: publicKeyFingerprint(publicKey), status: "active", createdAt: at };
}

/** Envelopes are stored with their proposal as JSON with base64 fields (only the HSM can open them). */
function serialiseEnvelope(e: ImportEnvelope): string {
  return JSON.stringify({ ...e, encryptedAesKey: e.encryptedAesKey.toString("base64"), wrappedKey: e.wrappedKey.toString("base64") });
}

function deserialiseEnvelope(s: string): ImportEnvelope {
  const o = JSON.parse(s) as Omit<ImportEnvelope, "encryptedAesKey" | "wrappedKey"> & { encryptedAesKey: string; wrappedKey: string };
  return { ...o, encryptedAesKey: Buffer.from(o.encryptedAesKey, "base64"), wrappedKey: Buffer.from(o.wrappedKey, "base64") };
}

export { DEFAULT_GRACE_SECONDS };
