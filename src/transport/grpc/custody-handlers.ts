import { createPublicKey } from "node:crypto";
import type { ServerUnaryCall, sendUnaryData } from "@grpc/grpc-js";
import {
  Environment,
  FreezeTarget,
  VoteDecision,
  type ClientInfo,
  type CustodyServer,
  type GuardServer,
  type KeyInfo,
  type OfficerInfo,
  type ProposalInfo,
} from "../../gen/custos/v1/custody.js";
import { CustosError } from "../../errors.js";
import { isRawOnly } from "../../exchanges/registry.js";
import type { GovernanceService, ProposalView } from "../../governance/governance-service.js";
import type { OfficerRecord } from "../../governance/model.js";
import { activeVersion, ageDays, dueAt, type KeyWithVersions } from "../../keys/model.js";
import type { ClientRecord } from "../../signing/clients.js";
import { nextRequestId } from "../../request-id.js";
import { callerOf, type PeerInfo } from "./caller.js";
import { ALGORITHM_ENUM } from "./enums.js";
import { proposalInputOf } from "./proposal-wire.js";
import type { EdgeRefusals } from "./refusals.js";

/** Wraps a domain call: answers exactly once, errors mapped (and audited if the domain did not) at the edge. */
function unary<Req, Res>(edge: EdgeRefusals, fn: (call: ServerUnaryCall<Req, Res> & PeerInfo) => Promise<Res> | Res) {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
    Promise.resolve()
      .then(() => fn(call))
      .then(
        (res) => callback(null, res),
        (e: unknown) => callback(edge.answer(call, e, nextRequestId())),
      );
  };
}

export function custodyHandlers(gov: GovernanceService, edge: EdgeRefusals): CustodyServer {
  return {
    getWrappingKey: unary(edge, (call) => {
      const w = gov.wrappingKey(callerOf(call));
      return { spkiPem: w.spkiPem, fingerprint: w.fingerprint, envelopeFormat: "custos.rsa-oaep-aes-kwp.v1", oaepHash: w.oaepHash };
    }),
    listKeys: unary(edge, async (call) => ({ keys: (await gov.listKeys(callerOf(call))).map((k) => keyInfo(k, gov.exchangePermissionsOf(k.id))) })),
    listClients: unary(edge, async (call) => ({ clients: (await gov.listClients(callerOf(call))).map(clientInfo) })),
    initGovernance: unary(edge, async (call) => {
      const caller = callerOf(call);
      await gov.init(caller, call.request.officers, call.request.threshold);
      return governanceInfo(await gov.governance(caller), gov.rules);
    }),
    getGovernance: unary(edge, async (call) => governanceInfo(await gov.governance(callerOf(call)), gov.rules)),
    propose: unary(edge, async (call) =>
      proposalInfo(await gov.propose(callerOf(call), proposalInputOf(call.request), call.request.ttlSeconds ? call.request.ttlSeconds * 1000 : undefined)),
    ),
    getProposal: unary(edge, async (call) => proposalInfo(await gov.getProposal(callerOf(call), call.request.id))),
    listProposals: unary(edge, async (call) => ({
      proposals: (await gov.listProposals(callerOf(call), (call.request.state || undefined) as never)).map(proposalInfo),
    })),
    vote: unary(edge, async (call) => {
      const r = call.request;
      const decision = r.decision === VoteDecision.VOTE_DECISION_APPROVE ? "approve" : r.decision === VoteDecision.VOTE_DECISION_REJECT ? "reject" : undefined;
      if (!decision) throw new CustosError("INVALID_ARGUMENT", "decision must be approve or reject");
      return proposalInfo(await gov.vote(callerOf(call), r.proposalId, decision, r.digest, r.signature, r.reason));
    }),
  };
}

