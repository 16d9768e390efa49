import type { GatewayExchange } from "./gateway-exchange.js";
import { type GatewayWebSocketLogin, passphraseLogin } from "./websocket-login.js";

/**
 * OKX v5: credentials are the OK-ACCESS-KEY, -SIGN, -TIMESTAMP and -PASSPHRASE headers. The
 * passphrase is not part of the signature and OKX wants it in clear, so the gateway passes the
 * bot's OK-ACCESS-PASSPHRASE on to custos (never logged); query and body are kept as sent.
 *
 * Refusals: code "50027" (the account is restricted from trading) is ccxt's PermissionDenied,
 * "50014" (a parameter is missing or wrong) its BadRequest.
 */
const CREDENTIAL_HEADERS = ["ok-access-key", "ok-access-sign", "ok-access-timestamp", "ok-access-passphrase"];

/**
 * The private stream's login is `{"op":"login","args":[{apiKey, passphrase, timestamp, sign}]}`:
 * the gateway keeps only the passphrase (OKX wants it in clear; custos signs with the key's
 * secret and its own timestamp). OKX answers a failed login `{"event":"error","code":"60009"}`
 * ("Login failed."), which ccxt raises as AuthenticationError.
 */
const okxWebSocketLogin: GatewayWebSocketLogin = {
  login: passphraseLogin,
  signedFrame(_bot, custosMessage) {
    return custosMessage;
  },
  refusalFrame(_bot, detail) {
    return JSON.stringify({
      event: "error",
      code: "60009",
      msg: `Login failed: custos refused the login: ${detail.reason}${detail.rule ? ` (${detail.rule})` : ""}`,
      connId: "",
    });
  },
};

export const okxGateway: GatewayExchange = {
  exchange: "okx",
  carriesCredentials(req) {
    return CREDENTIAL_HEADERS.some((h) => req.header(h) !== undefined);
  },
  strip(req) {
    const passphrase = req.header("ok-access-passphrase");
    return { query: req.query, body: req.body, ...(passphrase ? { passphrase } : {}) };
  },
  refusal(kind, detail) {
    const custos = { reason: detail.reason, ...(detail.rule ? { rule: detail.rule } : {}) };
    const [status, code] = kind === "denied" ? [403, "50027"] : [400, "50014"];
    return { status, body: { code, msg: `custos refused the request: ${detail.message}`, data: [], custos } };
  },
  websocket: okxWebSocketLogin,
};
