import assert from "node:assert/strict";
import { createHash, createHmac, createPublicKey, generateKeyPairSync, verify } from "node:crypto";
import { after, before, describe, it } from "node:test";
import ccxt from "ccxt";
// ccxt 4.5.78, the last ccxt release that ships BitMEX (npm alias; ccxt >= 4.5.79 has no bitmex class).
import ccxtWithBitmex from "ccxt-bitmex";
import { CcxtCustosError, closeCustos, withCustos, type WithCustosOptions } from "../../src/client/ccxt/index.js";
import { CustosClient } from "../../src/client/custos-client.js";
import { dialectFor } from "../../src/exchanges/registry.js";
import { BTCUSDT_PERP } from "../fixtures/binance-market.js";
import { importSecret, proposeAndApprove, startInProcess, type InProcessService } from "../helpers/harness.js";
import { unary } from "../../src/client/connection.js";
import { Algorithm, Environment } from "../../src/gen/custos/v1/custody.js";

/*
 * The ccxt drop-in against a real custos (SoftHSM2, mTLS): for each exchange, one ccxt instance
 * holds the plaintext secret and one has none and signs through custos. Both run with the same
 * fixed clock, nonce and order ids; their HTTP layer (`fetch`) is replaced by a recorder, and the
 * recorded requests — URL, method, headers, body — must be equal.
 */

const T = 1_700_000_000_000; // in the past: custos refuses future timestamps only
type Exchange = InstanceType<typeof ccxt.Exchange>;
type Sent = { url: string; method: string; headers: Record<string, string> | undefined; body: unknown };
type Call = [method: string, params: Record<string, unknown>];

interface Case {
  /** ccxt id, and the custos exchange (dialect) the key is imported for. */
  id: string;
  dialect: string;
  make(config: Record<string, unknown>): Exchange;
  apiKey: string;
  secret: string;
  password?: string;
  /** The passphrase is part of the custos key (KuCoin): the ccxt instance signing through custos has none. */
  passwordInKey?: boolean;
  /** An order first, then a read. */
  calls: Call[];
}

const ccxtClass = (id: string) => (config: Record<string, unknown>) => new (ccxt as unknown as Record<string, new (c: object) => Exchange>)[id]!(config);

