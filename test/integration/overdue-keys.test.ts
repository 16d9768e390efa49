import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { startInProcess, type InProcessService } from "../helpers/harness.js";
import { ManualClock } from "../helpers/manual-clock.js";

/** Housekeeping reports a key past its max age in the log: once a day, not at every run. */
let svc: InProcessService;
/** The service's clock for the once-a-day rule: real time, moved a day forward by hand. */
const clock = ManualClock.followingRealTime();
before(async () => {
  svc = await startInProcess((c) => (c.governance.housekeepingMs = 100), { clock });
});
after(async () => svc?.stop());

const overdueLines = () =>
  svc
    .logs()
    .split("\n")
    .filter((l) => l.includes('"event":"key.overdue"'));

it("logs an overdue key at warn, with its due date, once per day", async () => {
  const store = new SqliteStore(svc.config.store.sqlitePath);
  const activated = new Date(Date.now() - 31 * 86_400_000).toISOString();
  await store.keys.createKey(
    { id: "stale", exchange: "custom", environment: "testnet", label: "stale", apiKeyId: "x", algorithm: "hmac-sha256", maxAgeDays: 30, createdAt: activated },
    { keyId: "stale", version: 1, objectId: "custos:stale:v1", state: "active", createdAt: activated, activatedAt: activated },
  );
  await store.close();
  const deadline = Date.now() + 5_000;
  while (overdueLines().length === 0) {
    assert.ok(Date.now() < deadline, "no key.overdue log line within 5 s");
    await new Promise((r) => setTimeout(r, 50));
  }
  const line = JSON.parse(overdueLines()[0]!) as { level: string; key: string; dueAt: string };
  assert.equal(line.level, "warn");
  assert.equal(line.key, "stale");
  assert.equal(Date.parse(line.dueAt), Date.parse(activated) + 30 * 86_400_000);
  // Ten more housekeeping runs: still one warning (the next is due in a day).
  for (let i = 0; i < 10; i++) await svc.service.housekeeping();
  assert.equal(overdueLines().length, 1);
  // A day later, the next run warns again.
  clock.advance(86_400_000);
  await svc.service.housekeeping();
  assert.equal(overdueLines().length, 2);
});
