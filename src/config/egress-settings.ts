import { resolve } from "node:path";
import { egressExchanges, routePrefixes, type HostOverrides } from "../egress/destinations.js";
import { ConfigError, integer, section, text } from "./config-sections.js";

/** custos.json `egress`: how custos reaches the exchanges for SendExchangeRequest. */
export interface EgressConfig {
  /** exchange → path prefix (as the built-in table names it, e.g. "/fapi/") → https origin, for both environments. */
  hosts: HostOverrides;
  /** A PEM file of CA certificates trusted for exchange hosts besides the system's roots (absolute). */
  trustedCaFile?: string;
  connectTimeoutMs: number;
  /** Until the response headers, and then between body chunks. */
  responseTimeoutMs: number;
  /** A larger response is cut off (EXCHANGE_RESPONSE_TOO_LARGE). */
  maxResponseBytes: number;
  /** Keep-alive connections per exchange origin. */
  connectionsPerOrigin: number;
  /** Whether custos reads keys' permissions from their exchanges at all (default true). */
  permissionChecks: boolean;
  /** How often custos reads each key's permissions from its exchange again (after import and rotation it always does). */
  permissionCheckIntervalMs: number;
}

export const DEFAULT_EGRESS_CONFIG: EgressConfig = {
  hosts: {},
  connectTimeoutMs: 5_000,
  responseTimeoutMs: 10_000,
  maxResponseBytes: 4 * 1024 * 1024,
  connectionsPerOrigin: 16,
  permissionChecks: true,
  permissionCheckIntervalMs: 6 * 3_600_000,
};

/** An https origin: scheme, host, optional port; no path, user info, query or fragment. */
const HTTPS_ORIGIN = /^https:\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/;

/**
 * `egress`: host overrides (only for exchanges and path prefixes the table has, only https
 * origins), the extra trusted CA file (resolved against the data dir), timeouts and bounds.
 */
export function egressSettings(file: string, dir: string, raw: unknown): EgressConfig {
  const s = section(file, "egress", raw, [
    "hosts",
    "trustedCaFile",
    "connectTimeoutMs",
    "responseTimeoutMs",
    "maxResponseBytes",
    "connectionsPerOrigin",
    "permissionChecks",
    "permissionCheckIntervalMs",
  ]);
  const base = DEFAULT_EGRESS_CONFIG;
  const hosts: Record<string, Record<string, string>> = {};
  const exchanges = section(file, "egress.hosts", s.hosts, egressExchanges());
  for (const [exchange, routes] of Object.entries(exchanges)) {
    const prefixes = section(file, `egress.hosts.${exchange}`, routes, routePrefixes(exchange));
    hosts[exchange] = {};
    for (const [prefix, origin] of Object.entries(prefixes)) {
      const path = `egress.hosts.${exchange}.${prefix}`;
      if (typeof origin !== "string" || !HTTPS_ORIGIN.test(origin)) throw new ConfigError(file, path, `${path} must be an https origin (https://HOST[:PORT])`);
      hosts[exchange][prefix] = origin;
    }
  }
  return {
    hosts,
    ...(s.trustedCaFile !== undefined ? { trustedCaFile: resolve(dir, text(file, "egress.trustedCaFile", s.trustedCaFile)) } : {}),
    connectTimeoutMs: integer(file, "egress.connectTimeoutMs", s.connectTimeoutMs, 1, 120_000, base.connectTimeoutMs),
    responseTimeoutMs: integer(file, "egress.responseTimeoutMs", s.responseTimeoutMs, 1, 600_000, base.responseTimeoutMs),
    maxResponseBytes: integer(file, "egress.maxResponseBytes", s.maxResponseBytes, 1, 256 * 1024 * 1024, base.maxResponseBytes),
    connectionsPerOrigin: integer(file, "egress.connectionsPerOrigin", s.connectionsPerOrigin, 1, 1_024, base.connectionsPerOrigin),
    permissionChecks: flag(file, "egress.permissionChecks", s.permissionChecks, base.permissionChecks),
    permissionCheckIntervalMs: integer(
      file,
      "egress.permissionCheckIntervalMs",
      s.permissionCheckIntervalMs,
      1,
      30 * 86_400_000,
      base.permissionCheckIntervalMs,
    ),
  };
}

/** A boolean setting, or its default when absent. */
function flag(file: string, path: string, v: unknown, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== "boolean") throw new ConfigError(file, path, `${path} is true or false`);
  return v;
}