// Exchange-shaped test secrets (lengths and alphabets like the real ones); none is a real key.
const CASES: Case[] = [
  {
    id: "binanceusdm",
    dialect: "binance",
    make: ccxtClass("binanceusdm"),
    apiKey: "tstKeyBn0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU",
    secret: "tstSecBn0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU",
    calls: [
      ["fapiPrivatePostOrder", { symbol: "BTCUSDT", side: "BUY", type: "LIMIT", timeInForce: "GTC", quantity: "0.010", price: "30000" }],
      ["fapiPrivateV2GetBalance", {}],
      ["fapiPrivateDeleteOrder", { symbol: "BTCUSDT", orderId: "42" }],
    ],
  },
  {
    id: "bybit",
    dialect: "bybit",
    make: ccxtClass("bybit"),
    apiKey: "tstBybitKey01234567",
    secret: "tstBybitSecret0123456789abcdefghijklm",
    calls: [
      ["privatePostV5OrderCreate", { category: "linear", symbol: "BTCUSDT", side: "Buy", orderType: "Limit", qty: "0.01", price: "30000", timeInForce: "GTC" }],
      ["privateGetV5PositionList", { category: "linear", symbol: "BTCUSDT" }],
    ],
  },
  {
    id: "okx",
    dialect: "okx",
    make: ccxtClass("okx"),
    apiKey: "0a1b2c3d-4e5f-6789-abcd-ef0123456789",
    secret: "0123456789ABCDEF0123456789ABCDEF",
    password: "Okx-Passphrase-1",
    calls: [
      ["privatePostTradeOrder", { instId: "BTC-USDT-SWAP", tdMode: "cross", side: "buy", ordType: "limit", sz: "2", px: "30000", clOrdId: "custos1" }],
      ["privateGetAccountBalance", { ccy: "USDT" }],
    ],
  },
  {
    id: "deribit",
    dialect: "deribit",
    make: ccxtClass("deribit"),
    apiKey: "tstDrbt1",
    secret: "tstDeribitSecret_0123456789abcdefghijklmnopq",
    calls: [
      ["privateGetBuy", { instrument_name: "BTC-PERPETUAL", amount: 10, type: "limit", price: 50000.5, label: "custos" }],
      ["privateGetGetAccountSummary", { currency: "BTC" }],
    ],
  },
  {
    id: "bitmex",
    dialect: "bitmex",
    make: (config) => new ccxtWithBitmex.bitmex(config) as unknown as Exchange,
    apiKey: "tstBitmexKey0123456789ab",
    secret: "tstBitmexSecret_0123456789abcdefghijklmnopqrstu",
    calls: [
      ["privatePostOrder", { symbol: "XBTUSD", side: "Buy", orderQty: 100, price: 30000, ordType: "Limit" }],
      ["privateGetPosition", { filter: '{"symbol":"XBTUSD"}' }],
    ],
  },
  {
    id: "krakenfutures",
    dialect: "krakenfutures",
    make: ccxtClass("krakenfutures"),
    apiKey: "tstKrakenFuturesKey0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH",
    // Kraken Futures hands out a base64 secret and signs with the decoded bytes.
    secret: Buffer.from("kraken futures test secret, 64 bytes long, decoded before use!!!").toString("base64"),
    calls: [
      ["privatePostSendorder", { orderType: "lmt", symbol: "PF_XBTUSD", side: "buy", size: 1, limitPrice: 50000.5, cliOrdId: "a+b/c" }],
      ["privateGetAccounts", {}],
    ],
  },
  {
    id: "bitget",
    dialect: "bitget",
    make: ccxtClass("bitget"),
    apiKey: "bg_0123456789abcdef0123456789abcdef",
    secret: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    password: "bitgetPassphrase",
    calls: [
      [
        "privateMixPostV2MixOrderPlaceOrder",
        {
          symbol: "BTCUSDT",
          productType: "USDT-FUTURES",
          marginMode: "crossed",
          marginCoin: "USDT",
          size: "0.01",
          price: "30000",
          side: "buy",
          orderType: "limit",
          clientOid: "custos-1",
        },
      ],
      ["privateMixGetV2MixAccountAccounts", { productType: "USDT-FUTURES" }],
    ],
  },
  {
    id: "gate",
    dialect: "gate",
    make: ccxtClass("gate"),
    apiKey: "0123456789abcdef0123456789abcdef",
    secret: "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
    calls: [
      ["privateFuturesPostSettleOrders", { settle: "usdt", contract: "BTC_USDT", size: -3, price: "30000", tif: "gtc", text: "t-custos" }],
      ["privateFuturesGetSettleAccounts", { settle: "usdt" }],
    ],
  },
  {
    id: "kucoinfutures",
    dialect: "kucoinfutures",
    make: ccxtClass("kucoinfutures"),
    apiKey: "0123456789abcdef01234567",
    secret: "01234567-89ab-cdef-0123-456789abcdef",
    password: "kucoin-passphrase",
    passwordInKey: true,
    calls: [
      ["futuresPrivatePostOrders", { clientOid: "custos-1", side: "buy", symbol: "XBTUSDTM", type: "limit", price: "30000", size: 1, leverage: 5 }],
      ["futuresPrivateGetAccountOverview", { currency: "USDT" }],
    ],
  },
];

/** The same ccxt exchange twice: the fixed clock and ids ccxt would otherwise draw at random, and a recorder for HTTP. */
function instance(c: Case, withSecret: boolean): { ex: Exchange; sent: Sent[] } {
  const password = c.password && (withSecret || !c.passwordInKey) ? { password: c.password } : {};
  const ex = c.make({ apiKey: c.apiKey, ...(withSecret ? { secret: c.secret } : {}), ...password, enableRateLimit: false });
  ex.milliseconds = () => T;
  ex.nonce = () => T;
  ex.seconds = () => Math.floor(T / 1000);
  ex.uuid = () => "00000000-0000-4000-8000-000000000000";
  ex.uuid22 = () => "custosUuid22xxxxxxxxxx";
  ex.uuid16 = () => "custosUuid16xxxx";
  const sent: Sent[] = [];
  ex.fetch = async (url: string, method = "GET", headers?: Record<string, string>, body?: unknown) => {
    sent.push({ url, method, headers: headers === undefined ? undefined : { ...headers }, body });
    return { code: "0", result: {} };
  };
  return { ex, sent };
}

