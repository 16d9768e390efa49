import { describe, it } from "node:test";
import assert from "node:assert/strict";
import ccxt from "ccxt";
import { CustosError } from "../../../src/errors.js";
import type { EndpointClass, ExchangeRequest, SigningContext } from "../../../src/exchanges/dialect.js";
import { bybit } from "../../../src/exchanges/bybit.js";
import { BYBIT_PARAMS } from "../../../src/exchanges/bybit-params.js";
import { PROTECTED_CLASSES, type EndpointParams } from "../../../src/exchanges/param-schema.js";
import { BYBIT_REFUSED, BYBIT_UNPROTECTABLE, type RefusedEndpoint } from "../../fixtures/bybit-refused-endpoints.js";

/*
 * The property behind Bybit's parameter schemas: the v5 signature covers neither method nor
 * path, so a request custos signs for an allowed endpoint E is valid at any endpoint F whose
 * required parameters it carries. custos signs only parameters in E's schema, so F is out of
 * reach when F's required parameters do not all fit in E's schema.
 *
 * The endpoint list comes from ccxt's API table, not from custos, and the refused endpoints'
 * required parameters from a hand-kept fixture of Bybit's docs.
 *
 * GET E is compared with GET F and POST E with POST F: a signature over a query string is
 * valid where that same string is a body, and the other way round, only when one string is
 * both. bybit.ts makes that impossible but for the empty string:
 *   - a signed query matches QUERY_SAFE, which excludes `"`, and a JSON object with a field
 *     needs `"`; the only field-less object that is query-safe, "{}", is a parameter named
 *     "{}" to every GET schema (misfit). So a GET signature reaches only POST endpoints that
 *     need no parameter (checked below);
 *   - a signed body holds no `&` or `;` (prepare refuses them), so read as a query it is a
 *     single pair whose name starts with `{`, a name no endpoint takes (checked below);
 *   - the empty query and the empty body are the same string: they reach exactly the
 *     endpoints that need no parameter, which the fixture lists as unprotectable.
 */

const CTX: SigningContext = { timestamp: 1_700_000_000_000, expires: 0, nonce: "", apiKeyId: "key" };
const ALLOWED: readonly EndpointClass[] = ["trade", "read", "account"];

function split(endpoint: string): { method: "GET" | "POST"; path: string } {
  const [method, path] = endpoint.split(" ") as ["GET" | "POST", string];
  return { method, path };
}
function classOf(endpoint: string): EndpointClass {
  return bybit.classify({ ...split(endpoint), query: "", body: "" });
}

/** ccxt's private v5 endpoints as "METHOD /path" (its table maps method → path → cost, or lists paths). */
function ccxtEndpoints(): string[] {
  const table = new ccxt.bybit().describe().api as { private: Record<string, Record<string, unknown> | string[]> };
  const out: string[] = [];
  for (const [method, paths] of Object.entries(table.private)) {
    for (const p of Array.isArray(paths) ? paths : Object.keys(paths)) out.push(`${method.toUpperCase()} /${p}`);
  }
  return out;
}

const CCXT = ccxtEndpoints();
const CCXT_REFUSED = CCXT.filter((e) => PROTECTED_CLASSES.includes(classOf(e)));

/**
 * F's required parameters all fit in E's schema. Names compare case-insensitively, to be safe:
 * some JSON decoders (Go's encoding/json) bind a field whatever its case. Where both E and F
 * restrict a parameter's values, they must share one.
 */
function fits(e: EndpointParams, f: RefusedEndpoint): boolean {
  const names = new Map([...e.names].map((n) => [n.toLowerCase(), n]));
  return f.required.every((r) => {
    const n = names.get(r.toLowerCase());
    if (n === undefined) return false;
    const ev = e.values?.[n];
    const fv = f.values?.[r];
    return !ev || !fv || ev.some((v) => fv.some((w) => w.toLowerCase() === v.toLowerCase()));
  });
}

/** The allowed endpoints, same method as F, whose schema F's required parameters fit in. */
function reachingSchemas(refused: string): string[] {
  const f = BYBIT_REFUSED[refused]!;
  const method = split(refused).method;
  return [...BYBIT_PARAMS].filter(([e, schema]) => split(e).method === method && fits(schema, f)).map(([e]) => e);
}

/** The smallest request F takes: its required parameters, with a value F accepts. */
function minimalFields(f: RefusedEndpoint): Array<[string, string]> {
  return f.required.map((r) => [r, f.values?.[r]?.[0] ?? "1"]);
}

function refusedAsInvalid(fn: () => unknown): void {
  assert.throws(fn, (e: unknown) => e instanceof CustosError && e.code === "INVALID_ARGUMENT");
}

/** Listed here, not derived: a change to the schemas or the fixture that adds one must be seen. */
const EXPECTED_UNPROTECTABLE = [
  "GET /v5/asset/transfer/query-inter-transfer-list",
  "GET /v5/asset/transfer/query-sub-member-list",
  "GET /v5/asset/transfer/query-universal-transfer-list",
  "GET /v5/asset/withdraw/query-address",
  "GET /v5/asset/withdraw/query-record",
  "GET /v5/asset/withdraw/vasp/list",
  "GET /v5/asset/withdraw/withdrawable-amount",
  "GET /v5/user/escrow_sub_members",
  "GET /v5/user/get-member-type",
  "GET /v5/user/invitation/code",
  "GET /v5/user/invitation/referrals",
  "GET /v5/user/query-sub-members",
  "GET /v5/user/submembers",
  "POST /v5/user/create-demo-member",
  "POST /v5/user/delete-api",
  "POST /v5/user/delete-sub-api",
  "POST /v5/user/update-api",
  "POST /v5/user/update-sub-api",
];

