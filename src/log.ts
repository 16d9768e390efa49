import pino, { type DestinationStream, type Logger } from "pino";

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
  "req.headers.authorization",
];

/** JSON logs with stable field names: time (ISO 8601), level (label), event, msg. */
export function createLogger(level = "info", destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "custos" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    },
    destination,
  );
}
