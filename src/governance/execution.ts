import { sha256Hex } from "../audit/sha256.js";
import type { AuditEvent, AuditLog } from "../audit/audit-log.js";
import { CustosError, type CustosErrorCode } from "../errors.js";
import type { ImportEnvelope } from "../hsm/envelope.js";
import type { Hsm } from "../hsm/hsm.js";
import { activeVersion, versionObjectId, type KeyVersionRecord } from "../keys/model.js";
import type { Store, StoreTables } from "../store/store.js";
import { faultPoint } from "./fault.js";
import type { OfficerRecord, ProposalRecord } from "./model.js";
import { parseOfficerPublicKey, publicKeyFingerprint } from "./officer-key.js";
import type { ProposalContent } from "./proposal.js";
import { DEFAULT_GRACE_SECONDS, ed25519PublicKeyOf, type NewKeyMetadata, type OfficerSpec } from "./proposal-input.js";
import { validateRules, type QuorumRules } from "./quorum.js";
import { KEY_KINDS } from "./summary.js";

/**
 * The steps of an approved proposal, each safe to repeat after a crash: the HSM step adopts
 * an object an interrupted run created (by CKA_ID), the record step and the proposal's
 * "executed" mark are one transaction, and the audit records are written from the state the
 * change left. ProposalLifecycle decides when to run them; this class only runs them.
 */
export class ProposalSteps {
  constructor(
    private readonly store: Store,
    private readonly hsm: Hsm,
    private readonly audit: AuditLog,
    private readonly opts: { autoGrant: readonly string[]; proposerCounts: boolean; veto: boolean },
  ) {}

  /**
   * After the change and the executed mark (one transaction): the audit records of what
   * changed, then step "audited". A crash in between is finished by resume(), from the state
   * the change left, so the records are the same either way, and none is written twice.
   */
  async completed(p: ProposalRecord, alreadyWritten: ReadonlySet<string> = new Set()): Promise<void> {
    const c = JSON.parse(p.canonical) as ProposalContent;
    // After a crash between two of these records, resume() passes the kinds already in the chain.
    const record = (event: AuditEvent) => (alreadyWritten.has(event.kind) ? Promise.resolve() : this.audit.recordNow(event));
    const base = { actor: p.proposer, outcome: "ok" as const };
    const ref = { proposal: p.id, digest: p.digest };
    if (c.kind === "import_key" || c.kind === "generate_key") {
      const k = c.params as unknown as NewKeyMetadata;
      const publicKey = c.kind === "generate_key" ? await this.hsm.publicKey(versionObjectId(c.target, 1)) : undefined;
      await record({
        ...base,
        kind: c.kind === "import_key" ? "key.import" : "key.generate",
        key: c.target,
        version: 1,
        details: { ...ref, exchange: k.exchange, environment: k.environment, algorithm: k.algorithm, ...(publicKey ? { publicKeySha256: sha256Hex(publicKey) } : {}) },
      });
    } else if (c.kind === "rotate_key") {
      const key = await this.store.keys.getKey(c.target);
      const pending = key?.algorithm === "ed25519" ? key.versions.filter((v) => v.state === "pending").at(-1) : undefined;
      if (pending) {
        // An Ed25519 rotation: the new pair waits for the exchange's API key id (set_api_key_id).
        const publicKey = await this.hsm.publicKey(pending.objectId);
        await record({ ...base, kind: "key.rotate", key: c.target, version: pending.version, details: { ...ref, state: "pending", ...(publicKey ? { publicKeySha256: sha256Hex(publicKey) } : {}) } });
      } else {
        const active = key && activeVersion(key);
        const retiring = key?.versions.filter((v) => v.state === "retiring").at(-1);
        await record({ ...base, kind: "key.rotate", key: c.target, ...(active ? { version: active.version } : {}), details: { ...ref, ...(retiring?.retireAt ? { retiringUntil: retiring.retireAt } : {}) } });
      }
    } else if (c.kind === "add_credential" || c.kind === "remove_credential") {
      await record({ ...base, kind: `officer.${c.kind}`, details: { ...ref, officer: c.target, credentialKind: "passkey", credentialId: String(c.params.credentialId) } });
    } else if (c.kind === "thaw") {
      await record({ ...base, kind: "thaw", ...(c.target.startsWith("key:") ? { key: c.target.slice(4) } : {}), details: { ...ref, target: c.target } });
    }
    if (c.kind === "import_key") faultPoint("import:between-audit-records");
    await record({ kind: "proposal.executed", actor: "system", outcome: "ok", key: keyOf(p), details: { ...ref, proposalKind: p.kind, target: p.target } });
    await this.store.governance.updateProposal(p.id, "executed", { step: "audited" });
  }

