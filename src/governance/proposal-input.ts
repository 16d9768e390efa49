import { createHash, createPublicKey, type KeyObject } from "node:crypto";
import { CustosError } from "../errors.js";
import { isSigningAlgorithm, type SigningAlgorithm } from "../hsm/algorithms.js";
import type { ImportEnvelope } from "../hsm/envelope.js";
import { canonicalExchange } from "../exchanges/registry.js";
import type { Environment } from "../keys/model.js";
import { validatePolicy } from "../policy/policy.js";
import { allowList } from "../signing/directory.js";
import type { ProposalKind } from "./proposal.js";

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

/** What an officer asks for. Everything but the envelope goes into the signed content. */
export type ProposalInput =
  | { kind: "import_key"; key: NewKeyMetadata; envelope: ImportEnvelope }
  /**
   * An HMAC key's new secret comes wrapped; an Ed25519 key's new pair is generated in the HSM (no
   * envelope). A KuCoin Futures key's new secret comes with its `signedPassphrase` (required there).
   */
  | { kind: "rotate_key"; keyId: string; apiKeyId: string; graceSeconds: number; envelope?: ImportEnvelope; signedPassphrase?: string }
  | { kind: "destroy_version"; keyId: string; version: number }
  | { kind: "set_grants"; identity: string; name: string; cidrs: string[]; keyIds: string[]; canFreeze: boolean }
  | { kind: "set_policy"; keyId: string; policyJson: string }
  | { kind: "add_officer"; officer: OfficerSpec }
  | { kind: "remove_officer"; officerId: string }
  | { kind: "set_threshold"; threshold: number }
  | { kind: "thaw"; target: "key" | "client"; id: string }
  | { kind: "generate_key"; key: NewKeyMetadata }
  | { kind: "set_api_key_id"; keyId: string; apiKeyId: string }
  | { kind: "add_credential"; officerId: string; passkey: PasskeySpec }
  | { kind: "remove_credential"; officerId: string; credentialId: string };

export const DEFAULT_GRACE_SECONDS = 24 * 3600;
const MAX_GRACE_SECONDS = 30 * 24 * 3600;

export const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const OFFICER_ID = /^[a-z0-9][a-z0-9._-]{0,31}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
/** The one exchange whose keys carry a signed passphrase (its dialect sends it per request). */
export const SIGNED_PASSPHRASE_EXCHANGE = "kucoinfutures";

const invalid = (message: string) => new CustosError("INVALID_ARGUMENT", message);

/** Shape checks that need no state; state checks happen when proposing and again when executing. */
export function validateInput(input: ProposalInput): void {
  switch (input.kind) {
    case "generate_key":
    case "import_key": {
      const k = input.key;
      if (input.kind === "generate_key" && k.algorithm !== "ed25519") throw invalid("only ed25519 keys are generated in the HSM");
      // An imported Ed25519 key (migration) names the public key the officers approve; nothing else carries one.
      if (input.kind === "import_key" && k.algorithm === "ed25519") ed25519PublicKeyOf(k.publicKeyPem);
      else if (k.publicKeyPem !== undefined) throw invalid("only an ed25519 import carries a public key");
      if (!KEY_ID.test(k.keyId)) throw invalid("key id must be 1–64 of [A-Za-z0-9._-], starting alphanumeric");
      // A name no dialect reads would make a key with no request policy: only "raw" asks for that.
      const exchange = canonicalExchange(k.exchange);
      if (k.environment !== "mainnet" && k.environment !== "testnet") throw invalid("environment must be mainnet or testnet");
      if (!isSigningAlgorithm(k.algorithm)) throw invalid("unsupported algorithm");
      if (!Number.isInteger(k.maxAgeDays) || k.maxAgeDays < 1 || k.maxAgeDays > 3650) throw invalid("max age must be 1–3650 days");
      if (k.apiKeyId.length > 256 || k.label.length > 256) throw invalid("api key id and label are at most 256 characters");
      // Only an imported secret can carry its passphrase's HMAC (a generated key has no secret to compute it with).
      if (input.kind === "import_key" && exchange === SIGNED_PASSPHRASE_EXCHANGE) checkSignedPassphrase(k.signedPassphrase);
      else if (k.signedPassphrase !== undefined) throw invalid(`only a ${SIGNED_PASSPHRASE_EXCHANGE} import carries a signed passphrase`);
      else if (exchange === SIGNED_PASSPHRASE_EXCHANGE) throw invalid(`${SIGNED_PASSPHRASE_EXCHANGE} keys are HMAC secrets imported with their passphrase`);
      return;
    }
    case "rotate_key":
      if (!KEY_ID.test(input.keyId)) throw invalid("invalid key id");
      if (input.apiKeyId.length > 256) throw invalid("api key id is too long");
      if (!Number.isInteger(input.graceSeconds) || input.graceSeconds < 0 || input.graceSeconds > MAX_GRACE_SECONDS) throw invalid("grace must be 0–30 days");
      // Whether the key needs one is known from its exchange (ProposalPreconditions); here only the shape.
      if (input.signedPassphrase !== undefined) checkSignedPassphrase(input.signedPassphrase);
      return;
    case "set_api_key_id":
      if (!KEY_ID.test(input.keyId)) throw invalid("invalid key id");
      if (!/^[\x21-\x7e]{1,256}$/.test(input.apiKeyId)) throw invalid("the API key id must be 1–256 printable ASCII characters");
      return;
    case "destroy_version":
      if (!KEY_ID.test(input.keyId)) throw invalid("invalid key id");
      if (!Number.isInteger(input.version) || input.version < 1) throw invalid("version must be a positive integer");
      return;
    case "set_grants":
      if (!input.identity || input.identity.length > 512) throw invalid("identity is required");
      allowList(input.cidrs); // throws INVALID_ARGUMENT on a bad CIDR
      for (const k of input.keyIds) if (!KEY_ID.test(k)) throw invalid(`invalid key id ${JSON.stringify(k)}`);
      return;
    case "set_policy": {
      if (!KEY_ID.test(input.keyId)) throw invalid("invalid key id");
      let p: unknown;
      try {
        p = JSON.parse(input.policyJson);
      } catch {
        throw invalid("policy must be JSON");
      }
      validatePolicy(p); // the same check the signer applies when it loads the policy
      return;
    }
    case "add_officer":
      if (!OFFICER_ID.test(input.officer.id)) throw invalid("officer id must be 1–32 of [a-z0-9._-]");
      if (!input.officer.identity) throw invalid("officer certificate identity is required");
      return;
    case "remove_officer":
      if (!OFFICER_ID.test(input.officerId)) throw invalid("invalid officer id");
      return;
    case "set_threshold":
      if (!Number.isInteger(input.threshold) || input.threshold < 1) throw invalid("threshold must be a positive integer");
      return;
    case "thaw":
      if (input.target !== "key" && input.target !== "client") throw invalid("thaw target must be key or client");
      if (!input.id) throw invalid("thaw needs an id");
      return;
    case "add_credential": {
      const k = input.passkey;
      if (!OFFICER_ID.test(input.officerId)) throw invalid("invalid officer id");
      if (!BASE64URL.test(k.id) || k.id.length > 1400) throw invalid("passkey credential id must be base64url, at most 1400 characters");
      if (!BASE64URL.test(k.publicKey) || k.publicKey.length > 2048) throw invalid("passkey public key must be base64url COSE, at most 2048 characters");
      if (!Number.isSafeInteger(k.counter) || k.counter < 0) throw invalid("passkey counter must be a non-negative integer");
      if (!Array.isArray(k.transports) || k.transports.length > 8 || k.transports.some((t) => typeof t !== "string" || !/^[a-z-]{1,16}$/.test(t))) throw invalid("invalid passkey transports");
      if (typeof k.aaguid !== "string" || k.aaguid.length > 64 || typeof k.label !== "string" || k.label.length > 64) throw invalid("passkey aaguid and label are at most 64 characters");
      return;
    }
    case "remove_credential":
      if (!OFFICER_ID.test(input.officerId)) throw invalid("invalid officer id");
      if (!BASE64URL.test(input.credentialId) || input.credentialId.length > 1400) throw invalid("passkey credential id must be base64url");
      return;
  }
}

