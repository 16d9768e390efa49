import type { Logger } from "pino";
import type { AuditEvent, AuditRecord } from "../audit/audit-log.js";
import { markAudited } from "../errors.js";
import { codeOf } from "./error-code.js";
import { isRawOnly } from "../exchanges/registry.js";
import { activeVersion } from "../keys/model.js";
import type { AccessDirectory } from "../signing/directory.js";
import { InProcessClaims, type ExecutionClaims } from "./execution-claims.js";
import { faultPoint } from "./fault.js";
import { keyOf, kindModule, retireVersion, type KindContext } from "./kinds/index.js";
import type { ProposalRecord } from "./model.js";
import type { ProposalContent } from "./proposal.js";
import { decideQuorum, type QuorumOutcome } from "./quorum.js";

/** A proposal as officers see it: its record, the quorum state and what it changes. */
export interface ProposalView {
  record: ProposalRecord;
  quorum: QuorumOutcome;
  summary: string[];
}

/** A raw-only key (no dialect) signs anything: officers approving anything about one must know. */
const rawOnlyNote = (exchange: string) =>
  `RAW-ONLY key (exchange ${JSON.stringify(exchange)}, no dialect): Sign signs any bytes with it, withdrawals included; no request policy applies`;

/**
 * What happens to a proposal once it exists: the quorum verdict, execution as a persisted
 * state machine, expiry; and the background work that finishes what was started: grace
 * periods, crash recovery, orphaned HSM objects, overdue keys. Generic over kinds: each step
 * is the kind module's (src/governance/kinds). GovernanceService decides who may propose and
 * vote; this class never checks a caller, and re-reading the officer set after an execution
 * is the caller's.
 */
export class ProposalLifecycle {
  private readonly store: KindContext["store"];
  private readonly hsm: KindContext["hsm"];
  private readonly audit: KindContext["audit"];
  private readonly now: () => number;

  constructor(
    private readonly ctx: KindContext,
    private readonly directory: AccessDirectory,
    private readonly log: Logger,
    /** Who runs an execution now: a vote, a resume, another replica never run one twice. */
    private readonly claims: ExecutionClaims = new InProcessClaims(),
  ) {
    this.store = ctx.store;
    this.hsm = ctx.hsm;
    this.audit = ctx.audit;
    this.now = ctx.now;
  }

  /** Applies the quorum verdict to a pending proposal. */
  async settle(p: ProposalRecord): Promise<ProposalView> {
    const quorum = await this.quorumOf(p);
    if (quorum.verdict === "approved") {
      await this.execute(p);
    } else if (quorum.verdict === "rejected") {
      if (await this.store.governance.updateProposal(p.id, "pending", { state: "rejected" })) {
        await this.audit.recordNow({
          kind: "proposal.rejected",
          actor: "system",
          outcome: "ok",
          key: keyOf(p),
          details: { proposal: p.id, digest: p.digest, by: quorum.rejections.join(",") },
        });
      }
    }
    return this.view((await this.store.governance.getProposal(p.id))!);
  }

  async view(p: ProposalRecord): Promise<ProposalView> {
    return { record: p, quorum: await this.quorumOf(p), summary: await this.summarise(p) };
  }

  /**
   * What a proposal changes, before → after, in words an officer checks before signing. The
   * "after" comes from the signed content; the "before" is the store's current state.
   */
  private async summarise(p: ProposalRecord): Promise<string[]> {
    const c = JSON.parse(p.canonical) as ProposalContent;
    const kind = kindModule(c.kind);
    const key = kind.targetsKey ? await this.store.keys.getKey(c.target) : undefined;
    const lines = await kind.summarise(this.ctx, c, key);
    // A new key's exchange is in the signed content; an existing key's, in the store.
    const exchange = kind.newKeyExchange(c) ?? key?.exchange;
    return exchange !== undefined && isRawOnly(exchange) ? [...lines, rawOnlyNote(exchange)] : lines;
  }

  // ---- execution (a persisted state machine) ------------------------------------------------

