import { randomBytes, verify } from "node:crypto";
import { CustosError } from "../../errors.js";
import { algorithmSpec } from "../algorithms.js";
import type { SecretObjectRef } from "../hsm.js";
import { ckrOf } from "./ckr.js";
import { CKM_EC_EDWARDS_KEY_PAIR_GEN, ed25519SpkiFromEcPoint } from "./eddsa.js";
import { findObjects, pkcs11js, type Handle, type Module } from "./module.js";
import {
  ed25519ImportTemplates,
  ed25519KeyPairTemplates,
  privateKeyQuery,
  publicKeyQuery,
  secretQuery,
  tokenObjectQuery,
  tokenPrivateKeysQuery,
} from "./templates.js";

/**
 * The objects of a key version on the token, by CKA_ID: an HMAC secret (CKO_SECRET_KEY), or an
 * Ed25519 private key and its public key. Each function runs on a leased session.
 */

/** KEY_EXISTS if any token object carries this CKA_ID: a caller's rollback may then only
 *  destroy what its own call created. */
export function assertIdFree(mod: Module, session: Handle, objectId: string): void {
  if (findObjects(mod, session, tokenObjectQuery(objectId)).length > 0) {
    throw new CustosError("KEY_EXISTS", `an HSM object with id ${objectId} already exists`);
  }
}

/**
 * Generates an Ed25519 key pair on the token and returns its public key as DER SPKI. If the
 * public key cannot be read back, both objects are destroyed before the error propagates.
 */
export function generateEd25519KeyPair(mod: Module, session: Handle, target: SecretObjectRef): Buffer {
  assertIdFree(mod, session, target.objectId);
  const t = ed25519KeyPairTemplates(target);
  const keys = mod.C_GenerateKeyPair(session, { mechanism: CKM_EC_EDWARDS_KEY_PAIR_GEN }, t.publicKey, t.privateKey);
  try {
    return spkiOf(mod, session, keys.publicKey);
  } catch (e) {
    for (const h of [keys.privateKey, keys.publicKey]) {
      try {
        mod.C_DestroyObject(session, h);
      } catch {
        /* session gone: start-up reconciliation finds the orphan by CKA_ID */
      }
    }
    throw e;
  }
}

/** The DER SPKI of the Ed25519 public key with this CKA_ID, or undefined. */
export function ed25519PublicKey(mod: Module, session: Handle, objectId: string): Buffer | undefined {
  const [handle] = findObjects(mod, session, publicKeyQuery(objectId));
  return handle === undefined ? undefined : spkiOf(mod, session, handle);
}

function spkiOf(mod: Module, session: Handle, publicKey: Handle): Buffer {
  const [point] = mod.C_GetAttributeValue(session, publicKey, [{ type: pkcs11js.CKA_EC_POINT }]);
  return ed25519SpkiFromEcPoint(point!.value as Buffer);
}

/** CKA_IDs of the token's secrets and Ed25519 private keys, each once, in token order. */
export function signingKeyIds(mod: Module, session: Handle): string[] {
  const handles = [
    ...findObjects(mod, session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_TOKEN, value: true },
    ]),
    ...findObjects(mod, session, tokenPrivateKeysQuery()),
  ];
  const ids = handles.map((h) => (mod.C_GetAttributeValue(session, h, [{ type: pkcs11js.CKA_ID }])[0]!.value as Buffer).toString());
  return [...new Set(ids)];
}

/** Destroys the version's secret, private and public key objects, session copies included. */
export function destroyVersionObjects(mod: Module, session: Handle, objectId: string): void {
  for (const query of [secretQuery(objectId), privateKeyQuery(objectId), publicKeyQuery(objectId)]) {
    for (const h of findObjects(mod, session, query)) mod.C_DestroyObject(session, h);
  }
}

/** SubjectPublicKeyInfo DER of an Ed25519 key up to its 32 key bytes (RFC 8410). */
const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

/**
 * Unwraps a PKCS#8 Ed25519 private key with the envelope's one-time AES key, writes its public
 * key object from `publicKeySpki`, and proves the pair in the HSM: a random challenge signed
 * with the private key must verify with the public key. Any failure destroys what this call
 * created. HSM_UNSUPPORTED when the token cannot build an EdDSA key from PKCS#8 (SoftHSM2
 * 2.6.1 answers CKR_FUNCTION_FAILED; its C_UnwrapKey has no EdDSA branch).
 */
export function unwrapEd25519PrivateKey(
  mod: Module,
  session: Handle,
  aesKey: Handle,
  wrappedKey: Buffer,
  target: SecretObjectRef,
  publicKeySpki: Buffer,
): void {
  if (publicKeySpki.length !== ED25519_SPKI_PREFIX.length + 32 || !publicKeySpki.subarray(0, ED25519_SPKI_PREFIX.length).equals(ED25519_SPKI_PREFIX)) {
    throw new CustosError("INVALID_ARGUMENT", "the public key is not an Ed25519 SubjectPublicKeyInfo");
  }
  const ecPoint = Buffer.concat([Buffer.from([0x04, 0x20]), publicKeySpki.subarray(ED25519_SPKI_PREFIX.length)]);
  const t = ed25519ImportTemplates(target, ecPoint);
  let privateKey: Handle;
  try {
    privateKey = mod.C_UnwrapKey(session, { mechanism: pkcs11js.CKM_AES_KEY_WRAP_PAD }, aesKey, wrappedKey, t.privateKey);
  } catch (e) {
    if (ckrOf(e) === pkcs11js.CKR_FUNCTION_FAILED) {
      throw new CustosError(
        "HSM_UNSUPPORTED",
        "this HSM cannot unwrap an Ed25519 private key (CKR_FUNCTION_FAILED at C_UnwrapKey; stock SoftHSM2 2.6.1 has no EdDSA unwrap: see README, Migrating an existing Ed25519 key)",
        { cause: e },
      );
    }
    throw e;
  }
  const created: Handle[] = [privateKey];
  try {
    created.push(mod.C_CreateObject(session, t.publicKey));
    const challenge = randomBytes(32);
    mod.C_SignInit(session, { mechanism: algorithmSpec("ed25519").mechanism }, privateKey);
    const signature = mod.C_Sign(session, challenge, Buffer.alloc(64));
    if (!verify(null, challenge, { key: publicKeySpki, format: "der", type: "spki" }, signature)) {
      throw new CustosError("ENVELOPE_INVALID", "the wrapped private key does not match the proposal's public key");
    }
  } catch (e) {
    for (const h of created) {
      try {
        mod.C_DestroyObject(session, h);
      } catch {
        /* session gone: start-up reconciliation finds the orphan by CKA_ID */
      }
    }
    throw e;
  }
}
