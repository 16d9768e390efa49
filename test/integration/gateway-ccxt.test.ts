import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { PassThrough } from "node:stream";
import ccxt from "ccxt";
import { status } from "@grpc/grpc-js";
import { signerClient, unary } from "../../src/client/connection.js";
import { destinationFor } from "../../src/egress/destinations.js";
import { grpcSender } from "../../src/gateway/custos-sender.js";
import { startGateway, type RunningGateway } from "../../src/gateway/gateway.js";
import { httpPublicUpstream } from "../../src/gateway/public-upstream.js";
import { createLogger } from "../../src/log.js";
import { SYMBOLS } from "../fixtures/ccxt-unified-responses.js";
import { startVenues, VENUE_ACCOUNTS, type VenueAccount, type Venues } from "../helpers/gateway-venues.js";
import { expectDenied, proposeAndApprove } from "../helpers/harness.js";

/*
 * The real ccxt, with its URLs pointed at `custos gateway` and only a placeholder secret: every
 * private request it signs with that placeholder is re-signed by custos (SendExchangeRequest) and
 * sent by custos's egress to stand-ins that verify signature, API key and timestamp exactly as
 * each exchange documents. The bot never holds the secret, and no signature leaves custos.
 */

type Exchange = InstanceType<typeof ccxt.Exchange>;
type Implicit = Record<string, (params: object) => Promise<unknown>>;
const PLACEHOLDER = "not-the-secret-custos-holds-it";

/** ccxt as a bot configures it for the gateway: every REST URL → http://GATEWAY/<exchange>/<key-id>/… (paths kept). */
function botFor(a: VenueAccount, gateway: string): Exchange {
  const Class = (ccxt as unknown as Record<string, new (c: object) => Exchange>)[a.ccxtId]!;
  const ex = new Class({ apiKey: "placeholder-api-key", secret: PLACEHOLDER, ...(a.passphrase ? { password: a.passphrase } : {}), enableRateLimit: false });
  const walk = (o: Record<string, unknown>) => {
    for (const [k, v] of Object.entries(o)) {
      if (typeof v === "string") o[k] = v.replace(/^https?:\/\/[^/]+/, `${gateway}/${a.exchange}/${a.keyId}`);
      else if (v && typeof v === "object") walk(v as Record<string, unknown>);
    }
  };
  walk(ex.urls.api as Record<string, unknown>);
  return ex;
}

/** Each exchange's withdrawal endpoint, through ccxt's implicit API (no currency list needed). */
const WITHDRAW: Record<VenueAccount["ccxtId"], [string, object]> = {
  binanceusdm: ["sapiPostCapitalWithdrawApply", { coin: "USDT", address: "TXYZabcdefghijklmnopqrstuvwxyz1234", amount: "1000", network: "TRX" }],
  bybit: [
    "privatePostV5AssetWithdrawCreate",
    { coin: "USDT", chain: "TRX", address: "TXYZabcdefghijklmnopqrstuvwxyz1234", amount: "1000", timestamp: Date.now() },
  ],
  okx: ["privatePostAssetWithdrawal", { ccy: "USDT", amt: "1000", dest: "4", toAddr: "TXYZabcdefghijklmnopqrstuvwxyz1234", chain: "USDT-TRC20" }],
};

