import { AUDIT_PAGE_SIZES, type AuditPageResult } from "./audit-pager.js";
import type { AuditFilter, AuditRow, ChainStatus } from "./views-state.js";
import { h, layout, short, type Html, type PageContext } from "./views.js";

/** Characters of one detail value shown in the table (a UUID fits, a digest does not); the full value is in the element's title. */
export const AUDIT_DETAIL_CHARS = 36;

/** A detail value as text: strings as they are, anything else as JSON. */
function valueText(v: unknown): string {
  return typeof v === "string" ? v : v === undefined ? "" : JSON.stringify(v);
}

/** One `name=value` detail; a long value is cut, its full text kept in the title (hover, long-press). */
function detail(name: string, v: unknown): Html {
  const full = valueText(v);
  if (full.length <= AUDIT_DETAIL_CHARS) return h`<span class="kv"><span class="k">${name}</span>=${full}</span>`;
  return h`<span class="kv cut" title="${name}=${full}"><span class="k">${name}</span>=${full.slice(0, AUDIT_DETAIL_CHARS)}…</span>`;
}

/** The page's own URL with the filters and size kept and one cursor set. */
function pageLink(filter: AuditFilter, size: number, cursor: { before?: number; after?: number }): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(filter)) if (v) q.set(k, v);
  q.set("size", String(size));
  if (cursor.before !== undefined) q.set("before", String(cursor.before));
  if (cursor.after !== undefined) q.set("after", String(cursor.after));
  return `/console/audit?${q.toString()}`;
}

function pager(page: AuditPageResult, filter: AuditFilter, size: number): Html {
  const newest = h`<a class="newest" href="${pageLink(filter, size, {})}">Newest</a>`;
  const newer = page.newer !== undefined ? h`<a class="newer" rel="prev" href="${pageLink(filter, size, { after: page.newer })}">← Newer</a>` : h``;
  const older = page.older !== undefined ? h`<a class="older" rel="next" href="${pageLink(filter, size, { before: page.older })}">Older →</a>` : h``;
  const range = page.rows.length ? h`events #${page.rows[0]!.seq} to #${page.rows[page.rows.length - 1]!.seq}` : h`no events`;
  return h`<nav class="pager">${newest}${newer}<span class="muted">${range}</span>${older}</nav>`;
}

/** The audit log, newest first, one page at a time, filtered by key, client (actor) and kind, with the chain's verification. */
export function auditPage(ctx: PageContext, page: AuditPageResult, filter: AuditFilter, size: number, chain: ChainStatus): string {
  const status =
    chain.state === "verified"
      ? h`<p class="good" id="chain">Hash chain verified: ${chain.events} events, every link intact.</p>`
      : chain.state === "checking"
        ? h`<p class="muted" id="chain">Hash chain check running: ${chain.events} events verified so far, no broken link yet (reload to see the result).</p>`
        : h`<p class="bad" id="chain">Hash chain BROKEN at event ${chain.brokenAt}: ${chain.reason}</p>`;
  const row = (e: AuditRow) => {
    const bad = e.outcome === "denied" || e.outcome === "failed";
    // A refusal's reason leads the details: the outcome column stays one word wide.
    const details = [...(e.reason ? [detail("reason", e.reason)] : []), ...Object.entries(e.details ?? {}).map(([k, v]) => detail(k, v))];
    return h`<tr data-kind="${e.kind}" data-seq="${e.seq}"><td data-label="#">${e.seq}</td>
      <td data-label="time" class="nowrap">${e.at ? short(e.at) : ""}</td><td data-label="kind">${e.kind}</td>
      <td data-label="actor"><code>${e.actor}</code></td>
      <td data-label="outcome" class="outcome ${bad ? "bad" : ""}">${e.outcome}</td>
      <td data-label="key">${e.key ? h`<code>${e.key}</code>` : h``}${e.version !== undefined ? ` v${e.version}` : ""}</td>
      <td data-label="details" class="details">${details}</td></tr>`;
  };
  const sizes = AUDIT_PAGE_SIZES.map((n) => h`<option value="${n}"${n === size ? h` selected` : h``}>${n}</option>`);
  const limited = h`<p class="muted" id="scan-limited">Few events match: this page ends where the search stopped; older ones may still match.</p>`;
  const cols = ["seq", "time", "kind", "actor", "outcome", "key"].map((c) => h`<col class="c-${c}">`);
  return layout(
    ctx,
    h`${status}
      <form class="card filters" method="get" action="/console/audit">
      <label>key <input type="text" name="key" value="${filter.key ?? ""}"></label>
      <label>client <input type="text" name="client" value="${filter.client ?? ""}"></label>
      <label>kind <input type="text" name="kind" value="${filter.kind ?? ""}" placeholder="e.g. sign, proposal.approve"></label>
      <label>per page <select name="size">${sizes}</select></label>
      <button type="submit">Filter</button></form>
      ${page.scanLimited ? limited : h``}
      ${pager(page, filter, size)}
      <table id="audit" class="cards audit"><colgroup>${cols}<col></colgroup>
      <thead><tr><th>#</th><th>time</th><th>kind</th><th>actor</th><th>outcome</th><th>key</th><th>details</th></tr></thead>
      ${page.rows.map(row)}</table>
      ${pager(page, filter, size)}`,
  );
}
