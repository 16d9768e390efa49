import { resolve } from "node:path";
import type { RefusalSampling } from "../audit/refusal-sampler.js";
import type { Acknowledge } from "../audit/audit-log.js";
import { CustosError } from "../errors.js";
import { isPostgresUrl } from "../store/postgres/pg-url.js";

/*
 * Readers for the sections of custos.json that are plain settings (grpc, http, tls, hsm, store,
 * audit, logLevel). Every section is an object whose keys are all known, and every value has its
 * type, range or enum: a typo or a wrong value refuses the start with the setting's path, so it
 * cannot silently become a default (`"dispatch": "workr"` once meant sync dispatch).
 */

/** A refused setting: INVALID_ARGUMENT, with the setting's path (e.g. `hsm.dispatch`) for callers and tests. */
export class ConfigError extends CustosError {
  override readonly name = "ConfigError";
  constructor(
    readonly file: string,
    /** The setting's path in custos.json, e.g. "hsm.dispatch" or "limits.client.burst". */
    readonly setting: string,
    message: string,
  ) {
    super("INVALID_ARGUMENT", `${file}: ${message}`);
  }
}

/** Reads one section: an object (or absent) with no key outside `known`. */
export function section(file: string, path: string, raw: unknown, known: readonly string[]): Record<string, unknown> {
  if (raw === undefined) return {};
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new ConfigError(file, path, `${path || "the configuration"} must be an object`);
  for (const k of Object.keys(raw)) {
    // "" is the top level: its settings' paths are their names.
    const setting = path ? `${path}.${k}` : k;
    if (!known.includes(k)) throw new ConfigError(file, setting, `unknown setting "${setting}"`);
  }
  return raw as Record<string, unknown>;
}

/** An integer in [min, max], or the default when absent. */
export function integer(file: string, path: string, v: unknown, min: number, max: number, fallback: number): number {
  if (v === undefined) return fallback;
  if (!(typeof v === "number" && Number.isInteger(v) && v >= min && v <= max)) {
    throw new ConfigError(file, path, `${path} must be a whole number from ${min} to ${max}`);
  }
  return v;
}

/** A non-empty string, or the default when absent. */
export function text(file: string, path: string, v: unknown, fallback?: string): string {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== "string" || v === "") throw new ConfigError(file, path, `${path} must be a non-empty string`);
  return v;
}

/** One of `values`, or the default when absent. */
export function oneOf<T extends string>(file: string, path: string, v: unknown, values: readonly T[], fallback: T): T {
  if (v === undefined) return fallback;
  if (typeof v !== "string" || !(values as readonly string[]).includes(v)) throw new ConfigError(file, path, `${path} must be one of ${values.join(", ")}`);
  return v as T;
}

const PORT_MAX = 65_535;

/** `grpc`: listen address, port and the largest payload. */
export function grpcSettings(file: string, base: { host: string; port: number; maxPayloadBytes: number }, raw: unknown): typeof base {
  const s = section(file, "grpc", raw, ["host", "port", "maxPayloadBytes"]);
  return {
    host: text(file, "grpc.host", s.host, base.host),
    port: integer(file, "grpc.port", s.port, 0, PORT_MAX, base.port),
    maxPayloadBytes: integer(file, "grpc.maxPayloadBytes", s.maxPayloadBytes, 1, 64 * 1024 * 1024, base.maxPayloadBytes),
  };
}

/** `http`: the health and metrics listener. */
export function httpSettings(file: string, base: { host: string; port: number }, raw: unknown): typeof base {
  const s = section(file, "http", raw, ["host", "port"]);
  return { host: text(file, "http.host", s.host, base.host), port: integer(file, "http.port", s.port, 0, PORT_MAX, base.port) };
}

/** `tls`: the three paths, required, resolved against the data dir. */
export function tlsSettings(file: string, dir: string, raw: unknown): { caPath: string; certPath: string; keyPath: string } {
  if (raw === undefined) throw new ConfigError(file, "tls", "tls.caPath, tls.certPath and tls.keyPath are required");
  const s = section(file, "tls", raw, ["caPath", "certPath", "keyPath"]);
  const path = (name: string): string => resolve(dir, text(file, `tls.${name}`, s[name]));
  return { caPath: path("caPath"), certPath: path("certPath"), keyPath: path("keyPath") };
}

/** What `hsm` resolves to (the CustosConfig["hsm"] shape). */
export interface HsmSettings {
  modulePath: string;
  tokenLabel: string;
  pinFile?: string;
  pinEnv?: string;
  softhsmConf?: string;
  sessions: number;
  dispatch: "sync" | "async" | "worker" | "auto";
  oaepHash: "sha1" | "sha256";
}