describe("ccxt through custos gateway (Binance USDⓈ-M, Bybit, OKX)", () => {
  let venues: Venues;
  let gateway: RunningGateway;
  let logs = "";
  const closers: Array<() => void> = [];

  before(async () => {
    venues = await startVenues();
    const sink = new PassThrough();
    sink.on("data", (d: Buffer) => (logs += d.toString()));
    const upstream = httpPublicUpstream({ originFor: (e, p) => destinationFor(e, "testnet", p, venues.hosts).origin, ca: venues.caPem });
    closers.push(() => upstream.close());
    gateway = await startGateway({
      sender: grpcSender(venues.svc.signer),
      publicUpstream: upstream,
      logger: createLogger("info", sink),
      listen: { host: "127.0.0.1", port: 0 },
    });
  });
  after(async () => {
    await gateway?.close();
    for (const close of closers) close();
    await venues?.stop();
  });

  const standIn = (a: VenueAccount) => ({ binanceusdm: venues.binance, bybit: venues.bybit, okx: venues.okx })[a.ccxtId];

  for (const a of VENUE_ACCOUNTS) {
    it(`${a.ccxtId}: loadMarkets, fetchBalance, createOrder and cancelOrder succeed at an exchange that verifies every signature`, async () => {
      const ex = botFor(a, gateway.url);
      const venue = standIn(a);
      const from = venue.received.length;
      const symbol = SYMBOLS[a.ccxtId]!;

      await ex.loadMarkets();
      assert.equal(ex.markets?.[symbol]?.symbol, symbol, "markets came from the exchange through the gateway");
      const balance = await ex.fetchBalance();
      assert.equal((balance.total as unknown as Record<string, number>).USDT, 1000);
      const order = await ex.createOrder(symbol, "limit", "buy", 1, 30000);
      const accepted = venue.accepted.at(-1);
      assert.ok(accepted, "the exchange accepted an order");
      assert.equal(order.id, String(accepted.orderId));
      await ex.cancelOrder(order.id!, symbol);
      assert.deepEqual(venue.cancelled, [order.id]);

      const mine = venue.received.slice(from);
      const signed = mine.filter((r) => JSON.stringify(r.headers).includes(a.apiKey));
      assert.ok(signed.length >= 4, `${signed.length} requests carried the account's API key (set by custos)`);
      assert.ok(
        mine.every((r) => r.outcome.status === 200 && r.outcome.code === undefined),
        "the exchange refused nothing",
      );
      assert.ok(!JSON.stringify(mine).includes("placeholder-api-key"), "the bot's placeholder API key never reached the exchange");
      // Public market data went without any credential.
      const publicOnes = mine.filter((r) => /exchangeInfo|instruments/.test(r.target));
      assert.ok(publicOnes.length > 0 && publicOnes.every((r) => !JSON.stringify(r.headers).includes(a.apiKey)));
    });

    it(`${a.ccxtId}: a withdrawal is refused by custos, ccxt raises PermissionDenied, and nothing reaches the exchange`, async () => {
      const ex = botFor(a, gateway.url);
      const venue = standIn(a);
      const from = venue.received.length;
      const [method, params] = WITHDRAW[a.ccxtId];
      await assert.rejects((ex as unknown as Implicit)[method]!(params), (e: unknown) => {
        assert.ok(e instanceof ccxt.PermissionDenied, `${a.ccxtId}: ${String(e)}`);
        assert.ok(!(e instanceof ccxt.NetworkError), "a refusal is not retryable");
        return true;
      });
      assert.equal(venue.received.length, from, "no request reached the exchange");
    });
  }

  it("an egressOnly key trades through the gateway, while a signature asked for directly is refused", async () => {
    const a = VENUE_ACCOUNTS.find((x) => x.exchange === "binance")!;
    const attested = await proposeAndApprove(venues.svc.custody, {
      kind: { $case: "setPolicy", setPolicy: { keyId: a.keyId, policyJson: JSON.stringify({ egressOnly: true }) } },
      ttlSeconds: 0,
    });
    assert.equal(attested.state, "executed", attested.failure);
    await expectDenied(
      unary(venues.svc.signer, "signExchangeRequest", {
        keyId: a.keyId,
        version: 0,
        method: "GET",
        path: "/fapi/v3/account",
        query: "",
        queryParams: [],
        body: Buffer.alloc(0),
        timestampMs: "0",
        nonce: "",
        expires: "0",
        recvWindowMs: 0,
        passphrase: "",
        apiKeyVersion: "",
        omitNonce: false,
      }),
      status.PERMISSION_DENIED,
      "POLICY_DENIED",
    );
    const ex = botFor(a, gateway.url);
    await ex.loadMarkets();
    const order = await ex.createOrder(SYMBOLS[a.ccxtId]!, "limit", "sell", 1, 31000);
    assert.equal(order.id, String(venues.binance.accepted.at(-1)!.orderId));
  });

  it("custos unreachable: HTTP 503, which ccxt raises as the retryable ExchangeNotAvailable", async () => {
    const dead = signerClient("127.0.0.1:1", { caPath: venues.svc.conn.caPath, ...venues.svc.conn.client! });
    closers.push(() => dead.close());
    const upstream = httpPublicUpstream({ originFor: (e, p) => destinationFor(e, "testnet", p, venues.hosts).origin, ca: venues.caPem });
    closers.push(() => upstream.close());
    const down = await startGateway({
      sender: grpcSender(dead),
      publicUpstream: upstream,
      logger: createLogger("silent"),
      listen: { host: "127.0.0.1", port: 0 },
    });
    try {
      const a = VENUE_ACCOUNTS[0]!;
      const ex = botFor(a, down.url);
      await assert.rejects(ex.fapiPrivateV3GetAccount({}), (e: unknown) => {
        assert.ok(e instanceof ccxt.ExchangeNotAvailable && e instanceof ccxt.NetworkError, String(e));
        return true;
      });
    } finally {
      await down.close();
    }
  });

  it("the gateway logs each request with its digest, never the body, query or passphrase", () => {
    const lines = logs
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.event === "gateway.request");
    assert.ok(lines.some((l) => l.outcome === "sent" && l.exchange === "okx" && typeof l.payloadSha256 === "string"));
    assert.ok(lines.some((l) => l.outcome === "denied" && l.reason === "POLICY_DENIED"));
    const okx = VENUE_ACCOUNTS.find((x) => x.exchange === "okx")!;
    assert.ok(!logs.includes(okx.passphrase!), "no passphrase in the logs");
    assert.ok(!logs.includes("TXYZabcdefghijklmnopqrstuvwxyz1234"), "no request body in the logs");
  });
});
