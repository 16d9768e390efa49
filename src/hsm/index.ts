export type { Hsm, HsmStatus, SecretObjectRef, WrappingKeyInfo } from "./hsm.js";
export { ALGORITHMS, algorithmSpec, isSigningAlgorithm, type AlgorithmSpec, type SigningAlgorithm } from "./algorithms.js";
export { ENVELOPE_FORMAT, buildEnvelope, envelopeDigest, padHmacSecret, spkiFingerprint, type ImportEnvelope } from "./envelope.js";
export { Pkcs11Hsm, type Pkcs11HsmOptions } from "./pkcs11/pkcs11-hsm.js";
export { createToken, ensureWrappingKey } from "./pkcs11/token-admin.js";
