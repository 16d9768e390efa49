import { type GatewayExchange, GatewayRequestError, recvWindow, withoutParams } from "./gateway-exchange.js";

/**
 * Binance (spot, USDⓈ-M, COIN-M): the API key travels in X-MBX-APIKEY; `timestamp`,
 * `recvWindow` and `signature` are form parameters of the query or the body. The gateway drops
 * all three (custos sets its own timestamp and signature and takes the receive window as
 * recvWindowMs) and ignores the header (custos sets the key's own API key).
 *
 * Refusals: ccxt's binance reads `msg` before `code`; "You are not authorized to execute this
 * request." (Binance's -1002 UNAUTHORIZED) is its PermissionDenied, whatever the host. -1100
 * (illegal characters in a parameter) is its BadRequest.
 */
const OWNED = new Set(["timestamp", "recvWindow", "signature"]);

export const binanceGateway: GatewayExchange = {
  exchange: "binance",
  carriesCredentials(req) {
    if (req.header("x-mbx-apikey") !== undefined) return true;
    const names = (form: string) => form.split("&").map((p) => p.split("=", 1)[0]!);
    return [...names(req.query), ...names(req.body)].some((n) => OWNED.has(n));
  },
  strip(req) {
    const q = withoutParams(req.query, OWNED);
    const b = withoutParams(req.body, OWNED);
    const windows = [q.removed.get("recvWindow"), b.removed.get("recvWindow")].filter((w) => w !== undefined);
    if (windows.length > 1) throw new GatewayRequestError("recvWindow appears in both the query and the body");
    const ms = recvWindow(windows[0]);
    return { query: q.form, body: b.form, ...(ms !== undefined ? { recvWindowMs: ms } : {}) };
  },
  refusal(kind, detail) {
    const custos = { reason: detail.reason, ...(detail.rule ? { rule: detail.rule } : {}) };
    if (kind === "denied") return { status: 403, body: { code: -1002, msg: "You are not authorized to execute this request.", custos } };
    return { status: 400, body: { code: -1100, msg: `custos refused the request: ${detail.message}`, custos } };
  },
};
