import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { OfficerRecord } from "../../src/governance/model.js";
import { auditPage } from "../../src/transport/http/console/views-audit.js";
import type { AuditRow } from "../../src/transport/http/console/views-state.js";
import { loginPage, officerLabel, registerPage, type PageContext } from "../../src/transport/http/console/views.js";

/** The console's server-rendered views: what they put on the page, rendered directly. */

const officer = (id: string, displayName: string) => ({ id, displayName, identity: `spiffe://custos/officer/${id}`, status: "active" }) as OfficerRecord;
const ctx = (extra: Partial<PageContext> = {}): PageContext => ({ title: "t", csrf: "c", ...extra });

describe("console views", () => {
  it("names the officer once in the header: the id only when the display name does not already say it", () => {
    assert.equal(officerLabel(officer("dev", "dev officer (embedded default)")), "dev officer (embedded default)");
    assert.equal(officerLabel(officer("alice", "alice")), "alice");
    assert.equal(officerLabel(officer("alice", "Alice Martin")), "Alice Martin (alice)");
    assert.equal(officerLabel(officer("dev", "developer relations")), "developer relations (dev)", "a word that merely starts with the id is not the id");
    const page = registerPage(ctx({ officer: officer("dev", "dev officer (embedded default)"), scope: "enroll" }), { registered: 0, pending: [] });
    assert.match(page, /<span class="who">dev officer \(embedded default\) — enrollment only<\/span>/);
  });

  it("shows the dev-mode banner on every page in dev mode, and only there", () => {
    assert.match(loginPage(ctx({ dev: true })), /<div class="dev-banner" id="dev-banner" role="alert"><strong>DEV GOVERNANCE<\/strong>/);
    assert.doesNotMatch(loginPage(ctx()), /dev-banner/);
    const page = auditPage(ctx({ dev: true }), { rows: [], scanLimited: false }, {}, 50, { state: "verified", events: 0 });
    assert.match(page, /id="dev-banner"/);
  });

  it("shows the passkeys awaiting approval on the registration page", () => {
    const digest = "ab".repeat(32);
    const page = registerPage(ctx(), { registered: 1, pending: [{ id: "p-123", digest }] });
    assert.match(page, /data-registered="1" data-pending="1"/);
    assert.match(page, /<li>proposal <code>p-123<\/code>, digest <span class="digest">abababababababab…<\/span><\/li>/);
    assert.match(page, />Create another passkey</);
  });

  it("cuts long audit details and keeps the full value in the title; short values stay whole", () => {
    const digest = "0123456789abcdef".repeat(4);
    const uuid = "73a3eafc-5832-4c47-bd4a-f675dca38c42";
    const details = { digest, proposal: uuid, n: 3 };
    const row = { seq: 7, at: "2026-01-05T10:00:00.000Z", kind: "proposal.approve", actor: "bob", outcome: "ok", details } as AuditRow;
    const page = auditPage(ctx(), { rows: [row], scanLimited: false }, {}, 50, { state: "verified", events: 7 });
    assert.ok(page.includes(`<span class="kv cut" title="digest=${digest}"><span class="k">digest</span>=${digest.slice(0, 36)}…</span>`));
    assert.ok(page.includes(`<span class="kv"><span class="k">proposal</span>=${uuid}</span>`));
    assert.ok(page.includes(`<span class="kv"><span class="k">n</span>=3</span>`));
    assert.match(page, /<td data-label="time" class="nowrap">2026-01-05 10:00:00Z<\/td>/);
    const denied = { seq: 8, kind: "console.enroll", actor: "unknown", outcome: "denied", reason: "UNAUTHENTICATED" } as AuditRow;
    const refused = auditPage(ctx(), { rows: [denied], scanLimited: false }, {}, 50, { state: "verified", events: 8 });
    assert.match(refused, /<td data-label="outcome" class="outcome bad">denied<\/td>/, "the outcome column holds only the outcome");
    assert.ok(refused.includes(`<td data-label="details" class="details"><span class="kv"><span class="k">reason</span>=UNAUTHENTICATED</span></td>`));
  });

  it("links the neighbouring pages with their cursors, keeping filters and page size", () => {
    const rows = [
      { seq: 60, kind: "sign", actor: "bot", outcome: "ok" },
      { seq: 51, kind: "sign", actor: "bot", outcome: "ok" },
    ] as AuditRow[];
    const page = auditPage(ctx(), { rows, newer: 60, older: 51, scanLimited: false }, { client: "bot", kind: "sign" }, 25, { state: "verified", events: 60 });
    assert.ok(page.includes(`<a class="newer" rel="prev" href="/console/audit?client=bot&amp;kind=sign&amp;size=25&amp;after=60">`));
    assert.ok(page.includes(`<a class="older" rel="next" href="/console/audit?client=bot&amp;kind=sign&amp;size=25&amp;before=51">`));
    assert.ok(page.includes(`<option value="25" selected>25</option>`));
    const last = auditPage(ctx(), { rows, scanLimited: false }, {}, 50, { state: "verified", events: 60 });
    assert.doesNotMatch(last, /class="older"|class="newer"/);
  });
});
