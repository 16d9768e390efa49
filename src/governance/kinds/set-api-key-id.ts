import { CustosError } from "../../errors.js";
import { activeVersion } from "../../keys/model.js";
import type { Store } from "../../store/store.js";
import type { ProposalContent } from "../proposal.js";
import { DEFAULT_GRACE_SECONDS, KEY_ID } from "../proposal-input.js";
import { defineKind, existingKey, versionList } from "./kind.js";
import { ParamReader } from "./params.js";

/** The API key id the exchange assigned: of the key, or of a rotated Ed25519 key's pending version (which it activates). */
export interface SetApiKeyIdInput {
  kind: "set_api_key_id";
  keyId: string;
  apiKeyId: string;
}

export const setApiKeyId = defineKind<SetApiKeyIdInput, { apiKeyId: string }>({
  kind: "set_api_key_id",
  wire: { case: "setApiKeyId", decode: (i) => ({ kind: "set_api_key_id", keyId: i.keyId, apiKeyId: i.apiKeyId }) },
  targetsKey: true,
  content(input) {
    if (!KEY_ID.test(input.keyId)) throw new CustosError("INVALID_ARGUMENT", "invalid key id");
    if (!/^[\x21-\x7e]{1,256}$/.test(input.apiKeyId)) throw new CustosError("INVALID_ARGUMENT", "the API key id must be 1–256 printable ASCII characters");
    return { target: input.keyId, params: { apiKeyId: input.apiKeyId } };
  },
  decode: (raw) => ({ apiKeyId: new ParamReader(raw, "set_api_key_id").string("apiKeyId") }),
  async preconditions(ctx, input) {
    await existingKey(ctx, input.keyId);
  },
  async summarise(_ctx, c, key) {
    const active = key && activeVersion(key);
    const pending = key?.versions.find((v) => v.state === "pending");
    const id = JSON.stringify(c.params.apiKeyId);
    if (pending) {
      return [
        `activate key ${c.target} v${pending.version} with API key id ${id}${active ? `; v${active.version} retires after the rotation's grace period` : ""}`,
        `versions: ${versionList(key)} → v${pending.version} active${active ? `, v${active.version} retiring` : ""}`,
      ];
    }
    return [`API key id of ${c.target}${active ? ` v${active.version}` : ""}: ${JSON.stringify(active?.apiKeyId || key?.apiKeyId || "")} → ${id}`];
  },
  async execute(ctx, p, params, at) {
    const key = await existingKey(ctx, p.target);
    const pending = key.versions.find((v) => v.state === "pending");
    if (!pending) return { record: (tx) => tx.keys.setApiKeyId(p.target, params.apiKeyId) };
    // The id the exchange assigned to a rotated Ed25519 key's new public key: the new version
    // takes over, and the old one signs for pinned clients through the rotation's grace.
    const retireAt = new Date(Date.parse(at) + (await rotationGraceSeconds(ctx.store, p.target)) * 1000).toISOString();
    return { record: (tx) => tx.keys.activatePendingVersion(p.target, pending.version, params.apiKeyId, at, retireAt) };
  },
  completed: async () => [],
});

/** The grace period of the key's latest executed rotation (the default if none is found). */
async function rotationGraceSeconds(store: Store, keyId: string): Promise<number> {
  const rotations = (await store.governance.listProposals("executed")).filter((r) => r.kind === "rotate_key" && r.target === keyId);
  const latest = rotations.sort((a, b) => a.createdAt.localeCompare(b.createdAt)).at(-1);
  const grace = latest ? (JSON.parse(latest.canonical) as ProposalContent).params.graceSeconds : undefined;
  return typeof grace === "number" ? grace : DEFAULT_GRACE_SECONDS;
}
