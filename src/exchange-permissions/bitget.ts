import { commaList, objectAt, PermissionParseError, requireOk, stringAt, stringsAt, type PermissionProbe } from "./facts.js";

/**
 * Bitget v2 "Get Account Information": GET /api/v2/spot/account/info (www.bitget.com/api-doc/spot/account/Get-Account-Info),
 * signed like every Bitget request, with the key's passphrase in clear (ACCESS-PASSPHRASE). Answer:
 *   {"code":"00000","msg":"success","requestTime":1695808949356,"data":{"userId":"…","inviterId":"…",
 *    "ips":"127.0.0.1","authorities":["trade","readonly"],"parentId":1,"traderType":"trader",…}}
 * `ips` is the key's IP whitelist ("" when none); `authorities` the key's permissions, documented as
 * codes: read-only coor, cpor, stor, smor, ttor, wtor, taxr, chor, p2pr, pllr; read-write coow, cpow,
 * stow, smow, ttow, wtow (wallet transfer), wwow (wallet withdrawal), chow (sub-account management),
 * p2p/p2pw, pllw, taxw. The documented example answers legacy words ("trade", "readonly") that do not
 * say whether the key may withdraw: any authority outside the code list makes withdrawals and
 * transfers unknown unless a code grants them. Like OKX, custos holds no passphrase: passphrases.ts.
 */
const CODES = new Set([
  ...["coor", "cpor", "stor", "smor", "ttor", "wtor", "taxr", "chor", "p2pr", "pllr"],
  ...["coow", "cpow", "stow", "smow", "ttow", "wtow", "wwow", "chow", "p2p", "p2pw", "pllw", "taxw"],
]);

export const bitgetPermissions: PermissionProbe = {
  exchange: "bitget",
  kind: "rest",
  request: { method: "GET", path: "/api/v2/spot/account/info", query: "", body: "" },
  passphrase: "caller",
  parse(status, body) {
    requireOk(status);
    const o = objectAt(body, "the account info answer");
    if (o.code !== "00000") throw new PermissionParseError(`Bitget answered code ${String(o.code)}`);
    const data = objectAt(o.data, "data");
    const authorities = stringsAt(data, "authorities");
    const ips = commaList(stringAt(data, "ips"));
    // Only documented codes can say "no": an unknown word might be a permission custos cannot read.
    const readable = authorities.every((a) => CODES.has(a));
    const grant = (code: string) => (authorities.includes(code) ? true : readable ? false : "unknown");
    return { withdrawals: grant("wwow"), transfers: grant("wtow"), ipRestricted: ips.length > 0, ips };
  },
};
