import { CustosError } from "../../errors.js";
import { ENVELOPE_FORMAT, type ImportEnvelope } from "../../hsm/envelope.js";
import type { KeyCustody } from "../../hsm/hsm.js";
import type { ProposalRecord } from "../model.js";
import type { KindContext } from "./kind.js";

/**
 * The HSM steps key kinds share. Each is safe to repeat after a crash: an object an interrupted
 * run of the same proposal created (same CKA_ID: the version number is new) is adopted, with a
 * reconcile.adopt record, instead of created twice.
 */

/**
 * Unwraps the proposal's envelope into `objectId`, or adopts the object an interrupted run
 * already created. Returns true if this call created it.
 */
export async function unwrapOnce(ctx: KindContext, p: ProposalRecord, objectId: string, label: string, ed25519PublicKey?: Buffer): Promise<boolean> {
  if (await ctx.hsm.hasSecret(objectId)) {
    if (p.step !== "hsm") await adopted(ctx, p, objectId);
    return false;
  }
  if (!p.envelope) throw new CustosError("PRECONDITION_FAILED", "the proposal's envelope is gone");
  const envelope = deserialiseEnvelope(p.envelope);
  // An Ed25519 import (migration) unwraps a PKCS#8 private key, checked in the HSM against the approved public key.
  if (ed25519PublicKey) await ctx.hsm.unwrapPrivateKey("ed25519", envelope, { objectId, label }, ed25519PublicKey);
  else await ctx.hsm.unwrapSecret(envelope, { objectId, label });
  await ctx.store.governance.updateProposal(p.id, "executing", { step: "hsm" });
  return true;
}

/** Generates an Ed25519 pair inside the HSM as `objectId`, or adopts an interrupted run's. Returns true if created. */
export async function generateOnce(ctx: KindContext, p: ProposalRecord, keyId: string, objectId: string, label: string): Promise<boolean> {
  if (await ctx.hsm.hasSecret(objectId)) {
    await ctx.audit.recordNow({ kind: "reconcile.adopt", actor: "system", outcome: "ok", key: keyId, details: { proposal: p.id, digest: p.digest, objectId } });
    return false;
  }
  await ctx.hsm.generateKeyPair("ed25519", { objectId, label });
  await ctx.store.governance.updateProposal(p.id, "executing", { step: "hsm" });
  return true;
}

async function adopted(ctx: KindContext, p: ProposalRecord, objectId: string): Promise<void> {
  await ctx.audit.recordNow({
    kind: "reconcile.adopt",
    actor: "system",
    outcome: "ok",
    key: p.target,
    details: { proposal: p.id, digest: p.digest, objectId },
  });
}

/**
 * What can be checked without opening an envelope: its format, and that it was made for this
 * HSM's wrapping key and OAEP hash. (Whether it opens is known only when it executes.)
 */
export function checkEnvelope(hsm: KeyCustody, e: ImportEnvelope): void {
  const w = hsm.wrappingKey();
  if (e.format !== ENVELOPE_FORMAT) throw new CustosError("ENVELOPE_INVALID", `unknown envelope format ${e.format}`);
  if (e.wrappingKeyFingerprint !== w.fingerprint) throw new CustosError("ENVELOPE_INVALID", "envelope was made for another wrapping key");
  if (e.oaepHash !== w.oaepHash) throw new CustosError("ENVELOPE_INVALID", `this HSM unwraps OAEP with ${w.oaepHash}, not ${e.oaepHash}`);
}

/** Envelopes are stored with their proposal as JSON with base64 fields (only the HSM can open them). */
export function serialiseEnvelope(e: ImportEnvelope): string {
  return JSON.stringify({ ...e, encryptedAesKey: e.encryptedAesKey.toString("base64"), wrappedKey: e.wrappedKey.toString("base64") });
}

function deserialiseEnvelope(s: string): ImportEnvelope {
  const o = JSON.parse(s) as Omit<ImportEnvelope, "encryptedAesKey" | "wrappedKey"> & { encryptedAesKey: string; wrappedKey: string };
  return { ...o, encryptedAesKey: Buffer.from(o.encryptedAesKey, "base64"), wrappedKey: Buffer.from(o.wrappedKey, "base64") };
}
