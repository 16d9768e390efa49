import { objectAt, PermissionParseError, requireOk, type PermissionProbe } from "./facts.js";

/**
 * Deribit exposes no API-key query a key can make about itself without account:read_write; what it
 * does document is the scope a login grants (docs.deribit.com/api-reference/authentication/public-auth):
 * `public/auth` with grant_type client_signature answers {"jsonrpc":"2.0","result":{"access_token":"…",
 * "expires_in":31536000,"refresh_token":"…","scope":"connection mainaccount account:read trade:read_write wallet:none",
 * "token_type":"bearer"}}. custos sends that login itself (GET /api/v2/public/auth with the signed fields),
 * reads only `scope` and drops the tokens. `wallet:read_write` allows withdrawals and transfers
 * (docs.deribit.com/articles/authentication, "Access scope"); `wallet:read` or `wallet:none` neither.
 * A key's IP allowlist is not in the scope: unknown.
 */
export const deribitPermissions: PermissionProbe = {
  exchange: "deribit",
  kind: "login",
  request: { method: "GET", path: "/api/v2/public/auth", query: "", body: "" },
  parse(status, body) {
    requireOk(status);
    const o = objectAt(body, "the public/auth answer");
    const result = objectAt(o.result, "result");
    if (typeof result.scope !== "string") throw new PermissionParseError("scope is not a string");
    const wallet = result.scope.split(" ").find((s) => s.startsWith("wallet:"));
    const funds = wallet === undefined ? "unknown" : wallet === "wallet:read_write";
    return { withdrawals: funds, transfers: funds, ipRestricted: "unknown" };
  },
};
