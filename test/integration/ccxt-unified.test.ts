import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import ccxt from "ccxt";
// ccxt 4.5.78, the last ccxt release that ships BitMEX (npm alias; ccxt >= 4.5.79 has no bitmex class).
import ccxtWithBitmex from "ccxt-bitmex";
import { CcxtCustosError, withCustos } from "../../src/client/ccxt/index.js";
import { CustosClient } from "../../src/client/custos-client.js";
import { dialectFor } from "../../src/exchanges/registry.js";
import { AMOUNT, FALLBACK, MARGIN_PARAMS, OPTIONS, RESPONSES, SYMBOLS } from "../fixtures/ccxt-unified-responses.js";
import { importSecret, proposeAndApprove, REPO, startInProcess, tempDir, type InProcessService } from "../helpers/harness.js";
import { StandInCanned, type ReceivedRequest } from "../helpers/stand-in-exchange.js";

/*
 * What a perpetual-futures bot really calls, through withCustos under the default policy: ccxt's
 * loadMarkets (no setMarkets preloading) and its unified account, order, leverage and funding
 * methods, against a local stand-in answering each exchange's minimal valid responses. Each run
 * is repeated by the same ccxt holding the plaintext secret (same fixed clock and ids): the
 * requests the stand-in received must be byte for byte the same, so every signature is the one
 * the exchange expects.
 */

const T = 1_700_000_000_000;
type Exchange = InstanceType<typeof ccxt.Exchange>;
type Unified = Record<string, (...args: unknown[]) => Promise<unknown>>;

interface Account {
  id: string;
  dialect: string;
  apiKey: string;
  secret: string;
  password?: string;
  passwordInKey?: boolean;
}

const ACCOUNTS: Account[] = [
  {
    id: "binanceusdm",
    dialect: "binance",
    apiKey: "tstKeyBn0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU",
    secret: "tstSecBn0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU",
  },
  {
    id: "binance",
    dialect: "binance",
    apiKey: "tstKeyBs0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU",
    secret: "tstSecBs0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU",
  },
  { id: "bybit", dialect: "bybit", apiKey: "tstBybitKey01234567", secret: "tstBybitSecret0123456789abcdefghijklm" },
  { id: "okx", dialect: "okx", apiKey: "0a1b2c3d-4e5f-6789-abcd-ef0123456789", secret: "0123456789ABCDEF0123456789ABCDEF", password: "Okx-Passphrase-1" },
  { id: "deribit", dialect: "deribit", apiKey: "tstDrbt1", secret: "tstDeribitSecret_0123456789abcdefghijklmnopq" },
  {
    id: "krakenfutures",
    dialect: "krakenfutures",
    apiKey: "tstKrakenFuturesKey0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH",
    secret: Buffer.from("kraken futures test secret, 64 bytes long, decoded before use!!!").toString("base64"),
  },
  {
    id: "bitget",
    dialect: "bitget",
    apiKey: "bg_0123456789abcdef0123456789abcdef",
    secret: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    password: "bitgetPassphrase",
  },
  { id: "gate", dialect: "gate", apiKey: "0123456789abcdef0123456789abcdef", secret: "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210" },
  {
    id: "kucoinfutures",
    dialect: "kucoinfutures",
    apiKey: "0123456789abcdef01234567",
    secret: "01234567-89ab-cdef-0123-456789abcdef",
    password: "kucoin-passphrase",
    passwordInKey: true,
  },
  { id: "bitmex", dialect: "bitmex", apiKey: "tstBitmexKey0123456789ab", secret: "tstBitmexSecret_0123456789abcdefghijklmnopqrstu" },
];
/** The ccxt release a bot on that exchange runs: the project's ccxt, or 4.5.78 for BitMEX. */
const CCXT_RELEASE: Record<string, object> = { bitmex: ccxtWithBitmex };

