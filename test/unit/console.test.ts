import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { PassThrough } from "node:stream";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import { AuditLog } from "../../src/audit/audit-log.js";
import { CustosError } from "../../src/errors.js";
import { createEnrollmentToken, ENROLLMENT_TTL_MS, EnrollmentVerifier } from "../../src/governance/enrollment.js";
import { GovernanceService } from "../../src/governance/governance-service.js";
import { generateOfficerKey, loadOfficerPrivateKey, signApproval } from "../../src/governance/officer-key.js";
import { Passkeys } from "../../src/governance/passkey.js";
import type { OfficerSpec } from "../../src/governance/proposal-input.js";
import { buildEnvelope } from "../../src/hsm/envelope.js";
import { createLogger } from "../../src/log.js";
import { AccessDirectory } from "../../src/signing/directory.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { buildConsole, CONSOLE_CSP, type ConsoleDeps } from "../../src/transport/http/console/console.js";
import type { AuditRow } from "../../src/transport/http/console/views-state.js";
import { SoftAuthenticator } from "../helpers/soft-authenticator.js";
import { FakeHsm } from "./fake-hsm.js";

/**
 * The officer console through fastify's inject(): CSRF, CSP, cookies, session expiry,
 * enrollment tokens, and passkey approvals bound to one proposal's digest and one nonce.
 * A software authenticator stands in for the browser (test/browser/ drives real Chromium).
 */

const RP = "console.test";
const ORIGIN = "https://console.test:7402";

function officer(id: string) {
  const pair = generateOfficerKey(`passphrase of ${id}`);
  const spec: OfficerSpec = { id, displayName: id, identity: `spiffe://custos/officer/${id}`, publicKeyPem: pair.publicKeyPem };
  return { id, spec, key: loadOfficerPrivateKey(pair.privateKeyPem, `passphrase of ${id}`), caller: { identity: spec.identity, ip: "127.0.0.1" } };
}

/** A cookie jar and CSRF token, as a browser tab keeps them. */
class Tab {
  cookies = new Map<string, string>();
  csrf = "";
  constructor(private readonly app: FastifyInstance) {}

  private keep(res: LightMyRequestResponse): LightMyRequestResponse {
    for (const c of res.cookies as Array<{ name: string; value: string; maxAge?: number }>) {
      if (c.maxAge === 0) this.cookies.delete(c.name);
      else this.cookies.set(c.name, c.value);
    }
    const meta = /<meta name="csrf-token" content="([^"]*)">/.exec(res.body);
    if (meta?.[1]) this.csrf = meta[1];
    return res;
  }

  private get cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  async get(url: string): Promise<LightMyRequestResponse> {
    return this.keep(await this.app.inject({ method: "GET", url, headers: { cookie: this.cookieHeader } }));
  }

  async api(url: string, body: unknown, o: { csrf?: string | null; origin?: string } = {}): Promise<LightMyRequestResponse> {
    const headers: Record<string, string> = { cookie: this.cookieHeader, "content-type": "application/json", origin: o.origin ?? ORIGIN };
    const token = o.csrf === undefined ? this.csrf : o.csrf;
    if (token !== null) headers["x-csrf-token"] = token;
    return this.keep(await this.app.inject({ method: "POST", url, headers, payload: JSON.stringify(body) }));
  }

  async form(url: string, fields: Record<string, string>, o: { csrf?: boolean } = {}): Promise<LightMyRequestResponse> {
    const all = o.csrf === false ? fields : { _csrf: this.csrf, ...fields };
    return this.keep(
      await this.app.inject({
        method: "POST",
        url,
        headers: { cookie: this.cookieHeader, "content-type": "application/x-www-form-urlencoded", origin: ORIGIN },
        payload: new URLSearchParams(all).toString(),
      }),
    );
  }

  /** Passkey login with `auth`: options, assertion, verify. */
  async login(auth: SoftAuthenticator): Promise<LightMyRequestResponse> {
    await this.get("/console/login");
    const options = (await this.api("/console/api/login/options", {})).json() as { challenge: string };
    const res = await this.api("/console/api/login/verify", { response: auth.assert(options.challenge) });
    // The page script goes to the console next; its page carries the session's CSRF token.
    if (res.statusCode === 200) await this.get("/console");
    return res;
  }

  /** Approval options for a proposal: the nonce and the challenge to sign. */
  async approvalOptions(proposalId: string, decision = "approve"): Promise<{ nonce: string; challenge: string; digest: string }> {
    const res = await this.api("/console/api/approve/options", { proposalId, decision });
    assert.equal(res.statusCode, 200, res.body);
    const r = res.json() as { nonce: string; digest: string; options: { challenge: string } };
    return { nonce: r.nonce, digest: r.digest, challenge: r.options.challenge };
  }
}

