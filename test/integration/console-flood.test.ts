import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import type { AuditRecord } from "../../src/audit/audit-log.js";
import { castVote, loadOfficerKey, propose } from "../../src/client/officer.js";
import { createEnrollmentToken } from "../../src/governance/enrollment.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { startInProcess, type InProcessService } from "../helpers/harness.js";
import { SoftAuthenticator } from "../helpers/soft-authenticator.js";

/**
 * One source floods the console's anonymous endpoints — login challenges first, as many as
 * the old shared pool held, then bogus assertions and garbage enrollment tokens — while an
 * officer from another source enrolls, registers a passkey, logs in and approves. Real HTTPS
 * on loopback: the console listens on 127.0.0.1, and each side binds its own source address
 * (127.0.0.2, 127.0.0.3; Linux routes all of 127/8 to lo), so the server sees two peers
 * without a proxy or trustProxy.
 */

const FLOOD_SOURCE = "127.0.0.2";
const OFFICER_SOURCE = "127.0.0.3";
/** The old shared challenge pool held 10,000: the flood asks for more login challenges than that. */
const FLOOD_OPTIONS = 10_100;
const FLOOD_MAX = 14_000;
const FLOOD_MS = 90_000;

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A browser from one source address: cookies, the page's CSRF token, keep-alive HTTPS. */
class Browser {
  readonly cookies = new Map<string, string>();
  csrf = "";
  private readonly agent: Agent;

  constructor(
    private readonly base: URL,
    ca: Buffer,
    localAddress: string,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets: 16, ca, localAddress, servername: "localhost" });
  }

  close(): void {
    this.agent.destroy();
  }

  send(method: "GET" | "POST", path: string, body?: { json?: unknown; form?: Record<string, string> }): Promise<Reply> {
    const payload = body?.json !== undefined ? JSON.stringify(body.json) : body?.form ? new URLSearchParams(body.form).toString() : undefined;
    const headers: Record<string, string> = { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; "), host: this.base.host };
    if (method === "POST") {
      headers.origin = this.base.origin;
      headers["content-type"] = body?.json !== undefined ? "application/json" : "application/x-www-form-urlencoded";
      headers["x-csrf-token"] = this.csrf;
    }
    return new Promise((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port: this.base.port, path, method, headers, agent: this.agent }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () => {
          for (const c of ([] as string[]).concat(res.headers["set-cookie"] ?? [])) {
            const [pair = ""] = c.split(";");
            const i = pair.indexOf("=");
            const [name, value] = [pair.slice(0, i), pair.slice(i + 1)];
            if (/Max-Age=0\b/.test(c)) this.cookies.delete(name);
            else this.cookies.set(name, value);
          }
          const meta = /<meta name="csrf-token" content="([^"]*)">/.exec(text);
          if (meta?.[1]) this.csrf = meta[1];
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text });
        });
      });
      req.on("error", reject);
      req.end(payload);
    });
  }

  json<T>(r: Reply, status = 200): T {
    assert.equal(r.status, status, r.body);
    return JSON.parse(r.body) as T;
  }
}

