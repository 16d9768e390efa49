import type { ExecutionClaims } from "./execution-claims.js";
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { AuditEvent, AuditLog } from "../audit/audit-log.js";
import { CustosError, markAudited, type CustosErrorCode } from "../errors.js";
import { envelopeDigest } from "../hsm/envelope.js";
import type { KeyCustody as Hsm, WrappingKeyInfo } from "../hsm/hsm.js";
import { activeVersion, type KeyWithVersions } from "../keys/model.js";
import type { ClientRecord } from "../signing/clients.js";
import { allowList, type AccessDirectory } from "../signing/directory.js";
import type { CallerContext } from "../signing/sign-service.js";
import type { Store } from "../store/store.js";
import { isIPv4, type BlockList } from "node:net";
import type { CredentialKind, OfficerRecord, ProposalRecord, ProposalState } from "./model.js";
import type { PasskeyApprovals, PasskeyAssertion } from "./passkey.js";
import { parseOfficerPublicKey, verifyApproval } from "./officer-key.js";
import { buildProposal, canonicalProposal, proposalDigest, type Decision } from "./proposal.js";
import type { OfficerSpec } from "./proposal-input.js";
import { codeOf } from "./error-code.js";
import { keyOf, kindModule, officerRecord, serialiseEnvelope, type KindContent, type KindContext, type ProposalInput } from "./kinds/index.js";
import { ProposalLifecycle, type ProposalView } from "./proposal-lifecycle.js";
import { validateRules } from "./quorum.js";

export interface GovernanceOptions {
  /** The proposer's own approval counts toward the quorum (default false). */
  proposerCounts: boolean;
  /** Any officer's rejection cancels the proposal (default true). */
  veto: boolean;
  /** Identities that may call InitGovernance, once (the configured bootstrap administrators), from their CIDRs only. */
  bootstrapAdmins: ReadonlyArray<{ identity: string; cidrs: readonly string[] }>;
  /** Granted every imported key (the embedded default's dev client); empty when configured. */
  autoGrant: readonly string[];
  /** Default proposal lifetime. */
  proposalTtlMs: number;
  /** The longest lifetime a proposer may ask for (default: the default lifetime); longer is INVALID_ARGUMENT. */
  maxProposalTtlMs?: number;
  /** The clock (default Date.now; the service passes its injected Clock): tests advance it instead of waiting. */
  now?: () => number;
  /** Who may run an execution now (default: this process only; replicas share claims through PostgreSQL). */
  claims?: ExecutionClaims;
}

type Actor = { kind: "officer"; officer: OfficerRecord } | { kind: "admin"; identity: string };

/**
 * Key officers and their quorum: every change to key material, grants, policy, officers or
 * the threshold is a proposal with a canonical digest, executes once a quorum of officers
 * signed that digest, and is executed as a persisted state machine that a restart resumes.
 * Freezing is the one immediate action. This class decides who may do what; what each kind
 * checks, shows and changes is its module's (src/governance/kinds), what happens to a proposal
 * afterwards (quorum, execution, expiry, crash recovery) is ProposalLifecycle's.
 */
export class GovernanceService {
  private officers = new Map<string, OfficerRecord>(); // by certificate identity
  private threshold: number | undefined;
  private readonly lifecycle: ProposalLifecycle;
  private readonly kinds: KindContext;
  private readonly now: () => number;
  /** Bootstrap administrators and their address allowlists (identity → CIDRs), as the signer checks its clients'. */
  private readonly admins: Map<string, BlockList>;

  constructor(
    private readonly store: Store,
    private readonly hsm: Hsm,
    private readonly audit: AuditLog,
    private readonly directory: AccessDirectory,
    private readonly log: Logger,
    private readonly opts: GovernanceOptions,
    /** Verifies console approvals signed with passkeys; absent, passkey votes are refused. */
    private readonly passkeys?: PasskeyApprovals,
  ) {
    this.now = opts.now ?? Date.now;
    this.kinds = { store, hsm, audit, rules: { proposerCounts: opts.proposerCounts, veto: opts.veto }, autoGrant: opts.autoGrant, now: this.now };
    this.lifecycle = new ProposalLifecycle(this.kinds, directory, log, opts.claims);
    this.admins = new Map(opts.bootstrapAdmins.map((a) => [a.identity, allowList(a.cidrs)]));
  }

