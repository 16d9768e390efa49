import type { Store } from "./store.js";
import { SqliteStore } from "./sqlite/sqlite-store.js";

/**
 * Where a store lives, as plain data: what a worker thread is handed to open its own
 * connection (a connection cannot cross threads). A PostgreSQL URL may carry a password: it
 * crosses to a thread in memory (workerData), never through argv or a file.
 */
export type StoreLocation = { backend: "sqlite"; path: string } | { backend: "postgres"; url: string };

/** Opens the store at `location` (each call is a new connection; PostgreSQL's are not migrated here, the service does that). */
export async function openStore(location: StoreLocation): Promise<Store> {
  switch (location.backend) {
    case "sqlite":
      return new SqliteStore(location.path);
    case "postgres": {
      // Loaded only when used: a SQLite deployment never loads the PostgreSQL driver.
      const { PgStore } = await import("./postgres/pg-store.js");
      return PgStore.open(location.url, { maxConnections: 2, migrate: false, applicationName: "custos-audit-writer" });
    }
  }
}
