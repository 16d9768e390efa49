import Database from "better-sqlite3";
import { CustosError } from "../../errors.js";
import type { AuditTable, ClientTable, ConsoleTable, GovernanceTable, KeyTable, Store, StoreTables } from "../store.js";
import { SqliteAuditTable } from "./audit-table.js";
import { SqliteClientTables } from "./client-tables.js";
import { SqliteConsoleTables } from "./console-tables.js";
import { SqliteGovernanceTables } from "./governance-tables.js";
import { SqliteKeyTables } from "./key-tables.js";
import { MIGRATIONS } from "./migrations.js";
import { WriteGate, scoped } from "./write-gate.js";
import { ensurePrivateFile, restrictExisting } from "../../private-file.js";

/**
 * The embedded default store: one SQLite file in WAL mode. Opens and migrates the database,
 * then hands each aggregate to its table class; all of them share this one connection.
 * `transaction()` holds BEGIN IMMEDIATE…COMMIT on it while its callback runs, and a WriteGate
 * keeps every other call off the connection until it ends.
 */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly gate = new WriteGate();
  /** The raw tables: used directly inside a transaction, through the gate outside one. */
  private readonly raw: StoreTables;
  readonly keys: KeyTable;
  readonly clients: ClientTable;
  readonly governance: GovernanceTable;
  readonly audit: AuditTable;
  readonly console: ConsoleTable;

  constructor(path: string, opts: { readonly?: boolean } = {}) {
    if (!opts.readonly && path !== ":memory:" && path !== "") {
      // Owner-only before SQLite writes a byte: SQLite gives the -wal and -shm files it creates
      // the database file's mode, and files an older release left readable are narrowed here.
      try {
        ensurePrivateFile(path);
        restrictExisting([`${path}-wal`, `${path}-shm`, `${path}-journal`]);
      } catch (e) {
        throw new CustosError("STORE_ERROR", `cannot create database ${path} owner-only`, { cause: e });
      }
    }
    try {
      this.db = new Database(path, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
    } catch (e) {
      throw new CustosError("STORE_ERROR", `cannot open database ${path}`, { cause: e });
    }
    if (!opts.readonly) {
      this.db.pragma("journal_mode = WAL");
      this.db.pragma("synchronous = NORMAL");
      this.db.pragma("foreign_keys = ON");
      this.migrate();
    }
    this.db.pragma("busy_timeout = 5000");
    this.raw = {
      keys: new SqliteKeyTables(this.db),
      clients: new SqliteClientTables(this.db),
      governance: new SqliteGovernanceTables(this.db),
      console: new SqliteConsoleTables(this.db),
      audit: new SqliteAuditTable(this.db),
    };
    this.keys = this.gate.guard(this.raw.keys);
    this.clients = this.gate.guard(this.raw.clients);
    this.governance = this.gate.guard(this.raw.governance);
    this.console = this.gate.guard(this.raw.console);
    this.audit = this.gate.guard(this.raw.audit);
  }

  async transaction<T>(fn: (tx: StoreTables) => Promise<T>): Promise<T> {
    return this.gate.exclusive(async () => {
      try {
        this.db.exec("BEGIN IMMEDIATE");
      } catch (e) {
        throw new CustosError("STORE_ERROR", "cannot begin a database transaction", { cause: e, retryable: true });
      }
      let open = true;
      const isOpen = () => open;
      const tx: StoreTables = {
        keys: scoped(this.raw.keys, isOpen),
        clients: scoped(this.raw.clients, isOpen),
        governance: scoped(this.raw.governance, isOpen),
        console: scoped(this.raw.console, isOpen),
        audit: scoped(this.raw.audit, isOpen),
      };
      try {
        const result = await fn(tx);
        try {
          this.db.exec("COMMIT");
        } catch (e) {
          throw new CustosError("STORE_ERROR", "cannot commit a database transaction", { cause: e, retryable: true });
        }
        return result;
      } catch (e) {
        if (this.db.inTransaction) this.db.exec("ROLLBACK");
        throw e;
      } finally {
        open = false;
      }
    });
  }

  /** Applies every migration newer than the schema's user_version, each in a transaction. */
  private migrate(): void {
    const current = this.db.pragma("user_version", { simple: true }) as number;
    for (let v = current; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  async close(): Promise<void> {
    // After any transaction in flight: closing under an open BEGIN would roll it back.
    await this.gate.exclusive(async () => this.db.close());
  }
}
