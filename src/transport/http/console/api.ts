import type { FastifyInstance, FastifyRequest } from "fastify";
import { CustosError } from "../../../errors.js";
import type { PasskeyAssertion, PasskeyAttestation } from "../../../governance/passkey.js";
import type { Decision } from "../../../governance/proposal.js";
import type { ConsoleContext } from "./console.js";
import { checkCsrf, type ConsoleSession } from "./session.js";

function body(req: FastifyRequest): Record<string, unknown> {
  const b = req.body;
  if (typeof b !== "object" || b === null || Array.isArray(b)) throw new CustosError("INVALID_ARGUMENT", "expected a JSON object");
  return b as Record<string, unknown>;
}

function decisionOf(value: unknown): Decision {
  if (value !== "approve" && value !== "reject") throw new CustosError("INVALID_ARGUMENT", 'decision must be "approve" or "reject"');
  return value;
}

function text(value: unknown, field: string, max = 200): string {
  if (typeof value !== "string" || value.length === 0 || value.length > max) throw new CustosError("INVALID_ARGUMENT", `${field} is required`);
  return value;
}

function credential<T>(value: unknown): T {
  if (typeof value !== "object" || value === null || typeof (value as { id?: unknown }).id !== "string")
    throw new CustosError("INVALID_ARGUMENT", "response must be a WebAuthn credential");
  return value as T;
}

/**
 * The WebAuthn JSON endpoints the page script calls. Every one is a POST with the CSRF
 * token in the `x-csrf-token` header; the ceremonies themselves run in the domain (passkey.ts).
 */
export function registerApiRoutes(app: FastifyInstance, ctx: ConsoleContext): void {
  const { deps } = ctx;
  /** The CSRF check for requests that may come before login (any live session must match). */
  const preSession = (req: FastifyRequest): ConsoleSession | undefined => {
    let session: ConsoleSession | undefined;
    try {
      session = ctx.session(req);
    } catch {
      session = undefined;
    }
    checkCsrf(req, session, deps.origin);
    return session;
  };

  app.post("/console/api/login/options", async (req) => {
    ctx.admitAnonymous(req, "login");
    preSession(req);
    try {
      return await deps.passkeys.loginOptions(ctx.challengeOwner(req));
    } catch (e) {
      ctx.anonymousFailure(req, "login", e); // a source at its cap of outstanding challenges
      throw e;
    }
  });

  app.post("/console/api/login/verify", async (req, reply) => {
    ctx.admitAnonymous(req, "login");
    const prior = preSession(req);
    const response = credential<PasskeyAssertion>(body(req).response);
    let login: Awaited<ReturnType<typeof deps.passkeys.verifyLogin>>;
    try {
      login = await deps.passkeys.verifyLogin(response, ctx.challengeOwner(req));
    } catch (e) {
      // Counted per source and written once an interval: a flood of bogus assertions writes no row each.
      ctx.anonymousFailure(req, "login", e);
      throw e;
    }
    const officer = deps.governance.activeOfficer(login.officerId);
    if (!officer) throw new CustosError("NOT_AN_OFFICER", "the passkey's officer is not active");
    // A fresh session id and CSRF token at every login (no fixation); an enrollment session ends.
    if (prior) await ctx.sessions.end(prior.id);
    const session = await ctx.sessions.create(officer.id, "officer", ctx.sessionTtlMs, login.credentialId);
    ctx.sessions.issue(reply, session);
    await deps.audit({
      kind: "console.login",
      actor: officer.id,
      outcome: "ok",
      peer: req.ip,
      details: { credential: "passkey", credentialId: login.credentialId },
    });
    return { redirect: "/console" };
  });

  app.post("/console/api/register/options", async (req) => {
    const { session, officer } = ctx.officerOf(req, "any");
    checkCsrf(req, session, deps.origin);
    return deps.passkeys.registrationOptions(officer);
  });

  app.post("/console/api/register/verify", async (req) => {
    const { session, officer, caller } = ctx.officerOf(req, "any");
    checkCsrf(req, session, deps.origin);
    const b = body(req);
    const passkey = await deps.passkeys.verifyRegistration(officer, credential<PasskeyAttestation>(b.response), typeof b.label === "string" ? b.label : "");
    const view = await deps.governance.propose(caller, { kind: "add_credential", officerId: officer.id, passkey });
    // The page shows the officer's passkeys as they are now, not as they were when it loaded.
    const passkeys = await ctx.passkeyState(officer.id, caller);
    return { proposalId: view.record.id, state: view.record.state, digest: view.record.digest, needed: view.quorum.needed, credentialId: passkey.id, passkeys };
  });

  app.post("/console/api/approve/options", async (req) => {
    const { session, officer, caller } = ctx.officerOf(req);
    checkCsrf(req, session, deps.origin);
    const b = body(req);
    const decision = decisionOf(b.decision);
    const view = await deps.governance.getProposal(caller, text(b.proposalId, "proposalId"));
    if (view.record.state !== "pending") throw new CustosError("PROPOSAL_CLOSED", `proposal ${view.record.id} is ${view.record.state}`);
    const { nonce, options } = await deps.passkeys.approvalOptions(officer, view.record, decision);
    return { nonce, digest: view.record.digest, options };
  });

  app.post("/console/api/approve/verify", async (req) => {
    const { session, caller } = ctx.officerOf(req);
    checkCsrf(req, session, deps.origin);
    const b = body(req);
    const view = await deps.governance.votePasskey(
      caller,
      text(b.proposalId, "proposalId"),
      decisionOf(b.decision),
      text(b.nonce, "nonce"),
      credential<PasskeyAssertion>(b.response),
    );
    return { state: view.record.state, needed: view.quorum.needed, approvals: view.quorum.approvals };
  });
}
