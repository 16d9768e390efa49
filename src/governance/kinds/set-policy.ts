import { CustosError } from "../../errors.js";
import { validatePolicy } from "../../policy/policy.js";
import { KEY_ID } from "../proposal-input.js";
import { defineKind, existingKey } from "./kind.js";
import { ParamReader } from "./params.js";

/** A key's request policy, replaced as a whole. */
export interface SetPolicyInput {
  kind: "set_policy";
  keyId: string;
  policyJson: string;
}

export const setPolicy = defineKind<SetPolicyInput, { policy: unknown }>({
  kind: "set_policy",
  wire: { case: "setPolicy", decode: (i) => ({ kind: "set_policy", keyId: i.keyId, policyJson: i.policyJson }) },
  targetsKey: true,
  content(input) {
    if (!KEY_ID.test(input.keyId)) throw new CustosError("INVALID_ARGUMENT", "invalid key id");
    let policy: unknown;
    try {
      policy = JSON.parse(input.policyJson);
    } catch {
      throw new CustosError("INVALID_ARGUMENT", "policy must be JSON");
    }
    validatePolicy(policy); // the same check the signer applies when it loads the policy
    return { target: input.keyId, params: { policy } };
  },
  decode: (raw) => ({ policy: new ParamReader(raw, "set_policy").json("policy") }),
  async preconditions(ctx, input) {
    await existingKey(ctx, input.keyId);
  },
  async summarise(ctx, c) {
    return [`policy of key ${c.target}: ${(await ctx.store.keys.getPolicy(c.target)) ?? "none"} → ${JSON.stringify(c.params.policy)}`];
  },
  async execute(ctx, p, { policy }, at) {
    await existingKey(ctx, p.target);
    return { record: (tx) => tx.keys.setPolicy(p.target, JSON.stringify(policy), at) };
  },
  completed: async () => [],
});
