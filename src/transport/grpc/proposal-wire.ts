import { Environment, FreezeTarget, type GenerateKeyProposal, type ProposeRequest, type WrappedKeyEnvelope } from "../../gen/custos/v1/custody.js";
import { CustosError } from "../../errors.js";
import { DEFAULT_GRACE_SECONDS, type NewKeyMetadata, type ProposalInput } from "../../governance/proposal-input.js";
import type { ImportEnvelope } from "../../hsm/envelope.js";
import { DEFAULT_MAX_AGE_DAYS } from "../../keys/model.js";
import { ALGORITHM_NAMES } from "./enums.js";

type WireKind = NonNullable<ProposeRequest["kind"]>;
type WireCase = WireKind["$case"];
type WireMessage<C extends WireCase> = Extract<WireKind, { $case: C }> extends { [K in C]: infer M } ? M : never;

/**
 * Each proposal message of the Propose oneof → the domain's input of its kind. Only the wire's
 * conventions live here (proto3's "" and 0 for absent, enums); the kind's module checks the rest.
 */
const FROM_WIRE: { readonly [C in WireCase]: (m: WireMessage<C>) => ProposalInput } = {
  importKey: (i) => ({
    kind: "import_key",
    // "" (proto3's absent) stays absent, so the kind can tell "none" from a malformed value.
    key: {
      ...newKeyOf(i),
      ...(i.publicKeyPem ? { publicKeyPem: i.publicKeyPem } : {}),
      ...(i.signedPassphrase ? { signedPassphrase: i.signedPassphrase } : {}),
    },
    envelope: envelopeOf(i.envelope),
  }),
  rotateKey: (i) => ({
    kind: "rotate_key",
    keyId: i.keyId,
    apiKeyId: i.apiKeyId,
    graceSeconds: i.graceSeconds || DEFAULT_GRACE_SECONDS,
    ...(i.envelope ? { envelope: envelopeOf(i.envelope) } : {}),
    ...(i.signedPassphrase ? { signedPassphrase: i.signedPassphrase } : {}),
  }),
  generateKey: (i) => ({ kind: "generate_key", key: newKeyOf(i) }),
  setApiKeyId: (i) => ({ kind: "set_api_key_id", keyId: i.keyId, apiKeyId: i.apiKeyId }),
  destroyVersion: (i) => ({ kind: "destroy_version", keyId: i.keyId, version: i.version }),
  setGrants: (g) => ({ kind: "set_grants", identity: g.identity, name: g.name, cidrs: g.cidrs, keyIds: g.keyIds, canFreeze: g.canFreeze }),
  setPolicy: (i) => ({ kind: "set_policy", keyId: i.keyId, policyJson: i.policyJson }),
  addOfficer: (i) => {
    if (!i.officer) throw new CustosError("INVALID_ARGUMENT", "officer is missing");
    return { kind: "add_officer", officer: i.officer };
  },
  removeOfficer: (i) => ({ kind: "remove_officer", officerId: i.officerId }),
  setThreshold: (i) => ({ kind: "set_threshold", threshold: i.threshold }),
  thaw: (i) => {
    const target = i.target === FreezeTarget.FREEZE_TARGET_KEY ? "key" : i.target === FreezeTarget.FREEZE_TARGET_CLIENT ? "client" : ("" as never);
    return { kind: "thaw", target, id: i.id };
  },
};

/** The wire request → the domain's proposal input. Shape errors surface as INVALID_ARGUMENT. */
export function proposalInputOf(r: ProposeRequest): ProposalInput {
  const k = r.kind;
  if (!k) throw new CustosError("INVALID_ARGUMENT", "proposal kind is missing");
  // TypeScript cannot correlate the oneof's case with its row; the table's type pairs them.
  const decode = FROM_WIRE[k.$case] as (m: unknown) => ProposalInput;
  return decode((k as unknown as Record<string, unknown>)[k.$case]);
}

/** A new key's metadata (import or generate); unknown enum values are refused by the kind's checks. */
function newKeyOf(i: GenerateKeyProposal): NewKeyMetadata {
  return {
    keyId: i.keyId,
    exchange: i.exchange,
    environment: i.environment === Environment.ENVIRONMENT_TESTNET ? "testnet" : i.environment === Environment.ENVIRONMENT_MAINNET ? "mainnet" : ("" as never),
    label: i.label || i.keyId,
    apiKeyId: i.apiKeyId,
    algorithm: ALGORITHM_NAMES[i.algorithm] ?? ("" as never),
    maxAgeDays: i.maxAgeDays || DEFAULT_MAX_AGE_DAYS,
  };
}

function envelopeOf(e: WrappedKeyEnvelope | undefined): ImportEnvelope {
  if (!e) throw new CustosError("INVALID_ARGUMENT", "envelope is required");
  if (e.oaepHash !== "sha1" && e.oaepHash !== "sha256") throw new CustosError("INVALID_ARGUMENT", "envelope oaep hash must be sha1 or sha256");
  return {
    format: e.format,
    oaepHash: e.oaepHash,
    encryptedAesKey: e.encryptedAesKey,
    wrappedKey: e.wrappedKey,
    wrappingKeyFingerprint: e.wrappingKeyFingerprint,
  };
}
