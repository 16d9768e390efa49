import { CustosError } from "../../errors.js";
import type { ExchangePermissionVerdict, KeyRecord, KeyVersionRecord, KeyWithVersions } from "../../keys/model.js";
import type { Freeze, KeyTable } from "../store.js";
import { SqliteTables, type Row } from "./sqlite-tables.js";
import { toKey, toVersion } from "../rows.js";

/** Keys, their versions and their policies (the store's `keys`). */
export class SqliteKeyTables extends SqliteTables implements KeyTable {
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
        .prepare("INSERT INTO keys (id, exchange, environment, label, api_key_id, algorithm, max_age_days, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        .run(key.id, key.exchange, key.environment, key.label, key.apiKeyId, key.algorithm, key.maxAgeDays, key.createdAt);
      this.insertVersion(first);
    });
  }

  async rotateKey(keyId: string, next: KeyVersionRecord, retireAt: string): Promise<void> {
    this.write(() => {
      this.db.prepare("UPDATE key_versions SET state = 'retiring', retire_at = ? WHERE key_id = ? AND state = 'active'").run(retireAt, keyId);
      this.insertVersion(next);
    });
  }

  async addPendingVersion(next: KeyVersionRecord): Promise<void> {
    if (next.state !== "pending") throw new CustosError("INTERNAL", "addPendingVersion takes a pending version (this is a bug)");
    this.write(() => {
      this.insertVersion(next);
    });
  }

  async activatePendingVersion(keyId: string, version: number, apiKeyId: string, at: string, retireAt: string): Promise<void> {
    this.write(() => {
      const pending = this.db.prepare("SELECT 1 FROM key_versions WHERE key_id = ? AND version = ? AND state = 'pending'").get(keyId, version);
      if (!pending) throw new CustosError("PRECONDITION_FAILED", `key ${keyId} has no pending version ${version}`);
      this.db.prepare("UPDATE key_versions SET state = 'retiring', retire_at = ? WHERE key_id = ? AND state = 'active'").run(retireAt, keyId);
      this.db
        .prepare("UPDATE key_versions SET state = 'active', activated_at = ?, api_key_id = ? WHERE key_id = ? AND version = ?")
        .run(at, apiKeyId, keyId, version);
    });
  }

  async updateVersionState(keyId: string, version: number, state: KeyVersionRecord["state"], activatedAt?: string): Promise<void> {
    this.write(() => {
      this.db
        .prepare("UPDATE key_versions SET state = ?, activated_at = COALESCE(?, activated_at) WHERE key_id = ? AND version = ?")
        .run(state, activatedAt ?? null, keyId, version);
    });
  }

  async setKeyFrozen(keyId: string, freeze: Freeze): Promise<void> {
    this.write(() => {
      const r = this.db.prepare("UPDATE keys SET frozen_at = ?, frozen_reason = ? WHERE id = ?").run(freeze?.at ?? null, freeze?.reason ?? null, keyId);
      if (r.changes === 0) throw new CustosError("KEY_NOT_FOUND", `no key ${keyId}`);
    });
  }

  async setExchangePermissions(keyId: string, v: ExchangePermissionVerdict): Promise<void> {
    this.write(() => {
      const r = this.db.prepare("UPDATE keys SET permissions_verdict = ?, permissions_checked_at = ? WHERE id = ?").run(v.verdict, v.checkedAt, keyId);
      if (r.changes === 0) throw new CustosError("KEY_NOT_FOUND", `no key ${keyId}`);
    });
  }

  async setApiKeyId(keyId: string, apiKeyId: string): Promise<void> {
    this.write(() => {
      const r = this.db.prepare("UPDATE keys SET api_key_id = ? WHERE id = ?").run(apiKeyId, keyId);
      if (r.changes === 0) throw new CustosError("KEY_NOT_FOUND", `no key ${keyId}`);
      this.db.prepare("UPDATE key_versions SET api_key_id = ? WHERE key_id = ? AND state = 'active'").run(apiKeyId, keyId);
    });
  }

  async setPolicy(keyId: string, policyJson: string, at: string): Promise<void> {
    this.write(() => {
      this.db
        .prepare(
          "INSERT INTO key_policies (key_id, policy, updated_at) VALUES (?, ?, ?) ON CONFLICT (key_id) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at",
        )
        .run(keyId, policyJson, at);
    });
  }

  async getPolicy(keyId: string): Promise<string | undefined> {
    const row = this.db.prepare("SELECT policy FROM key_policies WHERE key_id = ?").get(keyId) as Row | undefined;
    return row ? (row.policy as string) : undefined;
  }

  private insertVersion(v: KeyVersionRecord): void {
    this.db
      .prepare(
        "INSERT INTO key_versions (key_id, version, object_id, state, created_at, activated_at, api_key_id, retire_at, signed_passphrase) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      )
      .run(v.keyId, v.version, v.objectId, v.state, v.createdAt, v.activatedAt, v.apiKeyId ?? null, v.retireAt ?? null, v.signedPassphrase ?? null);
  }
}
