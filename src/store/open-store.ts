import type { Store } from "./store.js";
import { SqliteStore } from "./sqlite/sqlite-store.js";

/**
 * Where a store lives, as plain data: what a worker thread is handed to open its own
 * connection (a connection cannot cross threads). One backend today; PostgreSQL adds a case.
 */
export type StoreLocation = { backend: "sqlite"; path: string };

/** Opens the store at `location` (each call is a new connection). */
export function openStore(location: StoreLocation): Store {
  switch (location.backend) {
    case "sqlite":
      return new SqliteStore(location.path);
  }
}