async function run(ex: Exchange, [method, params]: Call): Promise<unknown> {
  const fn = (ex as unknown as Record<string, (p: object) => Promise<unknown>>)[method];
  assert.equal(typeof fn, "function", `ccxt ${ex.id} has ${method}`);
  return fn!.call(ex, params);
}

function header(h: Record<string, string> | undefined, name: string): string | undefined {
  return Object.entries(h ?? {}).find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];
}

describe("ccxt drop-in: withCustos", () => {
  let svc: InProcessService;
  let client: CustosClient;

  before(async () => {
    svc = await startInProcess();
    for (const c of CASES) {
      const dialect = dialectFor(c.dialect);
      assert.ok(dialect, c.dialect);
      const bytes = Buffer.from(c.secret, dialect.secretEncoding === "base64" ? "base64" : "utf8");
      // KuCoin: the passphrase's HMAC is fixed at import, as `custos key import --api-passphrase-file` sends it.
      await importSecret(svc.custody, c.id, bytes, {
        exchange: c.dialect,
        algorithm: dialect.algorithm,
        apiKeyId: c.apiKey,
        ...(c.passwordInKey ? { apiPassphrase: c.password! } : {}),
      });
    }
    // Every Deribit signature is also a login: the quorum attests the key's Deribit scope moves no funds.
    const attested = await proposeAndApprove(svc.custody, {
      kind: { $case: "setPolicy", setPolicy: { keyId: "deribit", policyJson: JSON.stringify({ exchangeScopeExcludesFunds: true }) } },
      ttlSeconds: 0,
    });
    assert.equal(attested.state, "executed", attested.failure);
    client = CustosClient.fromDataDir(svc.dir);
  });
  after(async () => {
    client?.close();
    await svc?.stop();
  });

  /** The case's calls on ccxt with the plaintext secret and on ccxt through custos, in turn. */
  async function bothRun(
    c: Case,
    extra: Partial<WithCustosOptions> = {},
  ): Promise<{ plain: ReturnType<typeof instance>; viaCustos: ReturnType<typeof instance> }> {
    const plain = instance(c, true);
    const viaCustos = instance(c, false);
    withCustos(viaCustos.ex, { keyId: c.id, client, ...extra });
    for (const call of c.calls) {
      await run(plain.ex, call);
      await run(viaCustos.ex, call);
    }
    return { plain, viaCustos };
  }

  for (const c of CASES.filter((x) => x.id !== "krakenfutures")) {
    it(`${c.id}: an order and a read are byte-identical to ccxt with the plaintext secret`, async () => {
      const { plain, viaCustos } = await bothRun(c);
      assert.equal(plain.sent.length, c.calls.length);
      assert.deepEqual(viaCustos.sent, plain.sent);
      // The adapter never let a placeholder out, and ccxt never held the secret.
      assert.doesNotMatch(JSON.stringify(viaCustos.sent), /custos[0-9a-f]{12}mac/);
      assert.notEqual(viaCustos.ex.secret, c.secret);
    });
  }

  it("binanceusdm: the unified createOrder, cancelOrder and fetchBalance (markets injected) are byte-identical too", async () => {
    const c = CASES[0]!;
    const plain = instance(c, true);
    const viaCustos = instance(c, false);
    withCustos(viaCustos.ex, { keyId: c.id, client });
    for (const { ex } of [plain, viaCustos]) {
      ex.setMarkets([BTCUSDT_PERP]);
      await ex.createOrder("BTC/USDT:USDT", "limit", "buy", 0.01, 30000, { timeInForce: "GTX" });
      await ex.createOrder("BTC/USDT:USDT", "market", "sell", 0.005);
      await ex.cancelOrder("42", "BTC/USDT:USDT");
      await ex.fetchBalance();
    }
    assert.equal(plain.sent.length, 4);
    assert.deepEqual(viaCustos.sent, plain.sent);
    assert.match(String(plain.sent[0]!.body), /^timestamp=1700000000000&symbol=BTCUSDT&.*&recvWindow=10000&signature=[0-9a-f]{64}$/);
  });

  it("binanceusdm with an Ed25519 key generated in the HSM: ccxt's request, signed base64 and percent-encoded like ccxt's own Ed25519 signing", async () => {
    const generated = await proposeAndApprove(svc.custody, {
      kind: {
        $case: "generateKey",
        generateKey: {
          keyId: "bn-ed-ccxt",
          exchange: "binance",
          environment: Environment.ENVIRONMENT_TESTNET,
          label: "",
          apiKeyId: "tstEdKey",
          algorithm: Algorithm.ALGORITHM_ED25519,
          maxAgeDays: 0,
        },
      },
      ttlSeconds: 0,
    });
    assert.equal(generated.state, "executed", generated.failure);
    const publicKeyPem = (await unary(svc.custody, "listKeys", {})).keys.find((k) => k.keyId === "bn-ed-ccxt")!.publicKeyPem;
    // ccxt configured with an Ed25519 private key of its own (PEM secret): custos's request must equal its bytes but for the signature.
    const own = generateKeyPairSync("ed25519");
    const c: Case = { ...CASES[0]!, apiKey: "tstEdKey", secret: own.privateKey.export({ format: "pem", type: "pkcs8" }).toString() };
    const plain = instance(c, true);
    const viaCustos = instance(c, false);
    withCustos(viaCustos.ex, { keyId: "bn-ed-ccxt", client });
    for (const { ex } of [plain, viaCustos]) {
      ex.setMarkets([BTCUSDT_PERP]);
      await ex.createOrder("BTC/USDT:USDT", "limit", "buy", 0.01, 30000);
    }
    const [mine, theirs] = [viaCustos.sent[0]!, plain.sent[0]!];
    const split = (body: unknown) => /^(.*)&signature=([^&]+)$/.exec(String(body))!.slice(1) as [string, string];
    const [signedBody, signature] = split(mine.body);
    const [ccxtBody, ccxtSignature] = split(theirs.body);
    assert.deepEqual({ ...mine, body: signedBody }, { ...theirs, body: ccxtBody }, "same URL, headers and signed parameters");
    assert.ok(
      verify(null, Buffer.from(ccxtBody), own.publicKey, Buffer.from(decodeURIComponent(ccxtSignature), "base64")),
      "ccxt's own Ed25519 signature (the reference form)",
    );
    assert.ok(
      verify(null, Buffer.from(signedBody), createPublicKey(publicKeyPem), Buffer.from(decodeURIComponent(signature), "base64")),
      "custos's signature verifies with the key's public key",
    );
    assert.equal(signature, encodeURIComponent(decodeURIComponent(signature)), "percent-encoded like ccxt's");
  });

  it("krakenfutures: identical but for the Nonce custos adds (ccxt sends none), and the Authent over it", async () => {
    const c = CASES.find((x) => x.id === "krakenfutures")!;
    const { plain, viaCustos } = await bothRun(c);
    assert.equal(viaCustos.sent.length, c.calls.length);
    const nonces: number[] = [];
    viaCustos.sent.forEach((mine, i) => {
      const theirs = plain.sent[i]!;
      const { Nonce: nonce, Authent: authent, ...rest } = mine.headers!;
      const { Authent: _theirAuthent, ...theirRest } = theirs.headers!;
      assert.deepEqual(
        { url: mine.url, method: mine.method, body: mine.body, headers: rest },
        { url: theirs.url, method: theirs.method, body: theirs.body, headers: theirRest },
      );
      assert.match(nonce!, /^\d{13,}$/);
      nonces.push(Number(nonce));
      // Kraken's documented Authent, recomputed with the plaintext secret: postData + Nonce + endpoint path.
      const url = new URL(mine.url);
      const postData = url.search.slice(1) + (typeof mine.body === "string" ? mine.body : "");
      const digest = createHash("sha256")
        .update(postData + nonce + url.pathname.replace(/^\/derivatives/, ""))
        .digest();
      assert.equal(authent, createHmac("sha512", Buffer.from(c.secret, "base64")).update(digest).digest("base64"));
    });
    assert.ok(nonces[1]! > nonces[0]!, "custos's nonces increase");
  });

  it("krakenfutures with omitOptionalNonce: refused under the default policy (nothing sent); byte-identical to ccxt once the key's policy allows untimed requests", async () => {
    const c = CASES.find((x) => x.id === "krakenfutures")!;
    const refused = instance(c, false);
    withCustos(refused.ex, { keyId: c.id, client, omitOptionalNonce: true });
    await assert.rejects(run(refused.ex, c.calls[0]!), (e: unknown) => {
      assert.ok(e instanceof CcxtCustosError, String(e));
      assert.deepEqual([e.code, e.reason, e.rule], ["SIGNING_REFUSED", "POLICY_DENIED", "untimed-request"]);
      return true;
    });
    assert.deepEqual(refused.sent, []);

    const p = await proposeAndApprove(svc.custody, {
      kind: { $case: "setPolicy", setPolicy: { keyId: c.id, policyJson: JSON.stringify({ allowUntimedRequests: true }) } },
      ttlSeconds: 0,
    });
    assert.equal(p.state, "executed", p.failure);
    const { plain, viaCustos } = await bothRun(c, { omitOptionalNonce: true });
    assert.equal(plain.sent.length, c.calls.length);
    assert.deepEqual(viaCustos.sent, plain.sent);
    assert.equal(plain.sent[0]!.headers!.Nonce, undefined, "ccxt sends no Nonce");
    // Exchanges whose requests always carry a nonce or timestamp have nothing to omit.
    assert.throws(
      () => withCustos(instance(CASES[0]!, false).ex, { keyId: CASES[0]!.id, client, omitOptionalNonce: true }),
      (e: unknown) => e instanceof CcxtCustosError && e.code === "NOT_SUPPORTED",
    );
  });

  it("binanceusdm: a withdrawal through ccxt is refused by custos's default policy and never sent", async () => {
    const c = CASES[0]!;
    const viaCustos = instance(c, false);
    withCustos(viaCustos.ex, { keyId: c.id, client });
    const withdraw: Call = ["sapiPostCapitalWithdrawApply", { coin: "USDT", address: "TXYZcustosTestAddress", amount: "1000", network: "TRX" }];
    await assert.rejects(run(viaCustos.ex, withdraw), (e: unknown) => {
      assert.ok(e instanceof CcxtCustosError, String(e));
      assert.equal(e.code, "SIGNING_REFUSED");
      assert.equal(e.reason, "POLICY_DENIED");
      assert.equal(e.rule, "class:withdraw");
      return true;
    });
    assert.deepEqual(viaCustos.sent, []);

    // The same refusal as a ccxt error class, for a bot's existing ccxt error handling.
    const mapped = instance(c, false);
    withCustos(mapped.ex, { keyId: c.id, client, errorClass: ccxt.PermissionDenied });
    await assert.rejects(run(mapped.ex, withdraw), (e: unknown) => {
      assert.ok(e instanceof ccxt.PermissionDenied, String(e));
      assert.ok(e.cause instanceof CcxtCustosError && e.cause.rule === "class:withdraw");
      return true;
    });
    assert.deepEqual(mapped.sent, []);
  });

  it("withdrawals through ccxt are refused on the other exchanges too", async () => {
    const withdrawals: Record<string, Call> = {
      bybit: ["privatePostV5AssetWithdrawCreate", { coin: "USDT", chain: "TRX", address: "TXYZ", amount: "1000", timestamp: T }],
      okx: ["privatePostAssetWithdrawal", { ccy: "USDT", amt: "1000", dest: "4", toAddr: "TXYZ", chain: "USDT-TRC20" }],
      deribit: ["privateGetWithdraw", { currency: "BTC", address: "bc1qcustos", amount: 1 }],
      bitmex: ["privatePostUserRequestWithdrawal", { currency: "XBt", amount: 100000, address: "bc1qcustos" }],
      krakenfutures: ["privatePostWithdrawal", { currency: "xbt", amount: 1 }],
      gate: ["privateWithdrawalsPostWithdrawals", { currency: "USDT", address: "TXYZ", amount: "1000", chain: "TRX" }],
      kucoinfutures: ["futuresPrivatePostWithdrawals", { currency: "USDT", address: "TXYZ", amount: 1000, chain: "trc20" }],
      bitget: ["privateSpotPostV2SpotWalletWithdrawal", { coin: "USDT", transferType: "on_chain", address: "TXYZ", chain: "trc20", size: "1000" }],
    };
    for (const [id, call] of Object.entries(withdrawals)) {
      const viaCustos = instance(CASES.find((x) => x.id === id)!, false);
      withCustos(viaCustos.ex, { keyId: id, client });
      await assert.rejects(
        run(viaCustos.ex, call),
        (e: unknown) => e instanceof CcxtCustosError && e.reason === "POLICY_DENIED" && e.rule === "class:withdraw",
        id,
      );
      assert.deepEqual(viaCustos.sent, [], id);
    }
  });

  it("opens its own client from a data dir, and public endpoints pass through unsigned", async () => {
    const c = CASES[0]!;
    const plain = instance(c, true);
    const viaCustos = instance(c, false);
    withCustos(viaCustos.ex, { keyId: c.id, dataDir: svc.dir });
    try {
      for (const call of [["fapiPublicGetTime", {}], c.calls[0]!] as Call[]) {
        await run(plain.ex, call);
        await run(viaCustos.ex, call);
      }
      assert.deepEqual(viaCustos.sent, plain.sent);
      assert.equal(header(viaCustos.sent[0]!.headers, "X-MBX-APIKEY"), undefined);
    } finally {
      closeCustos(viaCustos.ex);
    }
  });

  it("refuses an exchange that carries a secret, and a secret set later", () => {
    const c = CASES[0]!;
    assert.throws(
      () => withCustos(instance(c, true).ex, { keyId: c.id, client }),
      (e: unknown) => e instanceof CcxtCustosError && e.code === "SECRET_ON_EXCHANGE",
    );
    const viaCustos = instance(c, false).ex;
    withCustos(viaCustos, { keyId: c.id, client });
    assert.throws(
      () => (viaCustos.secret = c.secret),
      (e: unknown) => e instanceof CcxtCustosError && e.code === "SECRET_ON_EXCHANGE",
    );
    assert.throws(
      () => withCustos(ccxtClass("bitstamp")({ apiKey: "k" }), { keyId: "x", client }),
      (e: unknown) => e instanceof CcxtCustosError && e.code === "NOT_SUPPORTED",
    );
  });

  it("sends nothing when custos's signed request differs from ccxt's", async () => {
    const c = CASES[0]!;
    const viaCustos = instance(c, false);
    // A signer that signs another quantity than ccxt asked for (a bug or a tampering proxy).
    const lying = {
      signExchangeRequest: async (input: Parameters<CustosClient["signExchangeRequest"]>[0]) =>
        client.signExchangeRequest({ ...input, body: String(input.body).replace("quantity=0.010", "quantity=9") }),
    };
    withCustos(viaCustos.ex, { keyId: c.id, client: lying });
    await assert.rejects(run(viaCustos.ex, c.calls[0]!), (e: unknown) => e instanceof CcxtCustosError && e.code === "SIGNED_REQUEST_MISMATCH");
    assert.deepEqual(viaCustos.sent, []);
  });

  it("never sends a KuCoin passphrase (it is part of the key), even when ccxt holds one; OKX still sends its own", async () => {
    const seen: Array<{ id: string; passphrase: string | undefined }> = [];
    const recording = (id: string) => ({
      signExchangeRequest: async (input: Parameters<CustosClient["signExchangeRequest"]>[0]) => {
        seen.push({ id, passphrase: input.passphrase });
        return client.signExchangeRequest(input);
      },
    });
    const kucoin = CASES.find((x) => x.id === "kucoinfutures")!;
    const okx = CASES.find((x) => x.id === "okx")!;
    // ccxt with its password set (a bot configured the old way): still byte-identical, nothing sent.
    const plain = instance(kucoin, true);
    const withPassword = instance({ ...kucoin, passwordInKey: false }, false);
    withCustos(withPassword.ex, { keyId: kucoin.id, client: recording("kucoin") });
    const viaOkx = instance(okx, false);
    withCustos(viaOkx.ex, { keyId: okx.id, client: recording("okx") });
    for (const call of kucoin.calls) {
      await run(plain.ex, call);
      await run(withPassword.ex, call);
    }
    await run(viaOkx.ex, okx.calls[0]!);
    assert.deepEqual(withPassword.sent, plain.sent);
    assert.deepEqual(seen, [
      { id: "kucoin", passphrase: undefined },
      { id: "kucoin", passphrase: undefined },
      { id: "okx", passphrase: okx.password },
    ]);
  });

  it("ccxt pro WebSocket login is not covered: its HMAC outside a REST request is refused", async () => {
    const c = CASES.find((x) => x.id === "okx")!;
    const ws = new ccxt.pro.okx({ apiKey: c.apiKey, ...(c.password ? { password: c.password } : {}) });
    withCustos(ws, { keyId: c.id, client });
    // pro/okx.js authenticate() computes its login signature with this.hmac before connecting.
    await assert.rejects(
      (ws as unknown as { authenticate(): Promise<unknown> }).authenticate(),
      (e: unknown) => e instanceof CcxtCustosError && e.code === "NOT_SUPPORTED",
    );
    // No close(): nothing was connected, and close() would reject the login future ccxt left pending.
  });
});
