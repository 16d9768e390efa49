import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { CONFIG_FILE, loadConfig } from "../../src/config/config.js";
import { ConfigError } from "../../src/config/config-sections.js";
import { checkEgressHeaders, checkEgressTarget, contentTypeFor, destinationFor, egressExchanges } from "../../src/egress/destinations.js";
import { CustosError } from "../../src/errors.js";
import { dialectExchanges } from "../../src/exchanges/registry.js";

const code = (c: string) => (e: unknown) => e instanceof CustosError && e.code === c;

/** Hosts as the exchanges' API documentation names them: [exchange, path, mainnet origin, testnet origin or undefined]. */
const HOSTS: Array<[string, string, string, string | undefined]> = [
  ["binance", "/api/v3/order", "https://api.binance.com", "https://testnet.binance.vision"],
  ["binance", "/sapi/v1/capital/withdraw/apply", "https://api.binance.com", undefined],
  ["binance", "/fapi/v1/order", "https://fapi.binance.com", "https://testnet.binancefuture.com"],
  ["binance", "/futures/data/openInterestHist", "https://fapi.binance.com", "https://testnet.binancefuture.com"],
  ["binance", "/dapi/v1/order", "https://dapi.binance.com", "https://testnet.binancefuture.com"],
  ["binance", "/eapi/v1/order", "https://eapi.binance.com", undefined],
  ["binance", "/papi/v1/um/order", "https://papi.binance.com", undefined],
  ["bybit", "/v5/order/create", "https://api.bybit.com", "https://api-testnet.bybit.com"],
  ["okx", "/api/v5/trade/order", "https://www.okx.com", "https://www.okx.com"],
  ["deribit", "/api/v2/private/buy", "https://www.deribit.com", "https://test.deribit.com"],
  ["bitmex", "/api/v1/order", "https://www.bitmex.com", "https://testnet.bitmex.com"],
  ["krakenfutures", "/derivatives/api/v3/sendorder", "https://futures.kraken.com", "https://demo-futures.kraken.com"],
  ["bitget", "/api/v2/mix/order/place-order", "https://api.bitget.com", "https://api.bitget.com"],
  ["gate", "/api/v4/futures/usdt/orders", "https://api.gateio.ws", "https://api-testnet.gateapi.io"],
  ["kucoinfutures", "/api/v1/orders", "https://api-futures.kucoin.com", undefined],
];

describe("egress destinations: the exchange's host from the dialect, the key's environment and the path", () => {
  it("covers every dialect", () => {
    assert.deepEqual(egressExchanges(), dialectExchanges());
  });

  it("maps each documented path prefix to the exchange's mainnet and testnet host", () => {
    for (const [exchange, path, mainnet, testnet] of HOSTS) {
      assert.equal(destinationFor(exchange, "mainnet", path).origin, mainnet, `${exchange} ${path} mainnet`);
      if (testnet) assert.equal(destinationFor(exchange, "testnet", path).origin, testnet, `${exchange} ${path} testnet`);
      else assert.throws(() => destinationFor(exchange, "testnet", path), code("PRECONDITION_FAILED"), `${exchange} ${path} has no testnet`);
    }
  });

  it("marks demo requests on a shared host with the exchange's header (OKX, Bitget), and only those", () => {
    assert.deepEqual(destinationFor("okx", "testnet", "/api/v5/trade/order").headers, [["x-simulated-trading", "1"]]);
    assert.deepEqual(destinationFor("okx", "mainnet", "/api/v5/trade/order").headers, []);
    assert.deepEqual(destinationFor("bitget", "testnet", "/api/v2/mix/order/place-order").headers, [["paptrading", "1"]]);
    assert.deepEqual(destinationFor("bybit", "testnet", "/v5/order/create").headers, []);
  });

  it("refuses a Binance path no route covers, and an exchange it cannot send to", () => {
    assert.throws(() => destinationFor("binance", "mainnet", "/wapi/v3/withdraw.html"), code("INVALID_ARGUMENT"));
    assert.throws(() => destinationFor("binance", "mainnet", "/fapix/v1/order"), code("INVALID_ARGUMENT"));
    assert.throws(() => destinationFor("raw", "mainnet", "/x"), code("NO_DIALECT"));
  });

  it("sends KuCoin's API-key query to the spot host and everything else KuCoin Futures to the futures host", () => {
    assert.equal(destinationFor("kucoinfutures", "mainnet", "/api/v1/user/api-key").origin, "https://api.kucoin.com");
    assert.equal(destinationFor("kucoinfutures", "mainnet", "/api/v1/orders").origin, "https://api-futures.kucoin.com");
  });

  it("takes an override from the configuration for its prefix only, in both environments", () => {
    const hosts = { binance: { "/fapi/": "https://127.0.0.1:9443" } };
    assert.equal(destinationFor("binance", "mainnet", "/fapi/v1/order", hosts).origin, "https://127.0.0.1:9443");
    assert.equal(destinationFor("binance", "testnet", "/fapi/v1/order", hosts).origin, "https://127.0.0.1:9443");
    assert.equal(destinationFor("binance", "mainnet", "/api/v3/order", hosts).origin, "https://api.binance.com");
  });

  it("sets the Content-Type each exchange documents for a body", () => {
    assert.equal(contentTypeFor("binance", "symbol=BTCUSDT"), "application/x-www-form-urlencoded");
    assert.equal(contentTypeFor("krakenfutures", "orderType=lmt"), "application/x-www-form-urlencoded");
    for (const ex of ["bybit", "okx", "deribit", "bitget", "gate", "kucoinfutures"]) assert.equal(contentTypeFor(ex, "{}"), "application/json", ex);
    assert.equal(contentTypeFor("bitmex", '{"symbol":"XBTUSD"}'), "application/json");
    assert.equal(contentTypeFor("bitmex", "symbol=XBTUSD"), "application/x-www-form-urlencoded");
  });
});

