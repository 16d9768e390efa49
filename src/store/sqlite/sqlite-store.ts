import Database from "better-sqlite3";
import { CustosError } from "../../errors.js";
import type { KeyRecord, KeyVersionRecord, KeyWithVersions } from "../../keys/model.js";
import type { ClientRecord } from "../../signing/clients.js";
import type { Store, StoredAuditEvent } from "../store.js";
import { MIGRATIONS } from "./migrations.js";

type Row = Record<string, unknown>;

/** The embedded default store: one SQLite file in WAL mode. */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly insertAudit: Database.Statement;

  constructor(path: string, opts: { readonly?: boolean } = {}) {
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
    this.insertAudit = this.db.prepare("INSERT INTO audit_events (seq, body, prev_hash, hash) VALUES (?, ?, ?, ?)");
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

  async listKeys(): Promise<KeyWithVersions[]> {
    const keys = this.db.prepare("SELECT * FROM keys ORDER BY id").all() as Row[];
    const versions = this.db.prepare("SELECT * FROM key_versions ORDER BY key_id, version").all() as Row[];
    return keys.map((k) => ({ ...toKey(k), versions: versions.filter((v) => v.key_id === k.id).map(toVersion) }));
  }

  async getKey(id: string): Promise<KeyWithVersions | undefined> {
    const k = this.db.prepare("SELECT * FROM keys WHERE id = ?").get(id) as Row | undefined;
    if (!k) return undefined;
    const versions = this.db.prepare("SELECT * FROM key_versions WHERE key_id = ? ORDER BY version").all(id) as Row[];
    return { ...toKey(k), versions: versions.map(toVersion) };
  }

  async createKey(key: KeyRecord, first: KeyVersionRecord): Promise<void> {
    this.write(() => {
      if (this.db.prepare("SELECT 1 FROM keys WHERE id = ?").get(key.id)) {
        throw new CustosError("KEY_EXISTS", `key ${key.id} already exists`);
      }
      this.db
        .prepare(
          "INSERT INTO keys (id, exchange, environment, label, api_key_id, algorithm, max_age_days, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .run(key.id, key.exchange, key.environment, key.label, key.apiKeyId, key.algorithm, key.maxAgeDays, key.createdAt);
      this.db
        .prepare("INSERT INTO key_versions (key_id, version, object_id, state, created_at, activated_at) VALUES (?, ?, ?, ?, ?, ?)")
        .run(first.keyId, first.version, first.objectId, first.state, first.createdAt, first.activatedAt);
    });
  }

  async updateVersionState(keyId: string, version: number, state: KeyVersionRecord["state"], activatedAt?: string): Promise<void> {
    this.write(() => {
      this.db
        .prepare("UPDATE key_versions SET state = ?, activated_at = COALESCE(?, activated_at) WHERE key_id = ? AND version = ?")
        .run(state, activatedAt ?? null, keyId, version);
    });
  }

  async listClients(): Promise<ClientRecord[]> {
    return (this.db.prepare("SELECT * FROM clients ORDER BY identity").all() as Row[]).map(toClient);
  }

  async getClient(identity: string): Promise<ClientRecord | undefined> {
    const row = this.db.prepare("SELECT * FROM clients WHERE identity = ?").get(identity) as Row | undefined;
    return row ? toClient(row) : undefined;
  }

  async upsertClient(c: ClientRecord): Promise<void> {
    this.write(() => {
      this.db
        .prepare(
          `INSERT INTO clients (identity, name, role, cidrs, created_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (identity) DO UPDATE SET name = excluded.name, role = excluded.role, cidrs = excluded.cidrs`,
        )
        .run(c.identity, c.name, c.role, JSON.stringify(c.cidrs), c.createdAt);
    });
  }

  async addGrant(identity: string, keyId: string): Promise<void> {
    this.write(() => {
      this.db.prepare("INSERT INTO grants (identity, key_id) VALUES (?, ?) ON CONFLICT DO NOTHING").run(identity, keyId);
    });
  }

  async listGrants(): Promise<Map<string, Set<string>>> {
    const out = new Map<string, Set<string>>();
    for (const r of this.db.prepare("SELECT identity, key_id FROM grants").all() as Row[]) {
      const set = out.get(r.identity as string) ?? new Set<string>();
      set.add(r.key_id as string);
      out.set(r.identity as string, set);
    }
    return out;
  }

  async appendAudit(events: StoredAuditEvent[]): Promise<void> {
    this.write(() => {
      for (const e of events) this.insertAudit.run(e.seq, e.body, e.prevHash, e.hash);
    });
  }

  async lastAudit(): Promise<StoredAuditEvent | undefined> {
    const row = this.db.prepare("SELECT * FROM audit_events ORDER BY seq DESC LIMIT 1").get() as Row | undefined;
    return row ? toAudit(row) : undefined;
  }

  async readAudit(afterSeq: number, limit: number): Promise<StoredAuditEvent[]> {
    return (this.db.prepare("SELECT * FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?").all(afterSeq, limit) as Row[]).map(toAudit);
  }

  async close(): Promise<void> {
    this.db.close();
  }

  /** Runs `fn` in a transaction; database failures become STORE_ERROR, typed errors pass through. */
  private write(fn: () => void): void {
    try {
      this.db.transaction(fn)();
    } catch (e) {
      if (e instanceof CustosError) throw e;
      throw new CustosError("STORE_ERROR", "database write failed", { cause: e, retryable: true });
    }
  }
}

function toKey(r: Row): KeyRecord {
  return {
    id: r.id as string,
    exchange: r.exchange as string,
    environment: r.environment as KeyRecord["environment"],
    label: r.label as string,
    apiKeyId: r.api_key_id as string,
    algorithm: r.algorithm as KeyRecord["algorithm"],
    maxAgeDays: r.max_age_days as number,
    createdAt: r.created_at as string,
  };
}

function toVersion(r: Row): KeyVersionRecord {
  return {
    keyId: r.key_id as string,
    version: r.version as number,
    objectId: r.object_id as string,
    state: r.state as KeyVersionRecord["state"],
    createdAt: r.created_at as string,
    activatedAt: (r.activated_at as string | null) ?? null,
  };
}

function toClient(r: Row): ClientRecord {
  return {
    identity: r.identity as string,
    name: r.name as string,
    role: r.role as ClientRecord["role"],
    cidrs: JSON.parse(r.cidrs as string) as string[],
    createdAt: r.created_at as string,
  };
}

function toAudit(r: Row): StoredAuditEvent {
  return { seq: r.seq as number, body: r.body as string, prevHash: r.prev_hash as string, hash: r.hash as string };
}
