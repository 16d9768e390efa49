import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import {
  createCipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  pbkdf2Sync,
  randomBytes,
  sign,
  verify,
  type KeyObject,
} from "node:crypto";
import * as asn1 from "asn1js";
import { CustosError } from "../errors.js";
import { approvalMessage, type Decision } from "./proposal.js";

/** Officer keys are Ed25519: small, deterministic signatures, no parameters to get wrong. */
const OFFICER_KEY_TYPE = "ed25519";
const SIGNATURE_BYTES = 64;
export const MIN_PASSPHRASE_LENGTH = 8;
/**
 * PBKDF2-HMAC-SHA256 iterations protecting a stolen officer key file (OWASP's 2023 figure,
 * ~0.13 s here). Node's own PKCS#8 encryption is fixed at OpenSSL's 2,048.
 */
export const OFFICER_KEY_PBKDF2_ITERATIONS = 600_000;

export interface OfficerKeyPair {
  /** Encrypted PKCS#8 PEM (PBES2: PBKDF2-HMAC-SHA256, AES-256-CBC): never written in the clear. */
  privateKeyPem: string;
  /** SPKI PEM. */
  publicKeyPem: string;
  /** publicKeyFingerprint of the public key. */
  fingerprint: string;
}

function invalid(message: string, cause?: unknown): CustosError {
  return new CustosError("INVALID_ARGUMENT", message, { cause });
}

/** A new Ed25519 officer key; the private half comes back encrypted under `passphrase`. */
export function generateOfficerKey(passphrase: string): OfficerKeyPair {
  // Code points, not UTF-16 units: an emoji is one character to the person typing it.
  if (typeof passphrase !== "string" || [...passphrase].length < MIN_PASSPHRASE_LENGTH) {
    throw invalid(`the passphrase must be at least ${MIN_PASSPHRASE_LENGTH} characters`);
  }
  const { publicKey, privateKey } = generateKeyPairSync(OFFICER_KEY_TYPE, {
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "der" },
  });
  try {
    return { privateKeyPem: encryptPkcs8(privateKey, passphrase), publicKeyPem: publicKey, fingerprint: publicKeyFingerprint(publicKey) };
  } finally {
    privateKey.fill(0);
  }
}

/** The same key under `passphrase`, with today's key-file protection (for `custos officer rekey`). */
export function encryptOfficerKey(key: KeyObject, passphrase: string): string {
  if (typeof passphrase !== "string" || [...passphrase].length < MIN_PASSPHRASE_LENGTH) {
    throw invalid(`the passphrase must be at least ${MIN_PASSPHRASE_LENGTH} characters`);
  }
  if (key.type !== "private" || key.asymmetricKeyType !== OFFICER_KEY_TYPE) throw invalid("officer keys are Ed25519 private keys");
  const der = key.export({ type: "pkcs8", format: "der" });
  try {
    return encryptPkcs8(der, passphrase);
  } finally {
    der.fill(0);
  }
}

const OID = {
  pbes2: "1.2.840.113549.1.5.13",
  pbkdf2: "1.2.840.113549.1.5.12",
  hmacWithSha256: "1.2.840.113549.2.9",
  aes256Cbc: "2.16.840.1.101.3.4.1.42",
};

/**
 * PKCS#8 DER → EncryptedPrivateKeyInfo PEM (RFC 5958, PBES2 of RFC 8018: PBKDF2-HMAC-SHA256
 * with OFFICER_KEY_PBKDF2_ITERATIONS, AES-256-CBC). OpenSSL reads it back, so loading stays
 * createPrivateKey's job.
 */
