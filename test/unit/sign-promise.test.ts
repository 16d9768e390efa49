import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, createHmac, randomBytes } from "node:crypto";
import { PassThrough } from "node:stream";
import { AuditLog } from "../../src/audit/audit-log.js";
import { DEFAULT_REFUSAL_SAMPLING } from "../../src/audit/refusal-sampler.js";
import { CustosError, type CustosErrorCode } from "../../src/errors.js";
import type { ExchangeRequest } from "../../src/exchanges/dialect.js";
import type { SigningAlgorithm } from "../../src/hsm/algorithms.js";
import { createLogger } from "../../src/log.js";
import type { KeyPolicy } from "../../src/policy/policy.js";
import type { PolicyDenied } from "../../src/policy/policy.js";
import { AccessDirectory } from "../../src/signing/directory.js";
import { SignService, type ExchangeSignRequest, type WebSocketAuthSignRequest } from "../../src/signing/sign-service.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { FakeHsm } from "./fake-hsm.js";

/*
 * The policy's promise against a caller who knows how the exchanges sign: one case per class of
 * bypass a security review found (each signed on the previous main), through the whole sign path.
 * Where a signature does not cover the path, the request must be refused before the HSM is asked.
 */

const ALPHA = "spiffe://custos/engine/alpha";
const caller = { identity: ALPHA, ip: "10.1.2.3" };
const NOW = "2025-01-01T00:00:00.000Z";
const SIGNED_PASSPHRASE = Buffer.alloc(32, 9).toString("base64");

/** key id → exchange, algorithm, policy. */
const KEYS: Record<string, { exchange: string; algorithm?: SigningAlgorithm; policy?: KeyPolicy }> = {
  binance: { exchange: "binance" },
  "binance-limited": { exchange: "binance", policy: { maxQuantity: { "*": 1 } } },
  "binance-read": { exchange: "binance", policy: { allowClasses: ["read", "account"] } },
  bybit: { exchange: "bybit" },
  "bybit-limited": { exchange: "bybit", policy: { symbols: ["linear:BTCUSDT"], maxQuantity: { "*": 1 } } },
  kucoin: { exchange: "kucoinfutures" },
  deribit: { exchange: "deribit" },
  "deribit-attested": { exchange: "deribit", policy: { exchangeScopeExcludesFunds: true } },
  "deribit-login": {
    exchange: "deribit",
    policy: { exchangeScopeExcludesFunds: true, rules: [{ id: "ws-login", effect: "allow", method: "WS", path: "auth" }] },
  },
  kraken: { exchange: "krakenfutures", algorithm: "hmac-sha512" },
  "kraken-read": { exchange: "krakenfutures", algorithm: "hmac-sha512", policy: { allowClasses: ["read", "account"] } },
  okx: { exchange: "okx", policy: { symbols: ["BTC-USDT-SWAP"] } },
};

let store: SqliteStore;
let hsm: FakeHsm;
let audit: AuditLog;
let signer: SignService;

before(async () => {
  store = new SqliteStore(":memory:");
  hsm = new FakeHsm();
  await store.clients.upsertClient({ identity: ALPHA, name: "alpha", role: "trader", cidrs: ["10.0.0.0/8"], createdAt: NOW });
  for (const [id, k] of Object.entries(KEYS)) {
    const objectId = `custos:${id}:v1`;
    await store.keys.createKey(
      {
        id,
        exchange: k.exchange,
        environment: "testnet",
        label: id,
        apiKeyId: `pub-${id}`,
        algorithm: k.algorithm ?? "hmac-sha256",
        maxAgeDays: 45,
        createdAt: NOW,
      },
      {
        keyId: id,
        version: 1,
        objectId,
        state: "active",
        createdAt: NOW,
        activatedAt: NOW,
        retireAt: null,
        signedPassphrase: k.exchange === "kucoinfutures" ? SIGNED_PASSPHRASE : null,
      },
    );
    if (k.policy) await store.keys.setPolicy(id, JSON.stringify(k.policy), NOW);
    await store.clients.addGrant(ALPHA, id);
    hsm.put(objectId, randomBytes(64));
  }
  const directory = new AccessDirectory();
  await directory.reload(store);
  // Every refusal here is checked for its own audit row: no flood sampling within this suite.
  const sampling = { ...DEFAULT_REFUSAL_SAMPLING, individualPerSource: 1_000 };
  audit = await AuditLog.open(store, createLogger("info", new PassThrough()), { flushIntervalMs: 3_600_000, refusalSampling: sampling });
  const unlimited = { perSecond: 1_000_000, burst: 1_000_000 };
  signer = new SignService(directory, hsm, audit, { observe() {} }, { maxPayloadBytes: 64 * 1024, clientRate: unlimited, keyRate: unlimited });
});

