import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, createHmac, generateKeyPairSync, sign as cryptoSign, verify as cryptoVerify } from "node:crypto";
import ccxt from "ccxt";
import { binance } from "../../../src/exchanges/binance.js";
import { bitget } from "../../../src/exchanges/bitget.js";
import { bitmex } from "../../../src/exchanges/bitmex.js";
import { bybit } from "../../../src/exchanges/bybit.js";
import { deribit } from "../../../src/exchanges/deribit.js";
import { gate } from "../../../src/exchanges/gate.js";
import { krakenfutures } from "../../../src/exchanges/krakenfutures.js";
import { kucoinfutures } from "../../../src/exchanges/kucoinfutures.js";
import { okx } from "../../../src/exchanges/okx.js";
import type { Dialect, SignedWebSocketAuth, SigningContext, WebSocketAuthInput } from "../../../src/exchanges/dialect.js";
import { isCustosError } from "../../../src/errors.js";
import { hmacSpec } from "../../../src/hsm/algorithms.js";

/*
 * Private WebSocket login/auth signatures. Each exchange is checked three ways where possible: the docs'
 * worked example (Deribit, Kraken Futures publish one with its secret), the docs' formula recomputed here
 * with node:crypto, and ccxt's pro implementation (node_modules/ccxt/js/src/pro/<exchange>.js) driven
 * offline: its `watch` is stubbed to capture the message it would send and its clock is pinned.
 */

const SECRET = "custos-websocket-test-secret-0123456789";
const API_KEY = "custos-test-key";
const PASSPHRASE = "Pass phrase!1";
const T_MS = 1_700_000_000_123;
const T_S = 1_700_000_000;

function ctx(over: Partial<SigningContext> = {}): SigningContext {
  return { timestamp: T_MS, expires: T_S + 10, nonce: "n0nce42", apiKeyId: API_KEY, passphrase: PASSPHRASE, ...over };
}

/** Signs as the HSM would: the dialect's HMAC over each `toSign` buffer, with the secret decoded as at import. */
function sign(dialect: Dialect, input: WebSocketAuthInput, c: SigningContext, secret = SECRET): SignedWebSocketAuth {
  assert.ok(dialect.websocketAuth, `${dialect.exchange} has websocketAuth`);
  const prepared = dialect.websocketAuth(input, c);
  const key = Buffer.from(secret, dialect.secretEncoding);
  const hash = hmacSpec(dialect.algorithm).nodeHash;
  return prepared.finish(prepared.toSign.map((b) => createHmac(hash, key).update(b).digest()));
}

function refuses(f: () => unknown): void {
  assert.throws(f, (e: unknown) => isCustosError(e) && e.code === "INVALID_ARGUMENT");
}

// ---- ccxt pro, offline ----

interface ProStub {
  watch: (url: string, hash: unknown, message: unknown) => Promise<unknown>;
  milliseconds: () => number;
  seconds: () => number;
  options: Record<string, unknown>;
  close(): Promise<unknown>;
}
const opened: ProStub[] = [];
after(async () => {
  for (const ex of opened) await ex.close();
});

/** A ccxt pro exchange whose clock reads `ms` and whose `watch` records the messages instead of sending them. */
function offline(ex: unknown, ms: number): { ex: ProStub; sent: unknown[] } {
  const stub = ex as ProStub;
  const sent: unknown[] = [];
  stub.watch = (_url, _hash, message) => {
    sent.push(message);
    return Promise.resolve(true);
  };
  stub.milliseconds = () => ms;
  stub.seconds = () => Math.floor(ms / 1000);
  opened.push(stub);
  return { ex: stub, sent };
}

