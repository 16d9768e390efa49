import { sha256Hex } from "../../audit/sha256.js";
import { newKeyOf } from "./wire-input.js";
import { CustosError } from "../../errors.js";
import { versionObjectId } from "../../keys/model.js";
import type { NewKeyMetadata } from "../proposal-input.js";
import { generateOnce } from "./hsm-steps.js";
import { defineKind, openProposal, proposalRef } from "./kind.js";
import { checkNewKey, decodeNewKey, newKeyParams, recordNewKey, refuseExisting } from "./new-key.js";

/** An Ed25519 key generated inside the HSM: only its public key ever leaves it. */
export interface GenerateKeyInput {
  kind: "generate_key";
  key: NewKeyMetadata;
}

export const generateKey = defineKind<GenerateKeyInput, NewKeyMetadata>({
  kind: "generate_key",
  wire: { case: "generateKey", decode: (i) => ({ kind: "generate_key", key: newKeyOf(i) }) },
  targetsKey: true,
  content(input) {
    checkNewKey(input.key, false);
    return { target: input.key.keyId, params: newKeyParams(input.key) };
  },
  decode: (raw) => decodeNewKey(raw, "generate_key"),
  async preconditions(ctx, input) {
    await refuseExisting(ctx, input.key.keyId);
    if ((await openProposal(ctx, "import_key", input.key.keyId)) || (await openProposal(ctx, "generate_key", input.key.keyId))) {
      throw new CustosError("PRECONDITION_FAILED", `a key ${input.key.keyId} is already proposed`);
    }
  },
  newKeyExchange: (k) => k.exchange,
  async summarise(_ctx, c) {
    const k = c.params;
    return [
      `generate key ${c.target} inside the HSM (${k.exchange} ${k.environment}, ${k.algorithm}); only its public key leaves the HSM`,
      `versions: none → v1 active`,
    ];
  },
  async execute(ctx, p, k, at) {
    await refuseExisting(ctx, k.keyId);
    const objectId = versionObjectId(k.keyId, 1);
    const created = await generateOnce(ctx, p, k.keyId, objectId, `${k.exchange}/${k.keyId}/v1`);
    return { record: (tx) => recordNewKey(tx, k, objectId, at, ctx.autoGrant), ...(created ? { created: objectId } : {}) };
  },
  async completed(ctx, p, c) {
    const k = c.params;
    const publicKey = await ctx.hsm.publicKey(versionObjectId(c.target, 1));
    const details = {
      ...proposalRef(p),
      exchange: k.exchange,
      environment: k.environment,
      algorithm: k.algorithm,
      ...(publicKey ? { publicKeySha256: sha256Hex(publicKey) } : {}),
    };
    return [{ kind: "key.generate", actor: p.proposer, outcome: "ok", key: c.target, version: 1, details }];
  },
});