  async load(): Promise<void> {
    this.officers = new Map((await this.store.governance.listOfficers()).map((o) => [o.identity, o]));
    this.threshold = (await this.store.governance.getGovernance())?.threshold;
  }

  get initialised(): boolean {
    return this.threshold !== undefined;
  }

  // ---- reads -----------------------------------------------------------------------------

  wrappingKey(caller: CallerContext): WrappingKeyInfo {
    this.requireActor(caller, "wrapping_key.get", { admin: true });
    return this.hsm.wrappingKey();
  }

  /** Keys; asymmetric ones with the public key (SPKI DER) of their active version and of every live version. */
  async listKeys(caller: CallerContext): Promise<Array<KeyWithVersions & { publicKey?: Buffer; versionPublicKeys?: Map<number, Buffer> }>> {
    this.requireOfficer(caller, "key.list");
    const keys = await this.store.keys.listKeys();
    return Promise.all(
      keys.map(async (k) => {
        if (k.algorithm !== "ed25519") return k;
        const versionPublicKeys = new Map<number, Buffer>();
        for (const v of k.versions) {
          if (v.state === "destroyed" || v.state === "destroying") continue;
          const publicKey = await this.hsm.publicKey(v.objectId);
          if (publicKey) versionPublicKeys.set(v.version, publicKey);
        }
        const active = activeVersion(k);
        const publicKey = active ? versionPublicKeys.get(active.version) : undefined;
        return { ...k, versionPublicKeys, ...(publicKey ? { publicKey } : {}) };
      }),
    );
  }

  async listClients(caller: CallerContext): Promise<Array<ClientRecord & { grants: string[] }>> {
    this.requireOfficer(caller, "client.list");
    const grants = await this.store.clients.listGrants();
    return (await this.store.clients.listClients()).map((c) => ({ ...c, grants: [...(grants.get(c.identity) ?? [])].sort() }));
  }

  async governance(caller: CallerContext): Promise<{ threshold: number | undefined; initialisedAt: string | undefined; officers: OfficerRecord[] }> {
    this.requireActor(caller, "governance.get", { admin: true });
    const g = await this.store.governance.getGovernance();
    return { threshold: g?.threshold, initialisedAt: g?.initialisedAt, officers: await this.store.governance.listOfficers() };
  }

  get rules(): { proposerCounts: boolean; veto: boolean } {
    return { proposerCounts: this.opts.proposerCounts, veto: this.opts.veto };
  }

  async getProposal(caller: CallerContext, id: string): Promise<ProposalView> {
    this.requireOfficer(caller, "proposal.get");
    const p = await this.store.governance.getProposal(id);
    if (!p) throw new CustosError("PROPOSAL_NOT_FOUND", `no proposal ${id}`);
    return this.lifecycle.view(await this.lifecycle.expireIfDue(p));
  }

  async listProposals(caller: CallerContext, state?: ProposalState): Promise<ProposalView[]> {
    this.requireOfficer(caller, "proposal.list");
    await this.lifecycle.expireDue();
    return Promise.all((await this.store.governance.listProposals(state)).map((p) => this.lifecycle.view(p)));
  }

  // ---- bootstrap -------------------------------------------------------------------------

