import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { CustosError } from "../errors.js";
import {
  ConfigError,
  auditSettings,
  type AuditSettings,
  grpcSettings,
  hsmSettings,
  httpSettings,
  logLevelSetting,
  section,
  postgresSetting,
  storeSettings,
  tlsSettings,
  type StoreSettings,
} from "./config-sections.js";
import { DEFAULT_EGRESS_CONFIG, egressSettings, type EgressConfig } from "./egress-settings.js";
import { DEFAULT_ANOMALY_SETTINGS, type AnomalySettings } from "../monitoring/anomaly.js";
import { isIP } from "node:net";
import { parseServerNameList, validateServerNames } from "../pki/server-names.js";
import { parseCidr } from "../signing/directory.js";
import type { RateLimit } from "../signing/rate-limiter.js";

/** Everything `custos serve` needs, resolved (paths absolute, defaults filled). */
export interface CustosConfig {
  dataDir: string;
  /** True for the embedded default (no custos.json in the data dir). */
  embedded: boolean;
  grpc: { host: string; port: number; maxPayloadBytes: number };
  http: { host: string; port: number };
  tls: { caPath: string; certPath: string; keyPath: string };
  /**
   * Names clients dial custos by, beyond localhost / 127.0.0.1 / ::1 (e.g. `custos` on a compose
   * network): the embedded default's dev server certificate is (re)issued to carry them; a
   * configured deployment refuses to start when `tls.certPath` lacks one.
   */
  serverNames: string[];
  hsm: {
    modulePath: string;
    tokenLabel: string;
    /** Exactly one of pinFile / pinEnv. */
    pinFile?: string;
    pinEnv?: string;
    /** softhsm2.conf to export as SOFTHSM2_CONF before the module loads. */
    softhsmConf?: string;
    sessions: number;
    dispatch: "sync" | "async" | "worker" | "auto";
    oaepHash: "sha1" | "sha256";
  };
  /** The SQLite file, or PostgreSQL (`--postgres` > `CUSTOS_POSTGRES_URL` > `store.postgres`): replicas share it. */
  store: StoreSettings;
  limits: { client: RateLimit; key: RateLimit };
  /** Identities registered as administrators at start (CIDRs: loopback unless given). */
  bootstrapAdmins: Array<{ identity: string; cidrs: string[] }>;
  /** Identities granted every imported key (the embedded default's dev client only). */
  autoGrant: string[];
  /**
   * flushIntervalMs: sign events written at least this often; checkpointIntervalMs: the chain head signed at least this often;
   * maxUnwrittenSeconds: signing stops while an audit record waits unwritten longer (the store is down);
   * acknowledge: "written" answers a signature once its record is in the store, "queued" at once;
   * refusals: how refusals are sampled under floods (defaults: refusal-sampler.ts).
   */
  audit: AuditSettings;
  governance: GovernanceConfig;
  /** Anomaly detection on signing traffic (README "Monitoring"). */
  anomaly: AnomalyConfig;
  /** The officer console (HTTPS, its own listener; README "Officer console"). */
  console: ConsoleConfig;
  /** How SendExchangeRequest reaches the exchanges (README "Egress"). */
  egress: EgressConfig;
  logLevel: string;
}

export interface AnomalyConfig extends AnomalySettings {
  /** Detection on (default); off, no baselines are kept at all. */
  enabled: boolean;
}

export interface ConsoleConfig {
  /** Serve the officer console (default true). */
  enabled: boolean;
  host: string;
  /** Unset: 7402, or any free port when http.port is 0 (tests, instances side by side). */
  port?: number;
  /** WebAuthn relying party id: the host name officers open the console at (default localhost). */
  rpId: string;
  /** The origin officers' browsers use, when not https://RPID:PORT (e.g. behind a TLS proxy). */
  origin?: string;
  /** Officer sessions end this long after login (default 15). */
  sessionMinutes: number;
  /** Anonymous requests (login, enrollment) per source address: default 0.5/s, burst 10. */
  anonymousRate?: RateLimit;
}

export const DEFAULT_CONSOLE_PORT = 7402;

