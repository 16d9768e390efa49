import type { ProposalView } from "../../../governance/governance-service.js";
import type { OfficerRecord } from "../../../governance/model.js";

/**
 * Server-rendered pages. Every interpolated value goes through `esc`; no inline script or
 * style (the CSP forbids both): behaviour comes from /console/assets/console.js.
 */

/** HTML-escapes text for element content and double-quoted attributes. */
export function esc(value: unknown): string {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

/** A trusted HTML fragment (already escaped). */
export interface Html {
  html: string;
}

/** Tagged template: interpolations are escaped unless they are Html fragments (or arrays of them). */
export function h(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => {
    const one = (x: unknown) => (typeof x === "object" && x !== null && "html" in x ? (x as Html).html : esc(x));
    out += (Array.isArray(v) ? v.map(one).join("") : one(v)) + strings[i + 1]!;
  });
  return { html: out };
}

/** What every page needs: its title, the CSRF token for its forms, who is logged in. */
export interface PageContext {
  title: string;
  csrf: string;
  /** The logged-in officer, if any; `enroll` sessions see only the registration page. */
  officer?: OfficerRecord;
  scope?: "officer" | "enroll";
  notice?: string;
  /** The embedded default (dev governance): every page carries a warning banner. */
  dev?: boolean;
}

/** The officer as the header names them: the display name, and the id unless the name already says it. */
export function officerLabel(o: OfficerRecord): string {
  // Exact, case and all: the id is what the CLI takes, so "Alice" does not stand for "alice".
  const words = o.displayName.split(/[^A-Za-z0-9_.-]+/);
  return words.includes(o.id) ? o.displayName : `${o.displayName} (${o.id})`;
}

/** The dev-mode warning, as loud as the terminal's: the embedded default's governance is one local key. */
const DEV_BANNER = h`<div class="dev-banner" id="dev-banner" role="alert"><strong>DEV GOVERNANCE</strong> — embedded default:
  one local officer ("dev", key in this data dir), threshold 1. Every key import, rotation and grant here is approved by that
  one key on this machine. Not for real keys: a configured deployment (custos.json) never does this.</div>`;