/** The target and parameters that go into the signed content (never the envelope). */
export function contentOf(input: ProposalInput): { kind: ProposalKind; target: string; params: Record<string, unknown> } {
  switch (input.kind) {
    case "import_key":
    case "generate_key":
      // The officers approve the exchange the key is stored with, never an alias of it.
      return { kind: input.kind, target: input.key.keyId, params: { ...input.key, exchange: canonicalExchange(input.key.exchange) } };
    case "rotate_key":
      return {
        kind: input.kind,
        target: input.keyId,
        params: {
          apiKeyId: input.apiKeyId,
          graceSeconds: input.graceSeconds,
          ...(input.signedPassphrase !== undefined ? { signedPassphrase: input.signedPassphrase } : {}),
        },
      };
    case "destroy_version":
      return { kind: input.kind, target: input.keyId, params: { version: input.version } };
    case "set_api_key_id":
      return { kind: input.kind, target: input.keyId, params: { apiKeyId: input.apiKeyId } };
    case "set_grants":
      return {
        kind: input.kind,
        target: input.identity,
        params: { name: input.name, cidrs: [...input.cidrs], keyIds: [...new Set(input.keyIds)].sort(), canFreeze: input.canFreeze },
      };
    case "set_policy":
      return { kind: input.kind, target: input.keyId, params: { policy: JSON.parse(input.policyJson) as unknown } };
    case "add_officer":
      return { kind: input.kind, target: input.officer.id, params: { displayName: input.officer.displayName, identity: input.officer.identity, publicKeyPem: input.officer.publicKeyPem } };
    case "remove_officer":
      return { kind: input.kind, target: input.officerId, params: {} };
    case "set_threshold":
      return { kind: input.kind, target: "governance", params: { threshold: input.threshold } };
    case "thaw":
      return { kind: input.kind, target: `${input.target}:${input.id}`, params: {} };
    case "add_credential": {
      const k = input.passkey;
      return {
        kind: input.kind,
        target: input.officerId,
        params: { credentialKind: "passkey", credentialId: k.id, publicKey: k.publicKey, counter: k.counter, transports: [...k.transports], aaguid: k.aaguid, label: k.label },
      };
    }
    case "remove_credential":
      return { kind: input.kind, target: input.officerId, params: { credentialKind: "passkey", credentialId: input.credentialId } };
  }
}

/**
 * A signed passphrase must be canonical base64 of exactly one HMAC-SHA256 (32 bytes): anything
 * else cannot be what KuCoin compares, and a raw passphrase pasted by mistake is refused.
 */
export function checkSignedPassphrase(value: string | undefined): void {
  if (value === undefined || value === "") throw invalid(`a ${SIGNED_PASSPHRASE_EXCHANGE} key needs its signed passphrase (base64(HMAC-SHA256(secret, passphrase)))`);
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
