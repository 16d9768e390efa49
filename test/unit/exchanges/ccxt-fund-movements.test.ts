import assert from "node:assert/strict";
import { describe, it } from "node:test";
import ccxt from "ccxt";
// ccxt 4.5.78, the last ccxt release that ships BitMEX (npm alias; ccxt >= 4.5.79 has no bitmex class).
import ccxtWithBitmex from "ccxt-bitmex";
import type { EndpointClass, ExchangeRequest } from "../../../src/exchanges/dialect.js";
import { dialectFor } from "../../../src/exchanges/registry.js";

/*
 * Fund movements stay refused: every endpoint in ccxt's own API catalog (describe().api) whose
 * path names a withdrawal, a transfer or a sub-account, for every ccxt exchange withCustos
 * covers, is one the default policy refuses. The URL of each is the one ccxt's sign() builds,
 * so the walk follows ccxt's catalog rather than a hand-picked list. BitMEX's catalog is that of
 * ccxt 4.5.78, the last ccxt release with a bitmex class.
 */

const CCXT_TO_DIALECT: Record<string, string> = {
  binance: "binance",
  binanceusdm: "binance",
  binancecoinm: "binance",
  bybit: "bybit",
  okx: "okx",
  deribit: "deribit",
  krakenfutures: "krakenfutures",
  bitget: "bitget",
  gate: "gate",
  kucoinfutures: "kucoinfutures",
  bitmex: "bitmex",
};
/** The ccxt release whose catalog is walked: the project's ccxt, or 4.5.78 for BitMEX. */
const CCXT_RELEASE: Record<string, object> = { bitmex: ccxtWithBitmex };
/** What the default policy signs. */
const ALLOWED: readonly EndpointClass[] = ["trade", "read", "account"];
/** Paths that move funds or accounts, by the words the exchanges use. */
const MOVES_FUNDS = /withdraw|transfer|sub[-_]?account|universal|inner|wallet\/push|internal/i;
/**
 * Reads whose path names a movement but which move nothing: histories. Listed by name, so a new
 * one in ccxt's catalog fails the test until someone reads its docs.
 */
const READ_ONLY: Record<string, string> = {
  "bybit GET /v5/asset/transfer/query-asset-info": "balances transferable (Bybit: a GET signs the query, a POST the body)",
  "bybit GET /v5/asset/transfer/query-account-coins-balance": "balances of an account type (GET: the query is signed)",
  "bybit GET /v5/asset/transfer/query-account-coin-balance": "balance of one coin in an account type (GET: the query is signed)",
  "okx GET /api/v5/account/max-withdrawal": "the largest amount that could be transferred out: a number (OKX signs the method and path)",
  "deribit GET /api/v2/private/get_subaccounts": "lists sub-accounts (Deribit's get_ methods read)",
  "deribit GET /api/v2/private/get_subaccounts_details": "positions and orders of sub-accounts (a read)",
  "deribit GET /api/v2/private/get_transfers": "transfer history (a read)",
  "deribit GET /api/v2/private/get_withdrawals": "withdrawal history (a read)",
  "krakenfutures GET /derivatives/api/v3/transfers": "transfer history; the route has no method that moves funds",
  "krakenfutures GET /derivatives/api/v3/subaccounts": "sub-account balances; the route has no method that moves funds",
  "bitget GET /api/v2/mix/account/sub-account-assets": "sub-account futures balances (Bitget signs the method and path)",
  "gate GET /api/v4/wallet/sub_account_balances": "sub-account balances (Gate signs the method and path)",
  "gate GET /api/v4/wallet/sub_account_futures_balances": "sub-account futures balances (a read)",
  "kucoinfutures GET /api/v1/margin/maxWithdrawMargin": "the largest margin that could leave an isolated position: a number",
  "kucoinfutures POST /api/v1/margin/withdrawMargin":
    "moves isolated margin back to the same futures account (a margin change, like adding margin; nothing leaves the account)",
  "bitmex GET /api/v1/user/getWalletTransferAccounts": "lists the accounts a transfer could go to (a GET: BitMEX signs the verb and path)",
  "bitmex POST /api/v1/position/transferMargin":
    "isolated margin in or out of the account's own position; naming targetAccountId (another account) makes it a transfer (below)",
};

interface CatalogEndpoint {
  ccxtId: string;
  method: string;
  path: string;
}

