/**
 * The names custos's TLS server certificate must carry: the loopback names every instance is
 * dialled by, plus the names a deployment gives it (`pki.serverNames`, `$CUSTOS_SERVER_NAMES`,
 * `custos pki server-cert --name`), e.g. `custos` for bots on a compose network.
 */
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { CustosError } from "../errors.js";
import { issueServerCert, loadIssued, writeIssued } from "./dev-ca.js";

/** Names the dev server certificate always carries: the CLI and local clients dial these. */
export const LOOPBACK_SERVER_NAMES = ["localhost", "127.0.0.1", "::1"] as const;

// RFC 1123 host names: labels of letters, digits and inner hyphens; no wildcards.
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** Checks each name is a host name or an IP address; INVALID_ARGUMENT names the first that is not. */
export function validateServerNames(names: readonly string[], where: string): string[] {
  for (const n of names) {
    if (typeof n !== "string" || (isIP(n) === 0 && !DNS_NAME.test(n))) {
      throw new CustosError("INVALID_ARGUMENT", `${where}: ${JSON.stringify(n)} is not a host name or an IP address`);
    }
  }
  return [...names];
}

/** Splits a comma-separated list (`$CUSTOS_SERVER_NAMES`), blanks dropped, then validated. */
export function parseServerNameList(list: string, where: string): string[] {
  return validateServerNames(
    list
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s.length > 0),
    where,
  );
}

/** The DNS and IP subject alternative names a certificate carries. */
export function serverCertNames(certPem: string): string[] {
  const san = new X509Certificate(certPem).subjectAltName ?? "";
  return (
    san
      .split(", ")
      .map((entry) => /^(?:DNS|IP Address):(.+)$/.exec(entry)?.[1])
      .filter((n): n is string => n !== undefined)
      // Node prints IPv6 SANs uncompressed (0:0:0:0:0:0:0:1); the URL parser gives the short form.
      .map((n) => (isIP(n) === 6 ? new URL(`http://[${n}]/`).hostname.slice(1, -1) : n))
  );
}

/** The names in `names` that the certificate does not cover (host names by SAN, IPs by IP SAN). */
export function missingServerNames(certPem: string, names: readonly string[]): string[] {
  const cert = new X509Certificate(certPem);
  // subject: "never" — only subject alternative names count, as TLS clients check them.
  return names.filter((n) => (isIP(n) ? cert.checkIP(n) === undefined : cert.checkHost(n, { subject: "never" }) === undefined));
}

/**
 * Issues the data dir's server certificate (`pki/server.crt`, `.key`) from its dev CA
 * (`pki/ca.crt`, `.key`) for the loopback names and `names`. A running custos keeps its old
 * certificate until restarted.
 */
export async function issueDevServerCert(pkiDir: string, names: readonly string[]): Promise<{ certPath: string; keyPath: string; names: string[] }> {
  const all = [...new Set([...LOOPBACK_SERVER_NAMES, ...validateServerNames(names, "server names")])];
  let ca: Awaited<ReturnType<typeof loadIssued>>;
  try {
    ca = await loadIssued(pkiDir, "ca");
  } catch (e) {
    const why = `no dev CA in ${pkiDir} (ca.crt and ca.key): a configured deployment's own CA issues its server certificate`;
    throw new CustosError("PRECONDITION_FAILED", why, { cause: e });
  }
  const cert = await issueServerCert(ca, { dnsNames: all.filter((n) => isIP(n) === 0), ipAddresses: all.filter((n) => isIP(n) !== 0) });
  return { ...(await writeIssued(pkiDir, "server", cert)), names: all };
}

/**
 * A configured deployment's own certificate must carry every name it is configured to be
 * dialled by: custos refuses to start (PRECONDITION_FAILED) rather than serve clients a
 * handshake that fails on the name.
 */
export function assertServerCertNames(certPath: string, names: readonly string[]): void {
  if (names.length === 0) return;
  const missing = missingServerNames(readFileSync(certPath, "utf8"), names);
  if (missing.length > 0) {
    const why = `${certPath} does not name ${missing.join(", ")} (pki.serverNames / $CUSTOS_SERVER_NAMES): issue it for every name clients dial`;
    throw new CustosError("PRECONDITION_FAILED", why);
  }
}
