import type { GatewayExchange } from "./gateway-exchange.js";
import { type GatewayWebSocketLogin, passphraseLogin } from "./websocket-login.js";

/**
 * Bitget v2: credentials are the ACCESS-KEY, -SIGN, -TIMESTAMP and -PASSPHRASE headers. As for
 * OKX, the passphrase is not part of the signature and Bitget wants it in clear, so the gateway
 * passes the bot's ACCESS-PASSPHRASE on to custos (never logged); query and body are kept as sent.
 *
 * Refusals: code "40014" (incorrect permissions) is ccxt's PermissionDenied, "40017" (parameter
 * verification failed) its BadRequest.
 */
const CREDENTIAL_HEADERS = ["access-key", "access-sign", "access-timestamp", "access-passphrase"];

/**
 * The v2 private stream's login is `{"op":"login","args":[{apiKey, passphrase, timestamp, sign}]}`
 * (OKX's layout, signed over "/user/verify"): the gateway keeps only the passphrase. Bitget answers
 * a failed login `{"event":"error","code":30005}`, which ccxt raises as AuthenticationError.
 */
const bitgetWebSocketLogin: GatewayWebSocketLogin = {
  login: passphraseLogin,
  signedFrame(_bot, custosMessage) {
    return custosMessage;
  },
  refusalFrame(_bot, detail) {
    return JSON.stringify({
      event: "error",
      code: 30005,
      msg: `login failed: custos refused the login: ${detail.reason}${detail.rule ? ` (${detail.rule})` : ""}`,
    });
  },
};

export const bitgetGateway: GatewayExchange = {
  exchange: "bitget",
  carriesCredentials(req) {
    return CREDENTIAL_HEADERS.some((h) => req.header(h) !== undefined);
  },
  strip(req) {
    const passphrase = req.header("access-passphrase");
    return { query: req.query, body: req.body, ...(passphrase ? { passphrase } : {}) };
  },
  refusal(kind, detail) {
    const custos = { reason: detail.reason, ...(detail.rule ? { rule: detail.rule } : {}) };
    const [status, code] = kind === "denied" ? [403, "40014"] : [400, "40017"];
    return { status, body: { code, msg: `custos refused the request: ${detail.message}`, requestTime: Date.now(), data: null, custos } };
  },
  websocket: bitgetWebSocketLogin,
};
