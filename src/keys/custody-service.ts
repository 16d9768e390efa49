import type { AuditLog } from "../audit/audit-log.js";
import { CustosError, type CustosErrorCode } from "../errors.js";
import { isSigningAlgorithm } from "../hsm/algorithms.js";
import { envelopeDigest, type ImportEnvelope } from "../hsm/envelope.js";
import type { Hsm, WrappingKeyInfo } from "../hsm/hsm.js";
import { addressAllowed, allowList, type AccessDirectory } from "../signing/directory.js";
import type { CallerContext } from "../signing/sign-service.js";
import { isClientRole, type ClientRecord } from "../signing/clients.js";
import type { Store } from "../store/store.js";
import { DEFAULT_MAX_AGE_DAYS, versionObjectId, type KeyRecord, type KeyWithVersions } from "./model.js";

/** A key's metadata as an officer submits it, with the wrapped secret. */
export interface ImportKeyInput extends Omit<KeyRecord, "id" | "createdAt"> {
  keyId: string;
  /** Optional here so a missing envelope is refused after the caller's role is checked. */
  envelope: ImportEnvelope | undefined;
}

const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const EXCHANGE = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/**
 * Key custody administration: wrapped imports, clients and grants. Callers must be
 * registered administrators (the bootstrap administrator until governance lands).
 * Every change is audited before it is answered; the access snapshot is reloaded after it.
 */
export class CustodyService {
  constructor(
    private readonly store: Store,
    private readonly hsm: Hsm,
    private readonly audit: AuditLog,
    private readonly directory: AccessDirectory,
    /** Identities granted every key imported (the embedded default's dev client); empty in a configured deployment. */
    private readonly autoGrant: readonly string[],
    /** The configured bootstrap administrators: the only identities that may import until officer quorum governs imports. */
    private readonly importers: readonly string[],
  ) {}

  wrappingKey(caller: CallerContext): WrappingKeyInfo {
    this.requireKnown(caller, "wrapping_key.get");
    return this.hsm.wrappingKey();
  }

  async importKey(caller: CallerContext, input: ImportKeyInput): Promise<KeyWithVersions> {
    const actor = this.requireAdmin(caller, "key.import");
    if (!this.importers.includes(actor)) {
      throw this.deny(caller, "key.import", "ROLE_NOT_ALLOWED", "only a configured bootstrap administrator may import keys");
    }
    try {
      validateImport(input);
    } catch (e) {
      await this.audit.recordNow({ kind: "key.import", actor, outcome: "denied", reason: (e as CustosError).code, key: input.keyId });
      throw e;
    }
    const envelope = input.envelope!; // validateImport refused a missing one
    const digest = envelopeDigest(envelope);
    if (await this.store.getKey(input.keyId)) {
      await this.audit.recordNow({ kind: "key.import", actor, outcome: "denied", reason: "KEY_EXISTS", key: input.keyId });
      throw new CustosError("KEY_EXISTS", `key ${input.keyId} already exists`);
    }
    const objectId = versionObjectId(input.keyId, 1);
    const now = new Date().toISOString();
    try {
      await this.hsm.unwrapSecret(envelope, { objectId, label: `${input.exchange}/${input.keyId}/v1` });
    } catch (e) {
      const code = e instanceof CustosError ? e.code : "INTERNAL";
      await this.audit.recordNow({ kind: "key.import", actor, outcome: "denied", reason: code, key: input.keyId, details: { envelopeSha256: digest } });
      throw e;
    }
    try {
      await this.store.createKey(
        {
          id: input.keyId,
          exchange: input.exchange,
          environment: input.environment,
          label: input.label,
          apiKeyId: input.apiKeyId,
          algorithm: input.algorithm,
          maxAgeDays: input.maxAgeDays,
          createdAt: now,
        },
        { keyId: input.keyId, version: 1, objectId, state: "active", createdAt: now, activatedAt: now },
      );
    } catch (e) {
      // Change, persist, or roll back: no HSM object without its record. (unwrapSecret refuses an
      // existing CKA_ID, so the object destroyed here is the one this call created.)
      await this.hsm.destroySecret(objectId).catch(() => undefined);
      const code = e instanceof CustosError ? e.code : "INTERNAL";
      await this.audit.recordNow({ kind: "key.import", actor, outcome: "failed", reason: code, key: input.keyId, details: { envelopeSha256: digest, rolledBack: true } }).catch(() => undefined);
      throw e;
    }
    for (const identity of this.autoGrant) await this.store.addGrant(identity, input.keyId);
    await this.audit.recordNow({
      kind: "key.import",
      actor,
      outcome: "ok",
      key: input.keyId,
      version: 1,
      details: { exchange: input.exchange, environment: input.environment, algorithm: input.algorithm, envelopeSha256: digest },
    });
    await this.directory.reload(this.store);
    return (await this.store.getKey(input.keyId))!;
  }

  async listKeys(caller: CallerContext): Promise<KeyWithVersions[]> {
    this.requireAdmin(caller, "key.list");
    return this.store.listKeys();
  }

