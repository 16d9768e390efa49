import { CustosError } from "../../errors.js";
import type { StoreSlice } from "../../store/store.js";
import { validateRules } from "../quorum.js";
import { isOfficerId } from "./add-officer.js";
import { defineKind, type KindContext } from "./kind.js";

/** An officer removed: their pending approvals stop counting. */
export interface RemoveOfficerInput {
  kind: "remove_officer";
  officerId: string;
}

export const removeOfficer = defineKind<RemoveOfficerInput, Record<string, never>>({
  kind: "remove_officer",
  wire: { case: "removeOfficer", decode: (i) => ({ kind: "remove_officer", officerId: i.officerId }) },
  targetsKey: false,
  content(input) {
    if (!isOfficerId(input.officerId)) throw new CustosError("INVALID_ARGUMENT", "invalid officer id");
    return { target: input.officerId, params: {} };
  },
  decode: () => ({}),
  async preconditions(ctx, input) {
    await checkRemovable(ctx, input.officerId);
  },
  async summarise(_ctx, c) {
    return [`remove officer ${c.target} (their pending approvals stop counting)`];
  },
  async execute(ctx, p) {
    await checkRemovable(ctx, p.target);
    return { record: (tx) => tx.governance.setOfficerStatus(p.target, "removed") };
  },
  completed: async () => [],
});

/** The officer is active, and those left after the removal can still reach the threshold under the quorum rules. */
async function checkRemovable(ctx: { store: StoreSlice<"governance">; rules: KindContext["rules"] }, officerId: string): Promise<void> {
  const active = (await ctx.store.governance.listOfficers()).filter((o) => o.status === "active");
  if (!active.some((o) => o.id === officerId)) throw new CustosError("PRECONDITION_FAILED", `no active officer ${officerId}`);
  const threshold = (await ctx.store.governance.getGovernance())!.threshold;
  try {
    validateRules({ threshold, proposerCounts: ctx.rules.proposerCounts, veto: ctx.rules.veto }, active.length - 1);
  } catch {
    throw new CustosError(
      "PRECONDITION_FAILED",
      `removing ${officerId} would leave ${active.length - 1} officers, too few to reach the threshold of ${threshold}: lower the threshold first`,
    );
  }
}
