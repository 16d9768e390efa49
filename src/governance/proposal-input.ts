import { createHash, createPublicKey, type KeyObject } from "node:crypto";
import { CustosError } from "../errors.js";
import type { SigningAlgorithm } from "../hsm/algorithms.js";
import type { Environment } from "../keys/model.js";

export interface OfficerSpec {
  id: string;
  displayName: string;
  identity: string;
  publicKeyPem: string;
}

export interface NewKeyMetadata {
  keyId: string;
  /** A dialect's exchange id, an alias of one (resolved into the signed content), or `raw`. */
  exchange: string;
  environment: Environment;
  label: string;
  apiKeyId: string;
  algorithm: SigningAlgorithm;
  maxAgeDays: number;
  /** Ed25519 imports only: the public key (SPKI PEM) the wrapped PKCS#8 must pair with. */
  publicKeyPem?: string;
  /**
   * KuCoin Futures imports only, and required there: base64(HMAC-SHA256(secret, API passphrase)),
   * computed by the officer's CLI while it holds the secret, so the quorum's digest binds it.
   * It is what every request sends in the clear KC-API-PASSPHRASE header; custos never sees the
   * passphrase and never HMACs caller bytes for it.
   */
  signedPassphrase?: string;
}

/** A passkey's public half, as the console verified it from the authenticator's attestation. */
export interface PasskeySpec {
  /** Credential id, base64url. */
  id: string;
  /** COSE public key, base64url. */
  publicKey: string;
  /** Signature counter at registration. */
  counter: number;
  transports: string[];
  aaguid: string;
  label: string;
}

/** What an officer asks for: one member per proposal kind (src/governance/kinds). */
export type { ProposalInput } from "./kinds/index.js";

/** How long a rotated-out version keeps signing for pinned clients, unless the proposal says otherwise. */
export const DEFAULT_GRACE_SECONDS = 24 * 3600;

export const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** The one exchange whose keys carry a signed passphrase (its dialect sends it per request). */
export const SIGNED_PASSPHRASE_EXCHANGE = "kucoinfutures";

const invalid = (message: string) => new CustosError("INVALID_ARGUMENT", message);

/**
 * A signed passphrase must be canonical base64 of exactly one HMAC-SHA256 (32 bytes): anything
 * else cannot be what KuCoin compares, and a raw passphrase pasted by mistake is refused.
 */
export function checkSignedPassphrase(value: string | undefined): void {
  if (value === undefined || value === "")
    throw invalid(`a ${SIGNED_PASSPHRASE_EXCHANGE} key needs its signed passphrase (base64(HMAC-SHA256(secret, passphrase)))`);
  if (!/^[A-Za-z0-9+/]{43}=$/.test(value) || Buffer.from(value, "base64").toString("base64") !== value) {
    throw invalid("the signed passphrase must be the base64 of a 32-byte HMAC-SHA256");
  }
}

/** First 8 hex of the SHA-256 of a signed passphrase: what summaries and the CLI show instead of it. */
export function signedPassphraseFingerprint(signed: string): string {
  return createHash("sha256").update(signed, "utf8").digest("hex").slice(0, 8);
}

/** The DER SPKI of an Ed25519 public key in PEM; INVALID_ARGUMENT for anything else. */
export function ed25519PublicKeyOf(pem: string | undefined): Buffer {
  let key: KeyObject;
  try {
    key = createPublicKey(pem ?? "");
  } catch {
    throw invalid("an ed25519 import needs the key's public key (SPKI PEM)");
  }
  if (key.asymmetricKeyType !== "ed25519") throw invalid("the public key of an ed25519 import must be Ed25519");
  return key.export({ format: "der", type: "spki" });
}