describe("egress targets: nothing the caller sends may steer the destination", () => {
  it("refuses //host, URLs, @, encoded slashes and dots, backslashes, dot segments, ?, # and non-ASCII in the path", () => {
    const refused = [
      "//evil.example/x",
      "fapi/v1/order",
      "/https://evil.example/x",
      "/http:evil.example",
      "/fapi/v1/order@evil.example",
      "/fapi%2fv1",
      "/fapi%2Fv1",
      "/fapi%5cv1",
      "/fapi/%2e%2e/sapi",
      "/fapi/%252f",
      "/fapi\\v1",
      "/fapi/../sapi/v1/x",
      "/fapi/./v1",
      "/fapi/v1/..",
      "/fapi/v1?x=1",
      "/fapi/v1#x",
      "/fapi/v1/ördér",
      "/fapi/v1 order",
    ];
    for (const path of refused) assert.throws(() => checkEgressTarget(path, ""), code("INVALID_ARGUMENT"), path);
    checkEgressTarget("/fapi/v1/order", "symbol=BTCUSDT&signature=ab");
    checkEgressTarget("/api/v5/account/balance", "ccy=BTC%2CETH");
  });

  it("refuses a query with a fragment, spaces or line breaks", () => {
    for (const query of ["a=1#x", "a=1 2", "a=1\r\nHost: evil.example", "a=\u00e9"]) {
      assert.throws(() => checkEgressTarget("/fapi/v1/order", query), code("INVALID_ARGUMENT"), JSON.stringify(query));
    }
  });

  it("refuses Host and forwarding headers, and line breaks in any header", () => {
    for (const name of ["Host", "host", ":authority", "Forwarded", "X-Forwarded-Host", "Connection", "Transfer-Encoding"]) {
      assert.throws(() => checkEgressHeaders([[name, "evil.example"]]), code("INVALID_ARGUMENT"), name);
    }
    assert.throws(() => checkEgressHeaders([["X-MBX-APIKEY", "key\r\nHost: evil.example"]]), code("INVALID_ARGUMENT"));
    checkEgressHeaders([
      ["X-MBX-APIKEY", "key"],
      ["Content-Type", "application/json"],
    ]);
  });
});

describe("custos.json egress section", () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const MINIMAL = {
    tls: { caPath: "pki/ca.crt", certPath: "pki/server.crt", keyPath: "pki/server.key" },
    hsm: { modulePath: "/usr/lib/softhsm/libsofthsm2.so", tokenLabel: "custos", pinFile: "secrets/user.pin" },
  };
  const load = (egress: unknown) => {
    const dir = mkdtempSync(join(tmpdir(), "custos-egress-config-"));
    dirs.push(dir);
    writeFileSync(join(dir, CONFIG_FILE), JSON.stringify({ ...MINIMAL, egress }));
    return loadConfig(dir);
  };
  const refusedAt = (setting: string) => (e: unknown) => e instanceof ConfigError && e.setting === setting;

  it("reads hosts, the trusted CA file (against the data dir), timeouts and bounds; defaults otherwise", () => {
    const c = load({ hosts: { binance: { "/fapi/": "https://127.0.0.1:8443" } }, trustedCaFile: "pki/exchange-ca.pem", responseTimeoutMs: 2000 });
    assert.deepEqual(c.egress.hosts, { binance: { "/fapi/": "https://127.0.0.1:8443" } });
    assert.equal(c.egress.trustedCaFile, join(c.dataDir, "pki/exchange-ca.pem"));
    assert.equal(c.egress.responseTimeoutMs, 2000);
    assert.equal(c.egress.connectTimeoutMs, 5000);
    assert.deepEqual(load(undefined).egress.hosts, {});
  });

  it("refuses unknown settings, exchanges and prefixes with their path, and origins that are not https://HOST[:PORT]", () => {
    assert.throws(() => load({ retries: 2 }), refusedAt("egress.retries"));
    assert.throws(() => load({ hosts: { binancee: {} } }), refusedAt("egress.hosts.binancee"));
    assert.throws(() => load({ hosts: { binance: { "/fapi": "https://x" } } }), refusedAt("egress.hosts.binance./fapi"));
    for (const origin of ["http://127.0.0.1:80", "https://x/path", "https://user@x", "https://x?y", 443]) {
      assert.throws(() => load({ hosts: { bybit: { "/": origin } } }), refusedAt("egress.hosts.bybit./"), String(origin));
    }
    assert.throws(() => load({ maxResponseBytes: 0 }), refusedAt("egress.maxResponseBytes"));
  });

  it("reads the exchange permission checks' switch and interval (default on, every 6 h)", () => {
    assert.deepEqual([load(undefined).egress.permissionChecks, load(undefined).egress.permissionCheckIntervalMs], [true, 21_600_000]);
    const c = load({ permissionChecks: false, permissionCheckIntervalMs: 60_000 });
    assert.deepEqual([c.egress.permissionChecks, c.egress.permissionCheckIntervalMs], [false, 60_000]);
    assert.throws(() => load({ permissionChecks: "yes" }), refusedAt("egress.permissionChecks"));
    assert.throws(() => load({ permissionCheckIntervalMs: 0 }), refusedAt("egress.permissionCheckIntervalMs"));
  });
});