describe("bybit websocketAuth (v5 op auth)", () => {
  it("signs GET/realtime + expires in milliseconds, hex", () => {
    const c = ctx();
    const expiresMs = (T_S + 10) * 1000;
    const signed = sign(bybit, {}, c);
    // docs (bybit-exchange.github.io/docs/v5/ws/connect): hmac(api_secret, f"GET/realtime{expires}", sha256).hexdigest(), expires in ms
    const expected = createHmac("sha256", SECRET).update(`GET/realtime${expiresMs}`).digest("hex");
    assert.equal(signed.signature, expected);
    assert.equal(signed.timestamp, String(expiresMs));
    assert.deepEqual(signed.fields, [
      ["api_key", API_KEY],
      ["expires", String(expiresMs)],
      ["signature", expected],
    ]);
    assert.equal(signed.message, `{"op":"auth","args":["${API_KEY}",${expiresMs},"${expected}"]}`);
  });

  it("agrees with ccxt's pro/bybit.js authenticate() (expires = milliseconds() + 10000)", () => {
    const expiresMs = (T_S + 10) * 1000;
    const { ex, sent } = offline(new ccxt.pro.bybit({ apiKey: API_KEY, secret: SECRET }), expiresMs - 10_000);
    void (ex as unknown as { authenticate(url: string): Promise<unknown> }).authenticate("wss://stream.bybit.com/v5/private").catch(() => undefined);
    const ours = JSON.parse(sign(bybit, {}, ctx()).message) as { op: string; args: unknown[] };
    // ccxt sends expires as a string, the docs' example as a number; the signed text is the same.
    assert.deepEqual(sent, [{ op: ours.op, args: ours.args.map(String) }]);
  });

  it("refuses an expiry that is not whole seconds", () => {
    refuses(() => bybit.websocketAuth!({}, ctx({ expires: 1.5 })));
    refuses(() => bybit.websocketAuth!({}, ctx({ expires: 0 })));
  });
});

describe("okx websocketAuth (v5 op login)", () => {
  it("signs timestamp(seconds) + GET + /users/self/verify, base64", () => {
    const signed = sign(okx, {}, ctx());
    // docs (okx.com/docs-v5/en/#overview-websocket-login): Base64(HmacSHA256(timestamp + 'GET' + '/users/self/verify', secretKey)), seconds
    const expected = createHmac("sha256", SECRET).update(`${T_S}GET/users/self/verify`).digest("base64");
    assert.equal(signed.signature, expected);
    assert.equal(signed.timestamp, String(T_S));
    assert.deepEqual(signed.fields, [
      ["apiKey", API_KEY],
      ["passphrase", PASSPHRASE],
      ["timestamp", String(T_S)],
      ["sign", expected],
    ]);
    assert.deepEqual(JSON.parse(signed.message), { op: "login", args: [{ apiKey: API_KEY, passphrase: PASSPHRASE, timestamp: String(T_S), sign: expected }] });
  });

  it("sends byte-for-byte the message ccxt's pro/okx.js authenticate() sends", () => {
    const { ex, sent } = offline(new ccxt.pro.okx({ apiKey: API_KEY, secret: SECRET, password: PASSPHRASE }), T_MS);
    void (ex as unknown as { authenticate(): Promise<unknown> }).authenticate().catch(() => undefined);
    assert.equal(sign(okx, {}, ctx()).message, JSON.stringify(sent[0]));
  });

  it("refuses a key without passphrase", () => {
    refuses(() => okx.websocketAuth!({}, ctx({ passphrase: undefined })));
    refuses(() => okx.websocketAuth!({}, ctx({ passphrase: "" })));
  });
});

describe("bitget websocketAuth (v2 op login)", () => {
  it("signs timestamp(seconds) + GET + /user/verify, base64", () => {
    const signed = sign(bitget, {}, ctx());
    // docs (bitget.com/api-doc/common/websocket-intro, Login); seconds as Bitget's SDKs send it
    const expected = createHmac("sha256", SECRET).update(`${T_S}GET/user/verify`).digest("base64");
    assert.equal(signed.signature, expected);
    assert.equal(signed.timestamp, String(T_S));
    assert.deepEqual(signed.fields, [
      ["apiKey", API_KEY],
      ["passphrase", PASSPHRASE],
      ["timestamp", String(T_S)],
      ["sign", expected],
    ]);
  });

  it("sends the message ccxt's pro/bitget.js authenticate() sends", () => {
    const { ex, sent } = offline(new ccxt.pro.bitget({ apiKey: API_KEY, secret: SECRET, password: PASSPHRASE }), T_MS);
    void (ex as unknown as { authenticate(params: object): Promise<unknown> }).authenticate({}).catch(() => undefined);
    assert.equal(sign(bitget, {}, ctx()).message, JSON.stringify(sent[0]));
  });

  it("refuses a key without passphrase", () => {
    refuses(() => bitget.websocketAuth!({}, ctx({ passphrase: undefined })));
    refuses(() => bitget.websocketAuth!({}, ctx({ passphrase: "" })));
  });
});

