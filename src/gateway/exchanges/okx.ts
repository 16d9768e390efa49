import type { GatewayExchange } from "./gateway-exchange.js";

/**
 * OKX v5: credentials are the OK-ACCESS-KEY, -SIGN, -TIMESTAMP and -PASSPHRASE headers. The
 * passphrase is not part of the signature and OKX wants it in clear, so the gateway passes the
 * bot's OK-ACCESS-PASSPHRASE on to custos (never logged); query and body are kept as sent.
 *
 * Refusals: code "50027" (the account is restricted from trading) is ccxt's PermissionDenied,
 * "50014" (a parameter is missing or wrong) its BadRequest.
 */
const CREDENTIAL_HEADERS = ["ok-access-key", "ok-access-sign", "ok-access-timestamp", "ok-access-passphrase"];

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
};
