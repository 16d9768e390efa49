import { Environment, type GenerateKeyProposal, type WrappedKeyEnvelope } from "../../gen/custos/v1/custody.js";
import { CustosError } from "../../errors.js";
import type { ImportEnvelope } from "../../hsm/envelope.js";
import { DEFAULT_MAX_AGE_DAYS } from "../../keys/model.js";
import { ALGORITHM_NAMES } from "../../transport/grpc/enums.js";
import type { NewKeyMetadata } from "../proposal-input.js";

/**
 * Proto conventions shared by the kinds' Propose messages (each kind's `wire` decodes its own
 * message): an unknown enum value becomes "" so the kind's checks refuse it by name.
 */

/** A new key's metadata (import or generate). */
export function newKeyOf(i: GenerateKeyProposal): NewKeyMetadata {
  return {
    keyId: i.keyId,
    exchange: i.exchange,
    environment: i.environment === Environment.ENVIRONMENT_TESTNET ? "testnet" : i.environment === Environment.ENVIRONMENT_MAINNET ? "mainnet" : ("" as never),
    label: i.label || i.keyId,
    apiKeyId: i.apiKeyId,
    algorithm: ALGORITHM_NAMES[i.algorithm] ?? ("" as never),
    maxAgeDays: i.maxAgeDays || DEFAULT_MAX_AGE_DAYS,
  };
}

/** A wrapped key envelope; INVALID_ARGUMENT if absent or its OAEP hash is not one custos unwraps. */
export function envelopeOf(e: WrappedKeyEnvelope | undefined): ImportEnvelope {
  if (!e) throw new CustosError("INVALID_ARGUMENT", "envelope is required");
  if (e.oaepHash !== "sha1" && e.oaepHash !== "sha256") throw new CustosError("INVALID_ARGUMENT", "envelope oaep hash must be sha1 or sha256");
  return {
    format: e.format,
    oaepHash: e.oaepHash,
    encryptedAesKey: e.encryptedAesKey,
    wrappedKey: e.wrappedKey,
    wrappingKeyFingerprint: e.wrappingKeyFingerprint,
  };
}
