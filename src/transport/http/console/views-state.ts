import { isRawOnly } from "../../../exchanges/registry.js";
import { activeVersion, ageDays, dueAt, type KeyWithVersions } from "../../../keys/model.js";
import type { OfficerRecord, PasskeyRecord } from "../../../governance/model.js";
import type { ClientRecord } from "../../../signing/clients.js";
import { h, layout, short, type Html, type PageContext } from "./views.js";
import type { AuditRecord } from "../../../audit/audit-log.js";
import type { ChainVerification } from "../../../audit/chain-monitor.js";

/** An audit event as stored, as the audit page shows it. */
export type AuditRow = AuditRecord;

/** Audit page filters: exact key, exact client (the event's actor), kind or kind prefix. */
export interface AuditFilter {
  key?: string;
  client?: string;
  kind?: string;
}

/** The audit hash chain's verification, as the audit page reports it. */
export type ChainStatus = ChainVerification;

const day = (d: Date | undefined) => (d ? d.toISOString().slice(0, 10) : "—");

function freezeForm(ctx: PageContext, target: "key" | "client", id: string, frozen: boolean): Html {
  if (frozen) {
    return h`<form class="inline" method="post" action="/console/thaw"><input type="hidden" name="_csrf" value="${ctx.csrf}">
      <input type="hidden" name="target" value="${target}"><input type="hidden" name="id" value="${id}">
      <button type="submit" class="thaw" data-id="${id}">Propose thaw</button></form>`;
  }
  return h`<form class="inline" method="post" action="/console/freeze"><input type="hidden" name="_csrf" value="${ctx.csrf}">
    <input type="hidden" name="target" value="${target}"><input type="hidden" name="id" value="${id}">
    <input type="text" name="reason" placeholder="reason" required maxlength="200">
    <button type="submit" class="danger freeze" data-id="${id}">Freeze now</button></form>`;
}

/** Keys: versions and states, age and due date, frozen state, raw-only and exchange-side flags, and which clients hold grants. */
export function keysPage(
  ctx: PageContext,
  keys: KeyWithVersions[],
  clients: Array<ClientRecord & { grants: string[] }>,
  now: number,
  exchangePermissions: (keyId: string) => string = () => "",
): string {
  const rows = keys.map((k) => {
    const active = activeVersion(k);
    const due = dueAt(k);
    const overdue = due !== undefined && due.getTime() <= now;
    const holders = clients.filter((c) => c.grants.includes(k.id)).map((c) => c.identity);
    // A key no dialect reads signs whatever bytes it is given: officers must see that at a glance.
    const rawOnly = isRawOnly(k.exchange) ? h`<br><span class="bad raw-only">raw-only: no request policy</span>` : h``;
    // What custos last read from the exchange: withdrawals, transfers or no IP restriction stand out.
    const verdict = exchangePermissions(k.id);
    const exchangeSide = verdict
      ? h`<br><span class="${verdict.startsWith("unsafe") ? "bad" : "muted"} exchange-permissions">exchange-side: ${verdict}</span>`
      : h``;
    return h`<tr id="key-${k.id}" data-active-version="${active?.version ?? ""}" data-raw-only="${isRawOnly(k.exchange)}">
      <td data-label="key"><code>${k.id}</code><br><span class="muted">${k.exchange} ${k.environment}, ${k.algorithm}</span>${rawOnly}${exchangeSide}</td>
      <td data-label="versions" class="versions">${k.versions.map(
        (v) =>
          h`<div>v${v.version} <strong>${v.state}</strong>${
            v.retireAt && v.state === "retiring" ? h` until <span class="nowrap">${short(v.retireAt)}</span>` : h``
          }</div>`,
      )}</td>
      <td data-label="age" class="nowrap">${ageDays(k, now) ?? "—"} d</td>
      <td data-label="due" class="nowrap ${overdue ? "bad" : ""}">${day(due)}${overdue ? " OVERDUE" : ""}</td>
      <td data-label="frozen">${k.frozenAt ? h`<span class="frozen">frozen</span> ${k.frozenReason ?? ""}` : "no"}</td>
      <td data-label="grants">${holders.length ? holders.map((x) => h`<div><code>${x}</code></div>`) : h`<span class="muted">none</span>`}</td>
      <td data-label="action">${freezeForm(ctx, "key", k.id, Boolean(k.frozenAt))}</td></tr>`;
  });
  return layout(
    ctx,
    h`<table id="keys" class="cards"><thead><tr><th>key</th><th>versions</th><th>age</th><th>due</th><th>frozen</th><th>grants</th><th></th></tr></thead>${rows}</table>
      <p class="muted">Freezing is immediate and needs one officer; thawing is a proposal for the quorum.</p>`,
  );
}