  /** Runs (or resumes) an approved proposal. Steps already done are skipped by their own checks. */
  private async execute(stale: ProposalRecord): Promise<void> {
    const release = await this.claims.claim(stale.id);
    if (!release) return; // running here or on another replica
    let executed: ProposalRecord | undefined;
    try {
      // Read after the claim: another run may have finished it meanwhile.
      let p = (await this.store.governance.getProposal(stale.id)) ?? stale;
      // Only a pending (approved) or an interrupted executing proposal runs; never an expired,
      // rejected, failed or executed one.
      if (p.state !== "pending" && p.state !== "executing") return;
      if (p.state === "pending") {
        if (!(await this.store.governance.updateProposal(p.id, "pending", { state: "executing" }))) return; // a concurrent vote got there first
        await this.audit.recordNow({
          kind: "proposal.execute",
          actor: "system",
          outcome: "ok",
          key: keyOf(p),
          details: { proposal: p.id, digest: p.digest, step: "start" },
        });
        p = { ...p, state: "executing" };
      }
      const content = JSON.parse(p.canonical) as ProposalContent;
      const kind = kindModule(content.kind);
      const at = new Date(this.now()).toISOString();
      try {
        // The HSM step outside the transaction; the record step and the "executed" mark in one.
        const run = await kind.execute(this.ctx, p, content, at);
        try {
          await this.store.transaction(async (tx) => {
            await run.record(tx);
            await tx.governance.markExecuted(p.id, at);
          });
        } catch (e) {
          // No orphan: an HSM object this run created goes if its record could not be written.
          if (run.created) await this.hsm.destroySecret(run.created).catch(() => undefined);
          throw e;
        }
        if (run.afterRecord) faultPoint(run.afterRecord);
      } catch (e) {
        await this.store.governance.updateProposal(p.id, "executing", { state: "failed", failure: e instanceof Error ? e.message.slice(0, 500) : String(e) });
        await this.audit.recordNow({
          kind: "proposal.failed",
          actor: "system",
          outcome: "failed",
          reason: codeOf(e),
          key: keyOf(p),
          details: { proposal: p.id, digest: p.digest },
        });
        this.log.warn({ event: "proposal.failed", proposal: p.id, kind: p.kind, reason: codeOf(e) }, "proposal execution failed");
        // The vote that triggered the execution answers with the execution's error, already audited (proposal.failed).
        throw markAudited(e);
      }
      await this.completed({ ...p, state: "executed", executedAt: at });
      executed = p;
    } finally {
      await release();
      await this.directory.reload(this.store);
    }
    // After the store transaction and the directory reload; a listener's work never fails the proposal.
    if (executed) for (const listener of this.executedListeners) listener(executed);
  }

  /** Called (not awaited) after each proposal this process executed; listeners handle their own failures. */
  readonly executedListeners: Array<(p: ProposalRecord) => void> = [];

  /**
   * After the change and the executed mark (one transaction): the kind's audit records of what
   * changed, proposal.executed, then step "audited". A crash in between is finished by resume(),
   * from the state the change left, so the records are the same either way, and none is written
   * twice (`alreadyWritten`: the kinds of record already in the chain).
   */
  private async completed(p: ProposalRecord, alreadyWritten: ReadonlySet<string> = new Set()): Promise<void> {
    const c = JSON.parse(p.canonical) as ProposalContent;
    const kind = kindModule(c.kind);
    const record = (event: AuditEvent) => (alreadyWritten.has(event.kind) ? Promise.resolve() : this.audit.recordNow(event));
    for (const event of await kind.completed(this.ctx, p, c)) await record(event);
    if (kind.betweenAuditRecords) faultPoint(kind.betweenAuditRecords);
    const details = { proposal: p.id, digest: p.digest, proposalKind: p.kind, target: p.target };
    await record({ kind: "proposal.executed", actor: "system", outcome: "ok", key: keyOf(p), details });
    await this.store.governance.updateProposal(p.id, "executed", { step: "audited" });
  }

