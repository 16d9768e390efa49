import { describe, it } from "node:test";
import assert from "node:assert/strict";
import ccxt from "ccxt";
import { binance, BINANCE_ENDPOINT_CLASSES } from "../../../src/exchanges/binance.js";
import { BINANCE_REST_PARAMS } from "../../../src/exchanges/binance-params.js";
import { BINANCE_WEBSOCKET_METHOD_CLASSES } from "../../../src/exchanges/binance-websocket.js";
import { BINANCE_WS_PARAMS } from "../../../src/exchanges/binance-ws-params.js";
import type { EndpointClass } from "../../../src/exchanges/dialect.js";
import { PROTECTED_CLASSES, type EndpointParams } from "../../../src/exchanges/param-schema.js";
import { REFUSED_ENDPOINTS, UNPROTECTABLE, type RefusedEndpoint } from "../../fixtures/binance-refused-endpoints.js";

/*
 * Binance signs the parameters, not the method or the path: a request custos signs for an
 * allowed endpoint E is a valid request to any endpoint F whose mandatory parameters it carries.
 * custos signs only parameters E's schema lists, so the property is: for no allowed schema E
 * (REST, and each WebSocket API method's, whose signed parameters include apiKey) and no
 * withdrawal, transfer or key-management endpoint F can F's mandatory parameters all be given
 * within E. The F list comes from ccxt's API tables, independently of custos's own tables.
 */

/** Parameters custos adds to every signed request: they satisfy any F that needs them. */
const ALWAYS_SENT = new Set(["timestamp", "recvWindow"]);

/** Every private endpoint in ccxt's Binance API tables, as "METHOD /path". */
function ccxtEndpoints(): Set<string> {
  const out = new Set<string>();
  for (const id of ["binance", "binanceusdm", "binancecoinm"]) {
    const ex = new (ccxt as unknown as Record<string, new () => { describe(): Record<string, unknown> }>)[id]!();
    const d = ex.describe() as { api: Record<string, Record<string, string[] | Record<string, unknown>>>; urls: { api: Record<string, string> } };
    for (const [section, methods] of Object.entries(d.api)) {
      const base = d.urls.api[section];
      assert.ok(base, `ccxt ${id}: no URL for API section ${section}`);
      const prefix = new URL(base).pathname.replace(/\/$/, "");
      for (const [method, paths] of Object.entries(methods)) {
        for (const path of Array.isArray(paths) ? paths : Object.keys(paths)) out.add(`${method.toUpperCase()} ${prefix}/${path}`);
      }
    }
  }
  return out;
}

function classOf(endpoint: string): EndpointClass {
  const [method, path] = endpoint.split(" ") as ["GET" | "POST" | "PUT" | "DELETE", string];
  return binance.classify({ method, path, query: "", body: "" });
}

/** Whether a request that only carries parameters E takes (plus custos's own) can give all of F's mandatory ones. */
function satisfiable(f: RefusedEndpoint, e: EndpointParams): boolean {
  return f.required.every((name) => {
    if (ALWAYS_SENT.has(name)) return true;
    if (!e.names.has(name)) return false;
    const mine = e.values?.[name];
    const theirs = f.values?.[name];
    return !mine || !theirs || mine.some((v) => theirs.includes(v));
  });
}

const ALLOWED: readonly EndpointClass[] = ["trade", "read", "account"];
const endpoints = ccxtEndpoints();
const refused = [...endpoints].filter((e) => PROTECTED_CLASSES.includes(classOf(e))).sort();

/** Every allowed schema, REST and WebSocket; a WebSocket request's signed parameters include apiKey. */
const allowedSchemas: Array<[string, EndpointParams]> = [
  ...BINANCE_REST_PARAMS,
  ...[...BINANCE_WS_PARAMS].map(([m, s]): [string, EndpointParams] => [`WS ${m}`, { ...s, names: new Set([...s.names, "apiKey"]) }]),
];

describe("Binance parameter schemas against ccxt's catalog of refused endpoints", () => {
  it("ccxt's tables list withdrawal, transfer and key-management endpoints (the catalog is not empty)", () => {
    assert.ok(endpoints.size > 500, `only ${endpoints.size} ccxt endpoints`);
    assert.ok(refused.includes("POST /sapi/v1/capital/withdraw/apply"));
    assert.ok(refused.length >= 50, `only ${refused.length} refused endpoints`);
  });

  it("every refused ccxt endpoint has its documented mandatory parameters in the fixture", () => {
    const missing = refused.filter((e) => !(e in REFUSED_ENDPOINTS));
    assert.deepEqual(missing, [], "read these endpoints' docs and add them to test/fixtures/binance-refused-endpoints.ts");
  });

  it("every fixture entry is still one custos refuses", () => {
    for (const e of Object.keys(REFUSED_ENDPOINTS)) assert.ok(PROTECTED_CLASSES.includes(classOf(e)), `${e} is ${classOf(e)}`);
  });

  it("exactly the listed endpoints are unprotectable, each with its reason", () => {
    const open = Object.keys(REFUSED_ENDPOINTS).filter((f) => allowedSchemas.some(([, e]) => satisfiable(REFUSED_ENDPOINTS[f]!, e)));
    assert.deepEqual(open.sort(), Object.keys(UNPROTECTABLE).sort());
    for (const [f, why] of Object.entries(UNPROTECTABLE)) assert.ok(why.length > 20, `${f}: give the reason`);
  });

  it("no allowed REST or WebSocket schema can carry all mandatory parameters of a protected refused endpoint", () => {
    const found: string[] = [];
    for (const [f, spec] of Object.entries(REFUSED_ENDPOINTS)) {
      if (f in UNPROTECTABLE) continue;
      for (const [e, schema] of allowedSchemas) if (satisfiable(spec, schema)) found.push(`${e} → ${f}`);
    }
    assert.deepEqual(found, []);
  });

  it("every endpoint custos allows by name has a schema, and every schema is one it allows", () => {
    const allowed = [...BINANCE_ENDPOINT_CLASSES].filter(([, c]) => ALLOWED.includes(c)).map(([e]) => e);
    assert.deepEqual(
      allowed.filter((e) => !BINANCE_REST_PARAMS.has(e)),
      [],
    );
    assert.deepEqual(
      [...BINANCE_REST_PARAMS.keys()].filter((e) => !allowed.includes(e)),
      [],
    );
    const methods = [...BINANCE_WEBSOCKET_METHOD_CLASSES].filter(([, c]) => ALLOWED.includes(c)).map(([m]) => m);
    assert.deepEqual(
      methods.filter((m) => !BINANCE_WS_PARAMS.has(m)),
      [],
    );
    assert.deepEqual(
      [...BINANCE_WS_PARAMS.keys()].filter((m) => !methods.includes(m)),
      [],
    );
  });

  it("no schema lists custos's own parameters, nor apiKey (a REST request with one would be a WebSocket payload)", () => {
    for (const [e, schema] of BINANCE_REST_PARAMS) {
      for (const own of ["timestamp", "recvWindow", "signature", "apiKey"]) assert.ok(!schema.names.has(own), `${e} lists ${own}`);
    }
    for (const [m, schema] of BINANCE_WS_PARAMS) {
      for (const own of ["timestamp", "recvWindow", "signature", "apiKey"]) assert.ok(!schema.names.has(own), `${m} lists ${own}`);
    }
  });
});