/** The bot's calls, by ccxt's unified method name (ccxt's `has` key). */
function botSteps(id: string): Array<[string, string, (ex: Unified) => Promise<unknown>]> {
  const s = SYMBOLS[id]!;
  const amount = AMOUNT[id] ?? 1;
  return [
    ["loadMarkets", "loadMarkets", (ex) => ex.loadMarkets!()],
    ["fetchBalance", "fetchBalance", (ex) => ex.fetchBalance!()],
    ["fetchPositions", "fetchPositions", (ex) => ex.fetchPositions!([s])],
    ["fetchOpenOrders", "fetchOpenOrders", (ex) => ex.fetchOpenOrders!(s)],
    ["fetchOrder", "fetchOrder", (ex) => ex.fetchOrder!("1001", s)],
    ["fetchMyTrades", "fetchMyTrades", (ex) => ex.fetchMyTrades!(s)],
    ["createOrder limit", "createOrder", (ex) => ex.createOrder!(s, "limit", "buy", amount, 30000)],
    ["createOrder market", "createOrder", (ex) => ex.createOrder!(s, "market", "sell", amount)],
    ["createOrder reduce-only", "createOrder", (ex) => ex.createOrder!(s, "limit", "sell", amount, 31000, { reduceOnly: true })],
    ["cancelOrder", "cancelOrder", (ex) => ex.cancelOrder!("1001", s)],
    ["cancelAllOrders", "cancelAllOrders", (ex) => ex.cancelAllOrders!(s)],
    ["setLeverage", "setLeverage", (ex) => ex.setLeverage!(5, s)],
    ["setMarginMode", "setMarginMode", (ex) => ex.setMarginMode!("isolated", s, MARGIN_PARAMS[id] ?? {})],
    ["fetchFundingRate", "fetchFundingRate", (ex) => ex.fetchFundingRate!(s)],
    ["fetchFundingHistory", "fetchFundingHistory", (ex) => ex.fetchFundingHistory!(s)],
  ];
}

/** Unified methods ccxt itself does not offer for an exchange (ccxt's `has` says so; nothing to sign). */
const NOT_IN_CCXT: Record<string, string[]> = {
  okx: ["cancelAllOrders"],
  deribit: ["setLeverage", "setMarginMode", "fetchFundingHistory"],
  krakenfutures: ["setMarginMode"],
  gate: ["setMarginMode"],
  bitmex: ["fetchFundingHistory"],
};

/** Every REST host of the exchange → the stand-in (paths kept). */
function pointAt(ex: Exchange, base: string): void {
  const walk = (o: Record<string, unknown>) => {
    for (const [k, v] of Object.entries(o)) {
      if (typeof v === "string") o[k] = v.replace(/^https?:\/\/[^/]+/, base);
      else if (v && typeof v === "object") walk(v as Record<string, unknown>);
    }
  };
  walk(ex.urls.api as Record<string, unknown>);
}

function make(a: Account, withSecret: boolean, base: string): Exchange {
  const password = a.password && (withSecret || !a.passwordInKey) ? { password: a.password } : {};
  const Class = ((CCXT_RELEASE[a.id] ?? ccxt) as unknown as Record<string, new (c: object) => Exchange>)[a.id]!;
  const ex = new Class({
    apiKey: a.apiKey,
    ...(withSecret ? { secret: a.secret } : {}),
    ...password,
    enableRateLimit: false,
    options: { ...(OPTIONS[a.id] ?? {}) },
  });
  ex.milliseconds = () => T;
  ex.nonce = () => T;
  ex.seconds = () => Math.floor(T / 1000);
  ex.uuid = () => "00000000-0000-4000-8000-000000000000";
  ex.uuid22 = () => "custosUuid22xxxxxxxxxx";
  ex.uuid16 = () => "custosUuid16xxxx";
  pointAt(ex, base);
  return ex;
}

/** A request as compared: Kraken Futures' Nonce and Authent are custos's own (ccxt sends no Nonce). */
function comparable(id: string, r: ReceivedRequest): Omit<ReceivedRequest, "outcome"> {
  const { outcome: _outcome, ...rest } = r;
  if (id !== "krakenfutures") return rest;
  const { nonce: _nonce, authent: _authent, ...headers } = r.headers;
  return { ...rest, headers };
}

