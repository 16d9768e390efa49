import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import Database from "better-sqlite3";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";

/**
 * The connection custos's event loop writes through leaves SQLite's log to the audit writer
 * thread's checkpoints (walAutoCheckpointPages raised), and checkpointWal() copies the log into
 * the database without blocking writers.
 */
const dir = mkdtempSync(join(tmpdir(), "custos-wal-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** ~1,500 commits of a 3 KB audit row each: well past SQLite's default 1,000-page checkpoint. */
async function fill(store: SqliteStore): Promise<void> {
  let seq = 0;
  for (let i = 0; i < 1_500; i++) {
    await store.audit.appendChained(() => [{ seq: ++seq, body: "x".repeat(3_000), prevHash: `h${seq - 1}`, hash: `h${seq}` }]);
  }
}

/** Pages in the log, and pages of it already in the database, as another connection sees them. */
function walPages(path: string): { log: number; checkpointed: number } {
  const db = new Database(path, { readonly: true });
  try {
    const [r] = db.pragma("wal_checkpoint(NOOP)") as Array<{ log: number; checkpointed: number }>;
    return r!;
  } finally {
    db.close();
  }
}

it("with the default threshold a commit checkpoints the log itself; with a raised one the log waits for checkpointWal()", async () => {
  const byDefault = new SqliteStore(join(dir, "default.db"));
  await fill(byDefault);
  assert.ok(walPages(join(dir, "default.db")).log < 1_100, "SQLite's own checkpoint kept the log near 1,000 pages");
  await byDefault.close();

  const path = join(dir, "raised.db");
  const raised = new SqliteStore(path, { walAutoCheckpointPages: 16_000 });
  await fill(raised);
  const before = walPages(path);
  assert.ok(before.log > 1_400, `the log holds every commit (${before.log} pages)`);
  raised.checkpointWal();
  const afterCheckpoint = walPages(path);
  assert.equal(afterCheckpoint.checkpointed, afterCheckpoint.log, "everything in the log is in the database");
  await raised.close();
});
