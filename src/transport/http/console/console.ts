import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { Logger } from "pino";
import type { AuditEvent } from "../../../audit/audit-log.js";
import { describeCustosError } from "../../../error-table.js";
import { CustosError } from "../../../errors.js";
import type { EnrollmentVerifier } from "../../../governance/enrollment.js";
import type { GovernanceService } from "../../../governance/governance-service.js";
import type { OfficerRecord } from "../../../governance/model.js";
import type { ChallengeOwner, Passkeys } from "../../../governance/passkey.js";
import type { RateLimit } from "../../../signing/rate-limiter.js";
import type { CallerContext } from "../../../signing/sign-service.js";
import { registerApiRoutes } from "./api.js";
import { consoleAssets } from "./assets.js";
import { registerPageRoutes } from "./routes.js";
import { AnonymousFailures, challengeOwner, DEFAULT_ANONYMOUS_RATE, sourceOf, SourceRateLimiter } from "./anonymous-guard.js";
import { CSRF_COOKIE, SessionStore, csrfTokenFor, parseCookies, type ConsoleSession, type SessionRecords } from "./session.js";
import type { AuditRow, ChainStatus } from "./views-state.js";
import { errorPage, type PasskeyState } from "./views.js";

/** What the console reads and does; all of it goes through the domain's own checks. */
export interface ConsoleDeps {
  governance: GovernanceService;
  passkeys: Passkeys;
  enrollment: EnrollmentVerifier;
  /** Where officer sessions are kept (the store). */
  sessionRecords: SessionRecords;
  /** Records a console decision (login, enrollment) in the audit chain. */
  audit(event: AuditEvent): Promise<void>;
  /** Queues an audit event for the next batch (aggregated anonymous failures); default: `audit` without waiting. */
  auditLater?(event: AuditEvent): void;
  /** Per-source limit on anonymous requests (login, enrollment). Default DEFAULT_ANONYMOUS_RATE. */
  anonymousRate?: RateLimit;
  /** How often anonymous failures are written, counted per source. Default one minute. */
  failureIntervalMs?: number;
  /** The newest audit events, newest first (at most `limit`). */
  recentAudit(limit: number): Promise<AuditRow[]>;
  /** Stored audit events with seq > afterSeq, ascending, at most `limit` (the audit page's pages). */
  readAudit(afterSeq: number, limit: number): Promise<AuditRow[]>;
  /** The newest stored audit event's seq (0 when there is none). */
  lastAuditSeq(): Promise<number>;
  /** Verifies the whole audit hash chain. */
  verifyAudit(): Promise<ChainStatus>;
  /** When a client last called (this process's view; the audit log covers the rest). */
  clientLastSeen?(identity: string): Date | undefined;
  /** The per-client rate limit shown on the clients page. */
  clientRate: { perSecond: number; burst: number };
  /** The embedded default (dev governance): every page shows a warning banner. */
  devMode?: boolean;
  /** The console's exact origin (e.g. https://localhost:7402): state-changing requests must come from it. */
  origin: string;
  /** Lifetime of an officer session (absolute, not sliding). Default 15 minutes. */
  sessionTtlMs?: number;
  /** Lifetime of an enrollment session (registration only). Default 10 minutes. */
  enrollTtlMs?: number;
  /** TLS key and certificate (PEM): the console is served over HTTPS only. Omitted in inject() tests. */
  tls?: { key: string | Buffer; cert: string | Buffer };
  now?: () => number;
  logger: Logger;
}

/** Content-Security-Policy of every console response: nothing but this server's own script and style. */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** Per-request helpers the routes share. */
export interface ConsoleContext {
  deps: ConsoleDeps;
  sessions: SessionStore;
  now: () => number;
  sessionTtlMs: number;
  enrollTtlMs: number;
  /** The session the request carries (SESSION_EXPIRED if it ended); undefined without one. */
  session(req: FastifyRequest): ConsoleSession | undefined;
  /** The session's officer, who must still be active; `scope` limits enrollment sessions. */
  officerOf(req: FastifyRequest, scope?: "officer" | "any"): { session: ConsoleSession; officer: OfficerRecord; caller: CallerContext };
  csrf(req: FastifyRequest, reply: FastifyReply): string;
  /** The officer's passkeys now: registered, and pending add_credential proposals for them. */
  passkeyState(officerId: string, caller: CallerContext): Promise<PasskeyState>;
  /** Admits an anonymous request (`what`: login, enroll) within its source's rate; RATE_LIMITED otherwise. */
  admitAnonymous(req: FastifyRequest, what: string): void;
  /** Counts an anonymous failure for the aggregated audit event (no audit row of its own). */
  anonymousFailure(req: FastifyRequest, what: string, error: unknown): void;
  /** The source and browser a login challenge is bound to. */
  challengeOwner(req: FastifyRequest): ChallengeOwner;
}

/**
 * The officer console: server-rendered pages under /console and the WebAuthn JSON endpoints
 * under /console/api, on its own HTTPS listener. `buildConsole` returns the app unstarted so
 * tests can use `app.inject()`.
 */
