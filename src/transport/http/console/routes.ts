import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { CustosError } from "../../../errors.js";
import type { ConsoleContext } from "./console.js";
import { checkCsrf } from "./session.js";
import { AUDIT_PAGE_SIZES, auditPage as auditPager, DEFAULT_AUDIT_PAGE_SIZE } from "./audit-pager.js";
import { auditPage } from "./views-audit.js";
import { clientsPage, keysPage, officersPage, type AuditFilter } from "./views-state.js";
import { enrollPage, loginPage, proposalsPage, registerPage, type PageContext } from "./views.js";

const NOTICES: Record<string, string> = {
  freeze: "Frozen: signing stopped at once.",
  thaw: "Thaw proposed: it takes effect once the quorum approves it.",
  "remove-passkey": "Passkey removal proposed: it takes effect once the quorum approves it.",
  expired: "Your session expired: log in again.",
  logout: "Logged out.",
};

function html(reply: FastifyReply, body: string): FastifyReply {
  return reply.type("text/html; charset=utf-8").send(body);
}

function form(req: FastifyRequest): Record<string, string> {
  const b = req.body;
  if (typeof b !== "object" || b === null) throw new CustosError("INVALID_ARGUMENT", "expected a form");
  return b as Record<string, string>;
}

/** An audit page cursor: a sequence number, or absent. */
function cursor(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value === "") return undefined;
  if (!/^\d{1,15}$/.test(value)) throw new CustosError("INVALID_ARGUMENT", `${name} is an event number`);
  return Number(value);
}

function notice(req: FastifyRequest): string | undefined {
  const q = req.query as Record<string, string | undefined>;
  return NOTICES[q.done ?? (q.expired ? "expired" : "")];
}