  async run(p: ProposalRecord, c: ProposalContent, done: { proposalId: string; at: string }): Promise<void> {
    const params = c.params as Record<string, unknown>;
    switch (c.kind) {
      case "import_key": {
        const key = params as unknown as NewKeyMetadata;
        if (await this.store.keys.getKey(key.keyId)) throw new CustosError("KEY_EXISTS", `key ${key.keyId} already exists`);
        const objectId = versionObjectId(key.keyId, 1);
        const created = await this.unwrapOnce(p, objectId, `${key.exchange}/${key.keyId}/v1`, key.algorithm === "ed25519" ? ed25519PublicKeyOf(key.publicKeyPem) : undefined);
        faultPoint("import:after-hsm");
        // The signed passphrase (KuCoin) is what every request sends in the clear header: neither the passphrase nor the secret.
        const signedPassphrase = key.signedPassphrase ?? null;
        const first: KeyVersionRecord = {
          keyId: key.keyId,
          version: 1,
          objectId,
          state: "active",
          createdAt: done.at,
          activatedAt: done.at,
          apiKeyId: null,
          retireAt: null,
          signedPassphrase,
        };
        await this.orRollBack(created, objectId, () =>
          this.recordDone(done, async (tx) => {
            await tx.keys.createKey({ id: key.keyId, exchange: key.exchange, environment: key.environment, label: key.label, apiKeyId: key.apiKeyId, algorithm: key.algorithm, maxAgeDays: key.maxAgeDays, createdAt: done.at }, first);
            for (const identity of this.opts.autoGrant) await tx.clients.addGrant(identity, key.keyId);
          }),
        );
        faultPoint("import:after-record");
        return;
      }
      case "generate_key": {
        const key = params as unknown as NewKeyMetadata;
        if (await this.store.keys.getKey(key.keyId)) throw new CustosError("KEY_EXISTS", `key ${key.keyId} already exists`);
        const objectId = versionObjectId(key.keyId, 1);
        // Generated inside the HSM; an interrupted run's key pair (same CKA_ID) is adopted.
        let created = false;
        if (await this.hsm.hasSecret(objectId)) {
          await this.audit.recordNow({ kind: "reconcile.adopt", actor: "system", outcome: "ok", key: key.keyId, details: { proposal: p.id, digest: p.digest, objectId } });
        } else {
          await this.hsm.generateKeyPair("ed25519", { objectId, label: `${key.exchange}/${key.keyId}/v1` });
          await this.store.governance.updateProposal(p.id, "executing", { step: "hsm" });
          created = true;
        }
        const first: KeyVersionRecord = { keyId: key.keyId, version: 1, objectId, state: "active", createdAt: done.at, activatedAt: done.at, apiKeyId: null, retireAt: null };
        await this.orRollBack(created, objectId, () =>
          this.recordDone(done, async (tx) => {
            await tx.keys.createKey({ id: key.keyId, exchange: key.exchange, environment: key.environment, label: key.label, apiKeyId: key.apiKeyId, algorithm: key.algorithm, maxAgeDays: key.maxAgeDays, createdAt: done.at }, first);
            for (const identity of this.opts.autoGrant) await tx.clients.addGrant(identity, key.keyId);
          }),
        );
        return;
      }
      case "rotate_key": {
        const key = await this.store.keys.getKey(c.target);
        if (!key) throw new CustosError("KEY_NOT_FOUND", `no key ${c.target}`);
        if (key.algorithm === "ed25519") return this.rotateEd25519(p, key.id, key.exchange, Math.max(...key.versions.map((v) => v.version)) + 1, done);
        // Not recorded yet (recording marks the proposal executed in the same transaction), so
        // the new version is the next number; an interrupted run's HSM object is adopted.
        const version = Math.max(...key.versions.map((v) => v.version)) + 1;
        const objectId = versionObjectId(key.id, version);
        const created = await this.unwrapOnce(p, objectId, `${key.exchange}/${key.id}/v${version}`);
        faultPoint("rotate:after-hsm");
        const graceSeconds = params.graceSeconds as number;
        const retireAt = new Date(Date.parse(done.at) + graceSeconds * 1000).toISOString();
        const apiKeyId = (params.apiKeyId as string) || null;
        // KuCoin: the new secret's passphrase HMAC, as approved (the clear header value, not a secret).
        const signedPassphrase = typeof params.signedPassphrase === "string" ? params.signedPassphrase : null;
        const next: KeyVersionRecord = { keyId: key.id, version, objectId, state: "active", createdAt: done.at, activatedAt: done.at, apiKeyId, retireAt: null };
        next.signedPassphrase = signedPassphrase;
        await this.orRollBack(created, objectId, () => this.recordDone(done, (tx) => tx.keys.rotateKey(key.id, next, retireAt)));
        faultPoint("rotate:after-record");
        return;
      }
      case "set_api_key_id": {
        const key = await this.store.keys.getKey(c.target);
        if (!key) throw new CustosError("KEY_NOT_FOUND", `no key ${c.target}`);
        const pending = key.versions.find((v) => v.state === "pending");
        if (!pending) {
          await this.recordDone(done, (tx) => tx.keys.setApiKeyId(c.target, params.apiKeyId as string));
          return;
        }
        // The id the exchange assigned to a rotated Ed25519 key's new public key: the new version
        // takes over, and the old one signs for pinned clients through the rotation's grace.
        const retireAt = new Date(Date.parse(done.at) + (await this.rotationGraceSeconds(c.target)) * 1000).toISOString();
        await this.recordDone(done, (tx) => tx.keys.activatePendingVersion(c.target, pending.version, params.apiKeyId as string, done.at, retireAt));
        return;
      }
      case "destroy_version": {
        const version = params.version as number;
        await this.destroyVersion(c.target, version, { ...done, digest: p.digest });
        return;
      }
      case "set_grants": {
        const g = params as unknown as { name: string; cidrs: string[]; keyIds: string[]; canFreeze: boolean };
        for (const k of g.keyIds) if (!(await this.store.keys.getKey(k))) throw new CustosError("KEY_NOT_FOUND", `no key ${k}`);
        const existing = await this.store.clients.getClient(c.target);
        if (existing && existing.role !== "trader") throw new CustosError("PRECONDITION_FAILED", `${c.target} is not a trading client`);
        const client = { identity: c.target, name: g.name || existing?.name || c.target, role: "trader" as const, cidrs: g.cidrs, createdAt: existing?.createdAt ?? done.at, canFreeze: g.canFreeze };
        await this.recordDone(done, (tx) => tx.clients.setClientAccess(client, g.keyIds));
        return;
      }
      case "set_policy": {
        if (!(await this.store.keys.getKey(c.target))) throw new CustosError("KEY_NOT_FOUND", `no key ${c.target}`);
        await this.recordDone(done, (tx) => tx.keys.setPolicy(c.target, JSON.stringify(params.policy), done.at));
        return;
      }
      case "add_officer": {
        const o = params as unknown as { displayName: string; identity: string; publicKeyPem: string };
        await this.recordDone(done, (tx) => tx.governance.addOfficer(officerRecord({ id: c.target, ...o }, done.at)));
        return;
      }
      case "remove_officer": {
        const active = (await this.store.governance.listOfficers()).filter((o) => o.status === "active");
        if (!active.some((o) => o.id === c.target)) throw new CustosError("PRECONDITION_FAILED", `no active officer ${c.target}`);
        checkRemovable(this.opts, active.length, (await this.store.governance.getGovernance())!.threshold, c.target);
        await this.recordDone(done, (tx) => tx.governance.setOfficerStatus(c.target, "removed"));
        return;
      }
      case "set_threshold": {
        const threshold = params.threshold as number;
        const active = (await this.store.governance.listOfficers()).filter((o) => o.status === "active").length;
        validateRules({ threshold, proposerCounts: this.opts.proposerCounts, veto: this.opts.veto }, active);
        await this.recordDone(done, (tx) => tx.governance.setThreshold(threshold));
        return;
      }
      case "add_credential": {
        const k = params as { credentialId: string; publicKey: string; counter: number; transports: string[]; aaguid: string; label: string };
        if (!(await this.store.governance.listOfficers()).some((o) => o.id === c.target && o.status === "active")) throw new CustosError("PRECONDITION_FAILED", `no active officer ${c.target}`);
        const passkey = { id: k.credentialId, officerId: c.target, publicKey: k.publicKey, counter: k.counter, transports: k.transports, aaguid: k.aaguid, label: k.label, createdAt: done.at, lastUsedAt: null };
        await this.recordDone(done, (tx) => tx.governance.addPasskey(passkey));
        return;
      }
      case "remove_credential": {
        const existing = await this.store.governance.getPasskey(String(params.credentialId));
        if (!existing || existing.officerId !== c.target) throw new CustosError("PRECONDITION_FAILED", `officer ${c.target} has no such passkey`);
        await this.recordDone(done, (tx) => tx.governance.removePasskey(existing.id));
        return;
      }
      case "thaw": {
        const [target, ...rest] = c.target.split(":");
        const id = rest.join(":");
        if (target === "key") await this.recordDone(done, (tx) => tx.keys.setKeyFrozen(id, null));
        else await this.recordDone(done, (tx) => tx.clients.setClientFrozen(id, null));
        return;
      }
    }
  }