describe("deribit websocketAuth (public/auth, client_signature)", () => {
  // docs.deribit.com/articles/authentication, "Client Signature (WebSocket)", Example and sample JSON-RPC request.
  const DOC = { clientId: "AMANDA", secret: "AMANDASECRECT", timestamp: 1576074319000, nonce: "1iqt2wls" };
  const DOC_SIGNATURE = "56590594f97921b09b18f166befe0d1319b198bbcdad7ca73382de2f88fe9aa1";

  it("reproduces the docs' example signature and request (without the optional id)", () => {
    const signed = sign(deribit, {}, ctx({ apiKeyId: DOC.clientId, timestamp: DOC.timestamp, nonce: DOC.nonce }), DOC.secret);
    assert.equal(signed.signature, DOC_SIGNATURE);
    assert.equal(signed.timestamp, "1576074319000");
    const docRequest = {
      jsonrpc: "2.0",
      method: "public/auth",
      params: { grant_type: "client_signature", client_id: "AMANDA", timestamp: 1576074319000, nonce: "1iqt2wls", data: "", signature: DOC_SIGNATURE },
    };
    assert.equal(signed.message, JSON.stringify(docRequest));
    assert.deepEqual(signed.fields, [
      ["grant_type", "client_signature"],
      ["client_id", "AMANDA"],
      ["timestamp", "1576074319000"],
      ["nonce", "1iqt2wls"],
      ["data", ""],
      ["signature", DOC_SIGNATURE],
    ]);
  });

  it("signs Timestamp \\n Nonce \\n Data, recomputed", () => {
    const signed = sign(deribit, {}, ctx());
    assert.equal(signed.signature, createHmac("sha256", SECRET).update(`${T_MS}\nn0nce42\n`).digest("hex"));
  });

  it("agrees with ccxt's pro/deribit.js authenticate() (nonce = timestamp)", async () => {
    const { ex, sent } = offline(new ccxt.pro.deribit({ apiKey: API_KEY, secret: SECRET }), T_MS);
    await (ex as unknown as { authenticate(): Promise<unknown> }).authenticate();
    const theirs = sent[0] as { params: Record<string, unknown> };
    const ours = JSON.parse(sign(deribit, {}, ctx({ nonce: String(T_MS) })).message) as { params: Record<string, unknown> };
    assert.deepEqual(ours.params, theirs.params);
  });

  it("refuses a nonce with whitespace (it could turn the login into a REST StringToSign)", () => {
    refuses(() => deribit.websocketAuth!({}, ctx({ nonce: "x\nGET\n/api/v2/private/withdraw?currency=BTC\n" })));
    refuses(() => deribit.websocketAuth!({}, ctx({ nonce: "" })));
  });
});

describe("bitmex websocketAuth (authKeyExpires)", () => {
  // www.bitmex.com/app/apiKeysUsage, "Full sample calculation" key (the docs give no WebSocket result).
  const KEY = "LAqUlngMIQkIUjXMUreyu3qn";
  const BITMEX_SECRET = "chNOOS4KvNXR_Xq4k4c9qsfoKWvnDecLATCRlcBwyKDYnWgO";

  it("signs GET/realtime + expires(seconds), hex", () => {
    const signed = sign(bitmex, {}, ctx({ apiKeyId: KEY, expires: 1518064236 }), BITMEX_SECRET);
    // www.bitmex.com/app/wsAPI: hex(HMAC_SHA256(secret, 'GET/realtime' + expires)); ccxt has no bitmex pro to compare.
    const expected = createHmac("sha256", BITMEX_SECRET).update("GET/realtime1518064236").digest("hex");
    assert.equal(signed.signature, expected);
    assert.equal(signed.timestamp, "1518064236");
    assert.equal(signed.message, `{"op":"authKeyExpires","args":["${KEY}",1518064236,"${expected}"]}`);
    assert.deepEqual(signed.fields, [
      ["api-key", KEY],
      ["api-expires", "1518064236"],
      ["api-signature", expected],
    ]);
  });

  it("is the REST signature of GET /realtime with no body, as the docs define it", () => {
    const c = ctx({ apiKeyId: KEY, expires: 1518064236 });
    const rest = bitmex.prepare({ method: "GET", path: "/realtime", query: "", body: "" }, c).toSign;
    assert.deepEqual(bitmex.websocketAuth!({}, c).toSign, rest);
  });

  it("refuses an expiry that is not whole seconds", () => {
    refuses(() => bitmex.websocketAuth!({}, ctx({ expires: -1 })));
  });
});