after(async () => {
  await audit.close();
  await store.close();
});

function exchangeRequest(keyId: string, request: ExchangeRequest, over: Partial<ExchangeSignRequest> = {}): ExchangeSignRequest {
  return { keyId, version: 0, request, timestampMs: 0, nonce: "", expires: 0, recvWindowMs: 0, passphrase: "", ...over };
}

/** Refused with `code` (and `rule`, for policy denials) before the HSM signs anything; the refusal is audited. */
async function refused(run: () => Promise<unknown>, code: CustosErrorCode, rule?: string): Promise<void> {
  const signsBefore = hsm.calls.filter((c) => c.startsWith("sign:")).length;
  await audit.flush();
  const seqBefore = (await store.audit.lastAudit())?.seq ?? 0;
  await assert.rejects(run, (e: unknown) => {
    assert.ok(e instanceof CustosError, String(e));
    assert.equal(e.code, code, e.message);
    if (rule !== undefined) assert.equal((e as PolicyDenied).rule, rule, e.message);
    return true;
  });
  assert.equal(hsm.calls.filter((c) => c.startsWith("sign:")).length, signsBefore, "nothing reached the HSM");
  await audit.flush();
  const events = (await store.audit.readAudit(seqBefore, 10)).map((e) => JSON.parse(e.body) as { outcome: string; reason?: string });
  assert.equal(events.length, 1);
  assert.equal(events[0]!.reason, code);
}

const get = (path: string, query: string): ExchangeRequest => ({ method: "GET", path, query, body: "" });
const post = (path: string, body: string, query = ""): ExchangeRequest => ({ method: "POST", path, query, body });

