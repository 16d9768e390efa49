import { CustosError } from "../errors.js";

/**
 * The one algorithm table. Everything that needs a mechanism, an output length or a minimum
 * key length looks it up here; nothing else switches on algorithm names.
 *
 * Two kinds: HMAC over a secret imported into the HSM, and EdDSA with a key pair generated
 * inside the HSM (only the public key ever leaves it). `kind` tells them apart; the
 * HMAC-only fields exist only on HMAC entries.
 */

export type HmacAlgorithm = "hmac-sha256" | "hmac-sha384" | "hmac-sha512";
export type EddsaAlgorithm = "ed25519";
export type SigningAlgorithm = HmacAlgorithm | EddsaAlgorithm;

interface SpecCommon {
  /** PKCS#11 mechanism (CKM_SHA256_HMAC, CKM_EDDSA …). */
  readonly mechanism: number;
  /** Output length (MAC or signature); the sign buffer is always this long
   *  (CKR_BUFFER_TOO_SMALL leaves the operation active and poisons the session). */
  readonly macBytes: number;
}

export interface HmacSpec extends SpecCommon {
  readonly kind: "hmac";
  readonly name: HmacAlgorithm;
  /** Shortest key the HSM accepts at C_SignInit (SoftHSM2 enforces the hash length). */
  readonly minKeyBytes: number;
  /** HMAC block size: RFC 2104 zero-pads every key shorter than this to this length. */
  readonly blockBytes: number;
  /** node:crypto hash name, for the officer's side and tests. */
  readonly nodeHash: "sha256" | "sha384" | "sha512";
}

export interface EddsaSpec extends SpecCommon {
  readonly kind: "eddsa";
  readonly name: EddsaAlgorithm;
  /** node:crypto key type of the public key (`createPublicKey(...).asymmetricKeyType`). */
  readonly nodeKeyType: "ed25519";
}

export type AlgorithmSpec = HmacSpec | EddsaSpec;

/** The spec of one algorithm name, narrowed when the name is known statically. */
export type SpecOf<A extends SigningAlgorithm> = A extends HmacAlgorithm ? HmacSpec : EddsaSpec;

const CKM_SHA256_HMAC = 0x251;
const CKM_SHA384_HMAC = 0x261;
const CKM_SHA512_HMAC = 0x271;
/** PKCS#11 3.0; pkcs11js 2.1.7 has no constant for it. Without parameters: pure Ed25519. */
const CKM_EDDSA = 0x1057;

export const ALGORITHMS: Readonly<{ [A in SigningAlgorithm]: SpecOf<A> }> = Object.freeze({
  "hmac-sha256": { kind: "hmac", name: "hmac-sha256", mechanism: CKM_SHA256_HMAC, macBytes: 32, minKeyBytes: 32, blockBytes: 64, nodeHash: "sha256" },
  "hmac-sha384": { kind: "hmac", name: "hmac-sha384", mechanism: CKM_SHA384_HMAC, macBytes: 48, minKeyBytes: 48, blockBytes: 128, nodeHash: "sha384" },
  "hmac-sha512": { kind: "hmac", name: "hmac-sha512", mechanism: CKM_SHA512_HMAC, macBytes: 64, minKeyBytes: 64, blockBytes: 128, nodeHash: "sha512" },
  ed25519: { kind: "eddsa", name: "ed25519", mechanism: CKM_EDDSA, macBytes: 64, nodeKeyType: "ed25519" },
});

export function isSigningAlgorithm(s: string): s is SigningAlgorithm {
  return Object.hasOwn(ALGORITHMS, s);
}

export function isHmacAlgorithm(s: string): s is HmacAlgorithm {
  return isSigningAlgorithm(s) && ALGORITHMS[s].kind === "hmac";
}

export function algorithmSpec<A extends SigningAlgorithm>(name: A): SpecOf<A> {
  return ALGORITHMS[name] as SpecOf<A>;
}

/** The HMAC spec of `name`; INVALID_ARGUMENT for an algorithm that is not an HMAC. */
export function hmacSpec(name: SigningAlgorithm): HmacSpec {
  const spec: AlgorithmSpec = ALGORITHMS[name];
  if (spec.kind !== "hmac") throw new CustosError("INVALID_ARGUMENT", `${name} is not an HMAC algorithm`);
  return spec;
}