  async addClient(caller: CallerContext, input: { identity: string; name: string; role: string; cidrs: string[] }): Promise<ClientRecord> {
    const actor = this.requireAdmin(caller, "client.add");
    if (!input.identity) throw new CustosError("INVALID_ARGUMENT", "identity is required");
    if (!isClientRole(input.role)) throw new CustosError("INVALID_ARGUMENT", `role must be trader or admin, not ${JSON.stringify(input.role)}`);
    allowList(input.cidrs); // validates every CIDR
    const existing = await this.store.getClient(input.identity);
    const record: ClientRecord = {
      identity: input.identity,
      name: input.name || input.identity,
      role: input.role,
      cidrs: input.cidrs,
      createdAt: existing?.createdAt ?? new Date().toISOString(),
    };
    await this.store.upsertClient(record);
    await this.audit.recordNow({ kind: "client.add", actor, outcome: "ok", details: { identity: record.identity, role: record.role, cidrs: record.cidrs.join(",") } });
    await this.directory.reload(this.store);
    return record;
  }

  async grant(caller: CallerContext, identity: string, keyId: string): Promise<void> {
    const actor = this.requireAdmin(caller, "grant");
    if (!(await this.store.getClient(identity))) throw new CustosError("UNKNOWN_CLIENT", `no client ${identity}`);
    if (!(await this.store.getKey(keyId))) throw new CustosError("KEY_NOT_FOUND", `no key ${keyId}`);
    await this.store.addGrant(identity, keyId);
    await this.audit.recordNow({ kind: "grant", actor, outcome: "ok", key: keyId, details: { identity } });
    await this.directory.reload(this.store);
  }

  async listClients(caller: CallerContext): Promise<Array<ClientRecord & { grants: string[] }>> {
    this.requireAdmin(caller, "client.list");
    const grants = await this.store.listGrants();
    return (await this.store.listClients()).map((c) => ({ ...c, grants: [...(grants.get(c.identity) ?? [])].sort() }));
  }

  private requireKnown(caller: CallerContext, action: string): string {
    if (!caller.identity) throw this.deny(caller, action, "UNAUTHENTICATED", "no client identity in the certificate");
    const client = this.directory.client(caller.identity);
    if (!client) throw this.deny(caller, action, "UNKNOWN_CLIENT", "client identity is not registered");
    if (!addressAllowed(client, caller.ip)) throw this.deny(caller, action, "ADDRESS_NOT_ALLOWED", "address is not in the client's allowlist");
    return client.identity;
  }

  private requireAdmin(caller: CallerContext, action: string): string {
    const identity = this.requireKnown(caller, action);
    if (this.directory.client(identity)!.role !== "admin") throw this.deny(caller, action, "ROLE_NOT_ALLOWED", "administrator identity required");
    return identity;
  }

  /** A refused admin call is a decision too: queue its audit record (like sign denials), then throw. */
  private deny(caller: CallerContext, kind: string, code: CustosErrorCode, message: string): CustosError {
    this.audit.record({ kind, actor: caller.identity ?? "unknown", outcome: "denied", reason: code, ...(caller.ip ? { peer: caller.ip } : {}) });
    return new CustosError(code, message);
  }
}

function validateImport(i: ImportKeyInput): void {
  if (!i.envelope) throw new CustosError("INVALID_ARGUMENT", "envelope is required");
  if (!KEY_ID.test(i.keyId)) throw new CustosError("INVALID_ARGUMENT", "key id must be 1–64 of [A-Za-z0-9._-], starting alphanumeric");
  if (!EXCHANGE.test(i.exchange)) throw new CustosError("INVALID_ARGUMENT", "exchange must be a lower-case name such as binance");
  if (i.environment !== "mainnet" && i.environment !== "testnet") throw new CustosError("INVALID_ARGUMENT", "environment must be mainnet or testnet");
  if (!isSigningAlgorithm(i.algorithm)) throw new CustosError("INVALID_ARGUMENT", "unsupported algorithm");
  if (!Number.isInteger(i.maxAgeDays) || i.maxAgeDays < 1 || i.maxAgeDays > 3650) throw new CustosError("INVALID_ARGUMENT", "max age must be 1–3650 days");
  if (i.apiKeyId.length > 256) throw new CustosError("INVALID_ARGUMENT", "api key id is too long");
}

export { DEFAULT_MAX_AGE_DAYS };

/**
 * Start-up reconciliation: an HSM secret object whose version is not in the store is the
 * remnant of an import that crashed between unwrap and record; it is destroyed (its
 * envelope is gone, so nothing can adopt it yet). Returns the ids destroyed.
 */
export async function reconcileOrphans(store: Store, hsm: Hsm, audit: AuditLog): Promise<string[]> {
  const known = new Set((await store.listKeys()).flatMap((k) => k.versions.filter((v) => v.state !== "destroyed").map((v) => v.objectId)));
  const orphans = (await hsm.listSecretIds()).filter((id) => id.startsWith("custos:") && !known.has(id));
  for (const id of orphans) {
    await hsm.destroySecret(id);
    await audit.recordNow({ kind: "reconcile.destroy_orphan", actor: "system", outcome: "ok", details: { objectId: id } });
  }
  return orphans;
}