  // ---- background work: expiry, grace periods, crash recovery ----------------------------------

  /** Expired pending proposals end (their envelopes deleted). */
  async expireDue(now = this.now()): Promise<void> {
    for (const p of await this.store.governance.listProposals("pending")) await this.expireIfDue(p, now);
  }

  /** `p` as it is now: expired (and audited) if it was pending past its expiry. */
  async expireIfDue(p: ProposalRecord, now = this.now()): Promise<ProposalRecord> {
    if (p.state !== "pending" || Date.parse(p.expiresAt) > now) return p;
    if (await this.store.governance.updateProposal(p.id, "pending", { state: "expired" })) {
      await this.audit.recordNow({ kind: "proposal.expired", actor: "system", outcome: "ok", key: keyOf(p), details: { proposal: p.id, digest: p.digest } });
    }
    return (await this.store.governance.getProposal(p.id))!;
  }

  /** Retiring versions whose grace period ended are destroyed. */
  async retireDue(now = this.now()): Promise<void> {
    for (const key of await this.store.keys.listKeys()) {
      for (const v of key.versions) {
        if (v.state === "retiring" && v.retireAt && Date.parse(v.retireAt) <= now) await retireVersion(this.ctx, key.id, v.version);
      }
    }
    await this.directory.reload(this.store);
  }

  /**
   * The kinds of audit record about `p` written since it executed: the completion records a
   * crash left behind. Walks the chain back from its head, page by page, to the first event
   * older than the execution (a handful of pages at most: the crash came right after it).
   */
  private async recordedSinceExecution(p: ProposalRecord): Promise<Set<string>> {
    const kinds = new Set<string>();
    const since = p.executedAt ?? "";
    const PAGE = 500;
    let end = ((await this.store.audit.lastAudit())?.seq ?? 0) + 1;
    while (end > 1) {
      const start = Math.max(0, end - 1 - PAGE);
      const page = await this.store.audit.readAudit(start, end - 1 - start);
      for (let i = page.length - 1; i >= 0; i--) {
        const body = JSON.parse(page[i]!.body) as AuditRecord;
        if (body.at < since) return kinds;
        if (body.details?.proposal === p.id) kinds.add(body.kind);
      }
      end = start + 1;
    }
    return kinds;
  }

  /**
   * Start-up: finish what a crash interrupted. Executing proposals resume from their last
   * step; executed ones whose completion was not audited get it; versions left `destroying`
   * are destroyed; approved-but-unexecuted pending proposals execute.
   *
   * `whileOthersRun` (a replica's housekeeping, other replicas live): only what a dead replica
   * left — executions nobody claims, a destruction no executing proposal owns, and approved
   * proposals whose last vote is older than `settleAfterMs` (the voter's replica executes the
   * fresh ones itself).
   */
  async resume(opts: { whileOthersRun?: boolean; settleAfterMs?: number } = {}): Promise<void> {
    for (const p of await this.store.governance.listProposals("executing")) {
      // A replica's own live execution holds its claim: only abandoned ones are resumed (execute() claims).
      if (!(await this.claimable(p.id))) continue;
      await this.audit.recordNow({
        kind: "reconcile.resume",
        actor: "system",
        outcome: "ok",
        key: keyOf(p),
        details: { proposal: p.id, digest: p.digest, step: p.step ?? "start" },
      });
      await this.execute(p).catch(() => undefined); // a failure is recorded on the proposal and audited
    }
    for (const listed of await this.store.governance.listProposals("executed")) {
      if (listed.step === "audited") continue;
      const release = await this.claims.claim(listed.id);
      if (!release) continue; // its executor is alive and writing them
      try {
        const p = await this.store.governance.getProposal(listed.id);
        if (!p || p.step === "audited") continue;
        // Executed (change and mark in one transaction) but its records not yet written.
        await this.audit.recordNow({
          kind: "reconcile.complete",
          actor: "system",
          outcome: "ok",
          key: keyOf(p),
          details: { proposal: p.id, digest: p.digest },
        });
        await this.completed(p, await this.recordedSinceExecution(p));
      } finally {
        await release();
      }
    }
    const owned = new Set(opts.whileOthersRun ? (await this.store.governance.listProposals("executing")).map((p) => p.target) : []);
    for (const key of await this.store.keys.listKeys()) {
      if (owned.has(key.id)) continue; // its executor (or that executor's resumer) finishes it
      for (const v of key.versions) if (v.state === "destroying") await retireVersion(this.ctx, key.id, v.version);
    }
    for (const p of await this.store.governance.listProposals("pending")) {
      if (opts.whileOthersRun) {
        const votes = await this.store.governance.listVotes(p.id);
        const last = Math.max(0, ...votes.map((v) => Date.parse(v.at)));
        if (this.now() - last < (opts.settleAfterMs ?? 30_000)) continue;
      }
      // Votes are refused after expiry, so a quorum found here was reached before it: a crash
      // between the last vote and the execution must not turn an approved proposal into an
      // expired one.
      const q = await this.quorumOf(p);
      if (q.verdict === "approved" || q.verdict === "rejected") await this.settle(p).catch(() => undefined);
      else await this.expireIfDue(p);
    }
    await this.directory.reload(this.store);
  }

