/**
 * PostgreSQL advisory lock keys custos takes, as (namespace, id) pairs: one table, so no two
 * mechanisms pick the same key. The namespace is "cus" in ASCII; PostgreSQL's two-int form
 * keeps custos's keys apart from any single-bigint lock another program on the database takes.
 */
export const CUSTOS_LOCK_NAMESPACE = 0x637573;

/** The ids within custos's namespace, one per mechanism. */
export const ADVISORY_LOCKS = {
  /** Held (session level) while migrations run: replicas starting together migrate once. */
  migrations: 1,
  /** Held (transaction level) by every `Store.transaction()`: transactions run one at a time deployment-wide. */
  transactions: 2,
  /** Held (transaction level) while the audit chain's head is read and extended. */
  auditChain: 3,
  /** Held (transaction level) while console state is counted against its bounds and inserted. */
  consoleBounds: 4,
} as const;

/** `SELECT pg_advisory_xact_lock(namespace, id)`'s parameters for `lock`. */
export function lockParams(lock: keyof typeof ADVISORY_LOCKS): [number, number] {
  return [CUSTOS_LOCK_NAMESPACE, ADVISORY_LOCKS[lock]];
}
