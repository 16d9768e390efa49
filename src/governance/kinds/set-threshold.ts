import { CustosError } from "../../errors.js";
import { validateRules } from "../quorum.js";
import { defineKind, type KindContext } from "./kind.js";
import { ParamReader } from "./params.js";

/** How many officers' approvals a proposal needs. */
export interface SetThresholdInput {
  kind: "set_threshold";
  threshold: number;
}

/** The threshold must be reachable by the active officers under the quorum rules. */
async function checkReachable(ctx: Pick<KindContext, "store" | "rules">, threshold: number): Promise<void> {
  const active = (await ctx.store.governance.listOfficers()).filter((o) => o.status === "active").length;
  validateRules({ threshold, proposerCounts: ctx.rules.proposerCounts, veto: ctx.rules.veto }, active);
}

export const setThreshold = defineKind<SetThresholdInput, { threshold: number }>({
  kind: "set_threshold",
  wire: { case: "setThreshold", decode: (i) => ({ kind: "set_threshold", threshold: i.threshold }) },
  targetsKey: false,
  content(input) {
    if (!Number.isInteger(input.threshold) || input.threshold < 1) throw new CustosError("INVALID_ARGUMENT", "threshold must be a positive integer");
    return { target: "governance", params: { threshold: input.threshold } };
  },
  decode: (raw) => ({ threshold: new ParamReader(raw, "set_threshold").integer("threshold") }),
  preconditions: (ctx, input) => checkReachable(ctx, input.threshold),
  async summarise(ctx, c) {
    return [`threshold: ${String((await ctx.store.governance.getGovernance())?.threshold)} → ${c.params.threshold}`];
  },
  async execute(ctx, _p, { threshold }) {
    await checkReachable(ctx, threshold);
    return { record: (tx) => tx.governance.setThreshold(threshold) };
  },
  completed: async () => [],
});
