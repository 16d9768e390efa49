import type { EndpointClass } from "./dialect.js";

/*
 * Parameter schemas for exchanges whose signature does not cover the method or the path
 * (Binance, Bybit v5). There a signature made for one endpoint is valid at any other endpoint
 * that reads the same parameters, so the policy cannot decide from the path alone: a request
 * is signed only when every parameter it carries is one the claimed endpoint documents. The
 * property test (test/unit/exchanges/*-catalog.test.ts) then shows that no refused endpoint's
 * required parameters fit inside any allowed endpoint's schema.
 */

/** The parameters one endpoint takes, from the exchange's official API reference. */
export interface EndpointParams {
  /** Every parameter (or top-level JSON field) the endpoint documents, custos's own excluded. */
  readonly names: ReadonlySet<string>;
  /**
   * Values that tell endpoints apart where a name is shared (e.g. Binance `type`): the values
   * this endpoint accepts for that parameter; any other value is refused.
   */
  readonly values?: Readonly<Record<string, readonly string[]>>;
}

/** A schema table keyed by "METHOD /path" (REST) or by WebSocket API method name. */
export type SchemaTable = ReadonlyMap<string, EndpointParams>;

/** Builds a table from `{ "POST /fapi/v1/order": ["symbol", "side", …] }`, values optional. */
export function schemaTable(
  entries: Record<string, readonly string[] | { names: readonly string[]; values?: Record<string, readonly string[]> }>,
): SchemaTable {
  const table = new Map<string, EndpointParams>();
  for (const [endpoint, spec] of Object.entries(entries)) {
    const names = Array.isArray(spec) ? (spec as readonly string[]) : (spec as { names: readonly string[] }).names;
    const values = Array.isArray(spec) ? undefined : (spec as { values?: Record<string, readonly string[]> }).values;
    table.set(endpoint, { names: new Set(names), ...(values ? { values } : {}) });
  }
  return table;
}

/** Why a request does not fit its endpoint's schema, or undefined when it fits. */
export function schemaMisfit(schema: EndpointParams, params: Iterable<[string, string | undefined]>, owned: ReadonlySet<string>): string | undefined {
  for (const [name, value] of params) {
    if (owned.has(name)) continue;
    if (!schema.names.has(name)) return `parameter ${name} is not one this endpoint takes`;
    const allowed = schema.values?.[name];
    if (allowed && (value === undefined || !allowed.includes(value))) return `parameter ${name} has a value this endpoint does not take`;
  }
  return undefined;
}

/** The endpoint classes a signature made for a schema'd endpoint must never reach elsewhere. */
export const PROTECTED_CLASSES: readonly EndpointClass[] = ["withdraw", "transfer", "key-management"];
