import { createHash, randomBytes } from "node:crypto";
import canonicalizeModule from "canonicalize";
import { CustosError } from "../errors.js";

import { isProposalKind, type ProposalKind } from "./kinds/index.js";

export { isProposalKind, PROPOSAL_KINDS, type ProposalKind } from "./kinds/index.js";

/** What officers sign (through its digest). Every field is covered; nothing else is. */
export interface ProposalContent {
  kind: ProposalKind;
  /** What the change applies to: a key name, an officer id, "governance". */
  target: string;
  /** Kind-specific arguments; JSON values only (no undefined, NaN, Infinity, Dates, class instances). */
  params: Record<string, unknown>;
  /** Lowercase hex SHA-256 of the wrapped envelope bytes, when the change carries key material. */
  materialSha256?: string | undefined;
  /** Officer id of the proposer. */
  proposer: string;
  /** ISO 8601, UTC, as Date.prototype.toISOString() writes it. */
  createdAt: string;
  expiresAt: string;
  /** 16 random bytes, lowercase hex: two otherwise identical proposals never share a digest. */
  nonce: string;
}

/** Format tag inside every canonical proposal; a new layout gets a new tag, never a reinterpretation. */
export const PROPOSAL_FORMAT = "custos.proposal.v1";
export const APPROVAL_FORMAT = "custos.approval.v1";
export const DEFAULT_PROPOSAL_TTL_MS = 24 * 60 * 60 * 1000;

export type Decision = "approve" | "reject";

const HEX64 = /^[0-9a-f]{64}$/;
const HEX32 = /^[0-9a-f]{32}$/;

// The package is CommonJS with an ESM-style .d.ts; at runtime the default import is the function.
const canonicalize = canonicalizeModule as unknown as (input: unknown) => string | undefined;

function invalid(message: string): CustosError {
  return new CustosError("INVALID_ARGUMENT", message);
}

/**
 * Refuses anything that is not a plain JSON value. The library would silently drop undefined
 * properties, turn undefined array items into null, call toJSON() on Dates and print functions
 * as the bare word `undefined`: an officer would sign something other than what was proposed.
 */
function assertJsonValue(value: unknown, path: string, ancestors: Set<object>): void {
  switch (typeof value) {
    case "string":
    case "boolean":
      return;
    case "number":
      if (!Number.isFinite(value)) throw invalid(`${path} is not a finite number`);
      return;
    case "object": {
      if (value === null) return;
      if (ancestors.has(value)) throw invalid(`${path} refers to itself`);
      ancestors.add(value);
      if (Array.isArray(value)) {
        // A for-index loop, not forEach: holes in sparse arrays must be seen (as undefined).
        for (let i = 0; i < value.length; i++) assertJsonValue(value[i], `${path}[${i}]`, ancestors);
      } else {
        const proto = Object.getPrototypeOf(value) as unknown;
        if (proto !== Object.prototype && proto !== null) throw invalid(`${path} is not a plain JSON object`);
        for (const [k, v] of Object.entries(value)) assertJsonValue(v, `${path}.${k}`, ancestors);
      }
      ancestors.delete(value);
      return;
    }
    default:
      throw invalid(`${path} is ${value === undefined ? "undefined" : `a ${typeof value}`}, not a JSON value`);
  }
}

/** A timestamp has exactly one accepted spelling, so what an officer is shown is unambiguous. */
function assertIsoTime(value: unknown, field: string): number {
  const ms = typeof value === "string" ? Date.parse(value) : NaN;
  if (!Number.isFinite(ms) || new Date(ms).toISOString() !== value) {
    throw invalid(`${field} must be an ISO 8601 UTC time like 2025-01-31T12:00:00.000Z`);
  }
  return ms;
}

function assertNonEmpty(value: unknown, field: string): void {
  if (typeof value !== "string" || value.length === 0) throw invalid(`${field} must be a non-empty string`);
}

