import { CustosError } from "../../errors.js";
import { KEY_ID } from "../proposal-input.js";
import { destroyVersionObject } from "../version-destruction.js";
import { defineKind, proposalRef, versionList } from "./kind.js";
import { ParamReader } from "./params.js";

/** A version that no longer signs (retiring, pending) is destroyed in the HSM ahead of its grace period. */
export interface DestroyVersionInput {
  kind: "destroy_version";
  keyId: string;
  version: number;
}

export const destroyVersion = defineKind<DestroyVersionInput, { version: number }>({
  kind: "destroy_version",
  wire: { case: "destroyVersion", decode: (i) => ({ kind: "destroy_version", keyId: i.keyId, version: i.version }) },
  targetsKey: true,
  content(input) {
    if (!KEY_ID.test(input.keyId)) throw new CustosError("INVALID_ARGUMENT", "invalid key id");
    if (!Number.isInteger(input.version) || input.version < 1) throw new CustosError("INVALID_ARGUMENT", "version must be a positive integer");
    return { target: input.keyId, params: { version: input.version } };
  },
  decode: (raw) => ({ version: new ParamReader(raw, "destroy_version").integer("version") }),
  async preconditions(ctx, input) {
    const key = await ctx.store.keys.getKey(input.keyId);
    const v = key?.versions.find((x) => x.version === input.version);
    if (!v) throw new CustosError("VERSION_NOT_FOUND", `key ${input.keyId} has no version ${input.version}`);
    if (v.state === "active") throw new CustosError("PRECONDITION_FAILED", `version ${input.version} is the active version: rotate first`);
    if (v.state === "destroyed" || v.state === "destroying") throw new CustosError("PRECONDITION_FAILED", `version ${input.version} is already ${v.state}`);
  },
  async summarise(_ctx, c, key) {
    return [`destroy key ${c.target} version ${c.params.version} (its HSM object is deleted; pinned signs fail)`, `versions: ${versionList(key)}`];
  },
  async execute(ctx, p, { version }) {
    await destroyVersionObject(ctx, p.target, version, true);
    return { record: (tx) => tx.keys.updateVersionState(p.target, version, "destroyed") };
  },
  async completed(ctx, p, c) {
    const v = (await ctx.store.keys.getKey(c.target))?.versions.find((x) => x.version === c.params.version);
    const objectId = v?.objectId ?? "";
    return [
      { kind: "key.destroy_version", actor: "officers", outcome: "ok", key: c.target, version: c.params.version, details: { objectId, ...proposalRef(p) } },
    ];
  },
});
