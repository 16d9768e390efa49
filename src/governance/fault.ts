/**
 * Crash-safety test hook: `CUSTOS_FAULT=<step>` makes the process kill itself (SIGKILL, no
 * cleanup, like `kill -9`) when execution reaches that named step. Unset in production;
 * the steps are the points where a real crash would leave work half done.
 */
export type FaultStep =
  | "import:after-hsm" // secret unwrapped into the HSM, nothing recorded
  | "import:after-record" // key recorded and proposal executed, completion not yet audited
  | "import:between-audit-records" // key.import audited, proposal.executed not yet
  | "rotate:after-hsm"
  | "rotate:after-record"
  | "destroy:after-mark" // version marked destroying, HSM object still there
  | "destroy:after-hsm"; // HSM object destroyed, version not yet marked destroyed

const requested = process.env.CUSTOS_FAULT;

export function faultPoint(step: FaultStep): void {
  if (requested === step) process.kill(process.pid, "SIGKILL");
}