/** `hsm`: module and token (required), exactly one PIN source, sessions, dispatch and OAEP hash. */
export function hsmSettings(file: string, dir: string, raw: unknown): HsmSettings {
  if (raw === undefined) throw new ConfigError(file, "hsm", "hsm.modulePath and hsm.tokenLabel are required");
  const s = section(file, "hsm", raw, ["modulePath", "tokenLabel", "pinFile", "pinEnv", "softhsmConf", "sessions", "dispatch", "oaepHash"]);
  const modulePath = text(file, "hsm.modulePath", s.modulePath);
  const tokenLabel = text(file, "hsm.tokenLabel", s.tokenLabel);
  if ((s.pinFile === undefined) === (s.pinEnv === undefined)) throw new ConfigError(file, "hsm.pinFile", "set exactly one of hsm.pinFile and hsm.pinEnv");
  return {
    modulePath,
    tokenLabel,
    ...(s.pinFile !== undefined ? { pinFile: resolve(dir, text(file, "hsm.pinFile", s.pinFile)) } : { pinEnv: text(file, "hsm.pinEnv", s.pinEnv) }),
    ...(s.softhsmConf !== undefined ? { softhsmConf: resolve(dir, text(file, "hsm.softhsmConf", s.softhsmConf)) } : {}),
    sessions: integer(file, "hsm.sessions", s.sessions, 1, 1_024, 8),
    dispatch: oneOf(file, "hsm.dispatch", s.dispatch, ["sync", "async", "worker", "auto"] as const, "auto"),
    oaepHash: oneOf(file, "hsm.oaepHash", s.oaepHash, ["sha1", "sha256"] as const, "sha1"),
  };
}

/** The store's PostgreSQL URL and the setting it came from (errors name the setting, never the URL's password). */
export interface PostgresSetting {
  url: string;
  /** "--postgres", "CUSTOS_POSTGRES_URL" or "store.postgres". */
  setting: string;
}

/** What `store` resolves to: the SQLite file, and the PostgreSQL URL that replaces it when given. */
export interface StoreSettings {
  sqlitePath: string;
  postgres?: PostgresSetting;
}

/**
 * `url` as the store's PostgreSQL URL, from `setting`; INVALID_ARGUMENT naming the setting if it
 * is not a postgres:// or postgresql:// URL (the value itself is not repeated: it may hold a password).
 */
export function postgresSetting(url: string, setting: string, file?: string): PostgresSetting {
  if (!isPostgresUrl(url)) {
    const message = `${setting} must be a postgres:// or postgresql:// URL`;
    throw file === undefined ? new CustosError("INVALID_ARGUMENT", message) : new ConfigError(file, setting, message);
  }
  return { url, setting };
}

/** `store`: the SQLite file, resolved against the data dir; `postgres`, a PostgreSQL URL that replaces it. */
export function storeSettings(file: string, dir: string, base: { sqlitePath: string }, raw: unknown): StoreSettings {
  const s = section(file, "store", raw, ["sqlitePath", "postgres"]);
  const sqlitePath = s.sqlitePath === undefined ? base.sqlitePath : resolve(dir, text(file, "store.sqlitePath", s.sqlitePath));
  if (s.postgres === undefined) return { sqlitePath };
  return { sqlitePath, postgres: postgresSetting(text(file, "store.postgres", s.postgres), "store.postgres", file) };
}

/** What `audit` resolves to (the CustosConfig["audit"] shape). */
export interface AuditSettings {
  flushIntervalMs: number;
  checkpointIntervalMs: number;
  /** Signing stops (UNAVAILABLE, AUDIT_BACKLOG) while the oldest unwritten audit record is older than this. */
  maxUnwrittenSeconds: number;
  /** A signature is answered once its record is written ("written"), or as soon as it is queued. */
  acknowledge: Acknowledge;
  refusals?: Partial<RefusalSampling>;
}

/** `audit`: flush and checkpoint intervals, and how refusals are sampled. */
export function auditSettings(file: string, base: AuditSettings, raw: unknown): AuditSettings {
  const s = section(file, "audit", raw, ["flushIntervalMs", "checkpointIntervalMs", "maxUnwrittenSeconds", "acknowledge", "refusals"]);
  const out: AuditSettings = {
    flushIntervalMs: integer(file, "audit.flushIntervalMs", s.flushIntervalMs, 1, 60_000, base.flushIntervalMs),
    checkpointIntervalMs: integer(file, "audit.checkpointIntervalMs", s.checkpointIntervalMs, 10, 86_400_000, base.checkpointIntervalMs),
    maxUnwrittenSeconds: integer(file, "audit.maxUnwrittenSeconds", s.maxUnwrittenSeconds, 1, 3_600, base.maxUnwrittenSeconds),
    acknowledge: oneOf(file, "audit.acknowledge", s.acknowledge, ["written", "queued"] as const, base.acknowledge),
  };
  if (s.refusals !== undefined) {
    const r = section(file, "audit.refusals", s.refusals, ["windowMs", "individualPerSource", "maxSources"]);
    const refusals: Partial<RefusalSampling> = {};
    if (r.windowMs !== undefined) refusals.windowMs = integer(file, "audit.refusals.windowMs", r.windowMs, 1, 86_400_000, 0);
    if (r.individualPerSource !== undefined) {
      refusals.individualPerSource = integer(file, "audit.refusals.individualPerSource", r.individualPerSource, 0, 10_000_000, 0);
    }
    if (r.maxSources !== undefined) refusals.maxSources = integer(file, "audit.refusals.maxSources", r.maxSources, 1, 10_000_000, 0);
    out.refusals = refusals;
  }
  return out;
}

/** pino's levels. */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;

/** `logLevel`: one of pino's levels. */
export function logLevelSetting(file: string, base: string, raw: unknown): string {
  return oneOf(file, "logLevel", raw, LOG_LEVELS, base as (typeof LOG_LEVELS)[number]);
}
