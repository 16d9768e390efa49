import pkcs11js from "pkcs11js";
import type { SecretObjectRef } from "../hsm.js";

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
