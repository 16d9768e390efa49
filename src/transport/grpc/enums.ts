import { Algorithm, Environment } from "../../gen/custos/v1/custody.js";
import type { SigningAlgorithm } from "../../hsm/algorithms.js";

/** Domain algorithm names ↔ the wire enum (one place, used by handlers, CLI and tests). */
export const ALGORITHM_ENUM: Readonly<Record<SigningAlgorithm, Algorithm>> = {
  "hmac-sha256": Algorithm.ALGORITHM_HMAC_SHA256,
  "hmac-sha384": Algorithm.ALGORITHM_HMAC_SHA384,
  "hmac-sha512": Algorithm.ALGORITHM_HMAC_SHA512,
  ed25519: Algorithm.ALGORITHM_ED25519,
};

export const ALGORITHM_NAMES: Readonly<Partial<Record<Algorithm, SigningAlgorithm>>> = Object.fromEntries(
  Object.entries(ALGORITHM_ENUM).map(([name, value]) => [value, name as SigningAlgorithm]),
);

/** The wire environment enum → the names the CLI takes (`--environment mainnet`). */
export const ENVIRONMENT_NAMES: Readonly<Partial<Record<Environment, "mainnet" | "testnet">>> = {
  [Environment.ENVIRONMENT_MAINNET]: "mainnet",
  [Environment.ENVIRONMENT_TESTNET]: "testnet",
};