export interface GovernanceConfig {
  /** The proposer's own approval counts toward the quorum (embedded default: true, it has one officer). */
  proposerCounts: boolean;
  /** Any officer's rejection cancels a proposal. */
  veto: boolean;
  /** Lifetime of a proposal that asks for none. */
  proposalTtlHours: number;
  /** The longest lifetime a proposal may ask for (ttl_seconds); at most 30 days, at least proposalTtlHours. */
  maxProposalTtlHours: number;
  /** How often expiries, grace periods and overdue keys are checked (tests shorten it). */
  housekeepingMs?: number;
}

/** No proposal may stay open longer than 30 days, whatever the configuration says. */
export const MAX_PROPOSAL_TTL_HOURS = 30 * 24;

export const CONFIG_FILE = "custos.json";
export const CONNECTION_FILE = "connection.json";
/** The wrapping-key fingerprint the CLI pins for imports into an embedded data dir. */
export const FINGERPRINT_FILE = "wrapping-key.fingerprint";
export const DEFAULT_GRPC_PORT = 7400;
export const DEFAULT_HTTP_PORT = 7401;
export const LOOPBACK_CIDRS = ["127.0.0.0/8", "::1/128"];

/**
 * The embedded default's PKCS#11 module: `$CUSTOS_PKCS11_MODULE` if set (e.g. a SoftHSM2
 * build that can unwrap Ed25519 keys), else Debian's SoftHSM2 module, then the multiarch path.
 */
export function defaultSofthsmModule(): string {
  if (process.env.CUSTOS_PKCS11_MODULE) return process.env.CUSTOS_PKCS11_MODULE;
  for (const p of ["/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so", "/usr/local/lib/softhsm/libsofthsm2.so"]) {
    if (existsSync(p)) return p;
  }
  return "/usr/lib/softhsm/libsofthsm2.so";
}

/** Defaults shared by the embedded and configured modes. */
export function baseDefaults(dataDir: string) {
  return {
    grpc: { host: "127.0.0.1", port: DEFAULT_GRPC_PORT, maxPayloadBytes: 64 * 1024 },
    http: { host: "127.0.0.1", port: DEFAULT_HTTP_PORT },
    // A bot signing every order and cancel of a busy strategy stays far below these.
    limits: { client: { perSecond: 20_000, burst: 40_000 }, key: { perSecond: 20_000, burst: 40_000 } },
    audit: { flushIntervalMs: 250, checkpointIntervalMs: 60_000, maxUnwrittenSeconds: 5, acknowledge: "written" as const },
    governance: { proposerCounts: false, veto: true, proposalTtlHours: 24, maxProposalTtlHours: 7 * 24 },
    anomaly: { enabled: true, ...DEFAULT_ANOMALY_SETTINGS } as AnomalyConfig,
    console: { enabled: true, host: "127.0.0.1", rpId: "localhost", sessionMinutes: 15 } as ConsoleConfig,
    store: { sqlitePath: join(dataDir, "custos.db") },
    egress: { ...DEFAULT_EGRESS_CONFIG },
    serverNames: [] as string[],
    logLevel: process.env.CUSTOS_LOG_LEVEL ?? "info",
  };
}

/** The embedded default: everything under the data dir, created on first start. */
export function embeddedConfig(dataDir: string): CustosConfig {
  const dir = resolve(dataDir);
  return {
    ...baseDefaults(dir),
    dataDir: dir,
    embedded: true,
    tls: { caPath: join(dir, "pki/ca.crt"), certPath: join(dir, "pki/server.crt"), keyPath: join(dir, "pki/server.key") },
    hsm: {
      modulePath: defaultSofthsmModule(),
      tokenLabel: "custos",
      pinFile: join(dir, "secrets/user.pin"),
      softhsmConf: join(dir, "softhsm2.conf"),
      sessions: 8,
      dispatch: "auto",
      oaepHash: "sha1",
    },
    bootstrapAdmins: [{ identity: EMBEDDED_ADMIN, cidrs: LOOPBACK_CIDRS }],
    autoGrant: [EMBEDDED_CLIENT],
    // One local dev officer, threshold 1: its own approval must count.
    governance: { proposerCounts: true, veto: true, proposalTtlHours: 24, maxProposalTtlHours: 7 * 24 },
  };
}