describe("a signature is valid only where the policy approved it (path not signed)", () => {
  it("Binance: withdrawal parameters at a read endpoint are refused (they form a valid /sapi/v1/capital/withdraw/apply)", async () => {
    const q = "coin=BTC&network=BTC&address=bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh&amount=1";
    await refused(() => signer.signExchange(caller, exchangeRequest("binance", get("/api/v3/account", q))), "POLICY_DENIED", "param-schema");
  });
  it("Binance: a universal transfer's parameters at an order endpoint are refused", async () => {
    const q = "type=MAIN_UMFUTURE&asset=USDT&amount=100";
    await refused(() => signer.signExchange(caller, exchangeRequest("binance", post("/fapi/v1/order", "", q))), "POLICY_DENIED", "param-schema");
  });
  it("Binance: an order over maxQuantity signed at a read endpoint is refused", async () => {
    const q = "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1000";
    await refused(() => signer.signExchange(caller, exchangeRequest("binance-limited", get("/fapi/v2/account", q))), "POLICY_DENIED", "param-schema");
  });
  it("Binance: a read-only key cannot sign order parameters at an allowed read endpoint", async () => {
    const q = "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1";
    await refused(() => signer.signExchange(caller, exchangeRequest("binance-read", get("/fapi/v1/openOrders", q))), "POLICY_DENIED", "param-schema");
  });
  it("Binance: REST parameters that form a WebSocket session.logon payload are refused", async () => {
    await refused(() => signer.signExchange(caller, exchangeRequest("binance", get("/api/v3/account", "apiKey=pub-binance"))), "POLICY_DENIED", "param-schema");
  });
  it("Binance: an ordinary order still signs", async () => {
    const r = await signer.signExchange(
      caller,
      exchangeRequest("binance-limited", post("/fapi/v1/order", "", "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=42000")),
    );
    assert.equal(r.endpointClass, "trade");
  });
  it("Binance WebSocket API: withdrawal parameters under an account method are refused (the method is not signed)", async () => {
    const req: WebSocketAuthSignRequest = {
      keyId: "binance",
      version: 0,
      input: {
        request: {
          method: "account.status",
          params: [
            ["coin", "BTC"],
            ["address", "bc1q"],
            ["amount", "1"],
          ],
        },
      },
      timestampMs: 0,
      nonce: "",
      expires: 0,
      passphrase: "",
    };
    await refused(() => signer.signWebSocketAuth(caller, req), "POLICY_DENIED", "param-schema");
  });
  it("Bybit: a withdrawal body claimed as an order is refused (it is valid at /v5/asset/withdraw/create)", async () => {
    const body = JSON.stringify({
      coin: "USDT",
      chain: "ETH",
      address: "0x00000000219ab540356cBB839Cbe05303d7705Fa",
      amount: "100",
      timestamp: 1,
      accountType: "FUND",
    });
    await refused(() => signer.signExchange(caller, exchangeRequest("bybit", post("/v5/order/create", body))), "POLICY_DENIED", "param-schema");
  });
  it("Bybit: an ordinary order still signs", async () => {
    const body = JSON.stringify({ category: "linear", symbol: "BTCUSDT", side: "Buy", orderType: "Limit", qty: "1", price: "42000" });
    const r = await signer.signExchange(caller, exchangeRequest("bybit-limited", post("/v5/order/create", body)));
    assert.equal(r.endpointClass, "trade");
  });
});

describe("no signing oracle", () => {
  it("KuCoin: a caller's passphrase is refused; the header is the one fixed at import", async () => {
    const forged = `1700000000000POST/api/v1/withdrawals{"currency":"USDT","address":"x","amount":100}`;
    await refused(
      () => signer.signExchange(caller, exchangeRequest("kucoin", get("/api/v1/account-overview", "currency=USDT"), { passphrase: forged })),
      "INVALID_ARGUMENT",
    );
    const r = await signer.signExchange(caller, exchangeRequest("kucoin", get("/api/v1/account-overview", "currency=USDT")));
    assert.equal(new Map(r.headers).get("KC-API-PASSPHRASE"), SIGNED_PASSPHRASE);
  });
});

describe("logins and signatures that hand over a session (Deribit)", () => {
  const wsLogin = (keyId: string): WebSocketAuthSignRequest => ({ keyId, version: 0, input: {}, timestampMs: 0, nonce: "", expires: 0, passphrase: "" });
  it("REST is refused until the policy attests the exchange-side scope moves no funds", async () => {
    await refused(
      () => signer.signExchange(caller, exchangeRequest("deribit", get("/api/v2/private/get_position", "instrument_name=BTC-PERPETUAL"))),
      "POLICY_DENIED",
      "exchange-scope",
    );
    const r = await signer.signExchange(caller, exchangeRequest("deribit-attested", get("/api/v2/private/get_position", "instrument_name=BTC-PERPETUAL")));
    assert.equal(r.endpointClass, "account");
  });
  it("logins are refused by default, even with the attestation; an allow rule naming them lifts that", async () => {
    await refused(() => signer.signWebSocketAuth(caller, wsLogin("deribit")), "POLICY_DENIED", "exchange-scope");
    await refused(() => signer.signWebSocketAuth(caller, wsLogin("deribit-attested")), "POLICY_DENIED", "session-login");
    const r = await signer.signWebSocketAuth(caller, wsLogin("deribit-login"));
    assert.match(r.message, /public\/auth/);
  });
});