describe("krakenfutures websocketAuth (signed challenge)", () => {
  // docs.kraken.com/api/docs/guides/futures-websockets, "Sign challenge": "expected output from example inputs".
  const DOC_CHALLENGE = "c100b894-1729-464d-ace1-52dbce11db42";
  const DOC_SECRET = "7zxMEF5p/Z8l2p2U7Ghv6x14Af+Fx+92tPgUdVQ748FOIrEoT9bgT+bTRfXc5pz8na+hL/QdrCVG7bh9KpT0eMTm";
  const DOC_SIGNED = "4JEpF3ix66GA2B+ooK128Ift4XQVtc137N9yeg4Kqsn9PI0Kpzbysl9M1IeCEdjg0zl00wkVqcsnG4bmnlMb3A==";

  it("reproduces the docs' signed output", () => {
    const signed = sign(krakenfutures, { challenge: DOC_CHALLENGE }, ctx(), DOC_SECRET);
    assert.equal(signed.signature, DOC_SIGNED);
    assert.deepEqual(signed.fields, [
      ["api_key", API_KEY],
      ["original_challenge", DOC_CHALLENGE],
      ["signed_challenge", DOC_SIGNED],
    ]);
    assert.equal(signed.message, "");
  });

  it("hands the HSM the SHA-256 of the challenge (the docs' step 1), not the text", () => {
    const prepared = krakenfutures.websocketAuth!({ challenge: DOC_CHALLENGE }, ctx());
    assert.deepEqual(prepared.toSign, [createHash("sha256").update(DOC_CHALLENGE).digest()]);
  });

  it("agrees with ccxt's pro/krakenfutures.js handleAuthenticate()", () => {
    const { ex } = offline(new ccxt.pro.krakenfutures({ apiKey: API_KEY, secret: DOC_SECRET }), T_MS);
    const client = { futures: { challenge: { resolve: () => undefined } } };
    (ex as unknown as { handleAuthenticate(client: unknown, message: unknown): void }).handleAuthenticate(client, {
      event: "challenge",
      message: DOC_CHALLENGE,
    });
    assert.equal(ex.options.signedChallenge, DOC_SIGNED);
  });

  it("refuses a missing challenge, and anything but a UUID (a REST postData+Nonce+path would sign a REST call)", () => {
    refuses(() => krakenfutures.websocketAuth!({}, ctx()));
    refuses(() => krakenfutures.websocketAuth!({ challenge: "" }, ctx()));
    refuses(() => krakenfutures.websocketAuth!({ challenge: "amount=1&currency=xbt1415957147987/api/v3/withdrawal" }, ctx()));
  });
});

