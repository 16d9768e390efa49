import { createPublicKey } from "node:crypto";
import { createSecureContext } from "node:tls";
import { CustosError } from "../../errors.js";
import { ENVELOPE_FORMAT, spkiFingerprint, type ImportEnvelope } from "../envelope.js";
import type { WrappingKeyInfo } from "../hsm.js";
import { findObjects, pkcs11js, type Handle, type Module } from "./module.js";
import { envelopeKeyTemplate, wrappingKeyQuery } from "./templates.js";

/**
 * The token's RSA wrapping key and the first half of opening an import envelope: the one-time
 * AES key, RSA-OAEP-unwrapped into the HSM. What the AES key then unwraps (an HMAC secret, an
 * Ed25519 private key) is the caller's.
 */

/** The wrapping key as the service uses it: what officers wrap for, and the private handle. */
export interface WrappingKeyHandle {
  info: WrappingKeyInfo;
  privateHandle: Handle;
}

const OAEP_MECH: Record<"sha1" | "sha256", { hashAlg: number; mgf: number }> = {
  sha1: { hashAlg: pkcs11js.CKM_SHA_1, mgf: pkcs11js.CKG_MGF1_SHA1 },
  sha256: { hashAlg: pkcs11js.CKM_SHA256, mgf: pkcs11js.CKG_MGF1_SHA256 },
};

/** The token's wrapping key pair, or undefined if the token has none yet. */
export function readWrappingKey(mod: Module, session: Handle, oaepHash: "sha1" | "sha256"): WrappingKeyHandle | undefined {
  const priv = findObjects(mod, session, wrappingKeyQuery("private"));
  const pub = findObjects(mod, session, wrappingKeyQuery("public"));
  if (priv.length === 0 || pub.length === 0) return undefined;
  const [n, e] = mod.C_GetAttributeValue(session, pub[0]!, [{ type: pkcs11js.CKA_MODULUS }, { type: pkcs11js.CKA_PUBLIC_EXPONENT }]);
  const key = createPublicKey({
    key: { kty: "RSA", n: (n!.value as Buffer).toString("base64url"), e: (e!.value as Buffer).toString("base64url") },
    format: "jwk",
  });
  const der = key.export({ type: "spki", format: "der" });
  return {
    info: { spkiPem: key.export({ type: "spki", format: "pem" }).toString(), fingerprint: spkiFingerprint(der), oaepHash },
    privateHandle: priv[0]!,
  };
}

/** ENVELOPE_INVALID unless the envelope is of our format, for this wrapping key and its OAEP hash. */
export function checkEnvelope(envelope: ImportEnvelope, wrapping: WrappingKeyInfo): void {
  if (envelope.format !== ENVELOPE_FORMAT) {
    throw new CustosError("ENVELOPE_INVALID", `unknown envelope format ${JSON.stringify(envelope.format)}`);
  }
  if (envelope.wrappingKeyFingerprint !== wrapping.fingerprint) {
    throw new CustosError("ENVELOPE_INVALID", "envelope was made for another wrapping key");
  }
  if (envelope.oaepHash !== wrapping.oaepHash) {
    throw new CustosError("ENVELOPE_INVALID", `this HSM unwraps OAEP with ${wrapping.oaepHash} only`);
  }
}

/** The envelope's one-time AES key, unwrapped as an unwrap-only session object (the caller destroys it). */
export function unwrapEnvelopeKey(mod: Module, session: Handle, wrappingPrivate: Handle, envelope: ImportEnvelope): Handle {
  const oaep = OAEP_MECH[envelope.oaepHash];
  return mod.C_UnwrapKey(
    session,
    {
      mechanism: pkcs11js.CKM_RSA_PKCS_OAEP,
      parameter: { type: pkcs11js.CK_PARAMS_RSA_OAEP, hashAlg: oaep.hashAlg, mgf: oaep.mgf, source: 1 } as pkcs11js.RsaOAEP,
    },
    wrappingPrivate,
    envelope.encryptedAesKey,
    envelopeKeyTemplate(),
  );
}

/**
 * SoftHSM2's OpenSSL calls resolve to node's own OpenSSL, and a failed operation (e.g. an
 * envelope that does not unwrap) leaves errors on this thread's OpenSSL error queue; the next
 * TLS read on the event loop then reads them as its own failure and drops that client's
 * connection. Creating a secure context clears the queue (~0.2 ms, failure paths only).
 */
export function clearOpenSslErrors(): void {
  createSecureContext();
}
