import { CustosError } from "../errors.js";
import type { Decision } from "./proposal.js";

export interface QuorumRules {
  /** Approvals needed (M of N). */
  threshold: number;
  /** Whether the proposer's own approval is one of the M. */
  proposerCounts: boolean;
  /** Whether a single counted rejection rejects the proposal. */
  veto: boolean;
}

/** A vote whose signature the caller has already verified. */
export interface Vote {
  officer: string;
  decision: Decision;
  /** The proposal digest the officer signed. */
  digest: string;
}

export interface QuorumInput {
  /** Digest of the proposal being decided. */
  digest: string;
  proposer: string;
  /** Epoch ms. */
  expiresAt: number;
  /** Epoch ms. */
  now: number;
  executed: boolean;
  /** Officers active now, not when they voted. */
  activeOfficers: ReadonlySet<string>;
  votes: readonly Vote[];
  rules: QuorumRules;
}

export type QuorumVerdict = "approved" | "rejected" | "pending" | "expired" | "executed";

export interface QuorumOutcome {
  verdict: QuorumVerdict;
  /** Officers whose approval counted, sorted. */
  approvals: string[];
  /** Officers whose rejection counted, sorted. */
  rejections: string[];
  /**
   * Approvals still missing: 0 when approved or executed, else threshold − approvals. Infinity
   * when the threshold is not a positive integer (no number of approvals satisfies it).
   */
  needed: number;
}

function isValidThreshold(threshold: number): boolean {
  return Number.isInteger(threshold) && threshold >= 1;
}

/**
 * Decides a proposal from its votes, as a pure function of the input: the caller re-runs it
 * after every vote, officer change, rule change or tick of the clock, and persists the result.
 *
 * Counting:
 * - only votes whose digest equals `digest` count, and only from officers active *now* (a
 *   removed officer's votes stop counting, even after quorum was reached but not executed);
 * - each officer counts once; an officer who both approved and rejected counts as rejecting;
 * - the proposer's approval counts only with `rules.proposerCounts`; the proposer's
 *   rejection always counts (it withdraws the proposal under veto).
 *
 * Verdict, first match wins:
 * 1. `executed` when already executed;
 * 2. `rejected` with `veto` and any counted rejection (even if approvals reached the threshold:
 *    until execution a veto still stops it);
 * 3. `approved` when counted approvals reach the threshold, also at or after `expiresAt`. This
 *    function cannot see when a vote was cast: callers must refuse votes at or after
 *    `expiresAt`, so any approval counted here arrived in time;
 * 4. `rejected` without veto when the eligible officers who have not rejected can no longer
 *    reach the threshold;
 * 5. `expired` at or after `expiresAt` (an unparseable, NaN `expiresAt` counts as expired);
 * 6. `pending` otherwise.
 *
 * A threshold below 1, not an integer, or above the number of eligible officers (the active
 * officers, less the proposer unless proposerCounts) can never be met: such a proposal is
 * never approved and, short of a veto, stays `pending` until it expires. That is a rules
 * problem, not the voters' doing, so it is not reported as `rejected`; validateRules
 * refuses such rules before they are stored.
 */
export function decideQuorum(input: QuorumInput): QuorumOutcome {
  const { rules, proposer, activeOfficers } = input;
  const approving = new Set<string>();
  const rejecting = new Set<string>();
  for (const v of input.votes) {
    if (v.digest !== input.digest || !activeOfficers.has(v.officer)) continue;
    if (v.decision === "reject") rejecting.add(v.officer);
    else if (v.decision === "approve") approving.add(v.officer);
  }
  const approvals: string[] = [];
  for (const officer of approving) {
    if (rejecting.has(officer)) continue; // reject wins over the same officer's approval
    if (officer === proposer && !rules.proposerCounts) continue;
    approvals.push(officer);
  }
  approvals.sort();
  const rejections = [...rejecting].sort();

  const validThreshold = isValidThreshold(rules.threshold);
  const reached = validThreshold && approvals.length >= rules.threshold;
  const missing = validThreshold ? Math.max(0, rules.threshold - approvals.length) : Number.POSITIVE_INFINITY;
  const outcome = (verdict: QuorumVerdict, needed = missing): QuorumOutcome => ({ verdict, approvals, rejections, needed });

  if (input.executed) return outcome("executed", 0);
  if (rules.veto && rejections.length > 0) return outcome("rejected");
  if (reached) return outcome("approved", 0);

  if (!rules.veto && validThreshold) {
    let eligible = 0;
    let stillOpen = 0; // eligible officers who have not rejected: the most approvals possible
    for (const officer of activeOfficers) {
      if (officer === proposer && !rules.proposerCounts) continue;
      eligible++;
      if (!rejecting.has(officer)) stillOpen++;
    }
    if (rules.threshold <= eligible && stillOpen < rules.threshold) return outcome("rejected");
  }

  // Written as "not before" so that a NaN expiry or clock fails closed.
  if (!(input.now < input.expiresAt)) return outcome("expired");
  return outcome("pending");
}

/**
 * Checks rules before they are stored. The threshold must be an integer from 1 to the number
 * of officers who can approve a proposal: all `officerCount` of them, or one fewer when the
 * proposer's approval does not count (else no proposal, not even one adding an officer,
 * could ever pass).
 */
export function validateRules(rules: QuorumRules, officerCount: number): void {
  if (!Number.isInteger(officerCount) || officerCount < 0) {
    throw new CustosError("INVALID_ARGUMENT", `officer count must be a non-negative integer, got ${officerCount}`);
  }
  if (typeof rules.proposerCounts !== "boolean" || typeof rules.veto !== "boolean") {
    throw new CustosError("INVALID_ARGUMENT", "proposerCounts and veto must be booleans");
  }
  const { threshold } = rules;
  if (!Number.isInteger(threshold)) throw new CustosError("INVALID_ARGUMENT", `threshold must be an integer, got ${threshold}`);
  if (threshold < 1) throw new CustosError("INVALID_ARGUMENT", `threshold must be at least 1, got ${threshold}`);
  const approvers = rules.proposerCounts ? officerCount : officerCount - 1;
  if (threshold > approvers) {
    const who = rules.proposerCounts ? `${officerCount} officers` : `${approvers} officers besides the proposer`;
    throw new CustosError("INVALID_ARGUMENT", `threshold ${threshold} cannot be reached by ${who}`);
  }
}