  /** The first officer set and threshold, exactly once. `caller` null: the embedded default's own init. */
  async init(caller: CallerContext | null, specs: readonly OfficerSpec[], threshold: number): Promise<void> {
    const actor = caller ? this.requireAdminIdentity(caller, "governance.init") : "system";
    if (this.initialised) {
      await this.audit.recordNow({ kind: "governance.init", actor, outcome: "denied", reason: "GOVERNANCE_EXISTS" });
      throw markAudited(new CustosError("GOVERNANCE_EXISTS", "governance is already initialised; officers and threshold change only by proposal"));
    }
    const now = new Date(this.now()).toISOString();
    const officers = specs.map((s) => officerRecord(s, now));
    const ids = new Set(officers.map((o) => o.id));
    if (ids.size !== officers.length || new Set(officers.map((o) => o.identity)).size !== officers.length) {
      throw new CustosError("INVALID_ARGUMENT", "officer ids and certificate identities must be distinct");
    }
    validateRules({ threshold, proposerCounts: this.opts.proposerCounts, veto: this.opts.veto }, officers.length);
    await this.store.governance.initGovernance(threshold, officers, now);
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
    let content: KindContent;
    try {
      const maxTtlMs = this.opts.maxProposalTtlMs ?? this.opts.proposalTtlMs;
      if (ttlMs !== undefined && !(Number.isSafeInteger(ttlMs) && ttlMs > 0 && ttlMs <= maxTtlMs)) {
        throw new CustosError("INVALID_ARGUMENT", `a proposal lives at most ${maxTtlMs / 1000} seconds (governance.maxProposalTtlHours)`);
      }
      content = kindModule(input.kind).content(input);
      if (!this.initialised) throw new CustosError("GOVERNANCE_NOT_INITIALISED", "governance is not initialised: run `custos governance init` first");
      await kindModule(input.kind).preconditions(this.kinds, input);
    } catch (e) {
      await this.audit.recordNow({
        kind: "proposal.create",
        actor: officer.id,
        outcome: "denied",
        reason: codeOf(e),
        ...(keyId ? { key: keyId } : {}),
        details: { proposalKind: input.kind },
      });
      throw markAudited(e);
    }
    const { target, params, envelope } = content;
    const kind = input.kind;
    const signed = buildProposal({
      kind,
      target,
      params,
      ...(envelope ? { materialSha256: envelopeDigest(envelope) } : {}),
      proposer: officer.id,
      ttlMs: ttlMs ?? this.opts.proposalTtlMs,
      now: new Date(this.now()),
    });
    const record: ProposalRecord = {
      id: randomUUID(),
      kind,
      target,
      canonical: canonicalProposal(signed),
      digest: proposalDigest(signed),
      proposer: officer.id,
      state: "pending",
      step: null,
      envelope: envelope ? serialiseEnvelope(envelope) : null,
      createdAt: signed.createdAt,
      expiresAt: signed.expiresAt,
      executedAt: null,
      failure: null,
    };
    await this.store.governance.createProposal(record);
    await this.audit.recordNow({
      kind: "proposal.create",
      actor: officer.id,
      outcome: "ok",
      key: keyOf(record),
      details: { proposal: record.id, proposalKind: kind, target, digest: record.digest },
    });
    return this.lifecycle.view(record);
  }

  /**
   * An officer's signed decision. Checked in order: officer, proposal open, digest, signature.
   * Reaching the quorum executes the proposal before this returns.
   */
  async vote(caller: CallerContext, id: string, decision: Decision, digest: string, signature: Uint8Array, reason = ""): Promise<ProposalView> {
    return this.castVote(caller, id, decision, digest, reason, async (p, officer) => {
      if (digest !== p.digest) throw new CustosError("DIGEST_MISMATCH", "the signed digest is not this proposal's digest");
      if (!verifyApproval(parseOfficerPublicKey(officer.publicKeyPem), decision, digest, signature)) {
        throw new CustosError("BAD_SIGNATURE", `signature does not verify with officer ${officer.id}'s key`);
      }
      return { signature: Buffer.from(signature).toString("base64"), credentialKind: "ed25519" };
    });
  }

  /**
   * A decision signed in the console with one of the officer's passkeys: a WebAuthn assertion
   * whose challenge is derived from the decision, this proposal's digest and a single-use
   * server nonce (passkey.ts). Counted exactly like an Ed25519 vote.
   */
  async votePasskey(caller: CallerContext, id: string, decision: Decision, nonce: string, response: PasskeyAssertion): Promise<ProposalView> {
    const passkeys = this.passkeys;
    if (!passkeys) throw new CustosError("PRECONDITION_FAILED", "passkeys are not enabled on this service");
    return this.castVote(caller, id, decision, undefined, "", async (p, officer) => {
      const v = await passkeys.verifyApproval({ officerId: officer.id, proposalId: p.id, digest: p.digest, decision, nonce, response });
      return { signature: v.evidence, credentialKind: "passkey", credentialId: v.credentialId };
    });
  }

  /** The active officer with this id (the console's sessions name officers by id). */
  activeOfficer(id: string): OfficerRecord | undefined {
    return [...this.officers.values()].find((o) => o.id === id && o.status === "active");
  }

