import { CustosError } from "../../errors.js";
import type { OfficerRecord } from "../model.js";
import { parseOfficerPublicKey, publicKeyFingerprint } from "../officer-key.js";
import type { OfficerSpec } from "../proposal-input.js";
import { defineKind } from "./kind.js";
import { ParamReader } from "./params.js";

/** A new key officer, with the certificate identity they call from and their Ed25519 approval key. */
export interface AddOfficerInput {
  kind: "add_officer";
  officer: OfficerSpec;
}

type OfficerParams = Omit<OfficerSpec, "id">;

const OFFICER_ID = /^[a-z0-9][a-z0-9._-]{0,31}$/;

/** An officer id: 1–32 of [a-z0-9._-]. */
export function isOfficerId(id: string): boolean {
  return OFFICER_ID.test(id);
}

/** The stored record of an officer (an added one, or one of the first set). */
export function officerRecord(s: OfficerSpec, at: string): OfficerRecord {
  const publicKey = parseOfficerPublicKey(s.publicKeyPem);
  return {
    id: s.id,
    displayName: s.displayName || s.id,
    identity: s.identity,
    publicKeyPem: s.publicKeyPem.trim() + "\n",
    fingerprint: publicKeyFingerprint(publicKey),
    status: "active",
    createdAt: at,
  };
}

export const addOfficer = defineKind<AddOfficerInput, OfficerParams>({
  kind: "add_officer",
  wire: {
    case: "addOfficer",
    decode: (i) => {
      if (!i.officer) throw new CustosError("INVALID_ARGUMENT", "officer is missing");
      return { kind: "add_officer", officer: i.officer };
    },
  },
  targetsKey: false,
  content(input) {
    if (!isOfficerId(input.officer.id)) throw new CustosError("INVALID_ARGUMENT", "officer id must be 1–32 of [a-z0-9._-]");
    if (!input.officer.identity) throw new CustosError("INVALID_ARGUMENT", "officer certificate identity is required");
    const o = input.officer;
    return { target: o.id, params: { displayName: o.displayName, identity: o.identity, publicKeyPem: o.publicKeyPem } };
  },
  decode(raw) {
    const r = new ParamReader(raw, "add_officer");
    return { displayName: r.string("displayName"), identity: r.string("identity"), publicKeyPem: r.string("publicKeyPem") };
  },
  async preconditions(ctx, input) {
    parseOfficerPublicKey(input.officer.publicKeyPem);
    if ((await ctx.store.governance.listOfficers()).some((o) => o.id === input.officer.id || o.identity === input.officer.identity)) {
      throw new CustosError("PRECONDITION_FAILED", `officer ${input.officer.id} (or identity ${input.officer.identity}) exists`);
    }
  },
  async summarise(_ctx, c) {
    const o = c.params;
    return [`add officer ${c.target} (${o.displayName}, certificate ${o.identity}, key ${publicKeyFingerprint(o.publicKeyPem)})`];
  },
  async execute(_ctx, p, o, at) {
    const officer = officerRecord({ id: p.target, ...o }, at);
    return { record: (tx) => tx.governance.addOfficer(officer) };
  },
  completed: async () => [],
});