describe("gate websocketAuth (futures v4, per private subscription)", () => {
  it("signs channel=&event=&time=(seconds), hex HMAC-SHA512", () => {
    const signed = sign(gate, { channel: "futures.orders", event: "subscribe" }, ctx());
    // docs (gate.com/docs/developers/futures/ws/en/#authentication): 'channel=%s&event=%s&time=%d', hmac sha512 hexdigest
    const expected = createHmac("sha512", SECRET).update(`channel=futures.orders&event=subscribe&time=${T_S}`).digest("hex");
    assert.equal(signed.signature, expected);
    assert.equal(signed.timestamp, String(T_S));
    assert.deepEqual(signed.fields, [
      ["method", "api_key"],
      ["KEY", API_KEY],
      ["SIGN", expected],
      ["time", String(T_S)],
    ]);
    assert.equal(signed.message, "");
  });

  it("agrees with ccxt's pro/gate.js subscribePrivate()", async () => {
    const { ex, sent } = offline(new ccxt.pro.gate({ apiKey: API_KEY, secret: SECRET }), T_MS);
    await (
      ex as unknown as { subscribePrivate(url: string, hash: string, payload: unknown, channel: string, params: object): Promise<unknown> }
    ).subscribePrivate("wss://fx-ws.gateio.ws/v4/ws/usdt", "orders", ["BTC_USDT"], "futures.orders", {});
    const theirs = sent[0] as { time: number; auth: Record<string, string> };
    const signed = sign(gate, { channel: "futures.orders", event: "subscribe" }, ctx());
    assert.equal(String(theirs.time), signed.timestamp);
    assert.deepEqual(theirs.auth, Object.fromEntries(signed.fields.filter(([k]) => k !== "time")));
  });

  it("refuses a missing or malformed channel or event", () => {
    refuses(() => gate.websocketAuth!({ event: "subscribe" }, ctx()));
    refuses(() => gate.websocketAuth!({ channel: "futures.orders" }, ctx()));
    refuses(() => gate.websocketAuth!({ channel: "futures.orders&event=x", event: "subscribe" }, ctx()));
    refuses(() => gate.websocketAuth!({ channel: "futures.orders", event: "api" }, ctx()));
  });
});

describe("binance websocketAuth (WebSocket API session.logon, Ed25519 keys only)", () => {
  it("signs apiKey and timestamp sorted by name with Ed25519; the message is the documented session.logon request", () => {
    // binance-spot-api-docs web-socket-api: "Signature payload must be generated by taking all request params
    // except for the signature and sorting them by name in alphabetical order"; session.logon params are
    // apiKey, signature, timestamp. A node:crypto key stands in for the HSM's.
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const c = ctx({ keyAlgorithm: "ed25519" });
    const prepared = binance.websocketAuth!({}, c);
    assert.deepEqual(
      prepared.toSign.map((b) => b.toString("utf8")),
      [`apiKey=${API_KEY}&timestamp=${T_MS}`],
    );
    const signed = prepared.finish(prepared.toSign.map((b) => cryptoSign(null, b, privateKey)));
    assert.ok(cryptoVerify(null, Buffer.from(`apiKey=${API_KEY}&timestamp=${T_MS}`), publicKey, Buffer.from(signed.signature, "base64")));
    assert.deepEqual(JSON.parse(signed.message), {
      id: "n0nce42",
      method: "session.logon",
      params: { apiKey: API_KEY, signature: signed.signature, timestamp: T_MS },
    });
    assert.deepEqual(signed.fields, [
      ["apiKey", API_KEY],
      ["timestamp", String(T_MS)],
      ["signature", signed.signature],
    ]);
  });
  it("refuses an HMAC key (Binance takes none for session.logon) and a bad timestamp", () => {
    assert.throws(
      () => binance.websocketAuth!({}, ctx({ keyAlgorithm: "hmac-sha256" })),
      (e: unknown) => isCustosError(e) && e.code === "PRECONDITION_FAILED",
    );
    assert.throws(
      () => binance.websocketAuth!({}, ctx()),
      (e: unknown) => isCustosError(e) && e.code === "PRECONDITION_FAILED",
    );
    refuses(() => binance.websocketAuth!({}, ctx({ keyAlgorithm: "ed25519", timestamp: 1.5 })));
  });
});

