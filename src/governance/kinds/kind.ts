import type { AuditEvent, AuditLog } from "../../audit/audit-log.js";
import type { ProposeRequest } from "../../gen/custos/v1/custody.js";
import { CustosError } from "../../errors.js";
import type { ImportEnvelope } from "../../hsm/envelope.js";
import type { KeyCustody } from "../../hsm/hsm.js";
import type { KeyWithVersions } from "../../keys/model.js";
import type { Store, StoreTables } from "../../store/store.js";
import type { FaultStep } from "../fault.js";
import type { ProposalRecord } from "../model.js";
import type { ProposalContent } from "../proposal.js";

/** What a kind reads and uses: the store, the HSM, the audit log (adoption records), the quorum rules, the clock. */
export interface KindContext {
  readonly store: Store;
  readonly hsm: KeyCustody;
  readonly audit: AuditLog;
  readonly rules: { readonly proposerCounts: boolean; readonly veto: boolean };
  /** Granted every new key (the embedded default's dev client). */
  readonly autoGrant: readonly string[];
  readonly now: () => number;
}

/** The signed part of a proposal a kind builds from its input: its target and JSON parameters. */
export interface KindContent {
  target: string;
  params: Record<string, unknown>;
  /** Key material that travels beside the signed content (its digest is signed, not its bytes). */
  envelope?: ImportEnvelope;
}

/**
 * An approved proposal's execution after its HSM step: the record step that the generic
 * lifecycle runs inside one `store.transaction()` with the proposal's "executed" mark.
 */
export interface Execution {
  /** Writes the change; only through `tx` (no HSM, no audit inside a transaction). */
  record(tx: StoreTables): Promise<void>;
  /** The HSM object this run created: destroyed if the record step fails, so none is orphaned. */
  readonly created?: string;
  /** The crash-test point right after the record step committed. */
  readonly afterRecord?: FaultStep;
}

type WireKind = NonNullable<ProposeRequest["kind"]>;
/** A case of the Propose request's oneof: one proto message per kind officers propose over gRPC. */
export type WireCase = WireKind["$case"];
/** The proto message of a wire case. */
export type WireMessage<C extends WireCase> = Extract<WireKind, { $case: C }> extends { [K in C]: infer M } ? M : never;

/**
 * How a kind arrives over gRPC: its case of the Propose oneof and the decoding of its message into
 * the kind's input. Only the wire's conventions belong here (proto3's "" and 0 for absent, enums);
 * `content` checks the rest. The case is checked against its message type.
 */
export type WireForm<I> = { [C in WireCase]: { readonly case: C; decode(message: WireMessage<C>): I } }[WireCase];

/** The typed parts of one proposal kind; `defineKind` turns them into a table entry. */
export interface KindSpec<I extends { kind: string }, P> {
  readonly kind: I["kind"];
  /** Its Propose message; absent for kinds proposed only from the console (passkeys). */
  readonly wire?: WireForm<I>;
  /** The target is a key id (the audit records and the summary name the key). */
  readonly targetsKey: boolean;
  /** Shape checks that need no state (INVALID_ARGUMENT), then the signed content. */
  content(input: I): KindContent;
  /** The signed parameters, read back typed (from the proposal's canonical JSON). */
  decode(params: Record<string, unknown>): P;
  /** What must hold before it can be proposed, against the current state. */
  preconditions(ctx: KindContext, input: I): Promise<void>;
  /** Before → after, in words an officer checks before signing. `key`: the target key, for key kinds. */
  summarise(ctx: Pick<KindContext, "store">, c: TypedContent<P>, key: KeyWithVersions | undefined): Promise<string[]>;
  /** The exchange a new key is for (the summary's raw-only warning); existing keys' come from the store. */
  newKeyExchange?(params: P): string;
  /** State checks again, then the HSM step (adopt-or-create by CKA_ID), outside any transaction. */
  execute(ctx: KindContext, p: ProposalRecord, params: P, at: string): Promise<Execution>;
  /** The audit records of the change, from the state it left (before the generic proposal.executed). */
  completed(ctx: KindContext, p: ProposalRecord, c: TypedContent<P>): Promise<AuditEvent[]>;
  /** The crash-test point between the kind's audit records and proposal.executed. */
  readonly betweenAuditRecords?: FaultStep;
}

