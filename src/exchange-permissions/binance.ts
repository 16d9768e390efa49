import { booleanAt, objectAt, requireOk, type PermissionProbe } from "./facts.js";

/**
 * Binance "Get API Key Permission (USER_DATA)": GET /sapi/v1/account/apiRestrictions, SIGNED
 * (timestamp, signature), weight 1 (developers.binance.com/docs/wallet/account/api-key-permission).
 * Documented answer:
 *   {"ipRestrict":false,"createTime":1698645219000,"enableReading":true,"enableWithdrawals":false,
 *    "enableInternalTransfer":false,"enableMargin":false,"enableFutures":false,"permitsUniversalTransfer":false,
 *    "enableVanillaOptions":false,"enableFixApiTrade":false,"enableFixReadOnly":true,
 *    "enableSpotAndMarginTrading":false,"enablePortfolioMarginTrading":true}
 * enableInternalTransfer moves funds between master and sub-accounts; permitsUniversalTransfer
 * authorizes the universal transfer API: either counts as transfers. Binance returns no IP list.
 */
export const binancePermissions: PermissionProbe = {
  exchange: "binance",
  kind: "rest",
  request: { method: "GET", path: "/sapi/v1/account/apiRestrictions", query: "", body: "" },
  parse(status, body) {
    requireOk(status);
    const o = objectAt(body, "the apiRestrictions answer");
    return {
      withdrawals: booleanAt(o, "enableWithdrawals"),
      transfers: booleanAt(o, "enableInternalTransfer") || booleanAt(o, "permitsUniversalTransfer"),
      ipRestricted: booleanAt(o, "ipRestrict"),
    };
  },
};
