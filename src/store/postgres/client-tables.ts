import { CustosError } from "../../errors.js";
import type { ClientRecord } from "../../signing/clients.js";
import { toClient } from "../rows.js";
import type { ClientTable, Freeze } from "../store.js";
import type { PgQuery, PgRunner } from "./pg-runner.js";

/** Trading clients and their grants (the store's `clients`) on PostgreSQL. */
export class PgClientTables implements ClientTable {
  constructor(private readonly db: PgRunner) {}

  async listClients(): Promise<ClientRecord[]> {
    return (await this.db.rows("SELECT * FROM clients ORDER BY identity")).map(toClient);
  }

  async getClient(identity: string): Promise<ClientRecord | undefined> {
    const [row] = await this.db.rows("SELECT * FROM clients WHERE identity = $1", [identity]);
    return row ? toClient(row) : undefined;
  }

  async upsertClient(c: ClientRecord): Promise<void> {
    await upsertClientRow(this.db, c);
  }

  async addGrant(identity: string, keyId: string): Promise<void> {
    await this.db.run("INSERT INTO grants (identity, key_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", [identity, keyId]);
  }

  async setClientAccess(client: ClientRecord, keyIds: readonly string[]): Promise<void> {
    await this.db.atomic(async (q) => {
      await upsertClientRow(q, client);
      await q.run("DELETE FROM grants WHERE identity = $1", [client.identity]);
      for (const keyId of keyIds) await q.run("INSERT INTO grants (identity, key_id) VALUES ($1, $2)", [client.identity, keyId]);
    });
  }

  async setClientFrozen(identity: string, freeze: Freeze): Promise<void> {
    const changed = await this.db.run("UPDATE clients SET frozen_at = $1, frozen_reason = $2 WHERE identity = $3", [
      freeze?.at ?? null,
      freeze?.reason ?? null,
      identity,
    ]);
    if (changed === 0) throw new CustosError("UNKNOWN_CLIENT", `no client ${identity}`);
  }

  async listGrants(): Promise<Map<string, Set<string>>> {
    const out = new Map<string, Set<string>>();
    for (const r of await this.db.rows("SELECT identity, key_id FROM grants")) {
      const set = out.get(r.identity as string) ?? new Set<string>();
      set.add(r.key_id as string);
      out.set(r.identity as string, set);
    }
    return out;
  }
}

async function upsertClientRow(q: PgQuery, c: ClientRecord): Promise<void> {
  await q.run(
    `INSERT INTO clients (identity, name, role, cidrs, created_at, can_freeze) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (identity) DO UPDATE SET name = excluded.name, role = excluded.role, cidrs = excluded.cidrs, can_freeze = excluded.can_freeze`,
    [c.identity, c.name, c.role, JSON.stringify(c.cidrs), c.createdAt, c.canFreeze ? 1 : 0],
  );
}
