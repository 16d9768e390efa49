import { CustosError } from "../../errors.js";
import { FreezeTarget } from "../../gen/custos/v1/custody.js";
import { defineKind } from "./kind.js";

/** A frozen key or client signs again (a freeze is immediate; only a quorum thaws). */
export interface ThawInput {
  kind: "thaw";
  target: "key" | "client";
  id: string;
}

/** "key:<id>" or "client:<identity>" (the identity may itself hold colons). */
function parseTarget(target: string): { what: string; id: string } {
  const [what = "", ...rest] = target.split(":");
  return { what, id: rest.join(":") };
}

export const thaw = defineKind<ThawInput, Record<string, never>>({
  kind: "thaw",
  wire: {
    case: "thaw",
    decode: (i) => {
      const target = i.target === FreezeTarget.FREEZE_TARGET_KEY ? "key" : i.target === FreezeTarget.FREEZE_TARGET_CLIENT ? "client" : ("" as never);
      return { kind: "thaw", target, id: i.id };
    },
  },
  targetsKey: false,
  content(input) {
    if (input.target !== "key" && input.target !== "client") throw new CustosError("INVALID_ARGUMENT", "thaw target must be key or client");
    if (!input.id) throw new CustosError("INVALID_ARGUMENT", "thaw needs an id");
    return { target: `${input.target}:${input.id}`, params: {} };
  },
  decode: () => ({}),
  async preconditions(ctx, input) {
    const frozen = input.target === "key" ? (await ctx.store.keys.getKey(input.id))?.frozenAt : (await ctx.store.clients.getClient(input.id))?.frozenAt;
    if (!frozen) throw new CustosError("PRECONDITION_FAILED", `${input.target} ${input.id} is not frozen`);
  },
  async summarise(_ctx, c) {
    return [`thaw ${c.target.replace(":", " ")}: frozen → active`];
  },
  async execute(_ctx, p) {
    const { what, id } = parseTarget(p.target);
    return { record: (tx) => (what === "key" ? tx.keys.setKeyFrozen(id, null) : tx.clients.setClientFrozen(id, null)) };
  },
  async completed(_ctx, p, c) {
    const { what, id } = parseTarget(c.target);
    return [
      {
        kind: "thaw",
        actor: p.proposer,
        outcome: "ok",
        ...(what === "key" ? { key: id } : {}),
        details: { proposal: p.id, digest: p.digest, target: c.target },
      },
    ];
  },
});
