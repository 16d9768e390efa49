import { CustosError } from "../../errors.js";
import { allowList } from "../../signing/directory.js";
import { KEY_ID } from "../proposal-input.js";
import { defineKind } from "./kind.js";
import { ParamReader } from "./params.js";

/** A trading client's access: created or updated, its grants replaced. */
export interface SetGrantsInput {
  kind: "set_grants";
  identity: string;
  name: string;
  cidrs: string[];
  keyIds: string[];
  canFreeze: boolean;
}

interface GrantParams {
  name: string;
  cidrs: string[];
  keyIds: string[];
  canFreeze: boolean;
}

export const setGrants = defineKind<SetGrantsInput, GrantParams>({
  kind: "set_grants",
  wire: {
    case: "setGrants",
    decode: (g) => ({ kind: "set_grants", identity: g.identity, name: g.name, cidrs: g.cidrs, keyIds: g.keyIds, canFreeze: g.canFreeze }),
  },
  targetsKey: false,
  content(input) {
    if (!input.identity || input.identity.length > 512) throw new CustosError("INVALID_ARGUMENT", "identity is required");
    allowList(input.cidrs); // throws INVALID_ARGUMENT on a bad CIDR
    for (const k of input.keyIds) if (!KEY_ID.test(k)) throw new CustosError("INVALID_ARGUMENT", `invalid key id ${JSON.stringify(k)}`);
    return {
      target: input.identity,
      params: { name: input.name, cidrs: [...input.cidrs], keyIds: [...new Set(input.keyIds)].sort(), canFreeze: input.canFreeze },
    };
  },
  decode(raw) {
    const r = new ParamReader(raw, "set_grants");
    return { name: r.string("name"), cidrs: r.strings("cidrs"), keyIds: r.strings("keyIds"), canFreeze: r.flag("canFreeze") };
  },
  async preconditions(ctx, input) {
    for (const k of input.keyIds) if (!(await ctx.store.keys.getKey(k))) throw new CustosError("KEY_NOT_FOUND", `no key ${k}`);
  },
  async summarise(ctx, c) {
    const existing = await ctx.store.clients.getClient(c.target);
    const before = (await ctx.store.clients.listGrants()).get(c.target);
    return [
      `client ${c.target}${existing ? "" : " (new)"}`,
      `grants: [${[...(before ?? [])].sort().join(", ")}] → [${c.params.keyIds.join(", ")}]`,
      `CIDRs: [${(existing?.cidrs ?? []).join(", ")}] → [${c.params.cidrs.join(", ")}]`,
      `may freeze: ${String(existing?.canFreeze ?? false)} → ${String(c.params.canFreeze)}`,
    ];
  },
  async execute(ctx, p, g, at) {
    for (const k of g.keyIds) if (!(await ctx.store.keys.getKey(k))) throw new CustosError("KEY_NOT_FOUND", `no key ${k}`);
    const existing = await ctx.store.clients.getClient(p.target);
    if (existing && existing.role !== "trader") throw new CustosError("PRECONDITION_FAILED", `${p.target} is not a trading client`);
    const client = {
      identity: p.target,
      name: g.name || existing?.name || p.target,
      role: "trader" as const,
      cidrs: g.cidrs,
      createdAt: existing?.createdAt ?? at,
      canFreeze: g.canFreeze,
    };
    return { record: (tx) => tx.clients.setClientAccess(client, g.keyIds) };
  },
  completed: async () => [],
});
