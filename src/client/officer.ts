import { createHash, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { type CustodyClient, type ProposalInfo, type ProposeRequest, VoteDecision } from "../gen/custos/v1/custody.js";
import { loadOfficerPrivateKey, signApproval } from "../governance/officer-key.js";
import type { Decision } from "../governance/proposal.js";
import { unary } from "./connection.js";

/** An officer's Ed25519 signing key, decrypted from its PKCS#8 file for the duration of a command. */
export function loadOfficerKey(keyPath: string, passphrase: string): KeyObject {
  return loadOfficerPrivateKey(readFileSync(keyPath, "utf8"), passphrase);
}

/**
 * Signs a decision on a proposal and sends only the signature. The digest is recomputed here
 * from the canonical content the service returned: an officer never signs a digest it has not
 * checked against what it was shown.
 */
export async function castVote(custody: CustodyClient, proposalId: string, decision: Decision, key: KeyObject, reason = ""): Promise<ProposalInfo> {
  const p = await unary(custody, "getProposal", { id: proposalId });
  assertDigest(p);
  const signature = signApproval(key, decision, p.digest);
  return unary(custody, "vote", {
    proposalId,
    decision: decision === "approve" ? VoteDecision.VOTE_DECISION_APPROVE : VoteDecision.VOTE_DECISION_REJECT,
    digest: p.digest,
    signature,
    reason,
  });
}

/** The digest must be the SHA-256 of the canonical content, or the service is lying about what is signed. */
export function assertDigest(p: ProposalInfo): void {
  const recomputed = createHash("sha256").update(p.canonical, "utf8").digest("hex");
  if (recomputed !== p.digest) throw new Error(`proposal ${p.id}: the digest does not match its content; refusing to sign`);
}

/** Proposes; with `approveWith` (the embedded default's own officer) approves at once. */
export async function propose(custody: CustodyClient, request: ProposeRequest, approveWith?: KeyObject): Promise<ProposalInfo> {
  const p = await unary(custody, "propose", request);
  return approveWith ? castVote(custody, p.id, "approve", approveWith) : p;
}