/** The whole document around a page body. */
export function layout(ctx: PageContext, body: Html): string {
  const nav =
    ctx.officer && ctx.scope === "officer"
      ? h`<a href="/console">Proposals</a><a href="/console/keys">Keys</a><a href="/console/clients">Clients</a><a href="/console/audit">Audit</a><a href="/console/officers">Officers</a><a href="/console/register">Add passkey</a>`
      : h``;
  const who = ctx.officer
    ? h`<span class="who">${officerLabel(ctx.officer)}${ctx.scope === "enroll" ? " — enrollment only" : ""}</span>
       <form method="post" action="/console/logout"><input type="hidden" name="_csrf" value="${ctx.csrf}"><button type="submit" id="logout">Log out</button></form>`
    : h``;
  const notice = ctx.notice ? h`<p class="notice" id="notice">${ctx.notice}</p>` : h``;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="${esc(ctx.csrf)}">
<title>${esc(ctx.title)} · custos console</title>
<link rel="stylesheet" href="/console/assets/console.css">
<script src="/console/assets/webauthn.js" defer></script>
<script src="/console/assets/console.js" defer></script>
</head><body>
${ctx.dev ? DEV_BANNER.html : ""}<header><strong>custos</strong><nav>${nav.html}</nav>${who.html}</header>
<main><h1>${esc(ctx.title)}</h1>${notice.html}<p id="status" role="status"></p>
${body.html}
</main></body></html>`;
}

/** Passkey login, and the way to enroll without one. */
export function loginPage(ctx: PageContext): string {
  return layout(
    ctx,
    h`<div class="card"><p>Officers sign in with a passkey registered for them by a quorum-approved <code>add_credential</code> proposal.</p>
      <button id="login" class="primary" type="button">Sign in with a passkey</button></div>
      <div class="card"><h2>No passkey yet?</h2><p>Make a one-time enrollment token with your officer key
      (<code>custos officer enroll-token --officer NAME --officer-key FILE</code>) and <a href="/console/enroll">enroll here</a>.</p></div>`,
  );
}

/** The enrollment-token form (before an officer has a passkey). */
export function enrollPage(ctx: PageContext, error?: string): string {
  return layout(
    ctx,
    h`${error ? h`<p class="error">${error}</p>` : h``}
      <form class="card" method="post" action="/console/enroll">
      <input type="hidden" name="_csrf" value="${ctx.csrf}">
      <p><label for="token">Enrollment token (from <code>custos officer enroll-token</code>; valid 10 minutes, once)</label></p>
      <textarea id="token" name="token" required autocomplete="off" spellcheck="false"></textarea>
      <p><button class="primary" type="submit" id="enroll">Continue</button></p></form>`,
  );
}

/** The officer's passkeys as the registration page shows them: registered, and awaiting the quorum. */
export interface PasskeyState {
  registered: number;
  /** Pending add_credential proposals for this officer. */
  pending: Array<{ id: string; digest: string }>;
}

/** Passkey registration: the result is filed as an add_credential proposal. */
export function registerPage(ctx: PageContext, state: PasskeyState): string {
  const pending = state.pending.length
    ? h`<ul id="pending-passkeys">${state.pending.map((p) => h`<li>proposal <code>${p.id}</code>, digest <span class="digest">${p.digest.slice(0, 16)}…</span></li>`)}</ul>`
    : h``;
  return layout(
    ctx,
    h`<div class="card"><p id="passkey-state" data-registered="${state.registered}" data-pending="${state.pending.length}">You have
      <strong id="passkey-count">${state.registered}</strong> registered passkey(s) and <strong id="passkey-pending">${state.pending.length}</strong>
      awaiting the quorum's approval.</p>${pending}
      <p>Creating one here verifies it and files an <code>add_credential</code> proposal; it can be used once the officers' quorum
      approves that proposal (from the CLI: <code>custos proposal approve ID</code>).</p>
      <p><label for="label">Name for this passkey </label><input type="text" id="label" maxlength="64" value="console passkey"></p>
      <p><button id="register" class="primary" type="button">${state.registered + state.pending.length ? "Create another passkey" : "Create passkey"}</button></p>
      <p>Proposal: <code id="proposal-id"></code></p></div>`,
  );
}

/** A refused request, with its stable error code. */
export function errorPage(ctx: PageContext, code: string, message: string): string {
  return layout({ ...ctx, title: "Refused" }, h`<p class="error"><code>${code}</code>: ${message}</p><p><a href="/console">Back to the console</a></p>`);
}

/** An ISO time as the tables show it: "2026-01-05 10:00:00Z". */
export const short = (iso: string): string => iso.replace("T", " ").replace(/\.\d+Z$/, "Z");

/** One proposal: what changes (before → after), the digest officers sign, votes so far. */
function proposalCard(v: ProposalView, officerId: string): Html {
  const p = v.record;
  const q = v.quorum;
  const open = p.state === "pending";
  const buttons = open
    ? h`<p><button class="vote primary" type="button" data-proposal="${p.id}" data-decision="approve" data-digest="${p.digest}" id="approve-${p.id}">Approve with passkey</button>
       <button class="vote danger" type="button" data-proposal="${p.id}" data-decision="reject" data-digest="${p.digest}" id="reject-${p.id}">Reject</button></p>`
    : h``;
  const mine = p.proposer === officerId ? h` <span class="muted">(yours)</span>` : h``;
  return h`<section class="card proposal" id="p-${p.id}" data-kind="${p.kind}" data-state="${p.state}">
    <h2>${p.kind} <code>${p.target}</code> — ${p.state}</h2>
    <p class="muted">proposal <code>${p.id}</code> by ${p.proposer}${mine}, created ${short(p.createdAt)}, expires ${short(p.expiresAt)}</p>
    <ul class="diff">${v.summary.map((line) => h`<li>${line}</li>`)}</ul>
    <p>digest <span class="digest">${p.digest}</span></p>
    <p>approvals: ${q.approvals.length ? q.approvals.join(", ") : "none"}${q.rejections.length ? h`; rejections: <span class="bad">${q.rejections.join(", ")}</span>` : h``}; ${
      open ? `${q.needed} more needed` : p.state
    }${p.failure ? h` — <span class="bad">${p.failure}</span>` : h``}</p>
    ${buttons}</section>`;
}

/** Pending proposals (with approve/reject buttons) and the most recent decided ones. */
export function proposalsPage(ctx: PageContext, pending: ProposalView[], recent: ProposalView[]): string {
  const officerId = ctx.officer?.id ?? "";
  return layout(
    ctx,
    h`<p class="muted">Approving signs, with your passkey, a challenge derived from the proposal's digest and a one-time server nonce: the approval is bound to exactly the content shown.</p>
      <h2>Pending (${pending.length})</h2>
      ${pending.length ? pending.map((v) => proposalCard(v, officerId)) : h`<p class="muted" id="no-pending">Nothing is waiting for a decision.</p>`}
      <h2>Recent</h2>
      <table id="recent" class="cards"><thead><tr><th>proposal</th><th>kind</th><th>target</th><th>state</th><th>by</th><th>created</th><th>digest</th></tr></thead>
      ${recent.map(
        (v) => h`<tr><td data-label="proposal"><code>${v.record.id}</code></td><td data-label="kind">${v.record.kind}</td>
          <td data-label="target"><code>${v.record.target}</code></td><td data-label="state">${v.record.state}</td><td data-label="by">${v.record.proposer}</td>
          <td data-label="created" class="nowrap">${short(v.record.createdAt)}</td><td data-label="digest" class="digest">${v.record.digest.slice(0, 16)}…</td></tr>`,
      )}
      </table>`,
  );
}