export const EMBEDDED_ADMIN = "spiffe://custos/admin/bootstrap";
export const EMBEDDED_CLIENT = "spiffe://custos/engine/dev";
export const EMBEDDED_OFFICER = { id: "dev", identity: "spiffe://custos/officer/dev" } as const;

/**
 * Loads DIR/custos.json over the defaults, or the embedded default if there is none.
 * Unknown keys are refused, so a typo cannot silently weaken a setting.
 */
export function loadConfig(dataDir: string): CustosConfig {
  const dir = resolve(dataDir);
  const file = join(dir, CONFIG_FILE);
  return withEnvironment(existsSync(file) ? configuredConfig(dir, file) : embeddedConfig(dir));
}

/**
 * Settings the environment overrides, in either mode (a container sets them; an unset or
 * empty variable changes nothing): `CUSTOS_GRPC_HOST`, `CUSTOS_HTTP_HOST`,
 * `CUSTOS_CONSOLE_HOST` (listen addresses: IP literals) and `CUSTOS_SERVER_NAMES`
 * (comma-separated, added to the configured server names), and `CUSTOS_POSTGRES_URL` (the store's
 * PostgreSQL URL, over `store.postgres`; `serve --postgres` is above both).
 */
export function withEnvironment(config: CustosConfig, env: NodeJS.ProcessEnv = process.env): CustosConfig {
  const host = (name: string): string | undefined => {
    const v = env[name];
    if (v === undefined || v === "") return undefined;
    if (isIP(v) === 0) throw new CustosError("INVALID_ARGUMENT", `$${name} must be an IP address to listen on (e.g. 0.0.0.0 or 127.0.0.1)`);
    return v;
  };
  const names = env.CUSTOS_SERVER_NAMES ? parseServerNameList(env.CUSTOS_SERVER_NAMES, "$CUSTOS_SERVER_NAMES") : [];
  return {
    ...config,
    grpc: { ...config.grpc, host: host("CUSTOS_GRPC_HOST") ?? config.grpc.host },
    http: { ...config.http, host: host("CUSTOS_HTTP_HOST") ?? config.http.host },
    console: { ...config.console, host: host("CUSTOS_CONSOLE_HOST") ?? config.console.host },
    serverNames: [...new Set([...config.serverNames, ...names])],
    store: env.CUSTOS_POSTGRES_URL ? { ...config.store, postgres: postgresSetting(env.CUSTOS_POSTGRES_URL, "CUSTOS_POSTGRES_URL") } : config.store,
  };
}

/** `config` with the store on the PostgreSQL URL a command line gave (`--postgres`), which wins over the environment and custos.json. */
export function withPostgresFlag(config: CustosConfig, url: string | undefined): CustosConfig {
  if (url === undefined) return config;
  return { ...config, store: { ...config.store, postgres: postgresSetting(url, "--postgres") } };
}

/** DIR/custos.json over the defaults. */
function configuredConfig(dir: string, file: string): CustosConfig {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  } catch (e) {
    throw new CustosError("INVALID_ARGUMENT", `${file} is not valid JSON`, { cause: e });
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new ConfigError(file, "", "the configuration must be a JSON object");
  const base = baseDefaults(dir);
  section(file, "", raw, [
    "grpc",
    "http",
    "tls",
    "pki",
    "hsm",
    "store",
    "limits",
    "bootstrapAdmins",
    "audit",
    "governance",
    "anomaly",
    "console",
    "egress",
    "logLevel",
  ]);
  return {
    ...base,
    dataDir: dir,
    embedded: false,
    grpc: grpcSettings(file, base.grpc, raw.grpc),
    http: httpSettings(file, base.http, raw.http),
    tls: tlsSettings(file, dir, raw.tls),
    serverNames: pkiSettings(file, raw.pki),
    hsm: hsmSettings(file, dir, raw.hsm),
    store: storeSettings(file, dir, base.store, raw.store),
    limits: rateLimits(file, base.limits, raw.limits),
    audit: auditSettings(file, base.audit, raw.audit),
    governance: governanceSettings(file, base.governance, raw.governance),
    anomaly: anomalySettings(file, base.anomaly, raw.anomaly),
    console: consoleSettings(file, base.console, raw.console),
    egress: egressSettings(file, dir, raw.egress),
    bootstrapAdmins: bootstrapAdminSettings(file, raw.bootstrapAdmins),
    autoGrant: [],
    logLevel: logLevelSetting(file, base.logLevel, raw.logLevel),
  };
}

