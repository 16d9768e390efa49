/**
 * Development PKI: a throwaway CA plus server/client leaf certificates for
 * mutual TLS. ECDSA P-256 / SHA-256 throughout. Not for production use.
 */
import { chmod, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type * as X509 from "@peculiar/x509";

/** A PEM certificate together with its PKCS#8 PEM private key. */
export interface IssuedCert {
  /** Certificate, "-----BEGIN CERTIFICATE-----". */
  certPem: string;
  /** Unencrypted PKCS#8 private key, "-----BEGIN PRIVATE KEY-----". */
  keyPem: string;
}

const KEY_ALG: EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
const SIGN_ALG: EcdsaParams = { name: "ECDSA", hash: "SHA-256" };
const YEAR_MS = 365 * 24 * 60 * 60 * 1000;
// Backdate notBefore a little so peers with slightly skewed clocks accept fresh certs.
const SKEW_MS = 5 * 60 * 1000;

let x509Promise: Promise<typeof X509> | undefined;

/**
 * Loads @peculiar/x509 lazily (it is needed only when certificates are issued). Its DI
 * dependency tsyringe needs the Reflect metadata polyfill loaded first.
 */
function loadX509(): Promise<typeof X509> {
  x509Promise ??= (async () => {
    await import("reflect-metadata");
    const x509 = await import("@peculiar/x509");
    x509.cryptoProvider.set(globalThis.crypto);
    return x509;
  })();
  return x509Promise;
}

/** 16 random bytes as hex, high bit cleared so the DER INTEGER stays positive. */
function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  // Clear the sign bit, and set the next one so the serial keeps all 16 bytes.
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return Buffer.from(bytes).toString("hex");
}

function validity(years: number): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  return { notBefore: new Date(now - SKEW_MS), notAfter: new Date(now + years * YEAR_MS) };
}

async function exportKeyPem(x509: typeof X509, key: CryptoKey): Promise<string> {
  const der = await crypto.subtle.exportKey("pkcs8", key);
  return x509.PemConverter.encode(der, "PRIVATE KEY");
}

async function newKeyPair(): Promise<CryptoKeyPair> {
  // Extractable: the private key is written to disk as PKCS#8.
  return crypto.subtle.generateKey(KEY_ALG, true, ["sign", "verify"]);
}

/**
 * Creates a self-signed development CA (10 years, CA:true critical,
 * keyCertSign|cRLSign).
 */
export async function createDevCa(commonName = "custos dev CA"): Promise<IssuedCert> {
  const x509 = await loadX509();
  const keys = await newKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ CN: [commonName] }],
    ...validity(10),
    signingAlgorithm: SIGN_ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString("pem"), keyPem: await exportKeyPem(x509, keys.privateKey) };
}

/** Signs a new leaf certificate with `ca`; shared by server and client issuance. */
async function issueLeaf(ca: IssuedCert, commonName: string, years: number, eku: string, sans: X509.JsonGeneralName[]): Promise<IssuedCert> {
  const x509 = await loadX509();
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await crypto.subtle.importKey("pkcs8", x509.PemConverter.decodeFirst(ca.keyPem), KEY_ALG, false, ["sign"]);
  const keys = await newKeyPair();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: [{ CN: [commonName] }],
    issuer: caCert.subjectName,
    ...validity(years),
    signingAlgorithm: SIGN_ALG,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([eku], false),
      new x509.SubjectAlternativeNameExtension(sans, false),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
    ],
  });
  return { certPem: cert.toString("pem"), keyPem: await exportKeyPem(x509, keys.privateKey) };
}

/**
 * Issues a TLS server certificate (2 years, serverAuth). CN is the first DNS
 * name; every DNS name and IP address becomes a SAN.
 */
export async function issueServerCert(ca: IssuedCert, opts: { dnsNames: string[]; ipAddresses: string[] }): Promise<IssuedCert> {
  const cn = opts.dnsNames[0] ?? opts.ipAddresses[0];
  if (cn === undefined) throw new Error("issueServerCert: need at least one DNS name or IP address");
  const sans: X509.JsonGeneralName[] = [
    ...opts.dnsNames.map((value) => ({ type: "dns" as const, value })),
    ...opts.ipAddresses.map((value) => ({ type: "ip" as const, value })),
  ];
  return issueLeaf(ca, cn, 2, "1.3.6.1.5.5.7.3.1", sans);
}

/**
 * Issues a TLS client certificate (1 year, clientAuth) whose URI SAN (e.g.
 * "spiffe://custos/engine/alpha") is the caller's identity; CN = `opts.name`.
 */
export async function issueClientCert(ca: IssuedCert, opts: { name: string; uri: string }): Promise<IssuedCert> {
  return issueLeaf(ca, opts.name, 1, "1.3.6.1.5.5.7.3.2", [{ type: "url", value: opts.uri }]);
}

/**
 * Writes `${base}.crt` (0644) and `${base}.key` (0600) into `dir`.
 * Existing files are overwritten.
 */
export async function writeIssued(dir: string, base: string, cert: IssuedCert): Promise<{ certPath: string; keyPath: string }> {
  const certPath = join(dir, `${base}.crt`);
  const keyPath = join(dir, `${base}.key`);
  await writeFile(certPath, cert.certPem, { mode: 0o644 });
  await chmod(certPath, 0o644);
  await writeFile(keyPath, cert.keyPem, { mode: 0o600 });
  // `mode` is ignored for pre-existing files and masked by umask; chmod to be sure.
  await chmod(keyPath, 0o600);
  return { certPath, keyPath };
}

/** Reads back a pair written by {@link writeIssued}. */
export async function loadIssued(dir: string, base: string): Promise<IssuedCert> {
  const [certPem, keyPem] = await Promise.all([readFile(join(dir, `${base}.crt`), "utf8"), readFile(join(dir, `${base}.key`), "utf8")]);
  return { certPem, keyPem };
}
