import { CustosError } from "../../errors.js";
import { checkpointDigest, p256PublicKey, type CheckpointHead } from "../checkpoint-statement.js";
import { findObjects, pkcs11js, type Handle, type Module } from "./module.js";
import { checkpointKeyPairTemplates, checkpointKeyQuery } from "./templates.js";

/**
 * The audit checkpoint key on the token (ECDSA P-256, CKA_ID custos-audit-checkpoint-v1).
 * Each function runs on a session the caller holds, logged in.
 */

/** Creates the checkpoint key pair unless the token has it; HSM_ERROR on half a pair. */
export function ensureCheckpointKeyPair(mod: Module, session: Handle): { created: boolean } {
  const havePrivate = findObjects(mod, session, checkpointKeyQuery("private")).length > 0;
  const havePublic = findObjects(mod, session, checkpointKeyQuery("public")).length > 0;
  if (havePrivate && havePublic) return { created: false };
  if (havePrivate !== havePublic) throw new CustosError("HSM_ERROR", "token holds half an audit checkpoint key pair; remove it before `custos hsm init`");
  const t = checkpointKeyPairTemplates();
  mod.C_GenerateKeyPair(session, { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN }, t.publicKey, t.privateKey);
  return { created: true };
}

/** The checkpoint public key as DER SPKI, or undefined if the token has none. */
export function checkpointPublicKeySpki(mod: Module, session: Handle): Buffer | undefined {
  const [handle] = findObjects(mod, session, checkpointKeyQuery("public"));
  if (handle === undefined) return undefined;
  const [point] = mod.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_EC_POINT }]);
  return p256PublicKey(point!.value as Buffer).export({ type: "spki", format: "der" });
}

/** Signs the checkpoint statement of `head`: ECDSA P-256 over its SHA-256, r‖s (64 bytes). */
export function signCheckpointStatement(mod: Module, session: Handle, head: CheckpointHead): Buffer {
  const [key] = findObjects(mod, session, checkpointKeyQuery("private"));
  if (key === undefined) throw new CustosError("HSM_ERROR", "token has no audit checkpoint key: run `custos hsm init`");
  mod.C_SignInit(session, { mechanism: pkcs11js.CKM_ECDSA }, key);
  return mod.C_Sign(session, checkpointDigest(head), Buffer.alloc(64));
}