function encryptPkcs8(der: Buffer, passphrase: string): string {
  const salt = randomBytes(16);
  const iv = randomBytes(16);
  const key = pbkdf2Sync(passphrase, salt, OFFICER_KEY_PBKDF2_ITERATIONS, 32, "sha256");
  let encrypted: Buffer;
  try {
    const cipher = createCipheriv("aes-256-cbc", key, iv);
    encrypted = Buffer.concat([cipher.update(der), cipher.final()]);
  } finally {
    key.fill(0);
  }
  const algorithm = (oid: string, params: asn1.AsnType) => new asn1.Sequence({ value: [new asn1.ObjectIdentifier({ value: oid }), params] });
  const info = new asn1.Sequence({
    value: [
      algorithm(
        OID.pbes2,
        new asn1.Sequence({
          value: [
            algorithm(
              OID.pbkdf2,
              new asn1.Sequence({
                value: [
                  new asn1.OctetString({ valueHex: salt }),
                  new asn1.Integer({ value: OFFICER_KEY_PBKDF2_ITERATIONS }),
                  algorithm(OID.hmacWithSha256, new asn1.Null()),
                ],
              }),
            ),
            algorithm(OID.aes256Cbc, new asn1.OctetString({ valueHex: iv })),
          ],
        }),
      ),
      new asn1.OctetString({ valueHex: encrypted }),
    ],
  });
  const base64 = Buffer.from(info.toBER()).toString("base64");
  return `-----BEGIN ENCRYPTED PRIVATE KEY-----\n${base64.match(/.{1,64}/g)!.join("\n")}\n-----END ENCRYPTED PRIVATE KEY-----\n`;
}

/**
 * Only a lone `PUBLIC KEY` block: createPublicKey() would also derive a public key from a
 * private key or a certificate, and a private key pasted where a public one belongs must be
 * refused, not quietly accepted.
 */
function publicKeyFromPem(pem: string): KeyObject {
  const text = typeof pem === "string" ? pem.trim() : "";
  if (!text.startsWith("-----BEGIN PUBLIC KEY-----") || !text.endsWith("-----END PUBLIC KEY-----") || text.split("-----BEGIN").length !== 2) {
    throw invalid("expected a single PEM public key (-----BEGIN PUBLIC KEY-----)");
  }
  try {
    return createPublicKey({ key: text, format: "pem" });
  } catch (e) {
    throw invalid("the PEM public key cannot be decoded", e);
  }
}

/**
 * `SHA256:` + unpadded base64 of SHA-256 over the SPKI DER. The notation is OpenSSH's, but the
 * hash covers the SPKI DER, not the SSH key blob, so it does not equal `ssh-keygen -l` output.
 * A private KeyObject is fingerprinted by its public half.
 */
export function publicKeyFingerprint(publicKey: string | KeyObject): string {
  let key: KeyObject;
  if (typeof publicKey === "string") key = publicKeyFromPem(publicKey);
  else if (publicKey.type === "public") key = publicKey;
  else if (publicKey.type === "private") key = createPublicKey(publicKey);
  else throw invalid("a secret key has no public key fingerprint");
  const der = key.export({ type: "spki", format: "der" });
  return "SHA256:" + createHash("sha256").update(der).digest("base64").replace(/=+$/, "");
}

/** An officer's public key from SPKI PEM; anything but Ed25519 is refused. */
export function parseOfficerPublicKey(pem: string): KeyObject {
  const key = publicKeyFromPem(pem);
  if (key.asymmetricKeyType !== OFFICER_KEY_TYPE) {
    throw invalid(`officer keys must be Ed25519, this public key is ${key.asymmetricKeyType ?? "of an unknown type"}`);
  }
  return key;
}

/**
 * Decrypts an officer's private key. Only encrypted PKCS#8 is accepted: a key file in the
 * clear is refused rather than used. A wrong passphrase (or an encrypted file damaged inside) is
 * UNAUTHENTICATED; a file that is not an encrypted key, or a key that is not Ed25519, is INVALID_ARGUMENT.
 */