describe("parse like the exchange, or refuse", () => {
  it("Deribit: a body naming the method twice is refused (private/withdraw then private/buy)", async () => {
    const body = '{"jsonrpc":"2.0","method":"private/withdraw","method":"private/buy","params":{"instrument_name":"BTC-PERPETUAL","amount":10}}';
    await refused(() => signer.signExchange(caller, exchangeRequest("deribit-attested", post("/api/v2", body))), "INVALID_ARGUMENT");
    const spaced = '{ "jsonrpc" : "2.0", "method" : "private/withdraw", "method" : "private/buy" }';
    await refused(() => signer.signExchange(caller, exchangeRequest("deribit-attested", post("/api/v2", spaced))), "INVALID_ARGUMENT");
  });
  it("Bybit: a symbol named twice is refused (a first-key parser would read the other one)", async () => {
    const body = '{"category":"linear","symbol":"ETHUSDT","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"1"}';
    await refused(() => signer.signExchange(caller, exchangeRequest("bybit-limited", post("/v5/order/create", body))), "INVALID_ARGUMENT");
  });
  it("Bybit: a query parameter given twice is refused", async () => {
    await refused(
      () => signer.signExchange(caller, exchangeRequest("bybit-limited", get("/v5/order/realtime", "category=linear&symbol=ETHUSDT&symbol=BTCUSDT"))),
      "INVALID_ARGUMENT",
    );
  });
  it("OKX: an order naming instIdCode instead of instId fails the symbol allowlist", async () => {
    const body = JSON.stringify({ instIdCode: 10459, tdMode: "cross", side: "buy", ordType: "market", sz: "1" });
    await refused(
      () => signer.signExchange(caller, exchangeRequest("okx", post("/api/v5/trade/order", body), { passphrase: "pp" })),
      "POLICY_DENIED",
      "symbols",
    );
  });
});

describe("every caller-supplied time is checked", () => {
  const order = post("/derivatives/api/v3/sendorder", "orderType=lmt&symbol=PF_XBTUSD&side=buy&size=1&limitPrice=1");
  for (const nonce of ["99999999999999", "99999999999999999", "99999999999999999999", "0001767225600000", "1", "01767225600000"]) {
    it(`Kraken Futures: nonce ${nonce} is refused (not a time custos can check)`, async () => {
      await refused(() => signer.signExchange(caller, exchangeRequest("kraken", order, { nonce })), "POLICY_DENIED", "nonce-format");
    });
  }
  it("Kraken Futures: a far-future nonce in µs is refused by the skew check", async () => {
    const micros = String((Date.now() + 3_600_000) * 1000);
    await refused(() => signer.signExchange(caller, exchangeRequest("kraken", order, { nonce: micros })), "POLICY_DENIED", "nonce-skew");
  });
  it("Kraken Futures: a current nonce in ms signs, byte-checked against node:crypto's HMAC-SHA512", async () => {
    const nonce = String(Date.now());
    const r = await signer.signExchange(caller, exchangeRequest("kraken", order, { nonce }));
    assert.equal(new Map(r.headers).get("Nonce"), nonce);
    // Kraken's documented recipe: base64(HMAC-SHA512(secret, SHA-256(postData + nonce + endpointPath))).
    const digest = createHash("sha256").update(`${order.body}${nonce}/api/v3/sendorder`).digest();
    assert.equal(r.signature, createHmac("sha512", hsm.objects.get("custos:kraken:v1")!).update(digest).digest("base64"));
  });
  it("Kraken Futures: GET of a route whose PUT sets leverage is a trade (the method is not signed)", async () => {
    await refused(
      () => signer.signExchange(caller, exchangeRequest("kraken-read", get("/derivatives/api/v3/leveragepreferences", "symbol=PF_XBTUSD&maxLeverage=50"))),
      "POLICY_DENIED",
      "class:trade",
    );
  });
});