/** Sanity checks on every field; canonicalProposal runs them, so nothing unchecked gets a digest. */
function assertProposalContent(p: ProposalContent): void {
  if (!isProposalKind(p.kind)) throw invalid(`unknown proposal kind ${JSON.stringify(p.kind)}`);
  assertNonEmpty(p.target, "target");
  assertNonEmpty(p.proposer, "proposer");
  if (typeof p.params !== "object" || p.params === null || Array.isArray(p.params)) throw invalid("params must be a JSON object");
  assertJsonValue(p.params, "params", new Set());
  if (p.materialSha256 !== undefined && !(typeof p.materialSha256 === "string" && HEX64.test(p.materialSha256))) {
    throw invalid("materialSha256 must be 64 lowercase hex characters");
  }
  if (typeof p.nonce !== "string" || !HEX32.test(p.nonce)) throw invalid("nonce must be 32 lowercase hex characters");
  const created = assertIsoTime(p.createdAt, "createdAt");
  const expires = assertIsoTime(p.expiresAt, "expiresAt");
  if (expires <= created) throw invalid("expiresAt must be after createdAt");
}

/**
 * RFC 8785 canonical JSON of `{ v: "custos.proposal.v1", ...content }`. Only the fields of
 * ProposalContent are copied, so extra properties on the argument (a store record, say) can
 * neither enter the digest nor replace `v`. Throws INVALID_ARGUMENT for any field that fails
 * its checks, and for params that are not plain JSON.
 */
export function canonicalProposal(p: ProposalContent): string {
  assertProposalContent(p);
  const wrapped: Record<string, unknown> = {
    v: PROPOSAL_FORMAT,
    kind: p.kind,
    target: p.target,
    params: p.params,
    proposer: p.proposer,
    createdAt: p.createdAt,
    expiresAt: p.expiresAt,
    nonce: p.nonce,
  };
  if (p.materialSha256 !== undefined) wrapped.materialSha256 = p.materialSha256;
  const text = canonicalize(wrapped);
  if (text === undefined) throw new CustosError("INTERNAL", "canonical form of a proposal is empty (this is a bug)");
  return text;
}

/** Lowercase hex SHA-256 of the canonical form's UTF-8 bytes: what officers sign. */
export function proposalDigest(p: ProposalContent): string {
  return createHash("sha256").update(canonicalProposal(p), "utf8").digest("hex");
}

/** 16 random bytes, lowercase hex. */
export function newNonce(): string {
  return randomBytes(16).toString("hex");
}

export type ProposalInput = Omit<ProposalContent, "createdAt" | "expiresAt" | "nonce"> & {
  /** Creation time; defaults to the current time. */
  now?: Date;
  /** Time to live in milliseconds; defaults to 24 h. */
  ttlMs?: number;
};

/** A new proposal with a fresh nonce, checked as canonicalProposal checks it. */
export function buildProposal(input: ProposalInput): ProposalContent {
  const { now = new Date(), ttlMs = DEFAULT_PROPOSAL_TTL_MS, materialSha256, kind, target, params, proposer } = input;
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) throw invalid("ttlMs must be a positive integer number of milliseconds");
  const created = now.getTime();
  const expires = created + ttlMs;
  // Date's range ends at ±8.64e15 ms; toISOString() would throw a RangeError past it.
  if (!Number.isFinite(new Date(expires).getTime())) throw invalid("now + ttlMs is not a valid date");
  const content: ProposalContent = {
    kind,
    target,
    params,
    proposer,
    createdAt: new Date(created).toISOString(),
    expiresAt: new Date(expires).toISOString(),
    nonce: newNonce(),
  };
  if (materialSha256 !== undefined) content.materialSha256 = materialSha256;
  canonicalProposal(content);
  return content;
}

/**
 * The bytes an officer signs to vote: `custos.approval.v1\n<decision>\n<digest>`. The prefix
 * and the decision are inside the signed bytes, so an approval can never be replayed as a
 * rejection, nor a signature made for anything else be presented as a vote.
 */
export function approvalMessage(decision: Decision, digest: string): Buffer {
  if (decision !== "approve" && decision !== "reject") throw invalid(`decision must be "approve" or "reject"`);
  if (typeof digest !== "string" || !HEX64.test(digest)) throw invalid("digest must be 64 lowercase hex characters");
  return Buffer.from(`${APPROVAL_FORMAT}\n${decision}\n${digest}`, "utf8");
}
