import { CustosError } from "../../errors.js";
import type { ProposalRecord } from "../model.js";
import type { ProposalKind } from "../proposal.js";
import { addCredential, type AddCredentialInput } from "./add-credential.js";
import { addOfficer, type AddOfficerInput } from "./add-officer.js";
import { destroyVersion, type DestroyVersionInput } from "./destroy-version.js";
import { generateKey, type GenerateKeyInput } from "./generate-key.js";
import { importKey, type ImportKeyInput } from "./import-key.js";
import type { ProposalKindModule } from "./kind.js";
import { removeCredential, type RemoveCredentialInput } from "./remove-credential.js";
import { removeOfficer, type RemoveOfficerInput } from "./remove-officer.js";
import { rotateKey, type RotateKeyInput } from "./rotate-key.js";
import { setApiKeyId, type SetApiKeyIdInput } from "./set-api-key-id.js";
import { setGrants, type SetGrantsInput } from "./set-grants.js";
import { setPolicy, type SetPolicyInput } from "./set-policy.js";
import { setThreshold, type SetThresholdInput } from "./set-threshold.js";
import { thaw, type ThawInput } from "./thaw.js";

/**
 * Every proposal kind, one module each: its input's shape checks and signed content, its
 * preconditions, its summary for officers, its execution (HSM step, then the record step the
 * lifecycle commits with the "executed" mark) and its audit records. Nothing else switches on
 * a kind: adding one is a module, a row here, a member of ProposalInput (and its proto message).
 */
export const PROPOSAL_KIND_TABLE: { readonly [K in ProposalKind]: ProposalKindModule } = {
  import_key: importKey,
  rotate_key: rotateKey,
  destroy_version: destroyVersion,
  set_grants: setGrants,
  set_policy: setPolicy,
  add_officer: addOfficer,
  remove_officer: removeOfficer,
  set_threshold: setThreshold,
  thaw,
  generate_key: generateKey,
  set_api_key_id: setApiKeyId,
  add_credential: addCredential,
  remove_credential: removeCredential,
};

/** What an officer asks for. Everything but an envelope goes into the signed content. */
export type ProposalInput =
  | ImportKeyInput
  | RotateKeyInput
  | DestroyVersionInput
  | SetGrantsInput
  | SetPolicyInput
  | AddOfficerInput
  | RemoveOfficerInput
  | SetThresholdInput
  | ThawInput
  | GenerateKeyInput
  | SetApiKeyIdInput
  | AddCredentialInput
  | RemoveCredentialInput;

/** The module of a stored proposal's kind; INTERNAL for a kind this build does not know (a newer release's). */
export function kindModule(kind: string): ProposalKindModule {
  const m = (PROPOSAL_KIND_TABLE as Readonly<Record<string, ProposalKindModule | undefined>>)[kind];
  if (!m) throw new CustosError("INTERNAL", `unknown proposal kind ${kind}`);
  return m;
}

/** Shape checks that need no state (INVALID_ARGUMENT); state checks happen when proposing and again when executing. */
export function validateInput(input: ProposalInput): void {
  kindModule(input.kind).content(input);
}

/** The key a proposal is about (its audit records name it), if its kind targets a key. */
export function keyOf(p: Pick<ProposalRecord, "kind" | "target">): string | undefined {
  const m = (PROPOSAL_KIND_TABLE as Readonly<Record<string, ProposalKindModule | undefined>>)[p.kind];
  return m?.targetsKey ? p.target : undefined;
}

export type { KindContent, KindContext, ProposalKindModule } from "./kind.js";
export { officerRecord } from "./add-officer.js";
export { serialiseEnvelope } from "./hsm-steps.js";
export { retireVersion } from "../version-destruction.js";
