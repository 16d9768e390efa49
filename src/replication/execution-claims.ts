/**
 * Execution claims shared by replicas: a session advisory lock per proposal, held on a pooled
 * connection for the whole run and released after it. A replica that dies mid-execution
 * (SIGKILL included) loses its session and so its claim; the housekeeping leader's resume
 * then takes the proposal over. A live executor's claim makes every other replica skip it.
 */
import type pg from "pg";
import { InProcessClaims, type ExecutionClaims } from "../governance/execution-claims.js";

const LOCK_KEY = "SELECT hashtextextended('custos.proposal:' || $1, 0) AS k";

export class PostgresExecutionClaims implements ExecutionClaims {
  private readonly local = new InProcessClaims();

  constructor(private readonly pool: pg.Pool) {}

  async claim(proposalId: string): Promise<(() => Promise<void>) | undefined> {
    const releaseLocal = await this.local.claim(proposalId);
    if (!releaseLocal) return undefined;
    let client: pg.PoolClient | undefined;
    try {
      client = await this.pool.connect();
      const { rows } = await client.query<{ got: boolean }>(`SELECT pg_try_advisory_lock((${LOCK_KEY})) AS got`, [proposalId]);
      if (rows[0]?.got !== true) {
        client.release();
        await releaseLocal();
        return undefined;
      }
    } catch (e) {
      // Fail closed: no claim, no execution (the leader retries at its next housekeeping).
      client?.release(true);
      await releaseLocal();
      throw e;
    }
    const held = client;
    return async () => {
      try {
        await held.query(`SELECT pg_advisory_unlock((${LOCK_KEY}))`, [proposalId]);
        held.release();
      } catch {
        held.release(true); // the lock ends with the discarded session
      } finally {
        await releaseLocal();
      }
    };
  }
}
