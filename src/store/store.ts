import type { KeyRecord, KeyVersionRecord, KeyWithVersions } from "../keys/model.js";
import type { ClientRecord } from "../signing/clients.js";

/** One stored audit event: its canonical JSON body and its place in the hash chain. */
export interface StoredAuditEvent {
  seq: number;
  body: string;
  prevHash: string;
  hash: string;
}

/**
 * Persistent state. Narrow on purpose: a PostgreSQL implementation follows, and the
 * domain never sees SQL. Every method is synchronous-looking async so both fit.
 */
export interface Store {
  listKeys(): Promise<KeyWithVersions[]>;
  getKey(id: string): Promise<KeyWithVersions | undefined>;
  /** Creates a key and its first version in one transaction; KEY_EXISTS if the id is taken. */
  createKey(key: KeyRecord, first: KeyVersionRecord): Promise<void>;
  updateVersionState(keyId: string, version: number, state: KeyVersionRecord["state"], activatedAt?: string): Promise<void>;

  listClients(): Promise<ClientRecord[]>;
  getClient(identity: string): Promise<ClientRecord | undefined>;
  /** Adds a client, or updates name/role/CIDRs of an existing one. */
  upsertClient(client: ClientRecord): Promise<void>;
  addGrant(identity: string, keyId: string): Promise<void>;
  /** identity → key ids it may sign with. */
  listGrants(): Promise<Map<string, Set<string>>>;

  appendAudit(events: StoredAuditEvent[]): Promise<void>;
  lastAudit(): Promise<StoredAuditEvent | undefined>;
  /** Events with seq > afterSeq, in order, at most `limit`. */
  readAudit(afterSeq: number, limit: number): Promise<StoredAuditEvent[]>;

  close(): Promise<void>;
}
