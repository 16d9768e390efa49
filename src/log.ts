import pino, { type DestinationStream, type Logger } from "pino";
import { boundStrings } from "./audit/bounded-text.js";

/**
 * Redacted paths: defence in depth. custos never puts a secret, PIN or envelope into a log
 * call, and these censor the field names such values would travel under if one ever did.
 */
export const REDACT_PATHS = [
  "pin",
  "*.pin",
  "secret",
  "*.secret",
  "envelope",
  "*.envelope",
  "encryptedAesKey",
  "*.encryptedAesKey",
  "wrappedKey",
  "*.wrappedKey",
  "payload",
  "*.payload",
  // The API passphrase of OKX and Bitget keys travels with sign requests (one sent for a KuCoin key is refused, and redacted too).
  "passphrase",
  "*.passphrase",
  "req.headers.authorization",
];

/**
 * The field names custos logs under, for ELK/Splunk mappings. Renaming one is a breaking
 * change: README "Monitoring" lists them, and test/unit/log.test.ts holds them.
 */
export const LOG_FIELDS = {
  time: "ISO 8601 UTC timestamp",
  level: "trace|debug|info|warn|error|fatal",
  service: "always custos",
  component: "hsm, grpc, http, governance, signer, anomaly",
  event: "dotted event name, e.g. anomaly, freeze, rpc.error, key.overdue",
  msg: "human-readable sentence",
  client: "client identity (certificate URI SAN or cn:NAME)",
  key: "key id",
  version: "key version",
  outcome: "allowed|denied|ok|failed",
  reason: "custos reason code, e.g. NO_GRANT, HSM_UNAVAILABLE",
  rule: "the policy rule that denied a request, e.g. class:withdraw",
  requestId: "id of a refused or failed call, also sent to the client in google.rpc.ErrorInfo",
  payloadSha256: "hex SHA-256 of a signed payload (payloads themselves are never logged)",
  actor: "who acted: officer id, client identity, system or custos",
  seq: "audit.checkpoint: seq of the audit event the checkpoint attests",
  hash: "audit.checkpoint: hex chain hash of that event",
  at: "audit.checkpoint: ISO 8601 time the checkpoint was signed (signed with seq and hash)",
  keyFingerprint: "audit.checkpoint: sha256: fingerprint of the checkpoint key's SPKI",
  signature: "audit.checkpoint: base64 ECDSA P-256 signature (r||s) by the HSM's checkpoint key",
} as const;

/**
 * JSON logs with stable field names (LOG_FIELDS): time (ISO 8601), level (label), event, msg.
 * String fields longer than 256 characters are cut with their length and SHA-256 (bounded-text.ts).
 */
export function createLogger(level = "info", destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "custos" },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Every top-level string field bounded and escaped: key ids, paths and reasons come from callers.
      formatters: { level: (label) => ({ level: label }), log: (fields) => boundStrings(fields) },
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    },
    destination,
  );
}
