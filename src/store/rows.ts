import type { OfficerRecord, PasskeyRecord, ProposalRecord, ProposalState, VoteRecord } from "../governance/model.js";
import type { KeyRecord, KeyVersionRecord } from "../keys/model.js";
import type { ClientRecord } from "../signing/clients.js";
import type { StoredAuditEvent } from "./store.js";

/**
 * Rows (column name → value, as better-sqlite3 and node-postgres both return them) to records.
 * Shared by the SQLite and PostgreSQL stores so both hand the domain identical records.
 */

/** A row as the drivers return it. */
export type Row = Record<string, unknown>;

/** A `keys` row. */
export function toKey(r: Row): KeyRecord {
  return {
    id: r.id as string,
    exchange: r.exchange as string,
    environment: r.environment as KeyRecord["environment"],
    label: r.label as string,
    apiKeyId: r.api_key_id as string,
    algorithm: r.algorithm as KeyRecord["algorithm"],
    maxAgeDays: r.max_age_days as number,
    createdAt: r.created_at as string,
    frozenAt: (r.frozen_at as string | null) ?? null,
    frozenReason: (r.frozen_reason as string | null) ?? null,
    exchangePermissions: typeof r.permissions_verdict === "string" ? { verdict: r.permissions_verdict, checkedAt: r.permissions_checked_at as string } : null,
  };
}

/** A `key_versions` row. */
export function toVersion(r: Row): KeyVersionRecord {
  return {
    keyId: r.key_id as string,
    version: r.version as number,
    objectId: r.object_id as string,
    state: r.state as KeyVersionRecord["state"],
    createdAt: r.created_at as string,
    activatedAt: (r.activated_at as string | null) ?? null,
    apiKeyId: (r.api_key_id as string | null) ?? null,
    retireAt: (r.retire_at as string | null) ?? null,
    signedPassphrase: (r.signed_passphrase as string | null) ?? null,
  };
}

/** A `clients` row (CIDRs stored as a JSON array). */
export function toClient(r: Row): ClientRecord {
  return {
    identity: r.identity as string,
    name: r.name as string,
    role: r.role as ClientRecord["role"],
    cidrs: JSON.parse(r.cidrs as string) as string[],
    createdAt: r.created_at as string,
    canFreeze: r.can_freeze === 1,
    frozenAt: (r.frozen_at as string | null) ?? null,
    frozenReason: (r.frozen_reason as string | null) ?? null,
  };
}

/** An `officers` row. */
export function toOfficer(r: Row): OfficerRecord {
  return {
    id: r.id as string,
    displayName: r.display_name as string,
    identity: r.identity as string,
    publicKeyPem: r.public_key as string,
    fingerprint: r.fingerprint as string,
    status: r.status as OfficerRecord["status"],
    createdAt: r.created_at as string,
  };
}

/** An `officer_passkeys` row. */
export function toPasskey(r: Row): PasskeyRecord {
  return {
    id: r.credential_id as string,
    officerId: r.officer_id as string,
    publicKey: r.public_key as string,
    counter: r.counter as number,
    transports: JSON.parse(r.transports as string) as string[],
    aaguid: r.aaguid as string,
    label: r.label as string,
    createdAt: r.created_at as string,
    lastUsedAt: (r.last_used_at as string | null) ?? null,
  };
}

/** A `proposals` row. */
export function toProposal(r: Row): ProposalRecord {
  return {
    id: r.id as string,
    kind: r.kind as string,
    target: r.target as string,
    canonical: r.canonical as string,
    digest: r.digest as string,
    proposer: r.proposer as string,
    state: r.state as ProposalState,
    step: (r.step as string | null) ?? null,
    envelope: (r.envelope as string | null) ?? null,
    createdAt: r.created_at as string,
    expiresAt: r.expires_at as string,
    executedAt: (r.executed_at as string | null) ?? null,
    failure: (r.failure as string | null) ?? null,
  };
}

/** An `audit_events` row. */
export function toAudit(r: Row): StoredAuditEvent {
  return { seq: r.seq as number, body: r.body as string, prevHash: r.prev_hash as string, hash: r.hash as string };
}

/** A `votes` row (votes from before passkeys were Ed25519). */
export function toVote(r: Row): VoteRecord {
  return {
    proposalId: r.proposal_id as string,
    officerId: r.officer_id as string,
    decision: r.decision as VoteRecord["decision"],
    digest: r.digest as string,
    signature: r.signature as string,
    at: r.at as string,
    credentialKind: (r.credential_kind as VoteRecord["credentialKind"]) ?? "ed25519",
    ...(r.credential_id ? { credentialId: r.credential_id as string } : {}),
  };
}
