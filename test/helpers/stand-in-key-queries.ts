/**
 * Stand-ins for the API-key queries custos's permission check sends (src/exchange-permissions), each
 * checking the request as its exchange documents and answering the documented shape, with the HTTP(S)
 * side of stand-in-exchange.ts.
 *
 * Deribit (docs.deribit.com/api-reference/authentication/public-auth): GET /api/v2/public/auth with
 * grant_type=client_signature, client_id, timestamp (ms), nonce, data and signature = hex
 * HMAC-SHA256(client secret, timestamp + "\n" + nonce + "\n" + data); answers the scope the key grants
 * (`scopes` per client id). Refused (HTTP 400): {"jsonrpc":"2.0","error":{"code":13004,"message":"invalid_credentials"}}.
 *
 * KuCoin (www.kucoin.com/docs-new/authentication): KC-API-KEY, KC-API-TIMESTAMP (ms, within 5 s),
 * KC-API-SIGN = base64 HMAC-SHA256(secret, timestamp + METHOD + endpoint + body), KC-API-PASSPHRASE =
 * base64 HMAC-SHA256(secret, passphrase) for key versions 2 and 3 (KC-API-KEY-VERSION). Refused (HTTP
 * 401): 400003 key not exists, 400004 passphrase error, 400005 signature error, 400002 timestamp.
 * Serves GET /api/v1/user/api-key ("Get Apikey Info"; `apiKeyInfo` per key).
 *
 * Bitget v2 (www.bitget.com/api-doc/common/signature): ACCESS-KEY, ACCESS-PASSPHRASE (in clear),
 * ACCESS-TIMESTAMP (ms, within 30 s), ACCESS-SIGN = base64 HMAC-SHA256(secret, timestamp + METHOD +
 * requestPath [+ "?" + query] + body). Refused (HTTP 400): 40037 key does not exist, 40012
 * apikey/password incorrect, 40008 timestamp expired, 40009 sign error. Serves GET
 * /api/v2/spot/account/info (`accountInfo` per key) and GET /api/v2/mix/account/accounts.
 *
 * Gate API v4 (www.gate.com/docs/developers/apiv4/en/#api-signature-string-generation): KEY, Timestamp
 * (seconds, within 60 s), SIGN = hex HMAC-SHA512(secret, METHOD + "\n" + path + "\n" + query + "\n" +
 * hex(SHA512(body)) + "\n" + Timestamp). Refused (HTTP 401): {"label":"INVALID_KEY" | "INVALID_SIGNATURE" |
 * "REQUEST_EXPIRED","message":…}. Serves GET /api/v4/account/detail (`ipWhitelist` per key).
 *
 * BitMEX (www.bitmex.com/app/apiKeysUsage): api-key, api-expires (seconds, in the future), api-signature
 * = hex HMAC-SHA256(secret, verb + path with query + expires + body). Refused (HTTP 401):
 * {"error":{"message":…,"name":"HTTPError"}}. Serves GET /api/v1/apiKey: every key of the account
 * (`keys`), as the /apiKey field definitions document them.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { ExchangeRefusal, type ReceivedRequest, StandInExchange } from "./stand-in-exchange.js";

function base64MacMatches(given: string, expected: Buffer): boolean {
  const g = Buffer.from(given, "base64");
  return g.length === expected.length && timingSafeEqual(g, expected);
}

/** Deribit's public/auth with client_signature, checked as documented. */
export class StandInDeribit extends StandInExchange {
  /** Client id → the scope its login grants (absent: trading, wallet read-only). */
  readonly scopes = new Map<string, string>();

  protected errorBody(e: ExchangeRefusal): unknown {
    return { jsonrpc: "2.0", error: { code: e.code, message: e.message }, usIn: 0, usOut: 0, usDiff: 0, testnet: true };
  }

  protected serve(r: ReceivedRequest, path: string, query: string): unknown {
    if (`${r.method} ${path}` !== "GET /api/v2/public/auth") throw new ExchangeRefusal(404, 11050, "bad_request");
    const q = new URLSearchParams(query);
    const [grant, clientId, timestamp, nonce, data, signature] = ["grant_type", "client_id", "timestamp", "nonce", "data", "signature"].map(
      (k) => q.get(k) ?? "",
    );
    if (grant !== "client_signature") throw new ExchangeRefusal(400, 11050, "bad_request");
    const secret = this.accounts.get(clientId!);
    if (secret === undefined || !/^\d+$/.test(timestamp!)) throw new ExchangeRefusal(400, 13004, "invalid_credentials");
    const expected = createHmac("sha256", secret).update(`${timestamp}\n${nonce}\n${data}`).digest("hex");
    if (signature!.length !== expected.length || !timingSafeEqual(Buffer.from(signature!), Buffer.from(expected))) {
      throw new ExchangeRefusal(400, 13004, "invalid_credentials");
    }
    const scope = this.scopes.get(clientId!) ?? "connection mainaccount account:read trade:read_write wallet:read";
    return {
      jsonrpc: "2.0",
      result: { access_token: "stand-in-access-token", expires_in: 31536000, refresh_token: "stand-in-refresh-token", scope, token_type: "bearer" },
      usIn: 0,
      usOut: 0,
      usDiff: 0,
      testnet: true,
    };
  }
}