/** The server-rendered pages and their form posts (freeze, thaw, enrollment, logout). */
export function registerPageRoutes(app: FastifyInstance, ctx: ConsoleContext): void {
  const { deps } = ctx;
  const dev = deps.devMode ? { dev: true } : {};
  /** Page context of a logged-in officer (enrollment sessions are sent to the registration page). */
  const officerPage = (req: FastifyRequest, reply: FastifyReply, title: string) => {
    const s = ctx.session(req);
    if (s?.scope === "enroll") throw Object.assign(new CustosError("ROLE_NOT_ALLOWED", "enrollment only"), { redirect: "/console/register" });
    const o = ctx.officerOf(req);
    const n = notice(req);
    const page: PageContext = { title, csrf: ctx.csrf(req, reply), officer: o.officer, scope: "officer", ...dev, ...(n ? { notice: n } : {}) };
    return { ...o, page };
  };
  const guard = (fn: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>) => async (req: FastifyRequest, reply: FastifyReply) => {
    try {
      return await fn(req, reply);
    } catch (e) {
      const to = (e as { redirect?: string }).redirect;
      if (to) return reply.code(303).header("location", to).send();
      throw e;
    }
  };

  app.get(
    "/console",
    guard(async (req, reply) => {
      const { caller, page } = officerPage(req, reply, "Proposals");
      const all = await deps.governance.listProposals(caller);
      const pending = all.filter((v) => v.record.state === "pending");
      const recent = all
        .filter((v) => v.record.state !== "pending")
        .slice(-20)
        .reverse();
      return html(reply, proposalsPage(page, pending, recent));
    }),
  );

  app.get(
    "/console/keys",
    guard(async (req, reply) => {
      const { caller, page } = officerPage(req, reply, "Keys");
      const [keys, clients] = await Promise.all([deps.governance.listKeys(caller), deps.governance.listClients(caller)]);
      return html(
        reply,
        keysPage(page, keys, clients, ctx.now(), (id) => deps.governance.exchangePermissionsOf(id)),
      );
    }),
  );

  app.get(
    "/console/clients",
    guard(async (req, reply) => {
      const { caller, page } = officerPage(req, reply, "Clients");
      const clients = await deps.governance.listClients(caller);
      // The signer's own record of each client's last call, else the newest recent audit event by it.
      const lastSeen = new Map<string, string>();
      for (const e of await deps.recentAudit(5_000)) if (e.at && !lastSeen.has(e.actor)) lastSeen.set(e.actor, e.at);
      for (const c of clients) {
        const live = deps.clientLastSeen?.(c.identity)?.toISOString();
        if (live && live > (lastSeen.get(c.identity) ?? "")) lastSeen.set(c.identity, live);
      }
      return html(reply, clientsPage(page, clients, lastSeen, deps.clientRate));
    }),
  );

  app.get(
    "/console/audit",
    guard(async (req, reply) => {
      const { page } = officerPage(req, reply, "Audit log");
      const q = req.query as Record<string, string | undefined>;
      const filter: AuditFilter = {
        ...(q.key?.trim() ? { key: q.key.trim() } : {}),
        ...(q.client?.trim() ? { client: q.client.trim() } : {}),
        ...(q.kind?.trim() ? { kind: q.kind.trim() } : {}),
      };
      const size = q.size === undefined ? DEFAULT_AUDIT_PAGE_SIZE : Number(q.size);
      if (!(AUDIT_PAGE_SIZES as readonly number[]).includes(size)) throw new CustosError("INVALID_ARGUMENT", `size is one of ${AUDIT_PAGE_SIZES.join(", ")}`);
      const before = cursor(q.before, "before");
      const after = cursor(q.after, "after");
      const query = { size, filter, ...(before !== undefined ? { before } : {}), ...(after !== undefined ? { after } : {}) };
      const result = await auditPager(deps.readAudit, await deps.lastAuditSeq(), query);
      return html(reply, auditPage(page, result, filter, size, await deps.verifyAudit()));
    }),
  );

  app.get(
    "/console/officers",
    guard(async (req, reply) => {
      const { caller, page } = officerPage(req, reply, "Officers");
      const g = await deps.governance.governance(caller);
      return html(reply, officersPage(page, g.threshold, g.officers, await deps.passkeys.list()));
    }),
  );

  app.post("/console/passkeys/remove", async (req, reply) => {
    const { session, caller } = ctx.officerOf(req);
    checkCsrf(req, session, deps.origin);
    const f = form(req);
    if (!f.officer || !f.credential) throw new CustosError("INVALID_ARGUMENT", "name the officer and the passkey");
    await deps.governance.propose(caller, { kind: "remove_credential", officerId: f.officer, credentialId: f.credential });
    return reply.code(303).header("location", "/console?done=remove-passkey").send();
  });

  app.get("/console/login", async (req, reply) => {
    const n = notice(req);
    return html(reply, loginPage({ title: "Officer login", csrf: ctx.csrf(req, reply), ...dev, ...(n ? { notice: n } : {}) }));
  });

  app.get("/console/enroll", async (req, reply) => html(reply, enrollPage({ title: "Enroll a passkey", csrf: ctx.csrf(req, reply), ...dev })));

  app.post("/console/enroll", async (req, reply) => {
    ctx.admitAnonymous(req, "enroll");
    checkCsrf(req, undefined, deps.origin);
    let officer: Awaited<ReturnType<typeof deps.enrollment.verify>>;
    try {
      officer = await deps.enrollment.verify(form(req).token ?? "", (id) => deps.governance.activeOfficer(id));
    } catch (e) {
      if (!(e instanceof CustosError)) throw e;
      // Counted per source and written once an interval: garbage tokens write no row each.
      ctx.anonymousFailure(req, "enroll", e);
      return html(
        reply.code(e.code === "NONCE_INVALID" ? 409 : 401),
        enrollPage({ title: "Enroll a passkey", csrf: ctx.csrf(req, reply), ...dev }, `${e.code}: ${e.message}`),
      );
    }
    try {
      const prior = ctx.session(req);
      if (prior) await ctx.sessions.end(prior.id);
    } catch {
      // an expired session: nothing to end
    }
    const s = await ctx.sessions.create(officer.id, "enroll", ctx.enrollTtlMs);
    ctx.sessions.issue(reply, s);
    await deps.audit({ kind: "console.enroll", actor: officer.id, outcome: "ok", peer: req.ip });
    return reply.code(303).header("location", "/console/register").send();
  });

  app.get("/console/register", async (req, reply) => {
    const { officer, session, caller } = ctx.officerOf(req, "any");
    const state = await ctx.passkeyState(officer.id, caller);
    return html(reply, registerPage({ title: "Register a passkey", csrf: session.csrf, officer, scope: session.scope, ...dev }, state));
  });

  app.post("/console/freeze", async (req, reply) => {
    const { session, caller } = ctx.officerOf(req);
    checkCsrf(req, session, deps.origin);
    const f = form(req);
    const target = f.target === "key" || f.target === "client" ? f.target : undefined;
    if (!target || !f.id) throw new CustosError("INVALID_ARGUMENT", "freeze needs a target (key or client) and an id");
    await deps.governance.freeze(caller, target, f.id, `${f.reason ?? ""}`.trim() ? `${f.reason} (console)` : "");
    return reply
      .code(303)
      .header("location", `/console/${target === "key" ? "keys" : "clients"}?done=freeze`)
      .send();
  });

  app.post("/console/thaw", async (req, reply) => {
    const { session, caller } = ctx.officerOf(req);
    checkCsrf(req, session, deps.origin);
    const f = form(req);
    const target = f.target === "key" || f.target === "client" ? f.target : undefined;
    if (!target || !f.id) throw new CustosError("INVALID_ARGUMENT", "thaw needs a target (key or client) and an id");
    await deps.governance.propose(caller, { kind: "thaw", target, id: f.id });
    return reply.code(303).header("location", "/console?done=thaw").send();
  });

  app.post("/console/logout", async (req, reply) => {
    let session: ReturnType<typeof ctx.session> | undefined;
    try {
      session = ctx.session(req);
    } catch {
      session = undefined; // already expired: clear the cookies all the same
    }
    if (session) {
      checkCsrf(req, session, deps.origin);
      await ctx.sessions.end(session.id);
    }
    ctx.sessions.clear(reply);
    return reply.code(303).header("location", "/console/login?done=logout").send();
  });
}
