/**
 * A separate process appending to a PostgreSQL store's audit chain, as another replica would:
 * `node dist/test/helpers/audit-writer-process.js WRITER COUNT` with the URL in
 * CUSTOS_POSTGRES_URL (never argv). Records COUNT events tagged with WRITER through an AuditLog
 * whose writer thread opens its own connection (the service's path), flushing every 50 events,
 * then prints "done".
 */
import { AuditLog } from "../../src/audit/audit-log.js";
import { WorkerChainWriter } from "../../src/audit/worker-chain-writer.js";
import { createLogger } from "../../src/log.js";
import { PgStore } from "../../src/store/postgres/pg-store.js";

const [writer = "child", countText = "0"] = process.argv.slice(2);
const url = process.env.CUSTOS_POSTGRES_URL ?? "";
const store = await PgStore.open(url);
const log = await AuditLog.open(store, createLogger("silent"), {
  flushIntervalMs: 5,
  maxBatch: 50,
  writer: new WorkerChainWriter({ backend: "postgres", url }),
});
for (let i = 0; i < Number(countText); i++) {
  log.record({ kind: "test.append", actor: writer, outcome: "ok", details: { i } });
  if (i % 50 === 49) await log.flush();
}
await log.close();
await store.close();
process.stdout.write("done\n");
