import pkcs11js from "pkcs11js";
import type { SecretObjectRef } from "../hsm.js";
import { CKK_EC_EDWARDS, ED25519_EC_PARAMS } from "./eddsa.js";

/**
 * Object templates. Every usage attribute is set explicitly: SoftHSM2 defaults the
 * unspecified ones (ENCRYPT, DECRYPT, WRAP, UNWRAP, VERIFY, MODIFIABLE, COPYABLE) to true.
 */
const p = pkcs11js;

export const WRAPPING_KEY_LABEL = "custos-wrapping-key";
const WRAPPING_KEY_ID = Buffer.from("custos-wrapping-key-v1");

/** An exchange secret: HMAC sign only, sensitive, never extractable, on the token. */
export function secretTemplate(ref: SecretObjectRef): pkcs11js.Template {
  return [
    { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
    { type: p.CKA_KEY_TYPE, value: p.CKK_GENERIC_SECRET },
    { type: p.CKA_TOKEN, value: true },
    { type: p.CKA_PRIVATE, value: true },
    { type: p.CKA_SENSITIVE, value: true },
    { type: p.CKA_EXTRACTABLE, value: false },
    { type: p.CKA_SIGN, value: true },
    { type: p.CKA_VERIFY, value: false },
    { type: p.CKA_ENCRYPT, value: false },
    { type: p.CKA_DECRYPT, value: false },
    { type: p.CKA_WRAP, value: false },
    { type: p.CKA_UNWRAP, value: false },
    { type: p.CKA_DERIVE, value: false },
    // CKA_MODIFIABLE=false is refused at C_UnwrapKey by SoftHSM2 (CKR_ATTRIBUTE_READ_ONLY) and
    // cannot be set afterwards; SENSITIVE/EXTRACTABLE still cannot be downgraded (SECURITY.md).
    // COPYABLE: the signer makes an in-HSM session-object copy to sign from (a copy keeps
    // SENSITIVE and !EXTRACTABLE); signing from a token object makes SoftHSM2 re-read the
    // token files on every C_SignInit.
    { type: p.CKA_COPYABLE, value: true },
    { type: p.CKA_ID, value: Buffer.from(ref.objectId) },
    { type: p.CKA_LABEL, value: ref.label },
  ];
}

/** A key pair's public half: verifies, and nothing else; readable; fixed once made. */
const VERIFY_ONLY_PUBLIC: pkcs11js.Template = [
  { type: p.CKA_PRIVATE, value: false },
  { type: p.CKA_VERIFY, value: true },
  { type: p.CKA_VERIFY_RECOVER, value: false },
  { type: p.CKA_ENCRYPT, value: false },
  { type: p.CKA_WRAP, value: false },
  { type: p.CKA_DERIVE, value: false },
  { type: p.CKA_MODIFIABLE, value: false },
];

/** A key pair's private half: signs, and nothing else; sensitive and never extractable. */
const SIGN_ONLY_PRIVATE: pkcs11js.Template = [
  { type: p.CKA_PRIVATE, value: true },
  { type: p.CKA_SENSITIVE, value: true },
  { type: p.CKA_EXTRACTABLE, value: false },
  { type: p.CKA_SIGN, value: true },
  { type: p.CKA_SIGN_RECOVER, value: false },
  { type: p.CKA_DECRYPT, value: false },
  { type: p.CKA_UNWRAP, value: false },
  { type: p.CKA_DERIVE, value: false },
];

/**
 * An Ed25519 exchange key pair, generated inside the HSM (CKM_EC_EDWARDS_KEY_PAIR_GEN). The
 * private half signs only and never leaves the token; the public half is what custos hands
 * out. Both carry the version's CKA_ID and CKA_LABEL.
 */
export function ed25519KeyPairTemplates(ref: SecretObjectRef): { publicKey: pkcs11js.Template; privateKey: pkcs11js.Template } {
  const common = [
    { type: p.CKA_KEY_TYPE, value: CKK_EC_EDWARDS },
    { type: p.CKA_TOKEN, value: true },
    { type: p.CKA_ID, value: Buffer.from(ref.objectId) },
    { type: p.CKA_LABEL, value: ref.label },
  ];
  return {
    publicKey: [...common, { type: p.CKA_CLASS, value: p.CKO_PUBLIC_KEY }, { type: p.CKA_EC_PARAMS, value: ED25519_EC_PARAMS }, ...VERIFY_ONLY_PUBLIC],
    privateKey: [
      ...common,
      { type: p.CKA_CLASS, value: p.CKO_PRIVATE_KEY },
      // No CKA_EC_PARAMS here: PKCS#11 forbids it in a generated private key's template (SoftHSM2
      // answers CKR_ATTRIBUTE_READ_ONLY) and the token copies the curve from the public template.
      ...SIGN_ONLY_PRIVATE,
      // As for secrets: the signer signs from an in-HSM session copy (see signingHandle), and
      // CKA_MODIFIABLE stays true because SoftHSM2 refuses that copy (C_CopyObject with
      // CKA_TOKEN=false → CKR_ATTRIBUTE_READ_ONLY) of a non-modifiable key. SENSITIVE and
      // EXTRACTABLE still cannot be downgraded.
      { type: p.CKA_COPYABLE, value: true },
      { type: p.CKA_MODIFIABLE, value: true },
    ],
  };
}

/**
 * An imported (unwrapped) Ed25519 private key, and the public key object custos writes beside
 * it from the SPKI the officers approved. Same flags as a generated pair's, but the curve
 * comes from the PKCS#8 itself (no CKA_EC_PARAMS in an unwrap template).
 */
export function ed25519ImportTemplates(ref: SecretObjectRef, ecPoint: Buffer): { publicKey: pkcs11js.Template; privateKey: pkcs11js.Template } {
  const generated = ed25519KeyPairTemplates(ref);
  return {
    publicKey: [...generated.publicKey, { type: p.CKA_EC_POINT, value: ecPoint }],
    privateKey: generated.privateKey,
  };
}

/** The one-time AES key of an envelope: a session object that can only unwrap. */
export function envelopeKeyTemplate(): pkcs11js.Template {
  return [
    { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
    { type: p.CKA_KEY_TYPE, value: p.CKK_AES },
    { type: p.CKA_TOKEN, value: false },
    { type: p.CKA_PRIVATE, value: true },
    { type: p.CKA_SENSITIVE, value: true },
    { type: p.CKA_EXTRACTABLE, value: false },
    { type: p.CKA_UNWRAP, value: true },
    { type: p.CKA_WRAP, value: false },
    { type: p.CKA_SIGN, value: false },
    { type: p.CKA_VERIFY, value: false },
    { type: p.CKA_ENCRYPT, value: false },
    { type: p.CKA_DECRYPT, value: false },
    { type: p.CKA_DERIVE, value: false },
  ];
}

/** RSA-3072 wrapping key pair: the private half may only unwrap. */
export function wrappingKeyPairTemplates(): { publicKey: pkcs11js.Template; privateKey: pkcs11js.Template } {
  const common = [
    { type: p.CKA_TOKEN, value: true },
    { type: p.CKA_ID, value: WRAPPING_KEY_ID },
    { type: p.CKA_LABEL, value: WRAPPING_KEY_LABEL },
  ];
  return {
    publicKey: [
      ...common,
      { type: p.CKA_CLASS, value: p.CKO_PUBLIC_KEY },
      { type: p.CKA_KEY_TYPE, value: p.CKK_RSA },
      { type: p.CKA_PRIVATE, value: false },
      { type: p.CKA_MODULUS_BITS, value: 3072 },
      { type: p.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
      { type: p.CKA_ENCRYPT, value: false },
      { type: p.CKA_VERIFY, value: false },
      { type: p.CKA_WRAP, value: false },
      { type: p.CKA_MODIFIABLE, value: false },
    ],
    privateKey: [
      ...common,
      { type: p.CKA_CLASS, value: p.CKO_PRIVATE_KEY },
      { type: p.CKA_KEY_TYPE, value: p.CKK_RSA },
      { type: p.CKA_PRIVATE, value: true },
      { type: p.CKA_SENSITIVE, value: true },
      { type: p.CKA_EXTRACTABLE, value: false },
      { type: p.CKA_UNWRAP, value: true },
      { type: p.CKA_DECRYPT, value: false },
      { type: p.CKA_SIGN, value: false },
      { type: p.CKA_SIGN_RECOVER, value: false },
      { type: p.CKA_DERIVE, value: false },
      { type: p.CKA_MODIFIABLE, value: false },
      { type: p.CKA_COPYABLE, value: false },
    ],
  };
}

export function wrappingKeyQuery(cls: "public" | "private"): pkcs11js.Template {
  return [
    { type: p.CKA_CLASS, value: cls === "public" ? p.CKO_PUBLIC_KEY : p.CKO_PRIVATE_KEY },
    { type: p.CKA_ID, value: WRAPPING_KEY_ID },
  ];
}

export function secretQuery(objectId: string): pkcs11js.Template {
  return [
    { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
    { type: p.CKA_ID, value: Buffer.from(objectId) },
  ];
}

/** The token object of a secret (not its session copies). */
export function tokenSecretQuery(objectId: string): pkcs11js.Template {
  return [...secretQuery(objectId), { type: p.CKA_TOKEN, value: true }];
}

/** The Ed25519 private key of a version, token object and session copies. */
export function privateKeyQuery(objectId: string): pkcs11js.Template {
  return [
    { type: p.CKA_CLASS, value: p.CKO_PRIVATE_KEY },
    { type: p.CKA_KEY_TYPE, value: CKK_EC_EDWARDS },
    { type: p.CKA_ID, value: Buffer.from(objectId) },
  ];
}

/** The token object of an Ed25519 private key (not its session copies). */
export function tokenPrivateKeyQuery(objectId: string): pkcs11js.Template {
  return [...privateKeyQuery(objectId), { type: p.CKA_TOKEN, value: true }];
}

/** The Ed25519 public key of a version. */
export function publicKeyQuery(objectId: string): pkcs11js.Template {
  return [
    { type: p.CKA_CLASS, value: p.CKO_PUBLIC_KEY },
    { type: p.CKA_KEY_TYPE, value: CKK_EC_EDWARDS },
    { type: p.CKA_ID, value: Buffer.from(objectId) },
  ];
}

/** Every token object with this CKA_ID, whatever its class: an id is taken if any exists. */
export function tokenObjectQuery(objectId: string): pkcs11js.Template {
  return [
    { type: p.CKA_ID, value: Buffer.from(objectId) },
    { type: p.CKA_TOKEN, value: true },
  ];
}

/** Every Ed25519 private key on the token (for listing ids; the wrapping key is RSA). */
export function tokenPrivateKeysQuery(): pkcs11js.Template {
  return [
    { type: p.CKA_CLASS, value: p.CKO_PRIVATE_KEY },
    { type: p.CKA_KEY_TYPE, value: CKK_EC_EDWARDS },
    { type: p.CKA_TOKEN, value: true },
  ];
}

export const CHECKPOINT_KEY_LABEL = "custos-audit-checkpoint";
/** No colon: key version ids are `custos:KEY:vN`, so no exchange key can take this CKA_ID. */
export const CHECKPOINT_KEY_ID = Buffer.from("custos-audit-checkpoint-v1");
/** DER OID of prime256v1 (P-256). */
const P256_EC_PARAMS = Buffer.from("06082a8648ce3d030107", "hex");

/**
 * The audit checkpoint key pair: ECDSA P-256 (CKK_EC), a key type the sign path never looks up
 * (it finds secrets and Ed25519 keys only) and a mechanism it never uses (CKM_ECDSA). The private
 * half is sensitive, never extractable, not copyable and not modifiable; it signs only
 * checkpoint statements (Pkcs11Hsm.signCheckpoint).
 */
export function checkpointKeyPairTemplates(): { publicKey: pkcs11js.Template; privateKey: pkcs11js.Template } {
  const common = [
    { type: p.CKA_KEY_TYPE, value: p.CKK_EC },
    { type: p.CKA_TOKEN, value: true },
    { type: p.CKA_ID, value: CHECKPOINT_KEY_ID },
    { type: p.CKA_LABEL, value: CHECKPOINT_KEY_LABEL },
  ];
  return {
    publicKey: [...common, { type: p.CKA_CLASS, value: p.CKO_PUBLIC_KEY }, { type: p.CKA_EC_PARAMS, value: P256_EC_PARAMS }, ...VERIFY_ONLY_PUBLIC],
    privateKey: [
      ...common,
      { type: p.CKA_CLASS, value: p.CKO_PRIVATE_KEY },
      ...SIGN_ONLY_PRIVATE,
      { type: p.CKA_MODIFIABLE, value: false },
      { type: p.CKA_COPYABLE, value: false },
    ],
  };
}

export function checkpointKeyQuery(cls: "public" | "private"): pkcs11js.Template {
  return [
    { type: p.CKA_CLASS, value: cls === "public" ? p.CKO_PUBLIC_KEY : p.CKO_PRIVATE_KEY },
    { type: p.CKA_KEY_TYPE, value: p.CKK_EC },
    { type: p.CKA_ID, value: CHECKPOINT_KEY_ID },
    { type: p.CKA_TOKEN, value: true },
  ];
}