describe("ccxt's unified methods through withCustos, under the default policy", () => {
  let svc: InProcessService;
  let client: CustosClient;

  before(async () => {
    svc = await startInProcess();
    for (const a of ACCOUNTS) {
      const dialect = dialectFor(a.dialect)!;
      const bytes = Buffer.from(a.secret, dialect.secretEncoding === "base64" ? "base64" : "utf8");
      await importSecret(svc.custody, a.id, bytes, {
        exchange: a.dialect,
        algorithm: dialect.algorithm,
        apiKeyId: a.apiKey,
        ...(a.passwordInKey ? { apiPassphrase: a.password! } : {}),
      });
    }
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

  for (const a of ACCOUNTS) {
    it(`${a.id}: loadMarkets and every unified call a perp bot makes are signed, byte for byte as ccxt with the secret would send them`, async () => {
      const standIn = new StandInCanned(RESPONSES[a.id]!, FALLBACK[a.id]);
      const base = await standIn.start();
      try {
        const plain = make(a, true, base);
        const viaCustos = make(a, false, base);
        withCustos(viaCustos, { keyId: a.id, client });
        const skipped: string[] = [];
        let signedSteps = 0;
        for (const [step, has, call] of botSteps(a.id)) {
          if (has !== "loadMarkets" && !plain.has[has]) {
            skipped.push(has);
            continue;
          }
          const from = standIn.received.length;
          await call(plain as unknown as Unified);
          const mid = standIn.received.length;
          await call(viaCustos as unknown as Unified).catch((e: unknown) => assert.fail(`${a.id} ${step} through custos: ${String(e)}`));
          const theirs = standIn.received.slice(from, mid);
          const mine = standIn.received.slice(mid);
          assert.ok(theirs.length > 0, `${a.id} ${step}: ccxt sent a request`);
          // loadMarkets sends some requests concurrently: compare them in a stable order.
          const sorted = (rs: ReceivedRequest[]) => rs.map((r) => JSON.stringify(comparable(a.id, r))).sort();
          assert.deepEqual(sorted(mine), sorted(theirs), `${a.id} ${step}`);
          if (mine.some((r) => JSON.stringify(r).includes(a.apiKey))) signedSteps++;
        }
        assert.deepEqual([...new Set(skipped)].sort(), (NOT_IN_CCXT[a.id] ?? []).sort(), `${a.id}: only what ccxt lacks is skipped`);
        // loadMarkets signs on some exchanges only; everything else except the public funding rate is signed.
        assert.ok(signedSteps >= 10 - (NOT_IN_CCXT[a.id]?.length ?? 0), `${a.id}: ${signedSteps} signed steps`);
        assert.equal(viaCustos.markets?.[SYMBOLS[a.id]!]?.symbol, SYMBOLS[a.id], "markets came from the stand-in, not setMarkets");
      } finally {
        await standIn.stop();
      }
    });
  }

  it("custos unreachable: ccxt's retryable ExchangeNotAvailable (a NetworkError), nothing sent; a policy refusal stays non-retryable", async () => {
    // A connection file naming a port nothing listens on.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const dir = tempDir("custos-unreachable-");
    const conn = JSON.parse(readFileSync(join(svc.dir, "connection.json"), "utf8")) as { grpc: string };
    const dead = `127.0.0.1:${port}`;
    // Every address the client would try (grpc, and the replicas' list) names the dead port.
    writeFileSync(join(dir, "connection.json"), JSON.stringify({ ...conn, grpc: dead, addresses: [dead] }));
    const a = ACCOUNTS[0]!;
    const standIn = new StandInCanned(RESPONSES[a.id]!);
    const base = await standIn.start();
    const down = CustosClient.fromDataDir(dir);
    try {
      const ex = make(a, false, base);
      withCustos(ex, { keyId: a.id, client: down, errorClass: ccxt.PermissionDenied });
      await assert.rejects(ex.fetchBalance(), (e: unknown) => {
        assert.ok(e instanceof ccxt.ExchangeNotAvailable && e instanceof ccxt.NetworkError, String(e));
        assert.ok(!(e instanceof ccxt.PermissionDenied));
        assert.ok(e.cause instanceof CcxtCustosError && e.cause.code === "CUSTOS_UNAVAILABLE");
        return true;
      });
      assert.equal(standIn.received.filter((r) => r.headers["x-mbx-apikey"] !== undefined).length, 0, "no signed request reached the exchange");

      const refusing = make(a, false, base);
      withCustos(refusing, { keyId: a.id, client });
      const withdraw = (refusing as unknown as Unified).sapiPostCapitalWithdrawApply!({ coin: "USDT", address: "TXYZ", amount: "1000", network: "TRX" });
      await assert.rejects(withdraw, (e: unknown) => {
        assert.ok(e instanceof CcxtCustosError && e.code === "SIGNING_REFUSED" && e.reason === "POLICY_DENIED", String(e));
        assert.ok(!(e instanceof ccxt.NetworkError));
        return true;
      });
    } finally {
      down.close();
      await standIn.stop();
    }
  });

  it("README's ccxt example runs as written (its deployment values aside) and its order reaches the exchange signed", async () => {
    const readme = readFileSync(join(REPO, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("## ccxt drop-in"));
    const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1] ?? "";
    assert.ok(code?.includes("withCustos(new ccxt.binanceusdm"), "README has the ccxt example");
    const apiKey = /apiKey: "([^"]+)"/.exec(code)![1]!;
    const keyId = /keyId: "([^"]+)"/.exec(code)![1]!;
    const secret = "readmeSecret0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP";
    const exchangeKey = "readmeApiKey0123456789";
    await importSecret(svc.custody, keyId, Buffer.from(secret), { exchange: "binance", apiKeyId: exchangeKey });
    const standIn = new StandInCanned(RESPONSES.binanceusdm!);
    const base = await standIn.start();
    try {
      // The snippet's own module, with: the package path, an ASCII API key, the data dir, and a ccxt whose hosts are the stand-in.
      const dir = tempDir("custos-readme-");
      mkdirSync(join(dir, "node_modules"));
      writeFileSync(
        join(dir, "ccxt-at-stand-in.mjs"),
        [
          `import ccxt from ${JSON.stringify(join(REPO, "node_modules/ccxt/js/ccxt.js"))};`,
          `class binanceusdm extends ccxt.binanceusdm { constructor(c) { super(c); const w = (o) => { for (const [k, v] of Object.entries(o)) {`,
          `  if (typeof v === "string") o[k] = v.replace(/^https?:\\/\\/[^/]+/, ${JSON.stringify(base)}); else if (v && typeof v === "object") w(v); } }; w(this.urls.api); } }`,
          `export default { ...ccxt, binanceusdm };`,
        ].join("\n"),
      );
      const script = code
        .replace(`from "ccxt"`, `from "./ccxt-at-stand-in.mjs"`)
        .replace(`"<custos>/dist/src/client/ccxt/index.js"`, JSON.stringify(join(REPO, "dist/src/client/ccxt/index.js")))
        .replace(`apiKey: "${apiKey}"`, `apiKey: "${exchangeKey}"`)
        .replace(`"/etc/custos-client"`, JSON.stringify(svc.dir));
      writeFileSync(join(dir, "readme.mjs"), script);
      await import(join(dir, "readme.mjs"));
      const orders = standIn.received.filter((r) => r.method === "POST" && r.target === "/fapi/v1/order");
      assert.equal(orders.length, 1, "the order was sent once");
      const [unsigned, signature] = /^(.*)&signature=([0-9a-f]{64})$/.exec(orders[0]!.body)!.slice(1);
      assert.equal(signature, createHmac("sha256", secret).update(unsigned!).digest("hex"), "signed with the key's secret");
      assert.match(unsigned!, /symbol=BTCUSDT&side=BUY&.*type=LIMIT&quantity=0\.01&price=30000/);
      assert.equal(orders[0]!.headers["x-mbx-apikey"], exchangeKey);
    } finally {
      await standIn.stop();
    }
  });
});
