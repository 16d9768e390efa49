import { CustosError } from "../../errors.js";
import type { ProposalRecord } from "../model.js";
import { addCredential } from "./add-credential.js";
import { addOfficer } from "./add-officer.js";
import { destroyVersion } from "./destroy-version.js";
import { generateKey } from "./generate-key.js";
import { importKey } from "./import-key.js";
import type { ProposalKindModule } from "./kind.js";
import { removeCredential } from "./remove-credential.js";
import { removeOfficer } from "./remove-officer.js";
import { rotateKey } from "./rotate-key.js";
import { setApiKeyId } from "./set-api-key-id.js";
import { setGrants } from "./set-grants.js";
import { setPolicy } from "./set-policy.js";
import { setThreshold } from "./set-threshold.js";
import { thaw } from "./thaw.js";

/**
 * Every proposal kind, one module each: its Propose message's decoding, its input's shape checks
 * and signed content, its preconditions, its summary for officers, its execution (HSM step, then
 * the record step the lifecycle commits with the "executed" mark) and its audit records. Nothing
 * else switches on a kind: adding one is a module and a row here (and its proto message). The
 * kind names, the union of inputs and the gRPC decoding are all derived from this table.
 */
export const PROPOSAL_KIND_TABLE = {
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
} as const;

type KindTable = typeof PROPOSAL_KIND_TABLE;

/** Everything officers can decide. Each kind names one change the service executes after quorum. */
export type ProposalKind = keyof KindTable;

/** What an officer asks for: one member per kind. Everything but an envelope goes into the signed content. */
export type ProposalInput = { [K in ProposalKind]: KindTable[K] extends ProposalKindModule<infer I> ? I : never }[ProposalKind];

/** Every kind's name, in the table's order. */
export const PROPOSAL_KINDS: readonly ProposalKind[] = Object.keys(PROPOSAL_KIND_TABLE) as ProposalKind[];

export function isProposalKind(value: unknown): value is ProposalKind {
  return typeof value === "string" && Object.hasOwn(PROPOSAL_KIND_TABLE, value);
}

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