/** KuCoin's API-key query, checked as documented. */
export class StandInKucoin extends StandInExchange {
  /** API key → changes to its api-key answer (absent: Futures trading, bound to two IPs). */
  readonly apiKeyInfo = new Map<string, Record<string, unknown>>();

  /** @param passphrases API key → the passphrase chosen when the key was created. */
  constructor(
    accounts: ReadonlyMap<string, string>,
    private readonly passphrases: ReadonlyMap<string, string>,
  ) {
    super(accounts);
  }

  protected errorBody(e: ExchangeRefusal): unknown {
    return { code: String(e.code), msg: e.message };
  }

  protected serve(r: ReceivedRequest, path: string): unknown {
    if (`${r.method} ${path}` !== "GET /api/v1/user/api-key") throw new ExchangeRefusal(404, 404000, "Url Not Found");
    const h = (name: string) => r.headers[name.toLowerCase()] ?? "";
    const apiKey = h("KC-API-KEY");
    const secret = this.accounts.get(apiKey);
    if (secret === undefined) throw new ExchangeRefusal(401, 400003, "KC-API-KEY not exists");
    if (h("KC-API-KEY-VERSION") !== "2" && h("KC-API-KEY-VERSION") !== "3") throw new ExchangeRefusal(401, 400001, "KC-API-KEY-VERSION");
    const passphrase = createHmac("sha256", secret).update(this.passphrases.get(apiKey)!).digest();
    if (!base64MacMatches(h("KC-API-PASSPHRASE"), passphrase)) throw new ExchangeRefusal(401, 400004, "KC-API-PASSPHRASE error");
    const timestamp = h("KC-API-TIMESTAMP");
    const sign = createHmac("sha256", secret)
      .update(timestamp + r.method + r.target + r.body)
      .digest();
    if (!base64MacMatches(h("KC-API-SIGN"), sign)) throw new ExchangeRefusal(401, 400005, "Signature error");
    if (!/^\d+$/.test(timestamp) || Math.abs(this.now() - Number(timestamp)) > 5_000) throw new ExchangeRefusal(401, 400002, "KC-API-TIMESTAMP Invalid");
    const data = {
      remark: "custos",
      apiKey,
      apiVersion: Number(h("KC-API-KEY-VERSION")),
      permission: "General,Futures",
      ipWhitelist: "203.**.7,198.**.2",
      createdAt: 1728443843000,
      uid: 165111215,
      isMaster: true,
      ...this.apiKeyInfo.get(apiKey),
    };
    return { code: "200000", data };
  }
}

/** Bitget v2, checked as documented. */
export class StandInBitget extends StandInExchange {
  /** API key → its authorities and ips in the account info answer (absent: futures trading, one IP). */
  readonly accountInfo = new Map<string, { authorities: string[]; ips: string }>();

  /** @param passphrases API key → the passphrase chosen when the key was created. */
  constructor(
    accounts: ReadonlyMap<string, string>,
    private readonly passphrases: ReadonlyMap<string, string>,
  ) {
    super(accounts);
  }

  protected errorBody(e: ExchangeRefusal): unknown {
    return { code: String(e.code), msg: e.message, requestTime: this.now(), data: null };
  }

