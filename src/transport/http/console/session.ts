import { randomBytes, timingSafeEqual } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { CustosError } from "../../../errors.js";
import { sha256Hex } from "../../../audit/sha256.js";
import type { ConsoleTable } from "../../../store/store.js";

/** Cookie names carry the `__Host-` prefix: Secure, Path=/, no Domain, so no sibling host can set them. */
export const SESSION_COOKIE = "__Host-custos-session";
export const CSRF_COOKIE = "__Host-custos-csrf";
export const CSRF_HEADER = "x-csrf-token";
export const CSRF_FIELD = "_csrf";

/**
 * What a console session may do: `officer` after a passkey login; `enroll` after an
 * enrollment token, allowed only to register a passkey (which files a proposal).
 */
export type SessionScope = "officer" | "enroll";

export interface ConsoleSession {
  id: string;
  officerId: string;
  scope: SessionScope;
  /** The CSRF token bound to this session (also in the CSRF cookie). */
  csrf: string;
  /** Passkey credential used to log in (officer scope). */
  credentialId?: string;
  createdAt: number;
  expiresAt: number;
}

const token = () => randomBytes(32).toString("base64url");

/** Parses a Cookie header; later duplicates do not override the first (browsers send the most specific first). */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? "").split(";")) {
    const i = part.indexOf("=");
    if (i < 1) continue;
    const name = part.slice(0, i).trim();
    if (!out.has(name)) out.set(name, part.slice(i + 1).trim());
  }
  return out;
}

/** A Set-Cookie value: always Secure, HttpOnly, SameSite=Strict, Path=/. */
export function cookie(name: string, value: string, maxAgeSeconds: number): string {
  return `${name}=${value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`;
}

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

/** Where sessions live: the store, so a restart keeps officers logged in and replicas share them. */
export type SessionRecords = Pick<ConsoleTable, "putConsoleSession" | "getConsoleSession" | "deleteConsoleSession">;

/** The session a request carries, looked up once per request (onRequest hook); "ended" if its cookie names none live. */
type Carried = ConsoleSession | "ended" | undefined;

/**
 * Console sessions: a random id in an HttpOnly cookie, an absolute expiry (no sliding
 * renewal), and a CSRF token bound to the session. Stored by the SHA-256 of the id, so the
 * database alone opens no session. `load` runs once per request; the routes then read the
 * result synchronously with `find`.
 */
export class SessionStore {
  private readonly carried = new WeakMap<FastifyRequest, Carried>();

  constructor(
    private readonly records: SessionRecords,
    private readonly now: () => number,
    private readonly max = 1_000,
  ) {}

  async create(officerId: string, scope: SessionScope, ttlMs: number, credentialId?: string): Promise<ConsoleSession> {
    const now = this.now();
    const s: ConsoleSession = {
      id: token(),
      officerId,
      scope,
      csrf: token(),
      createdAt: now,
      expiresAt: now + ttlMs,
      ...(credentialId ? { credentialId } : {}),
    };
    const stored = await this.records.putConsoleSession(
      {
        idHash: sha256Hex(s.id),
        officerId,
        scope,
        csrf: s.csrf,
        credentialId: credentialId ?? null,
        createdAt: new Date(now).toISOString(),
        expiresAt: new Date(s.expiresAt).toISOString(),
      },
      this.max,
      new Date(now).toISOString(),
    );
    if (!stored) throw new CustosError("RATE_LIMITED", "too many console sessions");
    return s;
  }

  /** Looks up the session the request's cookie names (the onRequest hook calls this). */
  async load(req: FastifyRequest): Promise<void> {
    const id = parseCookies(req.headers.cookie).get(SESSION_COOKIE);
    if (!id) return;
    const r = await this.records.getConsoleSession(sha256Hex(id));
    const expiresAt = r ? Date.parse(r.expiresAt) : 0;
    if (!r || expiresAt <= this.now()) {
      if (r) await this.records.deleteConsoleSession(r.idHash);
      this.carried.set(req, "ended");
      return;
    }
    this.carried.set(req, {
      id,
      officerId: r.officerId,
      scope: r.scope,
      csrf: r.csrf,
      createdAt: Date.parse(r.createdAt),
      expiresAt,
      ...(r.credentialId ? { credentialId: r.credentialId } : {}),
    });
  }

  /** The live session the request carries: undefined without one, SESSION_EXPIRED once it ended. */
  find(req: FastifyRequest): ConsoleSession | undefined {
    const s = this.carried.get(req);
    if (s === "ended") throw new CustosError("SESSION_EXPIRED", "the console session ended: log in again");
    return s;
  }

  async end(id: string): Promise<void> {
    await this.records.deleteConsoleSession(sha256Hex(id));
  }

  /** Sets the session and its CSRF cookies on the reply (the CSRF token is rotated at login). */
  issue(reply: FastifyReply, s: ConsoleSession): void {
    const ttl = (s.expiresAt - this.now()) / 1000;
    reply.header("set-cookie", [cookie(SESSION_COOKIE, s.id, ttl), cookie(CSRF_COOKIE, s.csrf, ttl)]);
  }

  clear(reply: FastifyReply): void {
    reply.header("set-cookie", [cookie(SESSION_COOKIE, "", 0), cookie(CSRF_COOKIE, "", 0)]);
  }
}

/**
 * The CSRF token a page embeds: the session's, or before login a double-submit cookie (set
 * here when absent) so the login and enrollment forms are protected too.
 */
export function csrfTokenFor(req: FastifyRequest, reply: FastifyReply, session: ConsoleSession | undefined): string {
  if (session) return session.csrf;
  const existing = parseCookies(req.headers.cookie).get(CSRF_COOKIE);
  if (existing && /^[A-Za-z0-9_-]{43}$/.test(existing)) return existing;
  const fresh = token();
  reply.header("set-cookie", cookie(CSRF_COOKIE, fresh, 3600));
  return fresh;
}

/**
 * Every state-changing request: the token (header or form field) must equal the CSRF cookie
 * and, with a session, the session's token; a browser-sent Origin or Sec-Fetch-Site must say
 * same origin. Throws CSRF_REJECTED (403).
 */
export function checkCsrf(req: FastifyRequest, session: ConsoleSession | undefined, origin: string): void {
  const reject = (why: string) => new CustosError("CSRF_REJECTED", `request refused: ${why}`);
  const o = req.headers.origin;
  if (o !== undefined && o !== origin) throw reject("cross-origin request");
  const site = req.headers["sec-fetch-site"];
  if (site !== undefined && site !== "same-origin") throw reject("cross-site request");
  const body = req.body as Record<string, unknown> | undefined;
  const sent = req.headers[CSRF_HEADER] ?? (body && typeof body === "object" ? body[CSRF_FIELD] : undefined);
  const fromCookie = parseCookies(req.headers.cookie).get(CSRF_COOKIE) ?? "";
  if (typeof sent !== "string" || !sameToken(sent, fromCookie)) throw reject("missing or wrong CSRF token");
  if (session && !sameToken(sent, session.csrf)) throw reject("CSRF token of another session");
}
