export type { AuditCheckpointSigner, Hsm, HsmHealth, HsmStatus, KeyCustody, SecretObjectRef, Signer, WrappingKeyInfo } from "./hsm.js";
export {
  ALGORITHMS,
  algorithmSpec,
  hmacSpec,
  isHmacAlgorithm,
  isSigningAlgorithm,
  type AlgorithmSpec,
  type EddsaAlgorithm,
  type EddsaSpec,
  type HmacAlgorithm,
  type HmacSpec,
  type SigningAlgorithm,
  type SpecOf,
} from "./algorithms.js";
export { ENVELOPE_FORMAT, buildEnvelope, envelopeDigest, padHmacSecret, spkiFingerprint, type ImportEnvelope } from "./envelope.js";
export { Pkcs11Hsm, type Pkcs11HsmOptions } from "./pkcs11/pkcs11-hsm.js";
export { createToken, ensureCheckpointKey, ensureWrappingKey, readCheckpointPublicKey } from "./pkcs11/token-admin.js";
export { checkpointStatement, verifyCheckpointSignature, type CheckpointHead } from "./checkpoint-statement.js";
