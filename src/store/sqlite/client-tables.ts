import { CustosError } from "../../errors.js";
import type { ClientRecord } from "../../signing/clients.js";
import type { ClientTable, Freeze } from "../store.js";
import { SqliteTables, type Row } from "./sqlite-tables.js";
import { toClient } from "../rows.js";

/** Trading clients and their grants (the store's `clients`). */
export class SqliteClientTables extends SqliteTables implements ClientTable {
  async listClients(): Promise<ClientRecord[]> {
    return (this.db.prepare("SELECT * FROM clients ORDER BY identity").all() as Row[]).map(toClient);
  }

  async getClient(identity: string): Promise<ClientRecord | undefined> {
    const row = this.db.prepare("SELECT * FROM clients WHERE identity = ?").get(identity) as Row | undefined;
    return row ? toClient(row) : undefined;
  }

  async upsertClient(c: ClientRecord): Promise<void> {
    this.write(() => this.upsertClientRow(c));
  }

  async addGrant(identity: string, keyId: string): Promise<void> {
    this.write(() => {
      this.db.prepare("INSERT INTO grants (identity, key_id) VALUES (?, ?) ON CONFLICT DO NOTHING").run(identity, keyId);
    });
  }

  async setClientAccess(client: ClientRecord, keyIds: readonly string[]): Promise<void> {
    this.write(() => {
      this.upsertClientRow(client);
      this.db.prepare("DELETE FROM grants WHERE identity = ?").run(client.identity);
      for (const keyId of keyIds) this.db.prepare("INSERT INTO grants (identity, key_id) VALUES (?, ?)").run(client.identity, keyId);
    });
  }

  async setClientFrozen(identity: string, freeze: Freeze): Promise<void> {
    this.write(() => {
      const r = this.db
        .prepare("UPDATE clients SET frozen_at = ?, frozen_reason = ? WHERE identity = ?")
        .run(freeze?.at ?? null, freeze?.reason ?? null, identity);
      if (r.changes === 0) throw new CustosError("UNKNOWN_CLIENT", `no client ${identity}`);
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

  private upsertClientRow(c: ClientRecord): void {
    this.db
      .prepare(
        `INSERT INTO clients (identity, name, role, cidrs, created_at, can_freeze) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (identity) DO UPDATE SET name = excluded.name, role = excluded.role, cidrs = excluded.cidrs, can_freeze = excluded.can_freeze`,
      )
      .run(c.identity, c.name, c.role, JSON.stringify(c.cidrs), c.createdAt, c.canFreeze ? 1 : 0);
  }
}