  protected serve(r: ReceivedRequest, path: string): unknown {
    const route = `${r.method} ${path}`;
    if (route !== "GET /api/v2/spot/account/info" && route !== "GET /api/v2/mix/account/accounts")
      throw new ExchangeRefusal(404, 40404, "Request URL NOT FOUND");
    const h = (name: string) => r.headers[name.toLowerCase()] ?? "";
    const apiKey = h("ACCESS-KEY");
    const secret = this.accounts.get(apiKey);
    if (secret === undefined) throw new ExchangeRefusal(400, 40037, "Apikey does not exist");
    if (h("ACCESS-PASSPHRASE") !== this.passphrases.get(apiKey)) throw new ExchangeRefusal(400, 40012, "apikey/password is incorrect");
    const timestamp = h("ACCESS-TIMESTAMP");
    if (!/^\d+$/.test(timestamp) || Math.abs(this.now() - Number(timestamp)) > 30_000) throw new ExchangeRefusal(400, 40008, "Request timestamp expired");
    const sign = createHmac("sha256", secret)
      .update(timestamp + r.method + r.target + r.body)
      .digest();
    if (!base64MacMatches(h("ACCESS-SIGN"), sign)) throw new ExchangeRefusal(400, 40009, "sign signature error");
    const ok = (data: unknown) => ({ code: "00000", msg: "success", requestTime: this.now(), data });
    if (route === "GET /api/v2/mix/account/accounts") return ok([{ marginCoin: "USDT", available: "1000", accountEquity: "1000" }]);
    const { authorities, ips } = this.accountInfo.get(apiKey) ?? { authorities: ["coow", "cpow", "coor", "cpor"], ips: "203.0.113.7" };
    return ok({
      userId: "1234567890",
      inviterId: "0",
      ips,
      authorities,
      parentId: 1234567890,
      traderType: "not_trader",
      channelCode: "",
      channel: "",
      regisTime: "1246566789345",
    });
  }
}

/** Equal hex MACs, compared in constant time. */
function hexMacMatches(given: string, expected: Buffer): boolean {
  return /^[0-9a-f]+$/.test(given) && given.length === expected.length * 2 && timingSafeEqual(Buffer.from(given, "hex"), expected);
}

/** Gate API v4's account detail, checked as documented. */
export class StandInGate extends StandInExchange {
  /** API key → its IP whitelist (absent: one address). */
  readonly ipWhitelist = new Map<string, string[]>();

  protected errorBody(e: ExchangeRefusal): unknown {
    return { label: e.message.split(":")[0], message: e.message };
  }

  protected serve(r: ReceivedRequest, path: string, query: string): unknown {
    if (`${r.method} ${path}` !== "GET /api/v4/account/detail") throw new ExchangeRefusal(404, 0, "NOT_FOUND: no such endpoint");
    const h = (name: string) => r.headers[name.toLowerCase()] ?? "";
    const secret = this.accounts.get(h("KEY"));
    if (secret === undefined) throw new ExchangeRefusal(401, 0, "INVALID_KEY: Invalid key provided");
    const timestamp = h("Timestamp");
    const bodyHash = createHash("sha512").update(r.body).digest("hex");
    const expected = createHmac("sha512", secret).update([r.method, path, query, bodyHash, timestamp].join("\n")).digest();
    if (!hexMacMatches(h("SIGN"), expected)) throw new ExchangeRefusal(401, 0, "INVALID_SIGNATURE: Signature mismatch");
    if (!/^\d+$/.test(timestamp) || Math.abs(this.now() / 1000 - Number(timestamp)) > 60)
      throw new ExchangeRefusal(401, 0, "REQUEST_EXPIRED: Request timestamp expired");
    const ips = this.ipWhitelist.get(h("KEY")) ?? ["203.0.113.7"];
    return { user_id: 1667201533, ip_whitelist: ips, currency_pairs: [], key: { mode: 1 }, tier: 2, copy_trading_role: 0 };
  }
}

/** BitMEX's API-key list, checked as documented. */
export class StandInBitmex extends StandInExchange {
  /** The account's keys as /apiKey lists them (`id` must match an account's API key to sign with it). */
  keys: Array<Record<string, unknown>> = [];

  protected errorBody(e: ExchangeRefusal): unknown {
    return { error: { message: e.message, name: "HTTPError" } };
  }

  protected serve(r: ReceivedRequest, path: string): unknown {
    if (`${r.method} ${path}` !== "GET /api/v1/apiKey") throw new ExchangeRefusal(404, 0, "Not Found");
    const h = (name: string) => r.headers[name.toLowerCase()] ?? "";
    const secret = this.accounts.get(h("api-key"));
    if (secret === undefined) throw new ExchangeRefusal(401, 0, "Invalid API Key.");
    const expires = h("api-expires");
    const expected = createHmac("sha256", secret).update(`${r.method}${r.target}${expires}${r.body}`).digest();
    if (!hexMacMatches(h("api-signature"), expected)) throw new ExchangeRefusal(401, 0, "Signature not valid.");
    if (!/^\d+$/.test(expires) || Number(expires) < this.now() / 1000)
      throw new ExchangeRefusal(401, 0, "This request has expired - `expires` is in the past.");
    return this.keys;
  }
}
