/**
 * Caller identity extraction from mTLS peer certificates.
 */

/** The subset of Node's `tls.PeerCertificate` that identity parsing reads. */
export interface PeerCertificateLike {
  subject?: { CN?: string | string[] };
  subjectaltname?: string;
}

// A JSON string literal, as Node emits for SAN values that need escaping (CVE-2021-44532).
// biome-ignore lint/suspicious/noControlCharactersInRegex: JSON strings may not hold raw control characters
const JSON_STRING = /^"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/;

/**
 * Splits Node's `subjectaltname` string ("DNS:a, URI:b") into entries,
 * decoding quoted values (`URI:"x,y"`). Returns null if malformed.
 */
function splitAltNames(altNames: string): string[] | null {
  const entries: string[] = [];
  let current = "";
  let offset = 0;
  while (offset < altNames.length) {
    const nextSep = altNames.indexOf(",", offset);
    const nextQuote = altNames.indexOf('"', offset);
    if (nextQuote !== -1 && (nextSep === -1 || nextQuote < nextSep)) {
      // A quoted value: commas inside it are data, not separators.
      const match = JSON_STRING.exec(altNames.slice(nextQuote));
      if (!match) return null;
      current += altNames.slice(offset, nextQuote) + (JSON.parse(match[0]) as string);
      offset = nextQuote + match[0].length;
    } else if (nextSep !== -1) {
      entries.push(current + altNames.slice(offset, nextSep));
      current = "";
      offset = nextSep + 1;
      if (altNames[offset] === " ") offset++; // Node separates with ", ".
    } else {
      current += altNames.slice(offset);
      offset = altNames.length;
    }
  }
  entries.push(current);
  return entries;
}

/**
 * Derives the caller identity from a peer certificate: the first URI SAN
 * (e.g. "spiffe://custos/engine/alpha"), else `"cn:" + CN` (first CN if
 * several), else null. A malformed SAN string yields null rather than a
 * fallback, so a confusing certificate never gains an identity.
 */
export function identityFromPeerCertificate(cert: PeerCertificateLike | undefined): string | null {
  if (!cert) return null;
  if (cert.subjectaltname) {
    const entries = splitAltNames(cert.subjectaltname);
    if (entries === null) return null;
    const uri = entries.find((e) => e.startsWith("URI:") && e.length > 4);
    if (uri !== undefined) return uri.slice(4);
  }
  const cn = Array.isArray(cert.subject?.CN) ? cert.subject.CN[0] : cert.subject?.CN;
  return cn ? `cn:${cn}` : null;
}

/**
 * Normalises a socket's `remoteAddress`: strips the IPv4-mapped IPv6 prefix
 * ("::ffff:127.0.0.1" → "127.0.0.1"); null for undefined or empty input.
 */
export function peerAddressIp(remoteAddress: string | undefined): string | null {
  if (!remoteAddress) return null;
  // Dual-stack listeners report IPv4 peers as ::ffff:a.b.c.d; allowlists want a.b.c.d.
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(remoteAddress);
  return mapped ? mapped[1]! : remoteAddress;
}