/** The pki section: `serverNames`, the only setting it has. */
function pkiSettings(file: string, raw: unknown): string[] {
  const given = section(file, "pki", raw, ["serverNames"]);
  if (given.serverNames === undefined) return [];
  if (!Array.isArray(given.serverNames)) throw new ConfigError(file, "pki.serverNames", "pki.serverNames is a list of host names and IP addresses");
  return validateServerNames(given.serverNames as string[], `${file}: pki.serverNames`);
}

/** Bootstrap administrators: an identity each and the CIDRs it may act from (loopback unless given); a bad CIDR is refused. */
function bootstrapAdminSettings(file: string, raw: unknown): CustosConfig["bootstrapAdmins"] {
  const given = (raw ?? []) as Array<{ identity?: unknown; cidrs?: unknown }>;
  if (!Array.isArray(given)) throw new ConfigError(file, "bootstrapAdmins", "bootstrapAdmins must be a list");
  return given.map((entry, i) => {
    const a = section(file, `bootstrapAdmins[${i}]`, entry ?? null, ["identity", "cidrs"]) as { identity?: unknown; cidrs?: unknown };
    const cidrs = a.cidrs ?? LOOPBACK_CIDRS;
    if (typeof a.identity !== "string" || !a.identity || !Array.isArray(cidrs) || !cidrs.every((c) => typeof c === "string")) {
      throw new ConfigError(file, `bootstrapAdmins[${i}]`, "each bootstrapAdmins entry needs an identity and a list of CIDRs");
    }
    for (const c of cidrs as string[]) parseCidr(c);
    return { identity: a.identity, cidrs: [...(cidrs as string[])] };
  });
}

function governanceSettings(file: string, base: GovernanceConfig, raw: unknown): GovernanceConfig {
  const known = ["proposerCounts", "veto", "proposalTtlHours", "maxProposalTtlHours", "housekeepingMs"];
  const given = section(file, "governance", raw, known) as Partial<GovernanceConfig>;
  const out = { ...base, ...given };
  if (typeof out.proposerCounts !== "boolean" || typeof out.veto !== "boolean") {
    throw new ConfigError(
      file,
      typeof out.veto !== "boolean" ? "governance.veto" : "governance.proposerCounts",
      "governance.proposerCounts and .veto are true or false",
    );
  }
  if (typeof out.proposalTtlHours !== "number" || !(out.proposalTtlHours > 0 && out.proposalTtlHours <= MAX_PROPOSAL_TTL_HOURS)) {
    throw new ConfigError(file, "governance.proposalTtlHours", "governance.proposalTtlHours must be a number of hours up to 720");
  }
  // Unset, the maximum follows a default lifetime configured above it.
  const max = (out.maxProposalTtlHours = given.maxProposalTtlHours ?? Math.max(base.maxProposalTtlHours, out.proposalTtlHours));
  if (typeof max !== "number" || !(max >= out.proposalTtlHours && max <= MAX_PROPOSAL_TTL_HOURS)) {
    const range = `from proposalTtlHours to ${MAX_PROPOSAL_TTL_HOURS} hours`;
    throw new ConfigError(file, "governance.maxProposalTtlHours", `governance.maxProposalTtlHours must be ${range}`);
  }
  if (out.housekeepingMs !== undefined && !(typeof out.housekeepingMs === "number" && out.housekeepingMs >= 100 && out.housekeepingMs <= 3_600_000)) {
    throw new ConfigError(file, "governance.housekeepingMs", "governance.housekeepingMs must be 100–3600000");
  }
  return out;
}

