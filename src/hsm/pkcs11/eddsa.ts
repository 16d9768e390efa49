import { CustosError } from "../../errors.js";

/**
 * Ed25519 on PKCS#11 3.0. pkcs11js 2.1.7 predates 3.0 and has none of these constants; the
 * values are the standard's (pkcs11t.h).
 */
export const CKK_EC_EDWARDS = 0x40;
export const CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055;

/** CKA_EC_PARAMS of an Ed25519 key: the DER OID 1.3.101.112 (id-Ed25519, RFC 8410). */
export const ED25519_EC_PARAMS = Buffer.from("06032b6570", "hex");

/** SubjectPublicKeyInfo DER up to the 32 key bytes: SEQUENCE { SEQUENCE { OID id-Ed25519 }, BIT STRING (0 unused bits) }. */
const SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");
const KEY_BYTES = 32;

/**
 * The DER SPKI of an Ed25519 public key from its CKA_EC_POINT. PKCS#11 3.0 makes CKA_EC_POINT
 * a DER OCTET STRING (`04 20 ‖ key`, what SoftHSM2 returns); some devices return the 32 raw
 * bytes, so both are accepted. Anything else is an HSM_ERROR.
 */
export function ed25519SpkiFromEcPoint(ecPoint: Buffer): Buffer {
  let key: Buffer;
  if (ecPoint.length === KEY_BYTES + 2 && ecPoint[0] === 0x04 && ecPoint[1] === KEY_BYTES) key = ecPoint.subarray(2);
  else if (ecPoint.length === KEY_BYTES) key = ecPoint;
  else throw new CustosError("HSM_ERROR", `unexpected Ed25519 CKA_EC_POINT (${ecPoint.length} bytes)`);
  return Buffer.concat([SPKI_PREFIX, key]);
}
