import { createCipheriv, createHash, createPublicKey, constants, publicEncrypt, randomBytes } from "node:crypto";
import { CustosError } from "../errors.js";
import { hmacSpec, type SigningAlgorithm } from "./algorithms.js";

/**
 * The import envelope: RSA-OAEP(one-time AES-256 key) + AES key wrap with padding
 * (RFC 5649) of the secret — the pattern of PKCS#11 CKM_RSA_AES_KEY_WRAP, AWS KMS
 * RSA_AES_KEY_WRAP_SHA_256 and Vault BYOK. Only the HSM holding the RSA private key can
 * open it, so the service stores and forwards it without ever seeing the secret.
 */
export const ENVELOPE_FORMAT = "custos.rsa-oaep-aes-kwp.v1";

export interface ImportEnvelope {
  format: string;
  /** OAEP hash, also used for MGF1. Part of the format so the HSM's choice is explicit. */
  oaepHash: "sha1" | "sha256";
  encryptedAesKey: Buffer;
  wrappedKey: Buffer;
  /** Fingerprint of the wrapping key this envelope was made for. */
  wrappingKeyFingerprint: string;
}

/** RFC 5649 alternative initial value (the default of id-aes256-wrap-pad). */
const KWP_AIV = Buffer.from("a65959a6", "hex");

/** "sha256:" + hex SHA-256 of a DER SubjectPublicKeyInfo. */
export function spkiFingerprint(spkiDer: Buffer): string {
  return "sha256:" + createHash("sha256").update(spkiDer).digest("hex");
}

/**
 * Pads an HMAC secret shorter than the HSM's minimum key length with zero bytes.
 * RFC 2104 zero-pads every key shorter than the block size before use, so
 * HMAC(K) = HMAC(K ‖ 0…0) for any padded length up to the block size: the signatures are
 * identical, and the HSM's minimum-length rule (CKR_KEY_SIZE_RANGE) is met.
 * Returns a new buffer; the caller zero-fills both. INVALID_ARGUMENT for an algorithm that is
 * not an HMAC: an EdDSA key is generated inside the HSM, never imported as a secret.
 */
export function padHmacSecret(secret: Buffer, algorithm: SigningAlgorithm): Buffer {
  const spec = hmacSpec(algorithm);
  if (secret.length === 0) throw new CustosError("INVALID_ARGUMENT", "secret is empty");
  if (secret.length >= spec.minKeyBytes) return Buffer.from(secret);
  const padded = Buffer.alloc(spec.minKeyBytes); // minKeyBytes ≤ blockBytes for every algorithm
  secret.copy(padded);
  return padded;
}

/**
 * Builds an envelope on the officer's machine. Zero-fills the one-time AES key before
 * returning; the caller zero-fills `secret`.
 */
export function buildEnvelope(secret: Buffer, wrapping: { spkiPem: string; fingerprint: string; oaepHash: "sha1" | "sha256" }): ImportEnvelope {
  const publicKey = createPublicKey(wrapping.spkiPem);
  const der = publicKey.export({ type: "spki", format: "der" });
  if (spkiFingerprint(der) !== wrapping.fingerprint) {
    throw new CustosError("ENVELOPE_INVALID", "wrapping key does not match its fingerprint");
  }
  const aesKey = randomBytes(32);
  try {
    const cipher = createCipheriv("id-aes256-wrap-pad", aesKey, KWP_AIV);
    const wrappedKey = Buffer.concat([cipher.update(secret), cipher.final()]);
    const encryptedAesKey = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: wrapping.oaepHash }, aesKey);
    return {
      format: ENVELOPE_FORMAT,
      oaepHash: wrapping.oaepHash,
      encryptedAesKey,
      wrappedKey,
      wrappingKeyFingerprint: wrapping.fingerprint,
    };
  } finally {
    aesKey.fill(0);
  }
}

/** SHA-256 of the envelope's bytes, for audit records (the envelope itself is never logged). */
export function envelopeDigest(e: ImportEnvelope): string {
  return createHash("sha256").update(e.encryptedAesKey).update(e.wrappedKey).digest("hex");
}
