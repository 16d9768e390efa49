import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

/**
 * The console's static assets, all served by custos itself (the CSP allows nothing else):
 * the stylesheet, the page script, and `@simplewebauthn/browser`'s UMD bundle read from
 * node_modules (it defines `window.SimpleWebAuthnBrowser`).
 */
export interface ConsoleAsset {
  body: string;
  contentType: string;
}

/** Reads the browser bundle of @simplewebauthn/browser from its installed package. */
function webauthnBundle(): string {
  const require = createRequire(import.meta.url);
  // The package's exports map hides dist/; resolve its entry point and walk up to the package root.
  let dir = dirname(require.resolve("@simplewebauthn/browser"));
  for (let i = 0; i < 4; i++) {
    try {
      return readFileSync(join(dir, "dist/bundle/index.umd.min.js"), "utf8");
    } catch {
      dir = dirname(dir);
    }
  }
  throw new Error("cannot find @simplewebauthn/browser's dist/bundle/index.umd.min.js");
}

const CSS = `
:root { color-scheme: light; --ink: #1d2330; --muted: #5c6475; --line: #d8dce5; --warn: #a33a00; --ok: #1f6f3a; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, sans-serif; color: var(--ink); margin: 0; background: #f6f7fa; }
header { background: #1d2330; color: #fff; padding: .6rem 1.2rem; display: flex; gap: .4rem 1.2rem; align-items: center; flex-wrap: wrap; }
header nav { display: flex; flex-wrap: wrap; gap: .2rem 1rem; }
header a { color: #fff; text-decoration: none; white-space: nowrap; }
header .who { margin-left: auto; color: #cfd5e2; }
header form { display: inline; }
.dev-banner { background: #b42318; color: #fff; padding: .55rem 1.2rem; font-weight: 600; border-bottom: 3px solid #7a1610; }
main { padding: 1rem 1.2rem; max-width: 1280px; }
h1 { font-size: 1.3rem; }
table { border-collapse: collapse; width: 100%; background: #fff; margin-bottom: 1rem; }
th, td { border: 1px solid var(--line); padding: .35rem .5rem; text-align: left; vertical-align: top; overflow-wrap: break-word; }
th { background: #eef0f5; white-space: nowrap; }
code { font-family: ui-monospace, monospace; font-size: .85rem; }
.digest { font-family: ui-monospace, monospace; font-size: .85rem; word-break: break-all; }
.nowrap { white-space: nowrap; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .8rem 1rem; margin-bottom: 1rem; }
.card h2 { font-size: 1.05rem; margin: 0 0 .4rem; overflow-wrap: anywhere; }
.diff li { margin: .15rem 0; overflow-wrap: anywhere; }
.muted { color: var(--muted); }
.frozen, .bad { color: var(--warn); font-weight: 600; }
.good { color: var(--ok); font-weight: 600; }
button { font: inherit; padding: .3rem .8rem; border-radius: 4px; border: 1px solid #8a93a6; background: #fff; cursor: pointer; white-space: nowrap; }
button:disabled { opacity: .6; cursor: default; }
button.primary { background: #1d4ed8; color: #fff; border-color: #1d4ed8; }
button.danger { background: #b42318; color: #fff; border-color: #b42318; }
input[type=text], textarea, select { font: inherit; padding: .3rem; border: 1px solid #8a93a6; border-radius: 4px; max-width: 100%; }
textarea { width: 100%; min-height: 5rem; }
#status { min-height: 1.5rem; font-weight: 600; overflow-wrap: anywhere; }
.notice { background: #e8f3ec; border: 1px solid #b6dcc3; padding: .5rem .8rem; border-radius: 4px; }
.error { background: #fdecea; border: 1px solid #f3b8b0; padding: .5rem .8rem; border-radius: 4px; overflow-wrap: anywhere; }
form.inline { display: inline-flex; flex-wrap: wrap; gap: .3rem; align-items: center; }
form.inline input[type=text] { width: 9rem; }
form.filters { display: flex; flex-wrap: wrap; gap: .4rem 1rem; align-items: center; }
.pager { display: flex; flex-wrap: wrap; gap: .3rem 1.2rem; align-items: baseline; margin: .5rem 0; }
/* The audit table: fixed columns, so short values stay narrow and the details get the room. */
table.audit { table-layout: fixed; font-size: .9rem; }
table.audit col.c-seq { width: 3.8rem; }
table.audit col.c-time { width: 11.8rem; }
table.audit col.c-kind { width: 10rem; }
table.audit col.c-actor { width: 8.5rem; }
table.audit col.c-outcome { width: 5.5rem; }
table.audit col.c-key { width: 8rem; }
table.audit td { overflow-wrap: anywhere; }
td.details .kv { display: inline-block; white-space: nowrap; margin-right: .9rem; font-family: ui-monospace, monospace; font-size: .8rem; }
td.details .k { color: var(--muted); }
td.details .cut { text-decoration: underline dotted; cursor: help; }
/* Narrow screens: every table row becomes a card of labelled fields, the label beside its value. */
@media (max-width: 760px) {
  main { padding: .8rem; }
  header { padding: .6rem .8rem; }
  table.cards, table.cards tbody, table.cards tr, table.cards td { display: block; width: auto; }
  table.cards thead, table.cards colgroup { display: none; }
  table.cards { background: transparent; }
  table.cards tr { background: #fff; border: 1px solid var(--line); border-radius: 6px; margin-bottom: .6rem; padding: .2rem 0; }
  table.cards td { border: 0; position: relative; padding: .15rem .5rem .15rem 6.8rem; min-height: 1.6rem; overflow-wrap: anywhere; }
  table.cards td[data-label]::before { content: attr(data-label); position: absolute; left: .5rem; top: .2rem; width: 6rem; font-size: .75rem; color: var(--muted); }
  table.cards td:empty { display: none; }
  td.details .kv { white-space: normal; display: block; }
}
`;