  /** Whether nobody runs `id` now (a probe: the claim is released at once). */
  private async claimable(id: string): Promise<boolean> {
    const release = await this.claims.claim(id);
    await release?.();
    return release !== undefined;
  }

  /**
   * HSM secret objects that no version (and no executing proposal) references: remnants of a
   * run that crashed before recording. Destroyed, with an audit record. Run after resume().
   */
  async destroyOrphans(): Promise<string[]> {
    // The token first, then the records: an object created after this listing is not judged,
    // and one listed here belongs to a version recorded by now or to a proposal still executing
    // (a replica's run in flight), which is spared.
    const onToken = await this.hsm.listSecretIds();
    const known = new Set((await this.store.keys.listKeys()).flatMap((k) => k.versions.filter((v) => v.state !== "destroyed").map((v) => v.objectId)));
    const inFlight = new Set((await this.store.governance.listProposals("executing")).map((p) => p.target));
    const orphans = onToken.filter((id) => id.startsWith("custos:") && !known.has(id) && !inFlight.has(id.split(":")[1] ?? ""));
    for (const id of orphans) {
      await this.hsm.destroySecret(id);
      await this.audit.recordNow({ kind: "reconcile.destroy_orphan", actor: "system", outcome: "ok", details: { objectId: id } });
    }
    return orphans;
  }

  /** Keys past their max age (for logs, /readyz and metrics). */
  async overdueKeys(now = this.now()): Promise<Array<{ id: string; dueAt: string }>> {
    const out: Array<{ id: string; dueAt: string }> = [];
    for (const key of await this.store.keys.listKeys()) {
      const active = activeVersion(key);
      if (!active?.activatedAt) continue;
      const due = Date.parse(active.activatedAt) + key.maxAgeDays * 86_400_000;
      if (due <= now) out.push({ id: key.id, dueAt: new Date(due).toISOString() });
    }
    return out;
  }

  private async quorumOf(p: ProposalRecord): Promise<QuorumOutcome> {
    const officers = await this.store.governance.listOfficers();
    const g = await this.store.governance.getGovernance();
    return decideQuorum({
      digest: p.digest,
      proposer: p.proposer,
      expiresAt: Date.parse(p.expiresAt),
      now: this.now(),
      executed: p.state === "executed" || p.state === "executing",
      activeOfficers: new Set(officers.filter((o) => o.status === "active").map((o) => o.id)),
      votes: (await this.store.governance.listVotes(p.id)).map((v) => ({ officer: v.officerId, decision: v.decision, digest: v.digest })),
      rules: { threshold: g?.threshold ?? Number.MAX_SAFE_INTEGER, proposerCounts: this.ctx.rules.proposerCounts, veto: this.ctx.rules.veto },
    });
  }
}
