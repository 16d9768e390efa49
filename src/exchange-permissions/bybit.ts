import { objectAt, PermissionParseError, requireOk, type PermissionProbe } from "./facts.js";

/**
 * Bybit v5 "Get API Key Information": GET /v5/user/query-api, any permission may call it, with the
 * key being checked (bybit-exchange.github.io/docs/v5/user/apikey-info). Answer (HTTP 200, retCode 0):
 *   {"retCode":0,"retMsg":"","result":{"id":"…","apiKey":"…","readOnly":0,"secret":"",
 *    "permissions":{"ContractTrade":["Order","Position"],"Spot":["SpotTrade"],
 *      "Wallet":["AccountTransfer","SubMemberTransfer"],"Options":["OptionsTrade"],…},
 *    "ips":["*"],…},"retExtInfo":{},"time":…}
 * Wallet lists AccountTransfer, SubMemberTransfer (master), SubMemberTransferList (sub) and
 * Withdraw (master). `ips` ["*"] (or empty) means the key is bound to no IP.
 */
export const bybitPermissions: PermissionProbe = {
  exchange: "bybit",
  kind: "rest",
  request: { method: "GET", path: "/v5/user/query-api", query: "", body: "" },
  parse(status, body) {
    requireOk(status);
    const o = objectAt(body, "the query-api answer");
    if (o.retCode !== 0) throw new PermissionParseError(`Bybit answered retCode ${String(o.retCode)}`);
    const result = objectAt(o.result, "result");
    const permissions = objectAt(result.permissions, "result.permissions");
    const wallet = permissions.Wallet ?? [];
    if (!Array.isArray(wallet) || !wallet.every((w) => typeof w === "string")) throw new PermissionParseError("permissions.Wallet is not a list");
    const ips = result.ips ?? [];
    if (!Array.isArray(ips) || !ips.every((ip) => typeof ip === "string")) throw new PermissionParseError("ips is not a list of strings");
    const bound = ips.filter((ip) => ip !== "" && ip !== "*");
    return {
      withdrawals: wallet.includes("Withdraw"),
      transfers: wallet.some((w) => w === "AccountTransfer" || w === "SubMemberTransfer" || w === "SubMemberTransferList"),
      ipRestricted: bound.length > 0 && !ips.includes("*"),
      ips: bound,
    };
  },
};