export function buildConsole(deps: ConsoleDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.logger.child({ component: "console" }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 64 * 1024,
    ...(deps.tls ? { https: { key: deps.tls.key, cert: deps.tls.cert, minVersion: "TLSv1.3" as const } } : {}),
  }) as unknown as FastifyInstance;
  const now = deps.now ?? Date.now;
  const sessions = new SessionStore(deps.sessionRecords, now);
  const limiter = new SourceRateLimiter(deps.anonymousRate ?? DEFAULT_ANONYMOUS_RATE, now);
  const failures = new AnonymousFailures(deps.auditLater ?? ((e) => void deps.audit(e).catch(() => undefined)), now, deps.failureIntervalMs);
  failures.start();
  app.addHook("onClose", async () => failures.close());
  const ctx: ConsoleContext = {
    deps,
    sessions,
    now,
    sessionTtlMs: deps.sessionTtlMs ?? 15 * 60_000,
    enrollTtlMs: deps.enrollTtlMs ?? 10 * 60_000,
    session: (req) => sessions.find(req),
    officerOf(req, scope = "officer") {
      const session = sessions.find(req);
      if (!session) throw new CustosError("UNAUTHENTICATED", "log in with a passkey first");
      if (scope === "officer" && session.scope !== "officer") throw new CustosError("ROLE_NOT_ALLOWED", "an enrollment session may only register a passkey");
      const officer = deps.governance.activeOfficer(session.officerId);
      if (!officer) {
        void sessions.end(session.id).catch(() => undefined); // refused either way: the officer check runs on every request
        throw new CustosError("NOT_AN_OFFICER", "not an active officer any more");
      }
      return { session, officer, caller: { identity: officer.identity, ip: req.ip } };
    },
    csrf(req, reply) {
      let session: ConsoleSession | undefined;
      try {
        session = sessions.find(req);
      } catch {
        session = undefined;
      }
      return csrfTokenFor(req, reply, session);
    },
    async passkeyState(officerId, caller) {
      const [registered, pending] = await Promise.all([deps.passkeys.list(officerId), deps.governance.listProposals(caller, "pending")]);
      const mine = pending.filter((v) => v.record.kind === "add_credential" && v.record.target === officerId);
      return { registered: registered.length, pending: mine.map((v) => ({ id: v.record.id, digest: v.record.digest })) };
    },
    admitAnonymous(req, what) {
      const source = sourceOf(req.ip);
      if (limiter.take(source)) return;
      failures.note(source, what, "RATE_LIMITED");
      throw new CustosError("RATE_LIMITED", "too many requests from this address; try again shortly", { retryable: true });
    },
    anonymousFailure(req, what, error) {
      failures.note(sourceOf(req.ip), what, error instanceof CustosError ? error.code : "INTERNAL");
    },
    challengeOwner: (req) => challengeOwner(sourceOf(req.ip), parseCookies(req.headers.cookie).get(CSRF_COOKIE) ?? ""),
  };

  app.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string" }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  // Each request's session is read from the store once, before its route runs.
  app.addHook("onRequest", async (req) => {
    if (req.url.startsWith("/console") && !req.url.startsWith("/console/assets/")) await sessions.load(req);
  });

  app.addHook("onSend", async (_req, reply, payload) => {
    reply.header("content-security-policy", CONSOLE_CSP);
    reply.header("x-content-type-options", "nosniff");
    reply.header("x-frame-options", "DENY");
    // same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on form posts.
    reply.header("referrer-policy", "same-origin");
    reply.header("cross-origin-opener-policy", "same-origin");
    reply.header("cache-control", "no-store");
    return payload;
  });

  app.setErrorHandler((err, req, reply) => {
    // Custos errors answer from the one error table (src/error-table.ts); fastify's own 4xx (a body that does not parse) are 400.
    const known = err instanceof CustosError ? describeCustosError(err) : undefined;
    const status = known ? known.http : (err as { statusCode?: number }).statusCode && (err as { statusCode: number }).statusCode < 500 ? 400 : 500;
    const code = known ? known.reason : status === 400 ? "INVALID_ARGUMENT" : "INTERNAL";
    const message = known ? known.message : status === 400 ? "malformed request" : "internal error";
    if (status >= 500) req.log.error({ event: "console.error", err, url: req.url.split("?")[0] }, "console request failed");
    if (req.url.startsWith("/console/api/")) return reply.code(status).send({ code, message });
    // A page request without a live session goes to the login page.
    if (code === "SESSION_EXPIRED" || code === "UNAUTHENTICATED") {
      if (code === "SESSION_EXPIRED") sessions.clear(reply);
      return reply
        .code(303)
        .header("location", `/console/login${code === "SESSION_EXPIRED" ? "?expired=1" : ""}`)
        .send();
    }
    return reply
      .code(status)
      .type("text/html; charset=utf-8")
      .send(errorPage({ title: "Refused", csrf: "", ...(deps.devMode ? { dev: true } : {}) }, code, message));
  });

  app.get("/console/assets/:name", async (req, reply) => {
    const asset = consoleAssets().get((req.params as { name: string }).name);
    if (!asset) return reply.code(404).send({ code: "NOT_FOUND", message: "no such asset" });
    return reply.type(asset.contentType).send(asset.body);
  });

  registerPageRoutes(app, ctx);
  registerApiRoutes(app, ctx);
  return app;
}