describe("binance WebSocket API requests (signed per request, any key)", () => {
  // binance-spot-api-docs web-socket-api "SIGNED request example (HMAC)": order.place with the docs' key and
  // secret, recvWindow 100, timestamp 1645423376532 → signature cc15477742bd…d08a.
  const DOC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
  const DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
  const DOC_PARAMS: Array<[string, string]> = [
    ["symbol", "BTCUSDT"],
    ["side", "SELL"],
    ["type", "LIMIT"],
    ["timeInForce", "GTC"],
    ["quantity", "0.01000000"],
    ["price", "52000.00"],
    ["newOrderRespType", "ACK"],
    ["recvWindow", "100"],
  ];
  const docCtx = ctx({ apiKeyId: DOC_KEY, timestamp: 1645423376532, nonce: "4885f793-e5ad-4c3b-8f6c-55d891472b71", keyAlgorithm: "hmac-sha256" });

  it("reproduces the documented order.place signature and request", () => {
    const input = { request: { method: "order.place", params: DOC_PARAMS } };
    assert.deepEqual(
      binance.websocketAuth!(input, docCtx).toSign.map((b) => b.toString("utf8")),
      [
        `apiKey=${DOC_KEY}&newOrderRespType=ACK&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL&symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT`,
      ],
    );
    const signed = sign(binance, input, docCtx, DOC_SECRET);
    assert.equal(signed.signature, "cc15477742bd704c29492d96c7ead9414dfd8e0ec4a00f947bb5bb454ddbd08a");
    // The docs' request: INT parameters as JSON integers, DECIMAL ones as strings.
    assert.deepEqual(JSON.parse(signed.message), {
      id: "4885f793-e5ad-4c3b-8f6c-55d891472b71",
      method: "order.place",
      params: {
        symbol: "BTCUSDT",
        side: "SELL",
        type: "LIMIT",
        timeInForce: "GTC",
        quantity: "0.01000000",
        price: "52000.00",
        newOrderRespType: "ACK",
        recvWindow: 100,
        timestamp: 1645423376532,
        apiKey: DOC_KEY,
        signature: "cc15477742bd704c29492d96c7ead9414dfd8e0ec4a00f947bb5bb454ddbd08a",
      },
    });
  });

  it("signs with an Ed25519 key too (base64, unencoded in JSON)", () => {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const c = { ...docCtx, keyAlgorithm: "ed25519" as const };
    const prepared = binance.websocketAuth!({ request: { method: "account.status", params: [] } }, c);
    const signed = prepared.finish(prepared.toSign.map((b) => cryptoSign(null, b, privateKey)));
    assert.ok(cryptoVerify(null, Buffer.from(`apiKey=${DOC_KEY}&timestamp=1645423376532`), publicKey, Buffer.from(signed.signature, "base64")));
  });

  it("classifies methods for the policy: orders with their sizes, account reads, unknown methods", () => {
    assert.deepEqual(binance.websocketRequestFacts!({ method: "order.place", params: DOC_PARAMS }), {
      endpointClass: "trade",
      symbols: ["BTCUSDT"],
      orders: [{ symbol: "BTCUSDT", quantity: 0.01 }],
    });
    assert.equal(binance.websocketRequestFacts!({ method: "v2/account.balance", params: [] }).endpointClass, "account");
    assert.equal(binance.websocketRequestFacts!({ method: "order.status", params: [["symbol", "BTCUSDT"]] }).endpointClass, "read");
    assert.equal(binance.websocketRequestFacts!({ method: "some.future.method", params: [] }).endpointClass, "unknown");
    assert.deepEqual(
      binance.websocketRequestFacts!({
        method: "order.place",
        params: [
          ["symbol", "BTCUSDT"],
          ["quantity", "lots"],
        ],
      }).orders,
      [{ symbol: "BTCUSDT", quantity: Number.POSITIVE_INFINITY }],
    );
  });

  it("refuses what custos owns, duplicates, values that would change the payload, and a large recvWindow", () => {
    const req = (params: Array<[string, string]>) => binance.websocketAuth!({ request: { method: "order.place", params } }, docCtx);
    refuses(() => req([["timestamp", "1"]]));
    refuses(() => req([["apiKey", "other"]]));
    refuses(() => req([["signature", "x"]]));
    refuses(() =>
      req([
        ["symbol", "A"],
        ["symbol", "B"],
      ]),
    );
    refuses(() => req([["symbol", "BTCUSDT&quantity=100"]]));
    refuses(() => req([["recvWindow", "60001"]]));
    refuses(() => binance.websocketAuth!({ request: { method: "order.place\n", params: [] } }, docCtx));
  });
});

describe("exchanges without an HMAC WebSocket login", () => {
  it("kucoinfutures: the private socket uses a bullet-private token from a signed REST call", () => {
    assert.equal(kucoinfutures.websocketAuth, undefined);
  });
});