  /** A rotated Ed25519 key's new pair, generated in the HSM (or adopted after a crash) as a pending version. */
  private async rotateEd25519(p: ProposalRecord, keyId: string, exchange: string, version: number, done: { proposalId: string; at: string }): Promise<void> {
    const objectId = versionObjectId(keyId, version);
    let created = false;
    if (await this.hsm.hasSecret(objectId)) {
      await this.audit.recordNow({ kind: "reconcile.adopt", actor: "system", outcome: "ok", key: keyId, details: { proposal: p.id, digest: p.digest, objectId } });
    } else {
      await this.hsm.generateKeyPair("ed25519", { objectId, label: `${exchange}/${keyId}/v${version}` });
      await this.store.governance.updateProposal(p.id, "executing", { step: "hsm" });
      created = true;
    }
    faultPoint("rotate:after-hsm");
    await this.orRollBack(created, objectId, () => this.recordDone(done, (tx) => tx.keys.addPendingVersion({ keyId, version, objectId, state: "pending", createdAt: done.at, activatedAt: null, apiKeyId: null, retireAt: null })));
    faultPoint("rotate:after-record");
  }

  /** The grace period of the key's latest executed rotation (the default if none is found). */
  private async rotationGraceSeconds(keyId: string): Promise<number> {
    const rotation = (await this.store.governance.listProposals("executed")).filter((r) => r.kind === "rotate_key" && r.target === keyId).sort((a, b) => a.createdAt.localeCompare(b.createdAt)).at(-1);
    const grace = rotation ? (JSON.parse(rotation.canonical) as ProposalContent).params.graceSeconds : undefined;
    return typeof grace === "number" ? grace : DEFAULT_GRACE_SECONDS;
  }