describe("officer console", () => {
  const [alice, bob, carol] = ["alice", "bob", "carol"].map(officer) as [ReturnType<typeof officer>, ReturnType<typeof officer>, ReturnType<typeof officer>];
  let clock = Date.parse("2026-01-05T10:00:00.000Z");
  const now = () => clock;
  let store: SqliteStore, audit: AuditLog, gov: GovernanceService, app: FastifyInstance, hsm: FakeHsm, deps: ConsoleDeps;
  const authA = new SoftAuthenticator(RP, ORIGIN);
  let logText = "";

  before(async () => {
    store = new SqliteStore(":memory:");
    hsm = new FakeHsm();
    const sink = new PassThrough();
    sink.on("data", (d: Buffer) => (logText += d.toString()));
    const logger = createLogger("info", sink);
    audit = await AuditLog.open(store, logger, { flushIntervalMs: 3_600_000 });
    const directory = new AccessDirectory();
    await directory.reload(store);
    const passkeys = new Passkeys(store, { rpId: RP, rpName: "custos", origins: [ORIGIN], now });
    gov = new GovernanceService(
      store,
      hsm,
      audit,
      directory,
      logger,
      { proposerCounts: false, veto: true, bootstrapAdmins: [], autoGrant: [], proposalTtlMs: 24 * 3_600_000 },
      passkeys,
    );
    await gov.load();
    await gov.init(null, [alice.spec, bob.spec, carol.spec], 2);
    deps = {
      governance: gov,
      passkeys,
      enrollment: new EnrollmentVerifier(store.console, now),
      sessionRecords: store.console,
      audit: (e) => audit.recordNow(e),
      recentAudit: async (limit) => {
        await audit.flush();
        return (await store.audit.readAudit(0, 1_000_000))
          .map((e) => JSON.parse(e.body) as AuditRow)
          .reverse()
          .slice(0, limit);
      },
      readAudit: async (afterSeq, limit) => {
        await audit.flush();
        return (await store.audit.readAudit(afterSeq, limit)).map((e) => JSON.parse(e.body) as AuditRow);
      },
      lastAuditSeq: async () => {
        await audit.flush();
        return (await store.audit.lastAudit())?.seq ?? 0;
      },
      verifyAudit: async () => ({ state: "verified", events: 0 }),
      clientRate: { perSecond: 100, burst: 200 },
      // The clock stands still here: per-source limits are tested in test/integration/console-flood.test.ts.
      anonymousRate: { perSecond: 1, burst: 1_000 },
      origin: ORIGIN,
      now,
      logger,
    };
    app = buildConsole(deps);
  });
  after(async () => {
    await app.close();
    await audit.close();
    await store.close();
  });

  const vote = async (who: typeof bob, id: string) => {
    const { digest } = (await store.governance.getProposal(id))!;
    return gov.vote(who.caller, id, "approve", digest, signApproval(who.key, "approve", digest));
  };

  it("registers a passkey only through an add_credential proposal approved by the quorum", async () => {
    const view = await gov.propose(alice.caller, { kind: "add_credential", officerId: "alice", passkey: authA.spec("alice's soft key") });
    assert.equal(view.record.kind, "add_credential");
    assert.ok(
      view.summary.some((l) => l.includes(`add a passkey "alice's soft key" for officer alice`)),
      view.summary.join("\n"),
    );
    assert.equal(await store.governance.getPasskey(authA.credentialId), undefined, "a proposal registers nothing");
    const refused = await new Tab(app).login(authA);
    assert.equal(refused.statusCode, 401, "an unapproved passkey cannot log in");
    assert.equal((await vote(bob, view.record.id)).record.state, "pending");
    assert.equal((await vote(carol, view.record.id)).record.state, "executed");
    assert.equal((await store.governance.getPasskey(authA.credentialId))?.officerId, "alice");
  });

  it("sends a strict CSP and secure cookies, and loads nothing from outside the server", async () => {
    const tab = new Tab(app);
    const res = await tab.get("/console/login");
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers["content-security-policy"], CONSOLE_CSP);
    assert.match(CONSOLE_CSP, /default-src 'none'; script-src 'self'; style-src 'self'/);
    assert.doesNotMatch(CONSOLE_CSP, /unsafe/);
    assert.equal(res.headers["x-frame-options"], "DENY");
    const setCookie = String(res.headers["set-cookie"]);
    assert.match(setCookie, /^__Host-custos-csrf=[A-Za-z0-9_-]{43}; Path=\/; Secure; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
    assert.doesNotMatch(res.body, /<script>|<style>|on(click|load)=|https?:\/\//, "no inline script or style, no external resource");
    const bundle = await tab.get("/console/assets/webauthn.js");
    assert.equal(bundle.statusCode, 200);
    assert.match(bundle.body, /SimpleWebAuthnBrowser/);
    const login = await tab.login(authA);
    assert.equal(login.statusCode, 200, login.body);
    const cookies = ([] as string[]).concat(login.headers["set-cookie"] as string[]);
    assert.ok(
      cookies.some((c) => /^__Host-custos-session=[A-Za-z0-9_-]{43}; Path=\/; Secure; HttpOnly; SameSite=Strict; Max-Age=900$/.test(c)),
      cookies.join("\n"),
    );
  });

  it("refuses state-changing requests without the CSRF token, with another session's token or from another origin (403)", async () => {
    const tab = new Tab(app);
    await tab.get("/console/login");
    for (const res of [
      await tab.api("/console/api/login/options", {}, { csrf: null }),
      await tab.api("/console/api/login/options", {}, { csrf: "x".repeat(43) }),
    ]) {
      assert.equal(res.statusCode, 403);
      assert.equal(res.json().code, "CSRF_REJECTED");
    }
    assert.equal((await tab.api("/console/api/login/options", {}, { origin: "https://evil.test" })).statusCode, 403);
    assert.equal((await tab.login(authA)).statusCode, 200);
    const other = new Tab(app);
    await other.get("/console/login");
    const noToken = await tab.form("/console/freeze", { target: "client", id: "x", reason: "r" }, { csrf: false });
    assert.equal(noToken.statusCode, 403);
    const foreign = await tab.api("/console/api/approve/options", { proposalId: "x", decision: "approve" }, { csrf: other.csrf });
    assert.equal(foreign.statusCode, 403);
    assert.equal(foreign.json().code, "CSRF_REJECTED");
  });

  it("binds a console approval to one proposal's digest, one decision and one nonce; a replay is refused", async () => {
    const dave = officer("dave");
    const a = (await gov.propose(carol.caller, { kind: "add_officer", officer: dave.spec })).record;
    const b = (await gov.propose(carol.caller, { kind: "set_threshold", threshold: 1 })).record;
    const tab = new Tab(app);
    assert.equal((await tab.login(authA)).statusCode, 200);

    const forA = await tab.approvalOptions(a.id);
    assert.equal(forA.digest, a.digest);
    const assertionForA = authA.assert(forA.challenge);
    // A's nonce presented for B: the nonce is bound to A.
    const crossed = await tab.api("/console/api/approve/verify", { proposalId: b.id, decision: "approve", nonce: forA.nonce, response: assertionForA });
    assert.equal(crossed.statusCode, 409);
    assert.equal(crossed.json().code, "NONCE_INVALID");
    // B's own nonce with the assertion made for A: the signed challenge is not B's.
    const forB = await tab.approvalOptions(b.id);
    const wrongDigest = await tab.api("/console/api/approve/verify", {
      proposalId: b.id,
      decision: "approve",
      nonce: forB.nonce,
      response: authA.assert(forA.challenge),
    });
    assert.equal(wrongDigest.statusCode, 409);
    assert.equal(wrongDigest.json().code, "DIGEST_MISMATCH");
    // An approval's nonce and challenge cannot be turned into a rejection, nor the reverse.
    const asReject = await tab.api("/console/api/approve/verify", {
      proposalId: b.id,
      decision: "reject",
      nonce: (await tab.approvalOptions(b.id)).nonce,
      response: assertionForA,
    });
    assert.equal(asReject.json().code, "NONCE_INVALID");
    const rejectNonce = await tab.approvalOptions(b.id, "reject");
    const approveSigned = authA.assert((await tab.approvalOptions(b.id)).challenge);
    const flipped = await tab.api("/console/api/approve/verify", { proposalId: b.id, decision: "reject", nonce: rejectNonce.nonce, response: approveSigned });
    assert.equal(flipped.json().code, "DIGEST_MISMATCH");
    assert.deepEqual(await store.governance.listVotes(b.id), [], "nothing counted for B");

    // A fresh nonce for A, approved: recorded as a passkey vote, then replayed.
    const fresh = await tab.approvalOptions(a.id);
    const body = { proposalId: a.id, decision: "approve", nonce: fresh.nonce, response: authA.assert(fresh.challenge) };
    const ok = await tab.api("/console/api/approve/verify", body);
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual(ok.json(), { state: "pending", needed: 1, approvals: ["alice"] });
    const replay = await tab.api("/console/api/approve/verify", body);
    assert.equal(replay.statusCode, 409);
    assert.equal(replay.json().code, "NONCE_INVALID");
    const votes = await store.governance.listVotes(a.id);
    assert.deepEqual(
      votes.map((v) => [v.officerId, v.decision, v.credentialKind, v.credentialId, v.digest]),
      [["alice", "approve", "passkey", authA.credentialId, a.digest]],
    );
    const evidence = JSON.parse(Buffer.from(votes[0]!.signature, "base64").toString("utf8")) as Record<string, string>;
    assert.equal(evidence.nonce, fresh.nonce);

    // An Ed25519 vote by another officer completes the 2-of-3 quorum.
    assert.equal((await vote(bob, a.id)).record.state, "executed");
    await audit.flush();
    const approvals = (await store.audit.readAudit(0, 100_000))
      .map((e) => JSON.parse(e.body) as AuditRow)
      .filter((e) => e.kind === "proposal.approve" && e.details?.proposal === a.id);
    assert.deepEqual(
      approvals.map((e) => [e.actor, e.outcome, e.details?.credential ?? null, e.reason ?? null]),
      [
        ["alice", "ok", "passkey", null],
        ["alice", "denied", null, "NONCE_INVALID"],
        ["bob", "ok", "ed25519", null],
      ],
    );
  });

  it("refuses an assertion whose signature counter did not advance, or without user verification", async () => {
    const p = (await gov.propose(carol.caller, { kind: "set_threshold", threshold: 1 })).record;
    const tab = new Tab(app);
    assert.equal((await tab.login(authA)).statusCode, 200);
    const o1 = await tab.approvalOptions(p.id);
    const stale = await tab.api("/console/api/approve/verify", {
      proposalId: p.id,
      decision: "approve",
      nonce: o1.nonce,
      response: authA.assert(o1.challenge, { counter: 1 }),
    });
    assert.equal(stale.statusCode, 403);
    assert.equal(stale.json().code, "BAD_SIGNATURE");
    const o2 = await tab.approvalOptions(p.id);
    const noUv = await tab.api("/console/api/approve/verify", {
      proposalId: p.id,
      decision: "approve",
      nonce: o2.nonce,
      response: authA.assert(o2.challenge, { userVerified: false }),
    });
    assert.equal(noUv.statusCode, 403);
    assert.deepEqual(await store.governance.listVotes(p.id), []);
  });

  it("ends a session at its expiry: pages go to the login page, API calls answer 401 SESSION_EXPIRED", async () => {
    const tab = new Tab(app);
    assert.equal((await tab.login(authA)).statusCode, 200);
    assert.equal((await tab.get("/console")).statusCode, 200);
    clock += 15 * 60_000 - 1;
    assert.equal((await tab.get("/console/keys")).statusCode, 200, "still valid just before its end");
    clock += 1;
    const page = await tab.get("/console");
    assert.equal(page.statusCode, 303);
    assert.equal(page.headers.location, "/console/login?expired=1");
    assert.equal(tab.cookies.has("__Host-custos-session"), false, "the expired cookie is cleared");
    tab.cookies.set("__Host-custos-session", "forged-or-old");
    const api = await tab.api("/console/api/approve/options", { proposalId: "x", decision: "approve" });
    assert.equal(api.statusCode, 401);
    assert.equal(api.json().code, "SESSION_EXPIRED");
  });

  it("keeps sessions in the store by their id's hash: one outlives a restart, and logging out ends it for every instance", async () => {
    const tab = new Tab(app);
    assert.equal((await tab.login(authA)).statusCode, 200);
    const id = tab.cookies.get("__Host-custos-session")!;
    const rows = (store as unknown as { db: { prepare(sql: string): { all(): unknown[] } } }).db.prepare("SELECT * FROM console_sessions").all();
    assert.ok(rows.length >= 1);
    assert.ok(!JSON.stringify(rows).includes(id), "the database never holds a session id");
    assert.equal((await store.console.getConsoleSession(createHash("sha256").update(id).digest("hex")))?.officerId, "alice");

    // A restart (or another replica on the same database) accepts the same cookie.
    const restarted = buildConsole(deps);
    try {
      const same = new Tab(restarted);
      same.cookies = new Map(tab.cookies);
      const keys = await same.get("/console/keys");
      assert.equal(keys.statusCode, 200);
      assert.match(keys.body, /alice/);
      assert.equal((await same.form("/console/logout", {})).statusCode, 303);
    } finally {
      await restarted.close();
    }
    const after = await tab.get("/console/keys");
    assert.equal(after.statusCode, 303, "logged out everywhere");
    assert.equal(after.headers.location, "/console/login?expired=1");
  });

  it("a login begun on one instance finishes on another (challenges are in the store), and its challenge works once", async () => {
    const replica = buildConsole({ ...deps, passkeys: new Passkeys(store, { rpId: RP, rpName: "custos", origins: [ORIGIN], now }) });
    try {
      const first = new Tab(app);
      await first.get("/console/login");
      const options = (await first.api("/console/api/login/options", {})).json() as { challenge: string };
      const assertion = authA.assert(options.challenge);
      const second = new Tab(replica);
      second.cookies = new Map(first.cookies);
      second.csrf = first.csrf;
      const done = await second.api("/console/api/login/verify", { response: assertion });
      assert.equal(done.statusCode, 200, done.body);
      const again = await first.api("/console/api/login/verify", { response: authA.assert(options.challenge) });
      assert.equal(again.statusCode, 409);
      assert.equal(again.json().code, "NONCE_INVALID");
    } finally {
      await replica.close();
    }
  });

  it("a login challenge is redeemed only by the browser it was issued to", async () => {
    const first = new Tab(app);
    await first.get("/console/login");
    const options = (await first.api("/console/api/login/options", {})).json() as { challenge: string };
    const other = new Tab(app);
    await other.get("/console/login"); // its own pre-login cookie
    const stolen = await other.api("/console/api/login/verify", { response: authA.assert(options.challenge) });
    assert.equal(stolen.statusCode, 409);
    assert.equal(stolen.json().code, "NONCE_INVALID");
  });

  it("shows each client's last call from the signer, newer than anything in the recent audit", async () => {
    const bot = "spiffe://custos/engine/last-seen-bot";
    await store.clients.setClientAccess(
      { identity: bot, name: "last-seen-bot", role: "trader", cidrs: ["10.0.0.0/8"], createdAt: new Date(clock).toISOString() },
      [],
    );
    await gov.load();
    const seen = new Date(Date.UTC(2026, 10, 24, 12, 34, 56));
    const withSigner = buildConsole({ ...deps, clientLastSeen: (identity) => (identity === bot ? seen : undefined) });
    try {
      const tab = new Tab(withSigner);
      assert.equal((await tab.login(authA)).statusCode, 200);
      const page = await tab.get("/console/clients");
      assert.equal(page.statusCode, 200);
      const row = page.body.slice(page.body.indexOf("last-seen-bot"));
      assert.match(row.slice(0, row.indexOf("</tr>")), /2026-11-24 12:34:56Z/);
    } finally {
      await withSigner.close();
    }
  });

  it("answers the error table's HTTP status for store and HSM outages (503) and a frozen key (409), never their detail", async () => {
    const cases: Array<[CustosError, number]> = [
      [new CustosError("STORE_ERROR", "SQLITE_IOERR at /var/lib/custos/custos.db"), 503],
      [new CustosError("HSM_UNAVAILABLE", "C_OpenSession: CKR_TOKEN_NOT_PRESENT"), 503],
      [new CustosError("KEY_FROZEN", "key is frozen"), 409],
    ];
    for (const [error, expected] of cases) {
      const failing = buildConsole({ ...deps, recentAudit: () => Promise.reject(error) });
      try {
        const tab = new Tab(failing);
        assert.equal((await tab.login(authA)).statusCode, 200);
        const page = await tab.get("/console/clients");
        assert.equal(page.statusCode, expected, error.code);
        assert.ok(page.body.includes(error.code), error.code);
        assert.ok(!page.body.includes("SQLITE_IOERR") && !page.body.includes("CKR_"), "no internal detail on the page");
      } finally {
        await failing.close();
      }
    }
  });

  it("opens an enrollment session from a signed one-time token; it can only register a passkey", async () => {
    const tab = new Tab(app);
    await tab.get("/console/enroll");
    const token = createEnrollmentToken(bob.key, "bob", new Date(clock));
    const forged = createEnrollmentToken(carol.key, "bob", new Date(clock));
    assert.equal((await tab.form("/console/enroll", { token: forged })).statusCode, 401, "signed with another officer's key");
    const res = await tab.form("/console/enroll", { token });
    assert.equal(res.statusCode, 303);
    assert.equal(res.headers.location, "/console/register");
    assert.equal((await tab.get("/console/register")).statusCode, 200);
    assert.equal((await tab.get("/console/keys")).headers.location, "/console/register");
    const vote = await tab.api("/console/api/approve/options", { proposalId: "x", decision: "approve" });
    assert.equal(vote.statusCode, 403);
    assert.equal(vote.json().code, "ROLE_NOT_ALLOWED");
    const options = await tab.api("/console/api/register/options", {});
    assert.equal(options.statusCode, 200);
    assert.equal((options.json() as { user: { name: string } }).user.name, "bob");

    const again = new Tab(app);
    await again.get("/console/enroll");
    assert.equal((await again.form("/console/enroll", { token })).statusCode, 409, "a token is used once");
    // Spent in the store: a restarted service (a new verifier on the same database) refuses it too.
    const officers = (id: string) => gov.activeOfficer(id);
    await assert.rejects(
      new EnrollmentVerifier(store.console, now).verify(token, officers),
      (e: unknown) => e instanceof CustosError && e.code === "NONCE_INVALID",
    );
    // A fresh token of the same officer is another nonce.
    assert.equal((await new EnrollmentVerifier(store.console, now).verify(createEnrollmentToken(bob.key, "bob", new Date(clock)), officers)).id, "bob");
    clock += ENROLLMENT_TTL_MS + 1;
    const late = new Tab(app);
    await late.get("/console/enroll");
    assert.equal(
      (await late.form("/console/enroll", { token: createEnrollmentToken(bob.key, "bob", new Date(clock - ENROLLMENT_TTL_MS - 1)) })).statusCode,
      401,
      "expired",
    );
  });

  it("shows what a proposal changes and its digest, never the wrapped envelope; freezes at once", async () => {
    const envelope = buildEnvelope(Buffer.alloc(32, 7), hsm.wrappingKey());
    const p = (
      await gov.propose(carol.caller, {
        kind: "import_key",
        key: { keyId: "k1", exchange: "raw", environment: "testnet", label: "k1", apiKeyId: "api-k1", algorithm: "hmac-sha256", maxAgeDays: 45 },
        envelope,
      })
    ).record;
    const tab = new Tab(app);
    assert.equal((await tab.login(authA)).statusCode, 200);
    const page = await tab.get("/console");
    assert.equal(page.statusCode, 200);
    assert.ok(page.body.includes(p.digest));
    assert.match(page.body, /import key k1 .*versions: none → v1 active/s);
    for (const secretish of [envelope.wrappedKey.toString("base64"), envelope.encryptedAesKey.toString("base64"), envelope.wrappedKey.toString("hex")]) {
      assert.ok(!page.body.includes(secretish), "no ciphertext in the page");
    }
    await vote(bob, p.id);
    assert.equal((await vote(alice, p.id)).record.state, "executed");
    const keys = await tab.get("/console/keys");
    assert.match(keys.body, /id="key-k1" data-active-version="1"/);
    const frozen = await tab.form("/console/freeze", { target: "key", id: "k1", reason: "suspicious fills" });
    assert.equal(frozen.statusCode, 303);
    assert.ok((await store.keys.getKey("k1"))?.frozenAt, "frozen at once, by one officer");
    assert.match((await tab.get("/console/keys")).body, /frozen<\/span> suspicious fills \(console\)/);
    const thaw = await tab.form("/console/thaw", { target: "key", id: "k1" });
    assert.equal(thaw.statusCode, 303);
    assert.ok((await store.keys.getKey("k1"))?.frozenAt, "a thaw is a proposal");
    const audit = await tab.get("/console/audit?kind=freeze");
    assert.match(audit.body, /id="chain"/);
    assert.match(audit.body, /<tr data-kind="freeze" data-seq="\d+">/);
    assert.doesNotMatch(audit.body, /data-kind="proposal/);
    assert.doesNotMatch(logText, new RegExp(envelope.wrappedKey.toString("base64").slice(0, 16).replace(/[+/]/g, ".")));
  });

  it("flags raw-only keys on the keys page: raw, and names stored before names were checked; not dialect keys", async () => {
    const at = new Date(clock).toISOString();
    for (const [id, exchange] of [
      ["k-page-bn", "binance"],
      ["k-page-raw", "raw"],
      ["k-page-legacy", "custom"],
    ] as const) {
      await store.keys.createKey(
        { id, exchange, environment: "testnet", label: id, apiKeyId: "x", algorithm: "hmac-sha256", maxAgeDays: 45, createdAt: at },
        { keyId: id, version: 1, objectId: `custos:${id}:v1`, state: "active", createdAt: at, activatedAt: at },
      );
    }
    const tab = new Tab(app);
    assert.equal((await tab.login(authA)).statusCode, 200);
    const page = (await tab.get("/console/keys")).body;
    const row = (id: string) => new RegExp(`<tr id="key-${id}"[^>]*>[\\s\\S]*?</tr>`).exec(page)?.[0] ?? "";
    const flagged = (id: string) => ({ attribute: /data-raw-only="true"/.test(row(id)), badge: /class="bad raw-only"/.test(row(id)) });
    assert.deepEqual(flagged("k-page-bn"), { attribute: false, badge: false });
    assert.deepEqual(flagged("k-page-raw"), { attribute: true, badge: true });
    assert.deepEqual(flagged("k-page-legacy"), { attribute: true, badge: true });
  });

  it("shows what custos last read from the exchange about each key, an unsafe verdict flagged", async () => {
    const verdicts: Record<string, string> = { "k-page-bn": "unsafe: withdrawals,no-ip-restriction", "k-page-raw": "safe" };
    gov.reportExchangePermissions((id) => verdicts[id] ?? "");
    try {
      const tab = new Tab(app);
      assert.equal((await tab.login(authA)).statusCode, 200);
      const page = (await tab.get("/console/keys")).body;
      const row = (id: string) => new RegExp(`<tr id="key-${id}"[^>]*>[\\s\\S]*?</tr>`).exec(page)?.[0] ?? "";
      const badge = (id: string) => /<span class="([a-z]+) exchange-permissions">exchange-side: ([^<]*)<\/span>/.exec(row(id))?.slice(1);
      assert.deepEqual(badge("k-page-bn"), ["bad", "unsafe: withdrawals,no-ip-restriction"]);
      assert.deepEqual(badge("k-page-raw"), ["muted", "safe"]);
      assert.equal(badge("k-page-legacy"), undefined);
    } finally {
      gov.reportExchangePermissions(() => "");
    }
  });

  it("pages the audit log by event number and refuses a page size or cursor it does not offer", async () => {
    const tab = new Tab(app);
    assert.equal((await tab.login(authA)).statusCode, 200);
    for (const bad of ["size=7", "size=abc", "before=-1", "after=1e3"]) {
      const res = await tab.get(`/console/audit?${bad}`);
      assert.equal(res.statusCode, 400, bad);
      assert.match(res.body, /<code>INVALID_ARGUMENT<\/code>/, bad);
    }
    const head = await tab.get("/console/audit?size=25");
    const seqs = [...head.body.matchAll(/data-seq="(\d+)"/g)].map((m) => Number(m[1]));
    assert.equal(seqs.length, Math.min(25, await deps.lastAuditSeq()));
    assert.deepEqual(
      seqs,
      [...seqs].sort((a, b) => b - a),
      "newest first",
    );
  });

  it("lists the officer's own passkeys awaiting the quorum on the registration page", async () => {
    const authC = new SoftAuthenticator(RP, ORIGIN);
    const p = await gov.propose(carol.caller, { kind: "add_credential", officerId: "carol", passkey: authC.spec("carol's key") });
    const tab = new Tab(app);
    await tab.get("/console/enroll");
    assert.equal((await tab.form("/console/enroll", { token: createEnrollmentToken(carol.key, "carol", new Date(clock)) })).statusCode, 303);
    const page = await tab.get("/console/register");
    assert.match(page.body, /data-registered="0" data-pending="1"/);
    assert.ok(page.body.includes(`proposal <code>${p.record.id}</code>`));
  });

  it("revokes a passkey only through a remove_credential proposal approved by the quorum", async () => {
    const tab = new Tab(app);
    assert.equal((await tab.login(authA)).statusCode, 200);
    const officers = await tab.get("/console/officers");
    assert.equal(officers.statusCode, 200);
    assert.ok(officers.body.includes(`data-credential="${authA.credentialId}"`));
    const proposed = await tab.form("/console/passkeys/remove", { officer: "alice", credential: authA.credentialId });
    assert.equal(proposed.statusCode, 303);
    const p = (await store.governance.listProposals("pending")).find((x) => x.kind === "remove_credential")!;
    assert.equal(p.target, "alice");
    assert.ok(await store.governance.getPasskey(authA.credentialId), "a proposal removes nothing");
    await vote(bob, p.id);
    assert.equal((await vote(carol, p.id)).record.state, "executed");
    assert.equal(await store.governance.getPasskey(authA.credentialId), undefined);
    assert.equal((await new Tab(app).login(authA)).statusCode, 401, "a removed passkey cannot log in");
  });
});