/**
 * The page script: runs the WebAuthn ceremonies with SimpleWebAuthnBrowser and posts the
 * results as JSON with the page's CSRF token. No inline script anywhere (CSP: script-src 'self').
 */
const SCRIPT = `
"use strict";
(function () {
  const wa = window.SimpleWebAuthnBrowser;
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.getAttribute("content") : "";
  const status = document.getElementById("status");
  const say = (text, bad) => { if (status) { status.textContent = text; status.className = bad ? "bad" : "good"; } };
  async function post(url, body) {
    const res = await fetch(url, { method: "POST", credentials: "same-origin", headers: { "content-type": "application/json", "x-csrf-token": csrf }, body: JSON.stringify(body) });
    const json = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error((json.code ? json.code + ": " : "") + (json.message || res.statusText));
    return json;
  }
  function on(id, fn) {
    const el = document.getElementById(id);
    if (el) el.addEventListener("click", () => fn(el).catch((e) => say(e.message || String(e), true)));
  }
  on("login", async () => {
    say("Waiting for your passkey…");
    const options = await post("/console/api/login/options", {});
    const response = await wa.startAuthentication({ optionsJSON: options });
    const r = await post("/console/api/login/verify", { response });
    window.location.assign(r.redirect);
  });
  on("register", async (button) => {
    const label = document.getElementById("label");
    say("Creating a passkey…");
    const options = await post("/console/api/register/options", {});
    const response = await wa.startRegistration({ optionsJSON: options });
    const r = await post("/console/api/register/verify", { response, label: label ? label.value : "" });
    say("Proposal " + r.proposalId + " filed (add_credential, digest " + r.digest + "): " + r.state + ", " + r.needed + " more approval(s) needed. The passkey works once the quorum approves it. Tell the approvers its credential id: " + r.credentialId);
    const out = document.getElementById("proposal-id");
    if (out) out.textContent = r.proposalId;
    // The server's count after the proposal, so the page never shows a stale "0 registered".
    const state = document.getElementById("passkey-state");
    if (state && r.passkeys) {
      state.setAttribute("data-registered", String(r.passkeys.registered));
      state.setAttribute("data-pending", String(r.passkeys.pending.length));
      document.getElementById("passkey-count").textContent = String(r.passkeys.registered);
      document.getElementById("passkey-pending").textContent = String(r.passkeys.pending.length);
    }
    // One passkey per click: another one needs a reload of the page, on purpose.
    button.disabled = true;
    button.textContent = "Passkey created";
  });
  for (const button of document.querySelectorAll("button.vote")) {
    button.addEventListener("click", async () => {
      const proposalId = button.getAttribute("data-proposal");
      const decision = button.getAttribute("data-decision");
      try {
        say("Sign " + decision + " of " + button.getAttribute("data-digest") + " with your passkey…");
        const o = await post("/console/api/approve/options", { proposalId, decision });
        const response = await wa.startAuthentication({ optionsJSON: o.options });
        const r = await post("/console/api/approve/verify", { proposalId, decision, nonce: o.nonce, response });
        say("Recorded: proposal " + proposalId + " is " + r.state + (r.state === "pending" ? " (" + r.needed + " more approval(s) needed)" : ""));
        const row = document.getElementById("p-" + proposalId);
        if (row) row.setAttribute("data-state", r.state);
      } catch (e) {
        say(e.message || String(e), true);
      }
    });
  }
})();
`;

let cache: Map<string, ConsoleAsset> | undefined;

/** Assets by file name under /console/assets/. */
export function consoleAssets(): Map<string, ConsoleAsset> {
  cache ??= new Map([
    ["console.css", { body: CSS, contentType: "text/css; charset=utf-8" }],
    ["console.js", { body: SCRIPT, contentType: "text/javascript; charset=utf-8" }],
    ["webauthn.js", { body: webauthnBundle(), contentType: "text/javascript; charset=utf-8" }],
  ]);
  return cache;
}