describe("bybit parameter schemas against ccxt's endpoint table", () => {
  it("ccxt's table has the refused endpoints this test is about", () => {
    assert.ok(CCXT_REFUSED.length >= 30, `only ${CCXT_REFUSED.length} refused endpoints in ccxt's table`);
    for (const e of ["POST /v5/asset/withdraw/create", "POST /v5/asset/transfer/universal-transfer", "POST /v5/user/create-sub-api"]) {
      assert.ok(CCXT_REFUSED.includes(e), e);
    }
  });

  it("every endpoint the default policy allows has a schema, and every schema is of one it allows", () => {
    const allowed = CCXT.filter((e) => ALLOWED.includes(classOf(e)));
    assert.deepEqual(
      allowed.filter((e) => !BYBIT_PARAMS.has(e)),
      [],
    );
    assert.deepEqual(
      [...BYBIT_PARAMS.keys()].filter((e) => !ALLOWED.includes(classOf(e))),
      [],
    );
    assert.deepEqual(
      [...BYBIT_PARAMS.keys()].filter((e) => !CCXT.includes(e)),
      [],
    );
  });

  it("(a) the fixture gives the required parameters of every refused endpoint in ccxt's table", () => {
    assert.deepEqual(
      CCXT_REFUSED.filter((e) => !(e in BYBIT_REFUSED)),
      [],
    );
    assert.deepEqual(
      Object.keys(BYBIT_REFUSED).filter((e) => !PROTECTED_CLASSES.includes(classOf(e))),
      [],
    );
  });

  it("(b) no allowed schema holds the required parameters of a refused endpoint of the same method, but the unprotectable ones", () => {
    const reachable = Object.keys(BYBIT_REFUSED).filter((f) => reachingSchemas(f).length > 0);
    const unexpected = reachable.filter((f) => !(f in BYBIT_UNPROTECTABLE)).map((f) => `${f} <- ${reachingSchemas(f).join(", ")}`);
    assert.deepEqual(unexpected, []);
    assert.deepEqual(reachable.sort(), Object.keys(BYBIT_UNPROTECTABLE).sort());
  });

  it("lists the unprotectable endpoints explicitly: POST ones need no parameter, the rest only read", () => {
    assert.deepEqual(Object.keys(BYBIT_UNPROTECTABLE).sort(), EXPECTED_UNPROTECTABLE);
    for (const f of EXPECTED_UNPROTECTABLE) {
      if (split(f).method === "POST") assert.deepEqual(BYBIT_REFUSED[f]!.required, [], f);
    }
    // The fund-moving and key-creating endpoints are not among them.
    for (const f of [
      "POST /v5/asset/withdraw/create",
      "POST /v5/asset/transfer/inter-transfer",
      "POST /v5/asset/transfer/universal-transfer",
      "POST /v5/position/move-positions",
      "POST /v5/user/create-sub-api",
      "POST /v5/user/create-sub-member",
    ]) {
      assert.ok(!EXPECTED_UNPROTECTABLE.includes(f), f);
    }
  });

  it("bybit.schemaMisfit refuses each protected endpoint's smallest request at every allowed endpoint of its method", () => {
    for (const [f, spec] of Object.entries(BYBIT_REFUSED)) {
      if (f in BYBIT_UNPROTECTABLE) continue;
      const fields = minimalFields(spec);
      const { method } = split(f);
      for (const e of BYBIT_PARAMS.keys()) {
        if (split(e).method !== method) continue;
        const req: ExchangeRequest =
          method === "GET"
            ? { ...split(e), query: new URLSearchParams(fields).toString(), body: "" }
            : { ...split(e), query: "", body: JSON.stringify(Object.fromEntries(fields)) };
        assert.notEqual(bybit.schemaMisfit!(req), undefined, `${f}'s parameters signed as ${e}`);
      }
    }
  });

  it("a GET signature cannot carry a POST endpoint's parameters: a JSON body is not a query custos signs", () => {
    for (const [f, spec] of Object.entries(BYBIT_REFUSED)) {
      if (split(f).method !== "POST" || spec.required.length === 0) continue;
      const body = JSON.stringify(Object.fromEntries(minimalFields(spec)));
      refusedAsInvalid(() => bybit.prepare({ method: "GET", path: "/v5/account/wallet-balance", query: body, body: "" }, CTX));
    }
    // "{}", the one JSON object without `"`, is a parameter named "{}" to every GET schema.
    for (const e of BYBIT_PARAMS.keys()) {
      if (split(e).method === "GET") assert.notEqual(bybit.schemaMisfit!({ ...split(e), query: "{}", body: "" }), undefined, e);
    }
  });

  it("a POST signature cannot carry a GET endpoint's parameters: a signed body holds no query separator", () => {
    for (const [f, spec] of Object.entries(BYBIT_REFUSED)) {
      if (split(f).method !== "GET" || spec.required.length === 0) continue;
      // F's query smuggled into a free-text value: read as a query, the body would carry it.
      const query = new URLSearchParams(minimalFields(spec)).toString();
      for (const sep of ["&", ";"]) {
        const body = JSON.stringify({ category: "linear", symbol: "BTCUSDT", orderId: `1${sep}${query}${sep}x=` });
        refusedAsInvalid(() => bybit.prepare({ method: "POST", path: "/v5/order/cancel", query: "", body }, CTX));
        assert.notEqual(bybit.schemaMisfit!({ method: "POST", path: "/v5/order/cancel", query: "", body }), undefined);
      }
    }
  });
});
