import type { ProposeRequest } from "../../gen/custos/v1/custody.js";
import { CustosError } from "../../errors.js";
import { PROPOSAL_KIND_TABLE } from "../../governance/kinds/index.js";
import type { WireCase } from "../../governance/kinds/kind.js";
import type { ProposalInput } from "../../governance/proposal-input.js";

/** Propose oneof case → its kind's decoder, derived from the kinds table (each kind decodes its own message). */
const DECODERS: ReadonlyMap<WireCase, (message: unknown) => { kind: string }> = new Map(
  Object.values(PROPOSAL_KIND_TABLE).flatMap((m) => {
    const wire = m.wire;
    return wire ? [[wire.case, (message: unknown) => wire.decode(message)] as const] : [];
  }),
);

/** The wire request → the domain's proposal input. Shape errors surface as INVALID_ARGUMENT. */
export function proposalInputOf(r: ProposeRequest): ProposalInput {
  const k = r.kind;
  if (!k) throw new CustosError("INVALID_ARGUMENT", "proposal kind is missing");
  const decode = DECODERS.get(k.$case);
  if (!decode) throw new CustosError("INVALID_ARGUMENT", `proposal kind ${k.$case} is not proposed over gRPC`);
  // The kind's spec paired its case with its message type; the decoded input is that kind's.
  return decode((k as unknown as Record<string, unknown>)[k.$case]) as ProposalInput;
}
