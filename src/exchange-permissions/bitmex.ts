import { objectAt, PermissionParseError, requireOk, stringsAt, type PermissionProbe } from "./facts.js";

/**
 * BitMEX "Get your API Keys": GET /api/v1/apiKey (www.bitmex.com/api/explorer/#/APIKey; field definitions:
 * support.bitmex.com "/apiKey field definitions"). Answer: every key of the account,
 *   [{"id":"…","secret":"…","name":"…","nonce":0,"cidr":"0.0.0.0","cidrs":[…],"targetAccountId":0,
 *     "permissions":["order","orderCancel","withdraw"],"enabled":true,"userId":0,"created":"2020-09-14T02:04:59.423Z"}]
 * custos reads the entry whose `id` is the key version's API key id and nothing else (the answer may
 * carry secrets: it is parsed and dropped, never audited or stored). `permissions` lists order,
 * orderCancel and withdraw; `cidr` "" or "0.0.0.0" (and 0.0.0.0/0) allows every IP, `cidrs` lists the
 * allowed blocks. BitMEX documents no separate transfer permission: transfers are true with
 * `withdraw`, else unknown.
 */
const EVERY_IP = new Set(["", "0.0.0.0", "0.0.0.0/0", "::/0"]);

export const bitmexPermissions: PermissionProbe = {
  exchange: "bitmex",
  kind: "rest",
  request: { method: "GET", path: "/api/v1/apiKey", query: "", body: "" },
  parse(status, body, apiKeyId) {
    requireOk(status);
    if (!Array.isArray(body)) throw new PermissionParseError("the apiKey answer is not a list");
    const key = body.map((k, i) => objectAt(k, `key ${i}`)).find((k) => k.id === apiKeyId);
    if (!key) throw new PermissionParseError("the answer does not list this API key");
    const permissions = stringsAt(key, "permissions");
    if (key.cidr !== undefined && typeof key.cidr !== "string") throw new PermissionParseError("cidr is not a string");
    const blocks = [...(key.cidr !== undefined ? [key.cidr as string] : []), ...(key.cidrs !== undefined ? stringsAt(key, "cidrs") : [])];
    const ips = [...new Set(blocks.map((b) => b.trim()))].filter((b) => !EVERY_IP.has(b));
    // A block that allows every address beside a narrower one still allows every address.
    const open = blocks.some((b) => EVERY_IP.has(b.trim()) && b.trim() !== "") || ips.length === 0;
    const withdraw = permissions.includes("withdraw");
    return { withdrawals: withdraw, transfers: withdraw ? true : "unknown", ipRestricted: !open, ips };
  },
};