  /**
   * Unwraps the proposal's envelope into `objectId`, or adopts the object an interrupted run
   * already created (same proposal, same CKA_ID). Returns true if this call created it.
   */
  private async unwrapOnce(p: ProposalRecord, objectId: string, label: string, ed25519PublicKey?: Buffer): Promise<boolean> {
    if (await this.hsm.hasSecret(objectId)) {
      if (p.step !== "hsm") {
        // Created by this proposal's interrupted run (nothing else uses this CKA_ID: the
        // version number is new); adopt it.
        await this.audit.recordNow({ kind: "reconcile.adopt", actor: "system", outcome: "ok", key: p.target, details: { proposal: p.id, digest: p.digest, objectId } });
      }
      return false;
    }
    if (!p.envelope) throw new CustosError("PRECONDITION_FAILED", "the proposal's envelope is gone");
    const envelope = deserialiseEnvelope(p.envelope);
    // An Ed25519 import (migration) unwraps a PKCS#8 private key, checked in the HSM against the approved public key.
    if (ed25519PublicKey) await this.hsm.unwrapPrivateKey("ed25519", envelope, { objectId, label }, ed25519PublicKey);
    else await this.hsm.unwrapSecret(envelope, { objectId, label });
    await this.store.governance.updateProposal(p.id, "executing", { step: "hsm" });
    return true;
  }