/** Catalog entries ccxt's sign() cannot build without parameters, per exchange (checked by path, below). */
const unbuildable = new Map<string, string[]>();

/** Every private endpoint of ccxt's catalog for `id`, at the path ccxt's sign() sends it to. */
function catalog(id: string): CatalogEndpoint[] {
  const skipped: string[] = [];
  unbuildable.set(id, skipped);
  const Class = ((CCXT_RELEASE[id] ?? ccxt) as unknown as Record<string, new (c: object) => InstanceType<typeof ccxt.Exchange>>)[id]!;
  const ex = new Class({ apiKey: "k", secret: "c2VjcmV0c2VjcmV0c2VjcmV0", password: "p" });
  const out: CatalogEndpoint[] = [];
  const walk = (node: Record<string, unknown>, section: string[]) => {
    for (const [key, value] of Object.entries(node)) {
      if (["get", "post", "put", "delete", "patch"].includes(key.toLowerCase()) && value && typeof value === "object") {
        for (const path of Array.isArray(value) ? (value as string[]) : Object.keys(value)) {
          const api = section.length === 1 ? section[0] : section;
          let url: string;
          try {
            url = (ex.sign(path, api, key.toUpperCase(), {}, undefined, undefined) as { url: string }).url;
          } catch {
            skipped.push(`${key.toUpperCase()} ${path}`); // e.g. Gate's public sections have no testnet URL
            continue;
          }
          out.push({ ccxtId: id, method: key.toUpperCase(), path: new URL(url.replace(/\{[^}]+\}/g, "x")).pathname });
        }
      } else if (value && typeof value === "object" && !Array.isArray(value)) {
        walk(value as Record<string, unknown>, [...section, key]);
      }
    }
  };
  walk((ex.describe() as { api: Record<string, unknown> }).api, []);
  return out;
}

describe("ccxt's catalog: endpoints that move funds are refused by the default policy", () => {
  for (const [id, dialectId] of Object.entries(CCXT_TO_DIALECT)) {
    it(`${id}: every withdrawal, transfer and sub-account endpoint is refused`, () => {
      const dialect = dialectFor(dialectId)!;
      const endpoints = catalog(id);
      assert.ok(endpoints.length > 50, `${id}: only ${endpoints.length} endpoints in ccxt's catalog`);
      const movers = endpoints.filter((e) => MOVES_FUNDS.test(e.path));
      assert.ok(movers.length > 0, `${id}: ccxt's catalog names no fund movement`);
      const signed = movers
        .filter((e) => ALLOWED.includes(dialect.classify({ method: e.method as ExchangeRequest["method"], path: e.path, query: "", body: "" })))
        .map((e) => `${e.method} ${e.path}`)
        .filter((e) => !(`${id} ${e}` in READ_ONLY));
      assert.deepEqual([...new Set(signed)], [], `${id}: fund movements the default policy would sign`);
      // Nothing that moves funds hides among the entries ccxt cannot build a URL for.
      assert.deepEqual(
        unbuildable.get(id)!.filter((e) => MOVES_FUNDS.test(e)),
        [],
        `${id}: fund movements the walk could not build`,
      );
    });
  }

  it("bitmex: margin moved to a paired account's position (transferMargin with targetAccountId) is refused", () => {
    const dialect = dialectFor("bitmex")!;
    const path = "/api/v1/position/transferMargin";
    assert.ok(
      catalog("bitmex").some((e) => e.method === "POST" && e.path === path),
      "in ccxt's catalog",
    );
    for (const body of ['{"symbol":"XBTUSD","amount":100000,"targetAccountId":123456}', "symbol=XBTUSD&amount=100000&targetAccountId=123456"]) {
      assert.ok(!ALLOWED.includes(dialect.classify({ method: "POST", path, query: "", body })), body);
    }
  });

  it("every read-only exception is in ccxt's catalog, signed by custos, and gives its reason", () => {
    for (const [entry, why] of Object.entries(READ_ONLY)) {
      const [id, method, path] = entry.split(" ") as [string, ExchangeRequest["method"], string];
      assert.ok(
        catalog(id).some((e) => e.method === method && e.path === path),
        `${entry} is not in ccxt's catalog any more`,
      );
      assert.ok(ALLOWED.includes(dialectFor(CCXT_TO_DIALECT[id]!)!.classify({ method, path, query: "", body: "" })), `${entry} is refused: drop it`);
      assert.ok(why.length > 20, `${entry}: give the reason`);
    }
  });
});
