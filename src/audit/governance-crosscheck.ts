import type { StoreSlice, StoredAuditEvent } from "../store/store.js";

/** At most this many findings of one kind are named; the rest are counted. */
const NAMED = 5;

/**
 * Cross-checks the governance tables against the audit chain: every proposal has its
 * `proposal.create` event, every vote its `proposal.approve`/`proposal.reject` event by that
 * officer, every executed proposal its `proposal.executed` event. A row without its event is an
 * action whose record was erased (or a row written around custos).
 */
export class GovernanceAuditIndex {
  private readonly created = new Set<string>();
  private readonly votes = new Set<string>();
  private readonly executed = new Set<string>();

  /** Reads a page of verified events (verifyAuditChain's onPage). */
  observe(events: readonly StoredAuditEvent[]): void {
    for (const e of events) {
      // Most events are signs: skip them without parsing.
      if (!e.body.includes('"kind":"proposal.')) continue;
      const body = JSON.parse(e.body) as { kind: string; actor: string; outcome: string; details?: { proposal?: unknown } };
      const proposal = body.details?.proposal;
      if (body.outcome !== "ok" || typeof proposal !== "string") continue;
      if (body.kind === "proposal.create") this.created.add(proposal);
      else if (body.kind === "proposal.approve" || body.kind === "proposal.reject")
        this.votes.add(voteKey(proposal, body.actor, body.kind.slice("proposal.".length)));
      else if (body.kind === "proposal.executed") this.executed.add(proposal);
    }
  }

  /** One line per kind of finding (empty when every governance row has its event). */
  async findings(store: StoreSlice<"governance">): Promise<string[]> {
    const noCreate: string[] = [];
    const noVote: string[] = [];
    const noExecuted: string[] = [];
    for (const p of await store.governance.listProposals()) {
      if (!this.created.has(p.id)) noCreate.push(`${p.id} (${p.kind}, ${p.state})`);
      if (p.state === "executed" && !this.executed.has(p.id)) noExecuted.push(`${p.id} (${p.kind})`);
      for (const v of await store.governance.listVotes(p.id)) {
        if (!this.votes.has(voteKey(p.id, v.officerId, v.decision))) noVote.push(`${v.decision} by ${v.officerId} on ${p.id}`);
      }
    }
    return [
      finding("proposal(s) without their proposal.create audit event", noCreate),
      finding("vote(s) without their audit event", noVote),
      finding("executed proposal(s) without their proposal.executed audit event", noExecuted),
    ].filter((f): f is string => f !== undefined);
  }
}

function voteKey(proposal: string, officer: string, decision: string): string {
  return `${proposal}\n${officer}\n${decision}`;
}

function finding(what: string, items: string[]): string | undefined {
  if (items.length === 0) return undefined;
  const more = items.length > NAMED ? ` and ${items.length - NAMED} more` : "";
  return `${items.length} ${what}: ${items.slice(0, NAMED).join(", ")}${more}`;
}