/** The console section over its defaults. */
function consoleSettings(file: string, base: ConsoleConfig, raw: unknown): ConsoleConfig {
  const given = section(file, "console", raw, ["enabled", "host", "port", "rpId", "origin", "sessionMinutes", "anonymousRate"]) as Partial<ConsoleConfig>;
  const out = { ...base, ...given };
  if (typeof out.enabled !== "boolean" || typeof out.host !== "string" || typeof out.rpId !== "string" || !/^[a-z0-9.-]+$/i.test(out.rpId)) {
    const setting = typeof out.enabled !== "boolean" ? "console.enabled" : typeof out.host !== "string" ? "console.host" : "console.rpId";
    throw new ConfigError(file, setting, "console.enabled is true or false, console.host and console.rpId (a host name) are strings");
  }
  if (out.port !== undefined && !(Number.isInteger(out.port) && out.port >= 0 && out.port <= 65535)) {
    throw new ConfigError(file, "console.port", "console.port must be 0–65535");
  }
  if (out.origin !== undefined && !/^https:\/\/[^/]+$/.test(out.origin)) {
    throw new ConfigError(file, "console.origin", "console.origin must be https://HOST[:PORT]");
  }
  if (!(typeof out.sessionMinutes === "number" && out.sessionMinutes >= 1 && out.sessionMinutes <= 24 * 60)) {
    throw new ConfigError(file, "console.sessionMinutes", "console.sessionMinutes must be 1–1440");
  }
  const rate = out.anonymousRate as Partial<RateLimit> | undefined;
  const rateOk = typeof rate?.perSecond === "number" && rate.perSecond > 0 && typeof rate.burst === "number" && rate.burst >= 1;
  if (rate !== undefined && !(rateOk && Object.keys(rate).length === 2)) {
    throw new ConfigError(file, "console.anonymousRate", 'console.anonymousRate is { "perSecond": >0, "burst": >=1 }');
  }
  return out;
}

/** The anomaly section over its defaults; every number in its range, auto-freeze above the alarm. */
export function anomalySettings(file: string, base: AnomalyConfig, raw: unknown): AnomalyConfig {
  const known = ["enabled", "intervalMs", "halfLifeIntervals", "warmupIntervals", "threshold", "varianceFloor", "autoFreezeThreshold"];
  const given = section(file, "anomaly", raw, known) as Partial<AnomalyConfig>;
  const ranges: Record<string, [number, number]> = {
    intervalMs: [50, 3_600_000],
    halfLifeIntervals: [1, 10_000],
    warmupIntervals: [0, 100_000],
    threshold: [1, 1_000_000],
    varianceFloor: [0.01, 1e12],
    autoFreezeThreshold: [1, 1_000_000],
  };
  const out = { ...base, ...given };
  if (typeof out.enabled !== "boolean") throw new ConfigError(file, "anomaly.enabled", "anomaly.enabled is true or false");
  for (const [k, [min, max]] of Object.entries(ranges)) {
    const v = (out as unknown as Record<string, unknown>)[k];
    if (v === undefined && k === "autoFreezeThreshold") continue;
    if (!(typeof v === "number" && Number.isFinite(v) && v >= min && v <= max)) {
      throw new ConfigError(file, `anomaly.${k}`, `anomaly.${k} must be a number from ${min} to ${max}`);
    }
  }
  if (out.autoFreezeThreshold !== undefined && out.autoFreezeThreshold < out.threshold) {
    throw new ConfigError(file, "anomaly.autoFreezeThreshold", "anomaly.autoFreezeThreshold must not be below anomaly.threshold");
  }
  return out;
}

/**
 * Each bucket over its own defaults. A shallow merge let `"client": {"perSecond": 5}` drop
 * `burst`, and a bucket with a non-numeric limit allows every request (NaN < 1 is false).
 */
function rateLimits(file: string, base: CustosConfig["limits"], raw: unknown): CustosConfig["limits"] {
  const given = section(file, "limits", raw, ["client", "key"]);
  const one = (name: "client" | "key"): RateLimit => {
    const { perSecond, burst } = { ...base[name], ...section(file, `limits.${name}`, given[name], ["perSecond", "burst"]) };
    const ok = (n: unknown) => typeof n === "number" && Number.isFinite(n) && n >= 0;
    if (!ok(perSecond) || !ok(burst)) {
      throw new ConfigError(
        file,
        ok(perSecond) ? `limits.${name}.burst` : `limits.${name}.perSecond`,
        `limits.${name}.perSecond and .burst must be non-negative numbers`,
      );
    }
    return { perSecond, burst };
  };
  return { client: one("client"), key: one("key") };
}