  private async castVote(
    caller: CallerContext,
    id: string,
    decision: Decision,
    claimedDigest: string | undefined,
    reason: string,
    verify: (p: ProposalRecord, officer: OfficerRecord) => Promise<{ signature: string; credentialKind: CredentialKind; credentialId?: string }>,
  ): Promise<ProposalView> {
    const officer = this.requireOfficer(caller, `proposal.${decision}`);
    const deny = async (code: CustosErrorCode, message: string, p?: ProposalRecord): Promise<never> => {
      const digest = claimedDigest ?? p?.digest ?? "";
      await this.audit.recordNow({
        kind: `proposal.${decision}`,
        actor: officer.id,
        outcome: "denied",
        reason: code,
        ...(p ? { key: keyOf(p) } : {}),
        details: { proposal: id, digest },
      });
      throw markAudited(new CustosError(code, message));
    };
    let p = await this.store.governance.getProposal(id);
    if (!p) return deny("PROPOSAL_NOT_FOUND", `no proposal ${id}`);
    p = await this.lifecycle.expireIfDue(p);
    if (p.state !== "pending") return deny("PROPOSAL_CLOSED", `proposal ${id} is ${p.state}`, p);
    let signed: Awaited<ReturnType<typeof verify>>;
    try {
      signed = await verify(p, officer);
    } catch (e) {
      return deny(codeOf(e), e instanceof Error ? e.message : "the vote does not verify", p);
    }
    const { credentialKind, credentialId } = signed;
    await this.store.governance.addVote({
      proposalId: id,
      officerId: officer.id,
      decision,
      digest: p.digest,
      signature: signed.signature,
      at: new Date(this.now()).toISOString(),
      credentialKind,
      ...(credentialId ? { credentialId } : {}),
    });
    await this.audit.recordNow({
      kind: `proposal.${decision}`,
      actor: officer.id,
      outcome: "ok",
      key: keyOf(p),
      details: {
        proposal: id,
        digest: p.digest,
        credential: credentialKind,
        ...(credentialId ? { credentialId } : {}),
        ...(reason ? { reason: reason.slice(0, 200) } : {}),
      },
    });
    try {
      return await this.lifecycle.settle(p);
    } finally {
      await this.load(); // an execution may have changed the officers or the threshold
    }
  }

  /** Where the last exchange-side permission verdict of a key is read (`exchangePermissionsOf`). */
  reportExchangePermissions(verdict: (keyId: string) => string): void {
    this.exchangePermissionVerdict = verdict;
  }
  private exchangePermissionVerdict: (keyId: string) => string = () => "";

  /** What custos last read from the key's exchange about its settings, in words ("" when not checked here). */
  exchangePermissionsOf(keyId: string): string {
    return this.exchangePermissionVerdict(keyId);
  }

  /** Runs `listener` after each proposal this process executes (outside its transaction; never awaited). */
  onExecuted(listener: (p: { kind: string; target: string }) => void): void {
    this.lifecycle.executedListeners.push(listener);
  }

  // ---- freeze -------------------------------------------------------------------------------

  /** Immediate: any active officer, or a trading client allowed to freeze. Thaw needs a quorum. */
  async freeze(caller: CallerContext, target: "key" | "client", id: string, reason: string): Promise<string> {
    return this.applyFreeze(this.freezer(caller), target, id, reason);
  }

  /** A freeze on custos's own authority (automatic freeze on an anomaly), audited with actor `actor`. */
  async freezeAsService(actor: string, target: "key" | "client", id: string, reason: string): Promise<string> {
    return this.applyFreeze(actor, target, id, reason);
  }

