/**
 * The one algorithm table. Everything that needs a mechanism, a MAC length or a minimum
 * key length looks it up here; nothing else switches on algorithm names.
 */

export type SigningAlgorithm = "hmac-sha256" | "hmac-sha384" | "hmac-sha512";

export interface AlgorithmSpec {
  readonly name: SigningAlgorithm;
  /** PKCS#11 mechanism (CKM_SHA256_HMAC …). */
  readonly mechanism: number;
  /** Output length; the sign buffer is always this long (CKR_BUFFER_TOO_SMALL leaves the
   *  operation active and poisons the session). */
  readonly macBytes: number;
  /** Shortest key the HSM accepts at C_SignInit (SoftHSM2 enforces the hash length). */
  readonly minKeyBytes: number;
  /** HMAC block size: RFC 2104 zero-pads every key shorter than this to this length. */
  readonly blockBytes: number;
  /** node:crypto hash name, for the officer's side and tests. */
  readonly nodeHash: "sha256" | "sha384" | "sha512";
}

const CKM_SHA256_HMAC = 0x251;
const CKM_SHA384_HMAC = 0x261;
const CKM_SHA512_HMAC = 0x271;

export const ALGORITHMS: Readonly<Record<SigningAlgorithm, AlgorithmSpec>> = Object.freeze({
  "hmac-sha256": { name: "hmac-sha256", mechanism: CKM_SHA256_HMAC, macBytes: 32, minKeyBytes: 32, blockBytes: 64, nodeHash: "sha256" },
  "hmac-sha384": { name: "hmac-sha384", mechanism: CKM_SHA384_HMAC, macBytes: 48, minKeyBytes: 48, blockBytes: 128, nodeHash: "sha384" },
  "hmac-sha512": { name: "hmac-sha512", mechanism: CKM_SHA512_HMAC, macBytes: 64, minKeyBytes: 64, blockBytes: 128, nodeHash: "sha512" },
});

export function isSigningAlgorithm(s: string): s is SigningAlgorithm {
  return Object.prototype.hasOwnProperty.call(ALGORITHMS, s);
}

export function algorithmSpec(name: SigningAlgorithm): AlgorithmSpec {
  return ALGORITHMS[name];
}
