import type { StoreSettings } from "../config/config-sections.js";
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

/** Where the configured store lives (`config.store`): PostgreSQL when a URL is set, else the SQLite file. */
export function storeLocationOf(settings: StoreSettings): StoreLocation {
  return settings.postgres ? { backend: "postgres", url: settings.postgres.url } : { backend: "sqlite", path: settings.sqlitePath };
}

/**
 * The configured store, as `custos serve` and the offline commands open it. PostgreSQL is
 * migrated at open unless `readonly`; unreachable, it fails with STORE_ERROR naming the setting
 * the URL came from (custos does not start without its store). SQLite opens its file (read-only
 * for `readonly`).
 */
export async function openConfiguredStore(settings: StoreSettings, opts: { readonly?: boolean } = {}): Promise<Store> {
  if (!settings.postgres) return new SqliteStore(settings.sqlitePath, opts.readonly ? { readonly: true } : {});
  const { PgStore } = await import("./postgres/pg-store.js");
  return PgStore.open(settings.postgres.url, { setting: settings.postgres.setting, migrate: !opts.readonly });
}
