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
header { background: #1d2330; color: #fff; padding: .6rem 1.2rem; display: flex; gap: 1.2rem; align-items: center; flex-wrap: wrap; }
header a { color: #fff; text-decoration: none; }
header .who { margin-left: auto; color: #cfd5e2; }
header form { display: inline; }
main { padding: 1rem 1.2rem; max-width: 1200px; }
h1 { font-size: 1.3rem; }
table { border-collapse: collapse; width: 100%; background: #fff; margin-bottom: 1rem; }
th, td { border: 1px solid var(--line); padding: .35rem .5rem; text-align: left; vertical-align: top; }
th { background: #eef0f5; }
code, .digest { font-family: ui-monospace, monospace; font-size: .85rem; word-break: break-all; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .8rem 1rem; margin-bottom: 1rem; }
.card h2 { font-size: 1.05rem; margin: 0 0 .4rem; }
.diff li { margin: .15rem 0; }
.muted { color: var(--muted); }
.frozen, .bad { color: var(--warn); font-weight: 600; }
.good { color: var(--ok); font-weight: 600; }
button { font: inherit; padding: .3rem .8rem; border-radius: 4px; border: 1px solid #8a93a6; background: #fff; cursor: pointer; }
button.primary { background: #1d4ed8; color: #fff; border-color: #1d4ed8; }
button.danger { background: #b42318; color: #fff; border-color: #b42318; }
input[type=text], textarea { font: inherit; padding: .3rem; border: 1px solid #8a93a6; border-radius: 4px; }
textarea { width: 100%; min-height: 5rem; }
#status { min-height: 1.5rem; font-weight: 600; }
.notice { background: #e8f3ec; border: 1px solid #b6dcc3; padding: .5rem .8rem; border-radius: 4px; }
.error { background: #fdecea; border: 1px solid #f3b8b0; padding: .5rem .8rem; border-radius: 4px; }
form.inline { display: inline-flex; gap: .3rem; align-items: center; }
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
  on("register", async () => {
    const label = document.getElementById("label");
    say("Creating a passkey…");
    const options = await post("/console/api/register/options", {});
    const response = await wa.startRegistration({ optionsJSON: options });
    const r = await post("/console/api/register/verify", { response, label: label ? label.value : "" });
    say("Proposal " + r.proposalId + " filed (add_credential, digest " + r.digest + "): " + r.state + ", " + r.needed + " more approval(s) needed. The passkey works once the quorum approves it. Tell the approvers its credential id: " + r.credentialId);
    const out = document.getElementById("proposal-id");
    if (out) out.textContent = r.proposalId;
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
