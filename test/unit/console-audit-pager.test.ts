import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AUDIT_SCAN_LIMIT, auditPage, type AuditReader } from "../../src/transport/http/console/audit-pager.js";
import type { AuditRow } from "../../src/transport/http/console/views-state.js";

/**
 * The audit page's pagination over an in-memory log read the way the store reads it
 * (seq > afterSeq, ascending, at most limit): pages addressed by sequence number stay the
 * same while events are appended.
 */

function log(count: number, kindOf: (seq: number) => string = () => "sign") {
  const events: AuditRow[] = [];
  const append = (n: number) => {
    for (let i = 0; i < n; i++) {
      const seq = events.length + 1;
      events.push({ seq, at: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString(), kind: kindOf(seq), actor: "bot", outcome: "ok" } as AuditRow);
    }
  };
  append(count);
  let reads = 0;
  const read: AuditReader = async (afterSeq, limit) => {
    reads++;
    return events.filter((e) => e.seq > afterSeq).slice(0, limit);
  };
  return { read, append, last: () => events.length, reads: () => reads };
}

const seqs = (rows: AuditRow[]) => rows.map((r) => r.seq);
const range = (from: number, to: number) => Array.from({ length: Math.abs(to - from) + 1 }, (_, i) => (from > to ? from - i : from + i));

describe("audit page pagination", () => {
  it("shows the newest page first, and walks older pages to the first event", async () => {
    const l = log(101);
    const first = await auditPage(l.read, l.last(), { size: 25, filter: {} });
    assert.deepEqual(seqs(first.rows), range(101, 77));
    assert.equal(first.newer, undefined, "nothing is newer than the newest page");
    assert.equal(first.older, 77);
    const visited: number[] = [...seqs(first.rows)];
    let older: number | undefined = first.older;
    for (let pages = 0; older !== undefined && pages < 10; pages++) {
      const next = await auditPage(l.read, l.last(), { size: 25, before: older, filter: {} });
      visited.push(...seqs(next.rows));
      older = next.older;
    }
    assert.deepEqual(visited, range(101, 1), "every event once, in order");
  });

  it("keeps a page the same while new events arrive; newer goes back to the page it came from", async () => {
    const l = log(101);
    const head = await auditPage(l.read, l.last(), { size: 25, filter: {} });
    const second = await auditPage(l.read, l.last(), { size: 25, before: head.older!, filter: {} });
    l.append(40);
    const again = await auditPage(l.read, l.last(), { size: 25, before: head.older!, filter: {} });
    assert.deepEqual(seqs(again.rows), seqs(second.rows));
    assert.deepEqual(seqs(again.rows), range(76, 52));
    const back = await auditPage(l.read, l.last(), { size: 25, after: again.newer!, filter: {} });
    assert.deepEqual(seqs(back.rows), seqs(head.rows), "the newer page is the old head, not the new one");
    assert.equal(back.newer, 101);
    const newer = await auditPage(l.read, l.last(), { size: 25, after: back.newer!, filter: {} });
    assert.deepEqual(seqs(newer.rows), range(126, 102), "the 25 events just above the old head");
    const newest = await auditPage(l.read, l.last(), { size: 25, after: newer.newer!, filter: {} });
    assert.deepEqual(seqs(newest.rows), range(141, 117), "fewer than a page newer: the newest page");
    assert.equal(newest.newer, undefined);
  });

  it("filters before it counts: a page holds `size` matching events", async () => {
    const l = log(300, (seq) => (seq % 10 === 0 ? "proposal.approve" : "sign"));
    const page = await auditPage(l.read, l.last(), { size: 25, filter: { kind: "proposal" } });
    const everyTenth = [300, 290, 280, 270, 260, 250, 240, 230, 220, 210, 200, 190, 180, 170, 160, 150, 140, 130, 120, 110, 100, 90, 80, 70, 60];
    assert.deepEqual(seqs(page.rows), everyTenth);
    assert.equal(page.older, 60);
    const rest = await auditPage(l.read, l.last(), { size: 25, before: page.older!, filter: { kind: "proposal" } });
    assert.deepEqual(seqs(rest.rows), [50, 40, 30, 20, 10]);
    assert.equal(rest.older, undefined);
  });

  it("stops a scan for a rare match at the scan limit and offers to continue below it", async () => {
    const total = AUDIT_SCAN_LIMIT + 5_000;
    const l = log(total, (seq) => (seq === 10 ? "freeze" : "sign"));
    const page = await auditPage(l.read, l.last(), { size: 25, filter: { kind: "freeze" } });
    assert.deepEqual(page.rows, []);
    assert.equal(page.scanLimited, true);
    assert.equal(page.older, total - AUDIT_SCAN_LIMIT + 1, "the next page starts where this scan stopped");
    assert.ok(l.reads() <= AUDIT_SCAN_LIMIT / 1_000 + 1, `${l.reads()} reads`);
    const next = await auditPage(l.read, l.last(), { size: 25, before: page.older!, filter: { kind: "freeze" } });
    assert.deepEqual(seqs(next.rows), [10]);
    assert.equal(next.scanLimited, false);
  });

  it("shows an empty log as one empty page", async () => {
    const l = log(0);
    assert.deepEqual(await auditPage(l.read, l.last(), { size: 50, filter: {} }), { rows: [], scanLimited: false });
  });
});