  /** The record step and the proposal's "executed" mark, in one transaction. */
  private recordDone(done: { proposalId: string; at: string }, write: (tx: StoreTables) => Promise<void>): Promise<void> {
    return this.store.transaction(async (tx) => {
      await write(tx);
      await tx.governance.markExecuted(done.proposalId, done.at);
    });
  }

  /** Runs the record step; if it fails, an HSM object this run created is destroyed (no orphan). */
  private async orRollBack(created: boolean, objectId: string, write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (e) {
      if (created) await this.hsm.destroySecret(objectId).catch(() => undefined);
      throw e;
    }
  }

  /** destroying (persisted) → C_DestroyObject → destroyed; each step safe to repeat after a crash. */
  async destroyVersion(keyId: string, version: number, done?: { proposalId: string; at: string; digest: string }): Promise<void> {
    const key = await this.store.keys.getKey(keyId);
    const v = key?.versions.find((x) => x.version === version);
    if (!key || !v) throw new CustosError("VERSION_NOT_FOUND", `key ${keyId} has no version ${version}`);
    if (v.state === "active" && done) throw new CustosError("PRECONDITION_FAILED", `version ${version} is the active version: rotate first`);
    if (v.state !== "destroying" && v.state !== "destroyed") {
      await this.store.keys.updateVersionState(keyId, version, "destroying");
      faultPoint("destroy:after-mark");
    }
    await this.hsm.destroySecret(v.objectId);
    faultPoint("destroy:after-hsm");
    if (done) await this.recordDone(done, (tx) => tx.keys.updateVersionState(keyId, version, "destroyed"));
    else await this.store.keys.updateVersionState(keyId, version, "destroyed");
    await this.audit.recordNow({ kind: "key.destroy_version", actor: done ? "officers" : "system", outcome: "ok", key: keyId, version, details: { objectId: v.objectId, ...(done ? { proposal: done.proposalId, digest: done.digest } : { reason: "grace period ended" }) } });
  }
}

/** The officers left after a removal must still be able to reach the threshold under the quorum rules. */
export function checkRemovable(rules: Omit<QuorumRules, "threshold">, activeCount: number, threshold: number, officerId: string): void {
  try {
    validateRules({ threshold, proposerCounts: rules.proposerCounts, veto: rules.veto }, activeCount - 1);
  } catch {
    throw new CustosError("PRECONDITION_FAILED", `removing ${officerId} would leave ${activeCount - 1} officers, too few to reach the threshold of ${threshold}: lower the threshold first`);
  }
}

export function keyOf(p: ProposalRecord): string | undefined {
  return KEY_KINDS.has(p.kind) ? p.target : undefined;
}

export function codeOf(e: unknown): CustosErrorCode {
  return e instanceof CustosError ? e.code : "INTERNAL";
}

export function officerRecord(s: OfficerSpec, at: string): OfficerRecord {
  const publicKey = parseOfficerPublicKey(s.publicKeyPem);
  return { id: s.id, displayName: s.displayName || s.id, identity: s.identity, publicKeyPem: s.publicKeyPem.trim() + "\n", fingerprint: publicKeyFingerprint(publicKey), status: "active", createdAt: at };
}

function deserialiseEnvelope(s: string): ImportEnvelope {
  const o = JSON.parse(s) as Omit<ImportEnvelope, "encryptedAesKey" | "wrappedKey"> & { encryptedAesKey: string; wrappedKey: string };
  return { ...o, encryptedAesKey: Buffer.from(o.encryptedAesKey, "base64"), wrappedKey: Buffer.from(o.wrappedKey, "base64") };
}
