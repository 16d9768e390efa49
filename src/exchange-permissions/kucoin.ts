import { objectAt, PermissionParseError, requireOk, type PermissionProbe } from "./facts.js";

/**
 * KuCoin "Get API Key Info": GET /api/v1/user/api-key on the spot host api.kucoin.com, signed like
 * every KuCoin request (www.kucoin.com/docs-new, Account → Get Apikey Info; the same KC-API-* headers
 * as KuCoin Futures). Answer:
 *   {"code":"200000","data":{"remark":"account1","apiKey":"…","apiVersion":3,
 *    "permission":"General,Futures,Spot,Earn,InnerTransfer,Transfer,Margin","ipWhitelist":"203.**.154,103.**.34",
 *    "createdAt":1728443843000,"uid":165111215,"isMaster":true}}
 * `permission` is comma-separated: Withdrawal lets the key withdraw; Transfer and InnerTransfer move
 * funds between accounts. `ipWhitelist` is absent or "" when the key is bound to no IP (KuCoin masks
 * the middle of each address).
 */
export const kucoinPermissions: PermissionProbe = {
  exchange: "kucoinfutures",
  kind: "rest",
  request: { method: "GET", path: "/api/v1/user/api-key", query: "", body: "" },
  parse(status, body) {
    requireOk(status);
    const o = objectAt(body, "the api-key answer");
    if (o.code !== "200000") throw new PermissionParseError(`KuCoin answered code ${String(o.code)}`);
    const data = objectAt(o.data, "data");
    if (typeof data.permission !== "string") throw new PermissionParseError("permission is not a string");
    if (data.ipWhitelist !== undefined && typeof data.ipWhitelist !== "string") throw new PermissionParseError("ipWhitelist is not a string");
    const perms = data.permission.split(",").map((p) => p.trim());
    const ips = (data.ipWhitelist ?? "")
      .split(",")
      .map((ip) => ip.trim())
      .filter((ip) => ip !== "");
    return {
      withdrawals: perms.includes("Withdrawal"),
      transfers: perms.includes("Transfer") || perms.includes("InnerTransfer"),
      ipRestricted: ips.length > 0,
      ips,
    };
  },
};