describe("console under an anonymous flood from another source", () => {
  let svc: InProcessService;
  before(async () => {
    svc = await startInProcess();
  });
  after(async () => {
    await svc?.stop();
  });

  it("the officer enrolls, registers, logs in and approves; the flood is limited, capped and audited in aggregate", { timeout: 180_000 }, async () => {
    const base = new URL(svc.conn.console!);
    const ca = readFileSync(svc.conn.caPath);
    const attacker = new Browser(base, ca, FLOOD_SOURCE);
    const officer = new Browser(base, ca, OFFICER_SOURCE);
    // A self-made pre-login CSRF cookie and header pair, as an outsider would send.
    attacker.cookies.set("__Host-custos-csrf", "A".repeat(43));
    attacker.csrf = "A".repeat(43);

    const statuses = new Map<number, number>();
    let sent = 0;
    let officerDone = false;
    const deadline = Date.now() + FLOOD_MS;
    const garbageAssertion = {
      id: "AAAA",
      rawId: "AAAA",
      type: "public-key",
      response: { clientDataJSON: "e30", authenticatorData: "AA", signature: "AA" },
      clientExtensionResults: {},
    };
    const flooder = async () => {
      while (sent < FLOOD_MAX && Date.now() < deadline && !(officerDone && sent >= FLOOD_OPTIONS)) {
        const n = sent++;
        const r =
          n < FLOOD_OPTIONS
            ? await attacker.send("POST", "/console/api/login/options", { json: {} })
            : n % 2
              ? await attacker.send("POST", "/console/api/login/verify", { json: { response: garbageAssertion } })
              : await attacker.send("POST", "/console/enroll", { form: { token: `garbage.${n}`, _csrf: attacker.csrf } });
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      }
    };
    const flood = Promise.all(Array.from({ length: 16 }, flooder));

    // The officer starts once the flood has asked for more login challenges than the old shared pool held.
    while (sent < FLOOD_OPTIONS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(sent >= FLOOD_OPTIONS, `the flood sent ${sent} requests`);

    const o = svc.conn.officer!;
    const devKey = loadOfficerKey(o.officerKeyPath, readFileSync(o.passphraseFile, "utf8").trim());
    const auth = new SoftAuthenticator("localhost", base.origin);
    try {
      // Enroll with a one-time token and register a passkey: an add_credential proposal.
      assert.equal((await officer.send("GET", "/console/enroll")).status, 200);
      const enrolled = await officer.send("POST", "/console/enroll", { form: { token: createEnrollmentToken(devKey, o.id), _csrf: officer.csrf } });
      assert.equal(enrolled.status, 303, enrolled.body);
      assert.equal((await officer.send("GET", "/console/register")).status, 200);
      const regOptions = officer.json<{ challenge: string }>(await officer.send("POST", "/console/api/register/options", { json: {} }));
      const registered = officer.json<{ proposalId: string; state: string }>(
        await officer.send("POST", "/console/api/register/verify", { json: { response: auth.attest(regOptions.challenge), label: "flood test key" } }),
      );
      assert.equal((await castVote(svc.custody, registered.proposalId, "approve", devKey)).state, "executed");

      // Log in with the passkey.
      assert.equal((await officer.send("GET", "/console/login")).status, 200);
      const loginOptions = officer.json<{ challenge: string }>(await officer.send("POST", "/console/api/login/options", { json: {} }));
      officer.json(await officer.send("POST", "/console/api/login/verify", { json: { response: auth.assert(loginOptions.challenge) } }));

      // Approve a pending proposal with the passkey.
      const pending = await propose(svc.custody, {
        kind: {
          $case: "setGrants",
          setGrants: { identity: "spiffe://custos/engine/flood-test", name: "flood-test", cidrs: ["10.0.0.0/8"], keyIds: [], canFreeze: false },
        },
        ttlSeconds: 0,
      });
      assert.equal((await officer.send("GET", "/console")).status, 200);
      const approval = officer.json<{ nonce: string; options: { challenge: string } }>(
        await officer.send("POST", "/console/api/approve/options", { json: { proposalId: pending.id, decision: "approve" } }),
      );
      const voted = officer.json<{ state: string }>(
        await officer.send("POST", "/console/api/approve/verify", {
          json: { proposalId: pending.id, decision: "approve", nonce: approval.nonce, response: auth.assert(approval.options.challenge) },
        }),
      );
      assert.equal(voted.state, "executed");
    } finally {
      officerDone = true;
      await flood;
      attacker.close();
      officer.close();
    }

    // The flood was bounded and mostly refused at the door; nothing failed inside.
    assert.ok(sent <= FLOOD_MAX, `${sent} requests`);
    assert.ok((statuses.get(429) ?? 0) > FLOOD_OPTIONS - 100, JSON.stringify([...statuses]));
    assert.deepEqual(
      [...statuses.keys()].filter((s) => s >= 500),
      [],
    );

    // The flood's source holds at most 20 outstanding login challenges.
    const db = new Database(svc.config.store.sqlitePath, { readonly: true });
    try {
      const { n } = db.prepare("SELECT COUNT(*) AS n FROM webauthn_challenges WHERE challenge LIKE 'login:%'").get() as { n: number };
      assert.ok(n <= 20, `${n} outstanding login challenges`);
    } finally {
      db.close();
    }

    // Failures are audited as counts per source (written at the latest when the console closes).
    await svc.service.stop();
    const store = new SqliteStore(svc.config.store.sqlitePath, { readonly: true });
    let events: AuditRecord[];
    try {
      events = (await store.audit.readAudit(0, 1_000_000)).map((e) => JSON.parse(e.body) as AuditRecord);
    } finally {
      await store.close();
    }
    const fromFlood = events.filter((e) => e.peer === FLOOD_SOURCE);
    assert.deepEqual(
      fromFlood.filter((e) => e.kind !== "console.anonymous_failures"),
      [],
      "no audit row per anonymous failure",
    );
    assert.ok(fromFlood.length >= 1 && fromFlood.length <= 4, `${fromFlood.length} aggregated events`);
    const counted = fromFlood.reduce((sum, e) => sum + Number(e.details?.total ?? 0), 0);
    const refused = (statuses.get(401) ?? 0) + (statuses.get(409) ?? 0) + (statuses.get(429) ?? 0);
    assert.equal(counted, refused, JSON.stringify(fromFlood.map((e) => e.details)));
    assert.ok(
      events.some((e) => e.kind === "console.login" && e.outcome === "ok" && e.peer === OFFICER_SOURCE),
      "the officer's login is audited as before",
    );
  });
});
