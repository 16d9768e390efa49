import { objectAt, PermissionParseError, requireOk, stringsAt, type PermissionProbe } from "./facts.js";

/**
 * Gate API v4 "Get account detail": GET /api/v4/account/detail (www.gate.io/docs/developers/apiv4/#get-account-detail),
 * signed like every Gate request. Answer (HTTP 200):
 *   {"user_id":1667201533,"ip_whitelist":["127.0.0.1"],"currency_pairs":["USDT_BTC"],"key":{"mode":1},"tier":2,"copy_trading_role":1}
 * `ip_whitelist` is the calling key's IP whitelist (empty: bound to no IP). The answer names no
 * withdrawal or transfer permission (`key.mode` is classic or unified), and Gate documents no other
 * endpoint a key can ask about its own permissions: withdrawals and transfers are unknown.
 * An error is a non-2xx answer {"label":"INVALID_KEY","message":"…"}.
 */
export const gatePermissions: PermissionProbe = {
  exchange: "gate",
  kind: "rest",
  request: { method: "GET", path: "/api/v4/account/detail", query: "", body: "" },
  parse(status, body) {
    requireOk(status);
    const o = objectAt(body, "the account detail answer");
    if (typeof o.user_id !== "number") throw new PermissionParseError("user_id is not a number");
    const ips = stringsAt(o, "ip_whitelist").filter((ip) => ip.trim() !== "");
    return { withdrawals: "unknown", transfers: "unknown", ipRestricted: ips.length > 0, ips };
  },
};