/** A proposal's content with its parameters decoded. */
export type TypedContent<P> = Omit<ProposalContent, "params"> & { params: P };

/**
 * One row of the kinds table, its types erased: what the generic governance code calls. `I` is
 * the kind's input type, kept only so the table can name the union of every kind's input.
 */
export interface ProposalKindModule<I extends { kind: string } = { kind: string }> {
  readonly kind: I["kind"];
  readonly targetsKey: boolean;
  /** The Propose oneof case and its decoder (the message's type checked in the kind's spec). */
  readonly wire?: { readonly case: WireCase; decode(message: unknown): I };
  content(input: { kind: string }): KindContent;
  preconditions(ctx: KindContext, input: { kind: string }): Promise<void>;
  summarise(ctx: Pick<KindContext, "store">, c: ProposalContent, key: KeyWithVersions | undefined): Promise<string[]>;
  newKeyExchange(c: ProposalContent): string | undefined;
  execute(ctx: KindContext, p: ProposalRecord, c: ProposalContent, at: string): Promise<Execution>;
  completed(ctx: KindContext, p: ProposalRecord, c: ProposalContent): Promise<AuditEvent[]>;
  readonly betweenAuditRecords?: FaultStep;
}

/** A kind's typed spec as a table row: inputs are checked to be this kind's, parameters decoded once per call. */
export function defineKind<I extends { kind: string }, P>(spec: KindSpec<I, P>): ProposalKindModule<I> {
  const mine = (input: { kind: string }): input is I => input.kind === spec.kind;
  const own = (input: { kind: string }): I => {
    if (!mine(input)) throw new CustosError("INTERNAL", `a ${input.kind} input reached the ${spec.kind} kind (this is a bug)`);
    return input;
  };
  const typed = (c: ProposalContent): TypedContent<P> => ({ ...c, params: spec.decode(c.params) });
  return {
    kind: spec.kind,
    targetsKey: spec.targetsKey,
    // The spec's type pairs the case with its message; erased here, the transport looks it up by case.
    ...(spec.wire ? { wire: spec.wire as { case: WireCase; decode(message: unknown): I } } : {}),
    content: (input) => spec.content(own(input)),
    preconditions: (ctx, input) => spec.preconditions(ctx, own(input)),
    summarise: (ctx, c, key) => spec.summarise(ctx, typed(c), key),
    newKeyExchange: (c) => (spec.newKeyExchange ? spec.newKeyExchange(spec.decode(c.params)) : undefined),
    execute: (ctx, p, c, at) => spec.execute(ctx, p, spec.decode(c.params), at),
    completed: (ctx, p, c) => spec.completed(ctx, p, typed(c)),
    ...(spec.betweenAuditRecords ? { betweenAuditRecords: spec.betweenAuditRecords } : {}),
  };
}

/** Whether a proposal of `kind` on `target` is open (pending or executing, not past its expiry). */
export async function openProposal(ctx: Pick<KindContext, "store" | "now">, kind: string, target: string): Promise<boolean> {
  const open = [...(await ctx.store.governance.listProposals("pending")), ...(await ctx.store.governance.listProposals("executing"))];
  return open.some((p) => p.kind === kind && p.target === target && Date.parse(p.expiresAt) > ctx.now());
}

/** The key a proposal targets, or KEY_NOT_FOUND. */
export async function existingKey(ctx: Pick<KindContext, "store">, keyId: string): Promise<KeyWithVersions> {
  const key = await ctx.store.keys.getKey(keyId);
  if (!key) throw new CustosError("KEY_NOT_FOUND", `no key ${keyId}`);
  return key;
}

/** The ids of a proposal in its audit records. */
export function proposalRef(p: ProposalRecord): { proposal: string; digest: string } {
  return { proposal: p.id, digest: p.digest };
}

/** "v1 active, v2 retiring", or "none". */
export function versionList(k: KeyWithVersions | undefined): string {
  return k ? k.versions.map((v) => `v${v.version} ${v.state}`).join(", ") : "none";
}
