import { CustosError } from "../../errors.js";
import type { ExchangePermissionVerdict, KeyRecord, KeyVersionRecord, KeyWithVersions } from "../../keys/model.js";
import { toKey, toVersion } from "../rows.js";
import type { Freeze, KeyTable } from "../store.js";
import { uniqueViolation, type PgQuery, type PgRunner } from "./pg-runner.js";

/** Keys, their versions and their policies (the store's `keys`) on PostgreSQL. */
export class PgKeyTables implements KeyTable {
  constructor(private readonly db: PgRunner) {}

  async listKeys(): Promise<KeyWithVersions[]> {
    const keys = await this.db.rows("SELECT * FROM keys ORDER BY id");
    const versions = await this.db.rows("SELECT * FROM key_versions ORDER BY key_id, version");
    return keys.map((k) => ({ ...toKey(k), versions: versions.filter((v) => v.key_id === k.id).map(toVersion) }));
  }

  async getKey(id: string): Promise<KeyWithVersions | undefined> {
    const [k] = await this.db.rows("SELECT * FROM keys WHERE id = $1", [id]);
    if (!k) return undefined;
    const versions = await this.db.rows("SELECT * FROM key_versions WHERE key_id = $1 ORDER BY version", [id]);
    return { ...toKey(k), versions: versions.map(toVersion) };
  }

  async createKey(key: KeyRecord, first: KeyVersionRecord): Promise<void> {
    try {
      await this.db.atomic(async (q) => {
        await q.run(
          "INSERT INTO keys (id, exchange, environment, label, api_key_id, algorithm, max_age_days, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
          [key.id, key.exchange, key.environment, key.label, key.apiKeyId, key.algorithm, key.maxAgeDays, key.createdAt],
        );
        await insertVersion(q, first);
      });
    } catch (e) {
      // The primary key decides, also between replicas creating the same id at once.
      if (uniqueViolation(e, "keys_pkey")) throw new CustosError("KEY_EXISTS", `key ${key.id} already exists`);
      throw e;
    }
  }

  async rotateKey(keyId: string, next: KeyVersionRecord, retireAt: string): Promise<void> {
    await this.db.atomic(async (q) => {
      await q.run("UPDATE key_versions SET state = 'retiring', retire_at = $1 WHERE key_id = $2 AND state = 'active'", [retireAt, keyId]);
      await insertVersion(q, next);
    });
  }

  async addPendingVersion(next: KeyVersionRecord): Promise<void> {
    if (next.state !== "pending") throw new CustosError("INTERNAL", "addPendingVersion takes a pending version (this is a bug)");
    await insertVersion(this.db, next);
  }

  async activatePendingVersion(keyId: string, version: number, apiKeyId: string, at: string, retireAt: string): Promise<void> {
    await this.db.atomic(async (q) => {
      // FOR UPDATE: a concurrent activation of the same version waits, then finds it no longer pending.
      const pending = await q.rows("SELECT 1 FROM key_versions WHERE key_id = $1 AND version = $2 AND state = 'pending' FOR UPDATE", [keyId, version]);
      if (pending.length === 0) throw new CustosError("PRECONDITION_FAILED", `key ${keyId} has no pending version ${version}`);
      await q.run("UPDATE key_versions SET state = 'retiring', retire_at = $1 WHERE key_id = $2 AND state = 'active'", [retireAt, keyId]);
      await q.run("UPDATE key_versions SET state = 'active', activated_at = $1, api_key_id = $2 WHERE key_id = $3 AND version = $4", [
        at,
        apiKeyId,
        keyId,
        version,
      ]);
    });
  }

  async updateVersionState(keyId: string, version: number, state: KeyVersionRecord["state"], activatedAt?: string): Promise<void> {
    await this.db.run("UPDATE key_versions SET state = $1, activated_at = COALESCE($2, activated_at) WHERE key_id = $3 AND version = $4", [
      state,
      activatedAt ?? null,
      keyId,
      version,
    ]);
  }

  async setKeyFrozen(keyId: string, freeze: Freeze): Promise<void> {
    const changed = await this.db.run("UPDATE keys SET frozen_at = $1, frozen_reason = $2 WHERE id = $3", [freeze?.at ?? null, freeze?.reason ?? null, keyId]);
    if (changed === 0) throw new CustosError("KEY_NOT_FOUND", `no key ${keyId}`);
  }

  async setExchangePermissions(keyId: string, v: ExchangePermissionVerdict): Promise<void> {
    const changed = await this.db.run("UPDATE keys SET permissions_verdict = $1, permissions_checked_at = $2 WHERE id = $3", [v.verdict, v.checkedAt, keyId]);
    if (changed === 0) throw new CustosError("KEY_NOT_FOUND", `no key ${keyId}`);
  }

  async setApiKeyId(keyId: string, apiKeyId: string): Promise<void> {
    await this.db.atomic(async (q) => {
      if ((await q.run("UPDATE keys SET api_key_id = $1 WHERE id = $2", [apiKeyId, keyId])) === 0) throw new CustosError("KEY_NOT_FOUND", `no key ${keyId}`);
      await q.run("UPDATE key_versions SET api_key_id = $1 WHERE key_id = $2 AND state = 'active'", [apiKeyId, keyId]);
    });
  }

  async setPolicy(keyId: string, policyJson: string, at: string): Promise<void> {
    await this.db.run(
      `INSERT INTO key_policies (key_id, policy, updated_at) VALUES ($1, $2, $3)
       ON CONFLICT (key_id) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at`,
      [keyId, policyJson, at],
    );
  }

  async getPolicy(keyId: string): Promise<string | undefined> {
    const [row] = await this.db.rows("SELECT policy FROM key_policies WHERE key_id = $1", [keyId]);
    return row ? (row.policy as string) : undefined;
  }
}

async function insertVersion(q: PgQuery, v: KeyVersionRecord): Promise<void> {
  await q.run(
    `INSERT INTO key_versions (key_id, version, object_id, state, created_at, activated_at, api_key_id, retire_at, signed_passphrase)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [v.keyId, v.version, v.objectId, v.state, v.createdAt, v.activatedAt, v.apiKeyId ?? null, v.retireAt ?? null, v.signedPassphrase ?? null],
  );
}
