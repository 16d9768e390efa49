/**
 * OKX v5 (www.okx.com/docs-v5/en/#overview-rest-authentication): headers OK-ACCESS-KEY,
 * OK-ACCESS-PASSPHRASE (the passphrase chosen with the key), OK-ACCESS-TIMESTAMP (ISO 8601 UTC
 * with milliseconds, e.g. 2020-12-08T09:08:57.715Z) and OK-ACCESS-SIGN = base64 HMAC-SHA256(secret,
 * timestamp + METHOD + requestPath + body), requestPath including "?query" for GET. Refused (HTTP
 * 401, code as a string): 50111 invalid key, 50105 passphrase incorrect, 50112 invalid timestamp,
 * 50102 timestamp more than 30 s away, 50113 invalid sign.
 * Serves POST /api/v5/trade/order, GET /api/v5/account/balance and GET /api/v5/account/config (the
 * calling key's `perm` and `ip` among the account's settings, `accountConfig` per key, shaped as
 * www.okx.com/docs-v5/en/#trading-account-rest-api-get-account-configuration documents).
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { ExchangeRefusal, type ReceivedRequest, StandInExchange } from "./stand-in-exchange.js";

const OKX_ROUTES = new Set(["POST /api/v5/trade/order", "GET /api/v5/account/balance", "GET /api/v5/account/config"]);

/** OKX v5, checked as documented (see the file comment), with the parent's HTTP(S) side. */
export class StandInOkx extends StandInExchange {
  /** API key → its perm and ip in the account config answer (absent: trade only, bound to 203.0.113.7). */
  readonly accountConfig = new Map<string, { perm: string; ip: string }>();

  /** @param passphrases API key → the passphrase chosen when the key was created. */
  constructor(
    accounts: ReadonlyMap<string, string>,
    private readonly passphrases: ReadonlyMap<string, string>,
  ) {
    super(accounts);
  }

  protected errorBody(e: ExchangeRefusal): unknown {
    return { code: String(e.code), msg: e.message, data: [] };
  }

  protected serve(r: ReceivedRequest, path: string): unknown {
    const route = `${r.method} ${path}`;
    if (!OKX_ROUTES.has(route)) throw new ExchangeRefusal(404, 50000, "Unknown endpoint.");
    this.verify(r);
    if (route === "GET /api/v5/account/config") {
      const { perm, ip } = this.accountConfig.get(r.headers["ok-access-key"]!) ?? { perm: "read_only,trade", ip: "203.0.113.7" };
      const account = {
        uid: "44705892343619584",
        mainUid: "44705892343619584",
        acctLv: "2",
        posMode: "net_mode",
        autoLoan: false,
        level: "Lv1",
        label: "custos",
        perm,
        ip,
      };
      return { code: "0", msg: "", data: [account] };
    }
    if (route === "GET /api/v5/account/balance") {
      return {
        code: "0",
        msg: "",
        data: [{ totalEq: "1000", uTime: String(this.now()), details: [{ ccy: "USDT", eq: "1000", cashBal: "1000", availBal: "1000" }] }],
      };
    }
    const o = JSON.parse(r.body) as Record<string, string>;
    const order = this.order({
      symbol: o.instId ?? "",
      side: o.side ?? "",
      type: o.ordType ?? "",
      quantity: o.sz ?? "",
      ...(o.px ? { price: o.px } : {}),
      ...(o.clOrdId ? { clientOrderId: o.clOrdId } : {}),
    });
    return { code: "0", msg: "", data: [{ ordId: String(order.orderId), clOrdId: order.clientOrderId ?? "", tag: "", sCode: "0", sMsg: "Order placed" }] };
  }

  /** OKX's REST authentication: key, passphrase, timestamp within 30 s, base64 HMAC-SHA256 of timestamp + METHOD + requestPath + body. */
  protected verify(r: ReceivedRequest): void {
    const h = (name: string) => r.headers[name.toLowerCase()] ?? "";
    const apiKey = h("OK-ACCESS-KEY");
    const secret = this.accounts.get(apiKey);
    if (secret === undefined) throw new ExchangeRefusal(401, 50111, "Invalid OK-ACCESS-KEY");
    if (h("OK-ACCESS-PASSPHRASE") !== this.passphrases.get(apiKey)) throw new ExchangeRefusal(401, 50105, "Request header OK-ACCESS-PASSPHRASE incorrect");
    const timestamp = h("OK-ACCESS-TIMESTAMP");
    const ms = Date.parse(timestamp);
    if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(timestamp) || !Number.isFinite(ms))
      throw new ExchangeRefusal(401, 50112, "Invalid OK-ACCESS-TIMESTAMP");
    if (Math.abs(this.now() - ms) > 30_000) throw new ExchangeRefusal(401, 50102, "Timestamp request expired");
    const given = Buffer.from(h("OK-ACCESS-SIGN"), "base64");
    const expected = createHmac("sha256", secret)
      .update(timestamp + r.method + r.target + r.body)
      .digest();
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new ExchangeRefusal(401, 50113, "Invalid Sign");
  }
}
