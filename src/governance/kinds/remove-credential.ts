import { CustosError } from "../../errors.js";
import { BASE64URL } from "./add-credential.js";
import { isOfficerId } from "./add-officer.js";
import { defineKind, proposalRef } from "./kind.js";
import { ParamReader } from "./params.js";

/** An officer's passkey removed: it can no longer log in or approve. */
export interface RemoveCredentialInput {
  kind: "remove_credential";
  officerId: string;
  credentialId: string;
}

export const removeCredential = defineKind<RemoveCredentialInput, { credentialId: string }>({
  kind: "remove_credential",
  targetsKey: false,
  content(input) {
    if (!isOfficerId(input.officerId)) throw new CustosError("INVALID_ARGUMENT", "invalid officer id");
    if (!BASE64URL.test(input.credentialId) || input.credentialId.length > 1400)
      throw new CustosError("INVALID_ARGUMENT", "passkey credential id must be base64url");
    return { target: input.officerId, params: { credentialKind: "passkey", credentialId: input.credentialId } };
  },
  decode: (raw) => ({ credentialId: new ParamReader(raw, "remove_credential").string("credentialId") }),
  async preconditions(ctx, input) {
    const passkey = await ctx.store.governance.getPasskey(input.credentialId);
    if (!passkey || passkey.officerId !== input.officerId) throw new CustosError("PRECONDITION_FAILED", `officer ${input.officerId} has no such passkey`);
  },
  async summarise(ctx, c) {
    const passkeys = await ctx.store.governance.listPasskeys(c.target);
    const gone = passkeys.find((k) => k.id === c.params.credentialId);
    return [
      `remove passkey ${gone ? JSON.stringify(gone.label) : "(not registered)"} of officer ${c.target} (credential id ${c.params.credentialId}): ` +
        `it can no longer log in or approve`,
      `${c.target}'s passkeys: ${passkeys.length} → ${gone ? passkeys.length - 1 : passkeys.length}`,
    ];
  },
  async execute(ctx, p, { credentialId }) {
    const existing = await ctx.store.governance.getPasskey(credentialId);
    if (!existing || existing.officerId !== p.target) throw new CustosError("PRECONDITION_FAILED", `officer ${p.target} has no such passkey`);
    return { record: (tx) => tx.governance.removePasskey(existing.id) };
  },
  async completed(_ctx, p, c) {
    return [
      {
        kind: "officer.remove_credential",
        actor: p.proposer,
        outcome: "ok",
        details: { ...proposalRef(p), officer: c.target, credentialKind: "passkey", credentialId: c.params.credentialId },
      },
    ];
  },
});