export function guardHandlers(gov: GovernanceService, edge: EdgeRefusals): GuardServer {
  return {
    freeze: unary(edge, async (call) => {
      const r = call.request;
      const target = r.target === FreezeTarget.FREEZE_TARGET_KEY ? "key" : r.target === FreezeTarget.FREEZE_TARGET_CLIENT ? "client" : undefined;
      if (!target) throw new CustosError("INVALID_ARGUMENT", "freeze target must be key or client");
      return { frozenAt: await gov.freeze(callerOf(call), target, r.id, r.reason) };
    }),
  };
}

export function proposalInfo(v: ProposalView): ProposalInfo {
  const p = v.record;
  return {
    id: p.id,
    kind: p.kind,
    target: p.target,
    state: p.state,
    digest: p.digest,
    canonical: p.canonical,
    proposer: p.proposer,
    createdAt: p.createdAt,
    expiresAt: p.expiresAt,
    approvals: v.quorum.approvals,
    rejections: v.quorum.rejections,
    // An unreachable threshold reports Infinity; uint32 cannot carry it.
    needed: p.state !== "pending" ? 0 : Number.isFinite(v.quorum.needed) ? v.quorum.needed : 0xffffffff,
    summary: v.summary,
    executedAt: p.executedAt ?? "",
    failure: p.failure ?? "",
  };
}

function keyInfo(k: KeyWithVersions & { publicKey?: Buffer; versionPublicKeys?: Map<number, Buffer> }, exchangePermissions: string): KeyInfo {
  return {
    keyId: k.id,
    exchange: k.exchange,
    environment: k.environment === "mainnet" ? Environment.ENVIRONMENT_MAINNET : Environment.ENVIRONMENT_TESTNET,
    label: k.label,
    apiKeyId: activeVersion(k)?.apiKeyId || k.apiKeyId,
    algorithm: ALGORITHM_ENUM[k.algorithm],
    activeVersion: activeVersion(k)?.version ?? 0,
    versions: k.versions.map((v) => {
      const publicKey = k.versionPublicKeys?.get(v.version);
      return {
        version: v.version,
        state: v.state,
        createdAt: v.createdAt,
        activatedAt: v.activatedAt ?? "",
        // A pending version has no API key id until the exchange assigns one.
        apiKeyId: v.state === "pending" ? (v.apiKeyId ?? "") : v.apiKeyId || k.apiKeyId,
        retireAt: v.retireAt ?? "",
        publicKeyPem: publicKey ? spkiPem(publicKey) : "",
      };
    }),
    createdAt: k.createdAt,
    maxAgeDays: k.maxAgeDays,
    dueAt: dueAt(k)?.toISOString() ?? "",
    ageDays: ageDays(k) ?? 0,
    frozen: Boolean(k.frozenAt),
    frozenReason: k.frozenReason ?? "",
    publicKeyPem: k.publicKey ? spkiPem(k.publicKey) : "",
    rawOnly: isRawOnly(k.exchange),
    exchangePermissions,
  };
}

const spkiPem = (der: Buffer): string => createPublicKey({ key: der, format: "der", type: "spki" }).export({ format: "pem", type: "spki" }).toString();

function clientInfo(c: ClientRecord & { grants: string[] }): ClientInfo {
  return {
    identity: c.identity,
    name: c.name,
    role: c.role,
    cidrs: c.cidrs,
    grantedKeys: c.grants,
    createdAt: c.createdAt,
    frozen: Boolean(c.frozenAt),
    frozenReason: c.frozenReason ?? "",
    canFreeze: Boolean(c.canFreeze),
  };
}

function officerInfo(o: OfficerRecord): OfficerInfo {
  return { id: o.id, displayName: o.displayName, identity: o.identity, fingerprint: o.fingerprint, status: o.status, publicKeyPem: o.publicKeyPem };
}

function governanceInfo(
  g: { threshold: number | undefined; initialisedAt: string | undefined; officers: OfficerRecord[] },
  rules: { proposerCounts: boolean; veto: boolean },
) {
  return {
    initialised: g.threshold !== undefined,
    threshold: g.threshold ?? 0,
    officers: g.officers.map(officerInfo),
    proposerCounts: rules.proposerCounts,
    veto: rules.veto,
    initialisedAt: g.initialisedAt ?? "",
  };
}