/** Clients: role, grants, CIDRs, last seen (from the audit log), rate limit and frozen state. */
export function clientsPage(
  ctx: PageContext,
  clients: Array<ClientRecord & { grants: string[] }>,
  lastSeen: Map<string, string>,
  rate: { perSecond: number; burst: number },
): string {
  const rows = clients.map(
    (c) => h`<tr id="client-${c.identity}">
      <td data-label="client"><code>${c.identity}</code><br><span class="muted">${c.name}, ${c.role}${c.canFreeze ? ", may freeze" : ""}</span></td>
      <td data-label="grants">${c.grants.length ? c.grants.map((g) => h`<div><code>${g}</code></div>`) : h`<span class="muted">none</span>`}</td>
      <td data-label="CIDRs">${c.cidrs.map((x) => h`<div class="nowrap">${x}</div>`)}</td>
      <td data-label="last seen" class="nowrap">${lastSeen.has(c.identity) ? short(lastSeen.get(c.identity)!) : "—"}</td>
      <td data-label="rate limit">${rate.perSecond}/s, burst ${rate.burst}</td>
      <td data-label="frozen">${c.frozenAt ? h`<span class="frozen">frozen</span> ${c.frozenReason ?? ""}` : "no"}</td>
      <td data-label="action">${c.role === "trader" ? freezeForm(ctx, "client", c.identity, Boolean(c.frozenAt)) : h``}</td></tr>`,
  );
  return layout(
    ctx,
    h`<table id="clients" class="cards"><thead><tr><th>client</th><th>grants</th><th>CIDRs</th><th>last seen</th><th>rate limit</th><th>frozen</th><th></th></tr></thead>
      ${rows}</table>
      <p class="muted">Last seen: the newest audit event by the client among the most recent events.</p>`,
  );
}

/** Officers, the threshold, and each officer's credentials: the Ed25519 key and the passkeys. */
export function officersPage(ctx: PageContext, threshold: number | undefined, officers: OfficerRecord[], passkeys: PasskeyRecord[]): string {
  const rows = officers.map((o) => {
    const mine = passkeys.filter((k) => k.officerId === o.id);
    return h`<tr id="officer-${o.id}"><td data-label="officer">${o.id}<br><span class="muted">${o.displayName}</span></td><td data-label="status">${o.status}</td>
      <td data-label="certificate identity"><code>${o.identity}</code></td><td data-label="Ed25519 key"><code>${o.fingerprint}</code></td>
      <td data-label="passkeys">${
        mine.length
          ? mine.map(
              (k) => h`<div class="passkey" data-credential="${k.id}">${k.label} <code>${k.id.slice(0, 12)}…</code>
        <span class="muted">added <span class="nowrap">${k.createdAt.slice(0, 10)}</span>, last used <span class="nowrap">${k.lastUsedAt ? short(k.lastUsedAt) : "never"}</span></span>
        <form class="inline" method="post" action="/console/passkeys/remove"><input type="hidden" name="_csrf" value="${ctx.csrf}">
        <input type="hidden" name="officer" value="${o.id}"><input type="hidden" name="credential" value="${k.id}">
        <button type="submit">Propose removal</button></form></div>`,
            )
          : h`<span class="muted">none</span>`
      }</td></tr>`;
  });
  return layout(
    ctx,
    h`<p>Threshold: <strong>${threshold ?? "not initialised"}</strong> of ${officers.filter((o) => o.status === "active").length} active officers.</p>
      <table id="officers" class="cards"><thead><tr><th>officer</th><th>status</th><th>certificate identity</th><th>Ed25519 key</th><th>passkeys</th></tr></thead>
      ${rows}</table>
      <p class="muted">Adding a passkey (<a href="/console/register">register one</a>) and removing one are proposals for the quorum.</p>`,
  );
}