  private async applyFreeze(actor: string, target: "key" | "client", id: string, reason: string): Promise<string> {
    if (!reason.trim()) throw new CustosError("INVALID_ARGUMENT", "a freeze needs a reason");
    const at = new Date(this.now()).toISOString();
    const freeze = { at, reason: reason.slice(0, 500) };
    try {
      if (target === "key") await this.store.keys.setKeyFrozen(id, freeze);
      else await this.store.clients.setClientFrozen(id, freeze);
    } catch (e) {
      await this.audit.recordNow({ kind: "freeze", actor, outcome: "denied", reason: codeOf(e), details: { target: `${target}:${id}` } });
      throw markAudited(e);
    }
    await this.directory.reload(this.store);
    await this.audit.recordNow({
      kind: "freeze",
      actor,
      outcome: "ok",
      ...(target === "key" ? { key: id } : {}),
      details: { target: `${target}:${id}`, reason: freeze.reason },
    });
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

  // ---- background work: expiry, grace periods, crash recovery (ProposalLifecycle) ------------

  /** Expired pending proposals end (their envelopes deleted). */
  async expireDue(now = this.now()): Promise<void> {
    return this.lifecycle.expireDue(now);
  }

  /** Retiring versions whose grace period ended are destroyed. */
  async retireDue(now = this.now()): Promise<void> {
    return this.lifecycle.retireDue(now);
  }

  /**
   * Start-up: finish what a crash interrupted. Executing proposals resume from their last
   * step; executed ones whose completion was not audited get it; versions left `destroying`
   * are destroyed; approved-but-unexecuted pending proposals execute.
   */
  async resume(opts: { whileOthersRun?: boolean } = {}): Promise<void> {
    try {
      await this.lifecycle.resume(opts);
    } finally {
      await this.load();
    }
  }

  /**
   * HSM secret objects that no version (and no executing proposal) references: remnants of a
   * run that crashed before recording. Destroyed, with an audit record. Run after resume().
   */
  async destroyOrphans(): Promise<string[]> {
    return this.lifecycle.destroyOrphans();
  }

  /** Keys past their max age (for logs, /readyz and metrics). */
  async overdueKeys(now = this.now()): Promise<Array<{ id: string; dueAt: string }>> {
    return this.lifecycle.overdueKeys(now);
  }

  // ---- helpers ------------------------------------------------------------------------------

  private requireOfficer(caller: CallerContext, action: string): OfficerRecord {
    const actor = this.requireActor(caller, action, { admin: false });
    return (actor as { officer: OfficerRecord }).officer;
  }

  private requireActor(caller: CallerContext, action: string, allow: { admin: boolean }): Actor {
    if (!caller.identity) throw this.deny(caller, action, "UNAUTHENTICATED", "no client identity in the certificate");
    const officer = this.officers.get(caller.identity);
    if (officer?.status === "active") return { kind: "officer", officer };
    if (allow.admin && this.admins.has(caller.identity)) return { kind: "admin", identity: this.requireAdminAddress(caller, action) };
    const client = this.directory.client(caller.identity);
    if (client) throw this.deny(caller, action, "ROLE_NOT_ALLOWED", "an officer certificate is required");
    // Before init nobody is an officer yet: say what is missing.
    if (!this.initialised) throw this.deny(caller, action, "GOVERNANCE_NOT_INITIALISED", "governance is not initialised: run `custos governance init` first");
    throw this.deny(caller, action, "NOT_AN_OFFICER", "not an active officer");
  }

  private requireAdminIdentity(caller: CallerContext, action: string): string {
    if (!caller.identity) throw this.deny(caller, action, "UNAUTHENTICATED", "no client identity in the certificate");
    if (!this.admins.has(caller.identity)) {
      throw this.deny(caller, action, "ROLE_NOT_ALLOWED", "only a configured bootstrap administrator may initialise governance");
    }
    return this.requireAdminAddress(caller, action);
  }

  /** A bootstrap administrator acts only from inside its configured CIDRs (fail closed without a peer address). */
  private requireAdminAddress(caller: CallerContext, action: string): string {
    const allow = this.admins.get(caller.identity ?? "");
    const ip = caller.ip;
    if (!allow || !ip || !allow.check(ip, isIPv4(ip) ? "ipv4" : "ipv6")) {
      throw this.deny(caller, action, "ADDRESS_NOT_ALLOWED", "address is not in the administrator's allowlist");
    }
    return caller.identity!;
  }

  /** A refused call is a decision too: queue its audit record, then throw. */
  private deny(caller: CallerContext, kind: string, code: CustosErrorCode, message: string): CustosError {
    const event: AuditEvent = { kind, actor: caller.identity ?? "unknown", outcome: "denied", reason: code };
    if (caller.ip) event.peer = caller.ip;
    // Sampled: a trading client hammering Custody must not fill the disk with denial rows.
    this.audit.recordRefusal(event);
    return markAudited(new CustosError(code, message));
  }
}

export type { ProposalView };
