import { objectAt, PermissionParseError, requireOk, type PermissionProbe } from "./facts.js";

/**
 * OKX v5 "Get account configuration": GET /api/v5/account/config (www.okx.com/docs-v5/en/#trading-account-rest-api-get-account-configuration).
 * `data[0].perm` is the API key's permissions, comma-separated: read_only, trade, withdraw; `data[0].ip`
 * the IPs bound to the key, comma-separated, "" when none. Answer: {"code":"0","msg":"","data":[{…,"perm":"read_only,trade","ip":"1.1.1.1,2.2.2.2",…}]}.
 * Transfers between one's own funding and trading accounts need only `trade` at OKX and are not told
 * apart: transfers are reported true with `withdraw` (which covers sub-account transfers), else unknown.
 * custos sends this only with the key's passphrase, which OKX sends in clear with every request and
 * custos does not store (the caller supplies it): see the checker.
 */
export const okxPermissions: PermissionProbe = {
  exchange: "okx",
  kind: "rest",
  request: { method: "GET", path: "/api/v5/account/config", query: "", body: "" },
  notOnItsOwn: "OKX signs with the key's passphrase, which callers send with each request and custos does not hold",
  parse(status, body) {
    requireOk(status);
    const o = objectAt(body, "the account config answer");
    if (o.code !== "0") throw new PermissionParseError(`OKX answered code ${String(o.code)}`);
    if (!Array.isArray(o.data) || o.data.length !== 1) throw new PermissionParseError("data is not one account");
    const account = objectAt(o.data[0], "data[0]");
    if (typeof account.perm !== "string" || typeof account.ip !== "string") throw new PermissionParseError("perm or ip is not a string");
    const perms = account.perm.split(",").map((p) => p.trim());
    const ips = account.ip
      .split(",")
      .map((ip) => ip.trim())
      .filter((ip) => ip !== "");
    const withdraw = perms.includes("withdraw");
    return { withdrawals: withdraw, transfers: withdraw ? true : "unknown", ipRestricted: ips.length > 0, ips };
  },
};
