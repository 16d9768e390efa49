/**
 * Who may run a proposal's execution (or finish its records) right now. In one process a set
 * of ids is enough; replicas on PostgreSQL hold a session advisory lock per proposal for the
 * whole run (src/replication/execution-claims.ts), so a replica resuming "executing" proposals
 * takes only those whose executor died: PostgreSQL releases a dead session's locks.
 */
export interface ExecutionClaims {
  /** A release function if the proposal was free (now claimed), undefined if someone runs it. */
  claim(proposalId: string): Promise<(() => Promise<void>) | undefined>;
}

/** Claims within this process. */
export class InProcessClaims implements ExecutionClaims {
  private readonly held = new Set<string>();

  async claim(proposalId: string): Promise<(() => Promise<void>) | undefined> {
    if (this.held.has(proposalId)) return undefined;
    this.held.add(proposalId);
    return async () => {
      this.held.delete(proposalId);
    };
  }
}