export function loadOfficerPrivateKey(pem: string, passphrase: string): KeyObject {
  const text = typeof pem === "string" ? pem.trim() : "";
  if (!text.startsWith("-----BEGIN ENCRYPTED PRIVATE KEY-----") || !text.endsWith("-----END ENCRYPTED PRIVATE KEY-----")) {
    throw invalid("expected an encrypted PKCS#8 PEM officer key (-----BEGIN ENCRYPTED PRIVATE KEY-----)");
  }
  if (typeof passphrase !== "string") throw invalid("a passphrase is required for the officer key");
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: text, format: "pem", passphrase });
  } catch (e) {
    // PBES2 has no MAC: a wrong passphrase usually fails CBC's padding check, and about once in 256
    // tries decrypts to bytes that are no key. Either way this passphrase does not open this file.
    const badDecrypt = (e as { code?: unknown }).code === "ERR_OSSL_BAD_DECRYPT";
    throw new CustosError(
      "UNAUTHENTICATED",
      badDecrypt ? "wrong passphrase for the officer key" : "wrong passphrase for the officer key (or a damaged key file)",
      { cause: e },
    );
  }
  if (key.asymmetricKeyType !== OFFICER_KEY_TYPE) {
    throw invalid(`officer keys must be Ed25519, this key is ${key.asymmetricKeyType ?? "of an unknown type"}`);
  }
  return key;
}

/** The officer's 64-byte Ed25519 signature over approvalMessage(decision, digest). */
export function signApproval(privateKey: KeyObject, decision: Decision, digest: string): Buffer {
  if (privateKey.type !== "private" || privateKey.asymmetricKeyType !== OFFICER_KEY_TYPE) {
    throw invalid("approvals are signed with an Ed25519 private key");
  }
  // Ed25519 hashes internally: the algorithm argument must be null.
  return sign(null, approvalMessage(decision, digest), privateKey);
}

/**
 * True only for a valid Ed25519 signature by `publicKey` over approvalMessage(decision,
 * digest). Never throws: a wrong length, garbage, a malformed digest or decision, or a key
 * of the wrong type all verify as false, so no caller can fail open through an exception path.
 */
export function verifyApproval(publicKey: KeyObject, decision: Decision, digest: string, signature: Uint8Array): boolean {
  try {
    if (publicKey.type !== "public" || publicKey.asymmetricKeyType !== OFFICER_KEY_TYPE) return false;
    if (!(signature instanceof Uint8Array) || signature.length !== SIGNATURE_BYTES) return false;
    return verify(null, approvalMessage(decision, digest), publicKey, signature);
  } catch {
    return false;
  }
}

/**
 * Writes a new officer key file, readable by its owner only (0600). Refuses to replace an
 * existing file: overwriting the only copy of an officer key would lock that officer out.
 * Refuses a key in the clear.
 */
export function writeOfficerKeyFile(path: string, privateKeyPem: string): void {
  if (typeof privateKeyPem !== "string" || !privateKeyPem.includes("-----BEGIN ENCRYPTED PRIVATE KEY-----")) {
    throw invalid("only an encrypted PKCS#8 PEM officer key is written to disk");
  }
  let fd: number;
  try {
    // "wx" = O_CREAT | O_EXCL: the check for an existing file and the creation are one step.
    fd = openSync(path, "wx", 0o600);
  } catch (e) {
    if ((e as { code?: unknown }).code === "EEXIST") throw invalid(`${path} exists; refusing to overwrite an officer key`, e);
    throw e;
  }
  try {
    const bytes = Buffer.from(privateKeyPem, "utf8");
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off);
    fsyncSync(fd);
  } catch (e) {
    // Leave no partial key behind: it would block the retry with "exists".
    try {
      closeSync(fd);
    } finally {
      unlinkSync(path);
    }
    throw e;
  }
  closeSync(fd);
}

/**
 * Replaces an officer key file: the new PEM goes to a sibling written like a new key file
 * (O_EXCL, 0600, fsync), then takes the old one's name in one rename. A crash leaves either
 * the old file or the new one, never half of one.
 */
export function replaceOfficerKeyFile(path: string, privateKeyPem: string): void {
  const next = join(dirname(path), `.${basename(path)}.${process.pid}.new`);
  writeOfficerKeyFile(next, privateKeyPem);
  try {
    renameSync(next, path);
  } catch (e) {
    unlinkSync(next);
    throw e;
  }
  const dir = openSync(dirname(path), "r");
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
