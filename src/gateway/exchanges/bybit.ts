import { type GatewayExchange, recvWindow } from "./gateway-exchange.js";
import { type GatewayWebSocketLogin, jsonObject } from "./websocket-login.js";

/**
 * Bybit v5: credentials are the X-BAPI-* headers (API key, timestamp, receive window, sign);
 * the query and body are kept as sent, and X-BAPI-RECV-WINDOW becomes recvWindowMs. custos sets
 * every X-BAPI header itself.
 *
 * Refusals: retCode 10005 ("permission denied for current apikey") is ccxt's PermissionDenied,
 * 10001 (parameter error) its BadRequest. Bybit itself answers these with HTTP 200; the gateway
 * uses 403/400 so that clients reading only the status see a refusal too (ccxt reads retCode first).
 */
const CREDENTIAL_HEADERS = ["x-bapi-api-key", "x-bapi-sign", "x-bapi-timestamp"];

/**
 * The v5 private stream's login is `{"op":"auth","args":[apiKey, expires, signature]}` with an
 * optional `req_id`; Bybit answers a failed one `{"success":false,"ret_msg":…,"op":"auth"}`, which
 * ccxt raises as AuthenticationError.
 */
const bybitWebSocketLogin: GatewayWebSocketLogin = {
  login(frame) {
    const msg = jsonObject(frame);
    if (msg?.op !== "auth") return undefined;
    const id = msg.req_id;
    return typeof id === "string" || typeof id === "number" ? { requestId: id } : {};
  },
  signedFrame(bot, custosMessage) {
    const signed = JSON.parse(custosMessage) as Record<string, unknown>;
    return JSON.stringify(bot.requestId !== undefined ? { req_id: bot.requestId, ...signed } : signed);
  },
  refusalFrame(bot, detail) {
    return JSON.stringify({
      success: false,
      ret_msg: `custos refused the login: ${detail.reason}${detail.rule ? ` (${detail.rule})` : ""}`,
      op: "auth",
      ...(bot.requestId !== undefined ? { req_id: bot.requestId } : {}),
      request: { op: "auth", args: null },
    });
  },
};

export const bybitGateway: GatewayExchange = {
  exchange: "bybit",
  carriesCredentials(req) {
    return CREDENTIAL_HEADERS.some((h) => req.header(h) !== undefined);
  },
  strip(req) {
    const ms = recvWindow(req.header("x-bapi-recv-window"));
    return { query: req.query, body: req.body, ...(ms !== undefined ? { recvWindowMs: ms } : {}) };
  },
  refusal(kind, detail) {
    const custos = { reason: detail.reason, ...(detail.rule ? { rule: detail.rule } : {}) };
    const [status, retCode] = kind === "denied" ? [403, 10005] : [400, 10001];
    return { status, body: { retCode, retMsg: `custos refused the request: ${detail.message}`, result: {}, retExtInfo: { custos }, time: Date.now() } };
  },
  websocket: bybitWebSocketLogin,
};
