/**
 * The stand-ins of stand-in-exchange.ts with everything ccxt's loadMarkets, fetchBalance,
 * createOrder and cancelOrder need on Binance USDⓈ-M, Bybit v5 and OKX v5: their public market
 * data (answers from test/fixtures/ccxt-unified-responses.ts), the private reads ccxt makes on
 * the way (currencies, account mode), and order cancellation. Every private route is checked
 * exactly as the exchange documents (the parent's `verify`) before it is answered.
 */
import { RESPONSES } from "../fixtures/ccxt-unified-responses.js";
import { type Canned, CannedError, ExchangeRefusal, type ReceivedRequest, StandInBinance, StandInBybit } from "./stand-in-exchange.js";
import { StandInOkx } from "./stand-in-okx.js";

function answer(canned: Canned, r: ReceivedRequest): unknown {
  if (canned instanceof CannedError) throw new ExchangeRefusal(canned.status, -1, "canned error");
  return typeof canned === "function" ? (canned as (url: URL) => unknown)(new URL(r.target, "http://stand-in")) : canned;
}

/** Binance USDⓈ-M as ccxt's binanceusdm uses it. */
export class CcxtBinanceUsdm extends StandInBinance {
  readonly cancelled: string[] = [];

  protected override serve(r: ReceivedRequest, path: string, query: string): unknown {
    const route = `${r.method} ${path}`;
    if (route === "GET /fapi/v1/exchangeInfo") return answer(RESPONSES.binanceusdm![route], r);
    // Currencies and margin pairs: ccxt's binance family reads them in loadMarkets when it has an API key.
    if (route === "GET /sapi/v1/capital/config/getall" || route === "GET /sapi/v1/margin/allPairs") {
      this.verify(r, query, r.body);
      return [];
    }
    if (route === "DELETE /fapi/v1/order") {
      const p = this.verify(r, query, r.body);
      const order = this.accepted.find((o) => String(o.orderId) === p.get("orderId"));
      if (!order) throw new ExchangeRefusal(400, -2011, "Unknown order sent.");
      this.cancelled.push(String(order.orderId));
      return {
        orderId: order.orderId,
        symbol: order.symbol,
        status: "CANCELED",
        side: order.side,
        type: order.type,
        origQty: order.quantity,
        executedQty: "0",
      };
    }
    return super.serve(r, path, query);
  }
}

/** Bybit v5 as ccxt's bybit uses it (a unified trading account). */
export class CcxtBybit extends StandInBybit {
  readonly cancelled: string[] = [];

  protected override serve(r: ReceivedRequest, path: string, query: string): unknown {
    const route = `${r.method} ${path}`;
    if (route === "GET /v5/market/instruments-info") return answer(RESPONSES.bybit![route], r);
    const ok = (result: unknown) => ({ retCode: 0, retMsg: "OK", result, retExtInfo: {}, time: this.now() });
    switch (route) {
      case "GET /v5/asset/coin/query-info":
        this.verify(r, query);
        return ok({ rows: [] });
      case "GET /v5/user/query-api":
        this.verify(r, query);
        return ok({ id: "1", readOnly: 0, unified: 0, uta: 1, permissions: {}, ips: ["*"] });
      case "GET /v5/account/info":
        this.verify(r, query);
        return ok({ unifiedMarginStatus: 6, marginMode: "REGULAR_MARGIN" });
      case "POST /v5/order/cancel": {
        this.verify(r, query);
        const { orderId } = JSON.parse(r.body) as { orderId?: string };
        if (!this.accepted.some((o) => String(o.orderId) === orderId)) throw new ExchangeRefusal(200, 110001, "Order does not exist.");
        this.cancelled.push(orderId!);
        return ok({ orderId, orderLinkId: "" });
      }
      default:
        return super.serve(r, path, query);
    }
  }
}

/** OKX v5 as ccxt's okx uses it. */
export class CcxtOkx extends StandInOkx {
  readonly cancelled: string[] = [];

  protected override serve(r: ReceivedRequest, path: string): unknown {
    const route = `${r.method} ${path}`;
    if (route === "GET /api/v5/public/instruments") return answer(RESPONSES.okx![route], r);
    if (route === "GET /api/v5/asset/currencies") {
      this.verify(r);
      return { code: "0", msg: "", data: [] };
    }
    // ccxt places a single order through the batch endpoint (its lower rate-limit cost).
    if (route === "POST /api/v5/trade/batch-orders") {
      this.verify(r);
      const orders = JSON.parse(r.body) as Array<Record<string, string>>;
      const placed = orders.map((o) =>
        this.order({ symbol: o.instId ?? "", side: o.side ?? "", type: o.ordType ?? "", quantity: o.sz ?? "", ...(o.px ? { price: o.px } : {}) }),
      );
      return { code: "0", msg: "", data: placed.map((o) => ({ ordId: String(o.orderId), clOrdId: "", tag: "", sCode: "0", sMsg: "Order placed" })) };
    }
    if (route === "POST /api/v5/trade/cancel-order") {
      this.verify(r);
      const { ordId } = JSON.parse(r.body) as { ordId?: string };
      if (!this.accepted.some((o) => String(o.orderId) === ordId))
        throw new ExchangeRefusal(200, 51400, "Order cancellation failed as the order does not exist");
      this.cancelled.push(ordId!);
      return { code: "0", msg: "", data: [{ ordId, clOrdId: "", sCode: "0", sMsg: "" }] };
    }
    return super.serve(r, path);
  }
}
