import type { AuditFilter, AuditRow } from "./views-state.js";

/**
 * The audit page's pagination. Pages are addressed by sequence number, not by offset, so a
 * page stays the same while new events arrive: `before=SEQ` is the `size` newest matching
 * events older than SEQ, `after=SEQ` the `size` oldest matching events newer than SEQ.
 * Without a cursor the page shows the newest events.
 */

/** Page sizes the console offers; anything else is refused. */
export const AUDIT_PAGE_SIZES = [25, 50, 100, 200] as const;
/** The page size without `size=`. */
export const DEFAULT_AUDIT_PAGE_SIZE = 50;
/** Events read from the store per request at most: a rare filter ends the page early instead of reading the whole log. */
export const AUDIT_SCAN_LIMIT = 20_000;
const CHUNK = 1_000;

/** Which page to show. */
export interface AuditPageQuery {
  size: number;
  before?: number;
  after?: number;
  filter: AuditFilter;
}

/** One page, newest first, with the cursors of its neighbours (absent where there is nothing). */
export interface AuditPageResult {
  rows: AuditRow[];
  /** `after=` of the newer page. */
  newer?: number;
  /** `before=` of the older page. */
  older?: number;
  /** True when the scan limit ended the page before it was full (older events may still match). */
  scanLimited: boolean;
}

/** Reads stored audit events with seq > afterSeq, ascending, at most `limit` (the store's own order). */
export type AuditReader = (afterSeq: number, limit: number) => Promise<AuditRow[]>;

/** True when the event passes the page's filters: exact key, exact actor, kind or kind prefix. */
export function matchesAuditFilter(e: AuditRow, f: AuditFilter): boolean {
  return (!f.key || e.key === f.key) && (!f.client || e.actor === f.client) && (!f.kind || e.kind === f.kind || e.kind.startsWith(`${f.kind}.`));
}

/** Newest-first scan below `end` (exclusive): up to `want` matches, the lowest seq read, and whether the limit stopped it. */
async function scanOlder(read: AuditReader, end: number, want: number, filter: AuditFilter) {
  const found: AuditRow[] = [];
  let low = end;
  let scanned = 0;
  while (low > 1 && found.length < want && scanned < AUDIT_SCAN_LIMIT) {
    const from = Math.max(0, low - 1 - CHUNK);
    const chunk = await read(from, low - 1 - from);
    scanned += chunk.length;
    for (let i = chunk.length - 1; i >= 0 && found.length < want; i--) if (matchesAuditFilter(chunk[i]!, filter)) found.push(chunk[i]!);
    low = from + 1;
  }
  return { found, limited: found.length < want && low > 1, low };
}

/** Oldest-first scan above `start`: up to `want` matches, and whether it reached the newest event. */
async function scanNewer(read: AuditReader, start: number, last: number, want: number, filter: AuditFilter) {
  const found: AuditRow[] = [];
  let high = start;
  let scanned = 0;
  while (high < last && found.length < want && scanned < AUDIT_SCAN_LIMIT) {
    const chunk = await read(high, Math.min(CHUNK, last - high));
    if (chunk.length === 0) break;
    scanned += chunk.length;
    for (const e of chunk) if (found.length < want && matchesAuditFilter(e, filter)) found.push(e);
    high = chunk[chunk.length - 1]!.seq;
  }
  return { found, reachedHead: found.length < want };
}

/** The page `q` asks for; `last` is the newest stored seq. */
export async function auditPage(read: AuditReader, last: number, q: AuditPageQuery): Promise<AuditPageResult> {
  if (q.after !== undefined && q.before === undefined) {
    const { found, reachedHead } = await scanNewer(read, q.after, last, q.size + 1, q.filter);
    // Fewer than a page newer than the cursor: that is the newest page (the one without a cursor).
    if (!reachedHead) {
      const rows = found.slice(0, q.size).reverse();
      return { rows, newer: rows[0]!.seq, older: rows[rows.length - 1]!.seq, scanLimited: false };
    }
    return auditPage(read, last, { size: q.size, filter: q.filter });
  }
  const end = q.before ?? last + 1;
  const { found, limited, low } = await scanOlder(read, end, q.size + 1, q.filter);
  const rows = found.slice(0, q.size);
  const older = found.length > q.size ? rows[rows.length - 1]!.seq : limited ? low : undefined;
  // The newer page starts at `end` itself: it is the page this one's `before` link came from.
  const newer = q.before !== undefined && end <= last ? end - 1 : undefined;
  return { rows, ...(newer !== undefined ? { newer } : {}), ...(older !== undefined ? { older } : {}), scanLimited: limited };
}
