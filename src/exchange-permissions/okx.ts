import { commaList, objectAt, PermissionParseError, requireOk, type PermissionProbe } from "./facts.js";

/**
 * OKX v5 "Get account configuration": GET /api/v5/account/config (www.okx.com/docs-v5/en/#trading-account-rest-api-get-account-configuration).
 * `data[0].perm` is the API key's permissions, comma-separated: read_only, trade, withdraw; `data[0].ip`
 * the IPs bound to the key, comma-separated, "" when none. Answer: {"code":"0","msg":"","data":[{…,"perm":"read_only,trade","ip":"1.1.1.1,2.2.2.2",…}]}.
 * Transfers between one's own funding and trading accounts need only `trade` at OKX and are not told
 * apart: transfers are reported true with `withdraw` (which covers sub-account transfers), else unknown.
 * OKX wants the key's passphrase in clear with every request; custos does not store it and sends this
 * query only with the passphrase a caller last sent for the key's active version (passphrases.ts).
 */
export const okxPermissions: PermissionProbe = {
  exchange: "okx",
  kind: "rest",
  request: { method: "GET", path: "/api/v5/account/config", query: "", body: "" },
  passphrase: "caller",
  parse(status, body) {
    requireOk(status);
    const o = objectAt(body, "the account config answer");
    if (o.code !== "0") throw new PermissionParseError(`OKX answered code ${String(o.code)}`);
    if (!Array.isArray(o.data) || o.data.length !== 1) throw new PermissionParseError("data is not one account");
    const account = objectAt(o.data[0], "data[0]");
    if (typeof account.perm !== "string" || typeof account.ip !== "string") throw new PermissionParseError("perm or ip is not a string");
    const perms = commaList(account.perm);
    const ips = commaList(account.ip);
    const withdraw = perms.includes("withdraw");
    return { withdrawals: withdraw, transfers: withdraw ? true : "unknown", ipRestricted: ips.length > 0, ips };
  },
};
