import { CustosError } from "../../errors.js";
import { canonicalExchange } from "../../exchanges/registry.js";
import { isSigningAlgorithm, type SigningAlgorithm } from "../../hsm/algorithms.js";
import type { Environment, KeyRecord, KeyVersionRecord } from "../../keys/model.js";
import type { StoreTables } from "../../store/store.js";
import { KEY_ID, SIGNED_PASSPHRASE_EXCHANGE, checkSignedPassphrase, ed25519PublicKeyOf, type NewKeyMetadata } from "../proposal-input.js";
import type { KindContext } from "./kind.js";
import { ParamReader } from "./params.js";

/** What import_key and generate_key share: a new key's metadata, checked, signed and recorded the same way. */

const invalid = (message: string) => new CustosError("INVALID_ARGUMENT", message);

/** Shape checks of a new key's metadata; `imported`: the secret comes wrapped (import_key). */
export function checkNewKey(k: NewKeyMetadata, imported: boolean): void {
  if (!imported && k.algorithm !== "ed25519") throw invalid("only ed25519 keys are generated in the HSM");
  // An imported Ed25519 key (migration) names the public key the officers approve; nothing else carries one.
  if (imported && k.algorithm === "ed25519") ed25519PublicKeyOf(k.publicKeyPem);
  else if (k.publicKeyPem !== undefined) throw invalid("only an ed25519 import carries a public key");
  if (!KEY_ID.test(k.keyId)) throw invalid("key id must be 1–64 of [A-Za-z0-9._-], starting alphanumeric");
  // A name no dialect reads would make a key with no request policy: only "raw" asks for that.
  const exchange = canonicalExchange(k.exchange);
  if (k.environment !== "mainnet" && k.environment !== "testnet") throw invalid("environment must be mainnet or testnet");
  if (!isSigningAlgorithm(k.algorithm)) throw invalid("unsupported algorithm");
  if (!Number.isInteger(k.maxAgeDays) || k.maxAgeDays < 1 || k.maxAgeDays > 3650) throw invalid("max age must be 1–3650 days");
  if (k.apiKeyId.length > 256 || k.label.length > 256) throw invalid("api key id and label are at most 256 characters");
  // Only an imported secret can carry its passphrase's HMAC (a generated key has no secret to compute it with).
  if (imported && exchange === SIGNED_PASSPHRASE_EXCHANGE) checkSignedPassphrase(k.signedPassphrase);
  else if (k.signedPassphrase !== undefined) throw invalid(`only a ${SIGNED_PASSPHRASE_EXCHANGE} import carries a signed passphrase`);
  else if (exchange === SIGNED_PASSPHRASE_EXCHANGE) throw invalid(`${SIGNED_PASSPHRASE_EXCHANGE} keys are HMAC secrets imported with their passphrase`);
}

/** The signed parameters: the metadata, with the exchange the key is stored with (never an alias of it). */
export function newKeyParams(k: NewKeyMetadata): Record<string, unknown> {
  return { ...k, exchange: canonicalExchange(k.exchange) };
}

/** The signed parameters read back. */
export function decodeNewKey(raw: Record<string, unknown>, kind: string): NewKeyMetadata {
  const r = new ParamReader(raw, kind);
  const environment = r.string("environment");
  const algorithm = r.string("algorithm");
  if ((environment !== "mainnet" && environment !== "testnet") || !isSigningAlgorithm(algorithm)) {
    throw new CustosError("INTERNAL", `${kind} parameters name an unknown environment or algorithm (this is a bug)`);
  }
  const publicKeyPem = r.optionalString("publicKeyPem");
  const signedPassphrase = r.optionalString("signedPassphrase");
  return {
    keyId: r.string("keyId"),
    exchange: r.string("exchange"),
    environment: environment satisfies Environment,
    label: r.string("label"),
    apiKeyId: r.string("apiKeyId"),
    algorithm: algorithm satisfies SigningAlgorithm,
    maxAgeDays: r.integer("maxAgeDays"),
    ...(publicKeyPem !== undefined ? { publicKeyPem } : {}),
    ...(signedPassphrase !== undefined ? { signedPassphrase } : {}),
  };
}

/** A new key must not exist, at Propose and again at execution. */
export async function refuseExisting(ctx: Pick<KindContext, "store">, keyId: string): Promise<void> {
  if (await ctx.store.keys.getKey(keyId)) throw new CustosError("KEY_EXISTS", `key ${keyId} already exists`);
}

/** The record step of a new key: the key, its first (active) version, and the automatic grants. */
export async function recordNewKey(tx: StoreTables, k: NewKeyMetadata, objectId: string, at: string, autoGrant: readonly string[]): Promise<void> {
  const key: KeyRecord = {
    id: k.keyId,
    exchange: k.exchange,
    environment: k.environment,
    label: k.label,
    apiKeyId: k.apiKeyId,
    algorithm: k.algorithm,
    maxAgeDays: k.maxAgeDays,
    createdAt: at,
  };
  // The signed passphrase (KuCoin) is what every request sends in the clear header: neither the passphrase nor the secret.
  const first: KeyVersionRecord = { keyId: k.keyId, version: 1, objectId, state: "active", createdAt: at, activatedAt: at, apiKeyId: null, retireAt: null };
  if (k.signedPassphrase !== undefined) first.signedPassphrase = k.signedPassphrase;
  await tx.keys.createKey(key, first);
  for (const identity of autoGrant) await tx.clients.addGrant(identity, k.keyId);
}
