import { createHash } from "node:crypto";
import { CustosError } from "../../errors.js";
import type { PasskeyRecord } from "../model.js";
import type { ProposalContent } from "../proposal.js";
import type { PasskeySpec } from "../proposal-input.js";
import { isOfficerId } from "./add-officer.js";
import { defineKind, proposalRef, type KindContext } from "./kind.js";
import { ParamReader } from "./params.js";

/** A passkey for an officer (registered in the console, filed as this proposal, usable once executed). */
export interface AddCredentialInput {
  kind: "add_credential";
  officerId: string;
  passkey: PasskeySpec;
}

interface PasskeyParams {
  credentialId: string;
  publicKey: string;
  counter: number;
  transports: string[];
  aaguid: string;
  label: string;
}

export const BASE64URL = /^[A-Za-z0-9_-]+$/;
const invalid = (message: string) => new CustosError("INVALID_ARGUMENT", message);

/** The officer is active (in the store: what governance loads its officer set from). */
async function requireActiveOfficer(ctx: Pick<KindContext, "store">, officerId: string): Promise<void> {
  if (!(await ctx.store.governance.listOfficers()).some((o) => o.id === officerId && o.status === "active")) {
    throw new CustosError("PRECONDITION_FAILED", `no active officer ${officerId}`);
  }
}

export const addCredential = defineKind<AddCredentialInput, PasskeyParams>({
  kind: "add_credential",
  targetsKey: false,
  content(input) {
    const k = input.passkey;
    if (!isOfficerId(input.officerId)) throw invalid("invalid officer id");
    if (!BASE64URL.test(k.id) || k.id.length > 1400) throw invalid("passkey credential id must be base64url, at most 1400 characters");
    if (!BASE64URL.test(k.publicKey) || k.publicKey.length > 2048) throw invalid("passkey public key must be base64url COSE, at most 2048 characters");
    if (!Number.isSafeInteger(k.counter) || k.counter < 0) throw invalid("passkey counter must be a non-negative integer");
    if (!Array.isArray(k.transports) || k.transports.length > 8 || k.transports.some((t) => typeof t !== "string" || !/^[a-z-]{1,16}$/.test(t))) {
      throw invalid("invalid passkey transports");
    }
    if (typeof k.aaguid !== "string" || k.aaguid.length > 64 || typeof k.label !== "string" || k.label.length > 64) {
      throw invalid("passkey aaguid and label are at most 64 characters");
    }
    const params = {
      credentialKind: "passkey",
      credentialId: k.id,
      publicKey: k.publicKey,
      counter: k.counter,
      transports: [...k.transports],
      aaguid: k.aaguid,
      label: k.label,
    };
    return { target: input.officerId, params };
  },
  decode(raw) {
    const r = new ParamReader(raw, "add_credential");
    return {
      credentialId: r.string("credentialId"),
      publicKey: r.string("publicKey"),
      counter: r.integer("counter"),
      transports: r.strings("transports"),
      aaguid: r.string("aaguid"),
      label: r.string("label"),
    };
  },
  async preconditions(ctx, input) {
    await requireActiveOfficer(ctx, input.officerId);
    if (await ctx.store.governance.getPasskey(input.passkey.id)) throw new CustosError("PRECONDITION_FAILED", "this passkey is already registered");
    const open = [...(await ctx.store.governance.listProposals("pending")), ...(await ctx.store.governance.listProposals("executing"))];
    if (open.some((p) => p.kind === "add_credential" && (JSON.parse(p.canonical) as ProposalContent).params.credentialId === input.passkey.id)) {
      throw new CustosError("PRECONDITION_FAILED", "this passkey is already proposed");
    }
  },
  async summarise(ctx, c) {
    const k = c.params;
    const officer = (await ctx.store.governance.listOfficers()).find((o) => o.id === c.target);
    const before = (await ctx.store.governance.listPasskeys(c.target)).length;
    const keySha = createHash("sha256").update(k.publicKey).digest("hex").slice(0, 16);
    return [
      `add a passkey ${JSON.stringify(k.label)} for officer ${c.target}${officer ? ` (${officer.displayName})` : " (unknown officer)"}: ` +
        `it can then log in to the console and approve proposals`,
      `credential id ${k.credentialId}, authenticator ${k.aaguid}, public key sha256 ${keySha}…`,
      `${c.target}'s credentials: Ed25519 key ${officer?.fingerprint ?? "?"}, ${before} passkey(s) → ${before + 1} passkey(s)`,
    ];
  },
  async execute(ctx, p, k, at) {
    await requireActiveOfficer(ctx, p.target);
    const passkey: PasskeyRecord = {
      id: k.credentialId,
      officerId: p.target,
      publicKey: k.publicKey,
      counter: k.counter,
      transports: k.transports,
      aaguid: k.aaguid,
      label: k.label,
      createdAt: at,
      lastUsedAt: null,
    };
    return { record: (tx) => tx.governance.addPasskey(passkey) };
  },
  async completed(_ctx, p, c) {
    return [
      {
        kind: "officer.add_credential",
        actor: p.proposer,
        outcome: "ok",
        details: { ...proposalRef(p), officer: c.target, credentialKind: "passkey", credentialId: c.params.credentialId },
      },
    ];
  },
});
