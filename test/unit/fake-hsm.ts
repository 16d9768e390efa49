/**
 * An in-memory Hsm for unit tests (shared by sign-service and custody-service tests).
 * It keeps secrets in plain Buffers — exactly what the real HSM never does — so tests can
 * compare signatures with node:crypto. unwrapSecret really opens the envelope with its
 * own RSA key, so an import through the fake proves the envelope format end to end.
 * generateKeyPair makes node:crypto Ed25519 key pairs (the private key kept here, in memory).
 * It passes the same contract suite as Pkcs11Hsm on SoftHSM2 (test/helpers/hsm-contract.ts),
 * so what it refuses, and in which order, is what the real token refuses.
 */
import {
  constants,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  privateDecrypt,
  sign as edSign,
  verify as edVerify,
  type KeyObject,
} from "node:crypto";
import { sign as cryptoSign } from "node:crypto";
import { CustosError } from "../../src/errors.js";
import { algorithmSpec, type EddsaAlgorithm, type SigningAlgorithm } from "../../src/hsm/algorithms.js";
import { checkpointStatement, type CheckpointHead } from "../../src/hsm/checkpoint-statement.js";
import { ENVELOPE_FORMAT, spkiFingerprint, type ImportEnvelope } from "../../src/hsm/envelope.js";
import type { AuditCheckpointSigner, Hsm, HsmStatus, SecretObjectRef, WrappingKeyInfo } from "../../src/hsm/hsm.js";

/** The audit checkpoint key's CKA_ID on a real token. */
export const CHECKPOINT_KEY_ID = "custos-audit-checkpoint-v1";
/** The RSA wrapping key's CKA_ID on a real token. */
const WRAPPING_KEY_ID = "custos-wrapping-key-v1";

/** An object as the fake models it: the attributes Pkcs11Hsm's templates set on the real token. */
export interface FakeObject {
  class: "secret" | "private" | "public";
  token: boolean;
  /** Private and secret objects only (public keys have no CKA_SENSITIVE). */
  sensitive?: boolean;
  extractable?: boolean;
  /** Usage: sign (secret/private) or verify (public) only. */
  usage: "sign" | "verify";
}

const SECRET: FakeObject = { class: "secret", token: true, sensitive: true, extractable: false, usage: "sign" };
const PRIVATE: FakeObject = { class: "private", token: true, sensitive: true, extractable: false, usage: "sign" };
const PUBLIC: FakeObject = { class: "public", token: true, usage: "verify" };

/** DER SPKI prefix of an Ed25519 public key (RFC 8410), as Pkcs11Hsm checks it. */
const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

export class FakeHsm implements Hsm, AuditCheckpointSigner {
  /** objectId → secret. */
  readonly objects = new Map<string, Buffer>();
  /** objectId → generated Ed25519 key pair. */
  readonly keyPairs = new Map<string, { publicKey: KeyObject; privateKey: KeyObject }>();
  /** Every call, in order: "sign:ID", "unwrap:ID", "generate:ID", "destroy:ID". */
  readonly calls: string[] = [];
  /** When set, sign, unwrapSecret and generateKeyPair throw HSM_UNAVAILABLE (sessions lost). */
  down = false;
  private rsa: { publicKey: KeyObject; privateKey: KeyObject } | undefined;
  private checkpointKey: { publicKey: KeyObject; privateKey: KeyObject } | undefined;

  constructor(private readonly oaepHash: "sha1" | "sha256" = "sha256") {}

  /** Puts a secret on the "token" directly (what a completed import leaves behind). */
  put(objectId: string, secret: Buffer): void {
    this.objects.set(objectId, Buffer.from(secret));
  }

  async sign(objectId: string, algorithm: SigningAlgorithm, data: Uint8Array): Promise<Buffer> {
    this.calls.push(`sign:${objectId}`);
    this.failIfDown("C_Sign");
    const spec = algorithmSpec(algorithm);
    const secret = this.objects.get(objectId);
    const pair = this.keyPairs.get(objectId);
    if (!secret && !pair) throw new CustosError("HSM_ERROR", `C_SignInit: no object ${objectId}`);
    // As the HSM: a mechanism that does not fit the key type fails at C_SignInit.
    if (spec.kind === "hmac" && secret) {
      // As SoftHSM2 at C_SignInit: an HMAC key shorter than the hash's minimum is refused.
      if (secret.length < spec.minKeyBytes) throw new CustosError("HSM_KEY_SIZE", "C_SignInit: CKR_KEY_SIZE_RANGE");
      return createHmac(spec.nodeHash, secret).update(data).digest();
    }
    if (spec.kind === "eddsa" && pair) return edSign(null, data, pair.privateKey);
    throw new CustosError("HSM_ERROR", `C_SignInit: CKR_KEY_TYPE_INCONSISTENT (${algorithm} with object ${objectId})`);
  }

  async generateKeyPair(algorithm: EddsaAlgorithm, target: SecretObjectRef): Promise<{ spkiDer: Buffer }> {
    this.calls.push(`generate:${target.objectId}`);
    await Promise.resolve();
    this.failIfDown("C_GenerateKeyPair");
    if (algorithmSpec(algorithm).kind !== "eddsa") throw new CustosError("INVALID_ARGUMENT", `cannot generate a ${algorithm} key pair`);
    if (this.idTaken(target.objectId)) throw new CustosError("KEY_EXISTS", `an HSM object with id ${target.objectId} already exists`);
    const pair = generateKeyPairSync("ed25519");
    this.keyPairs.set(target.objectId, pair);
    return { spkiDer: pair.publicKey.export({ type: "spki", format: "der" }) };
  }

  async publicKey(objectId: string): Promise<Buffer | undefined> {
    return this.keyPairs.get(objectId)?.publicKey.export({ type: "spki", format: "der" });
  }

  async unwrapSecret(envelope: ImportEnvelope, target: SecretObjectRef): Promise<void> {
    this.calls.push(`unwrap:${target.objectId}`);
    await Promise.resolve(); // a round trip: concurrent callers interleave here, not mid-unwrap
    this.failIfDown("C_UnwrapKey");
    this.checkEnvelope(envelope);
    // Like Pkcs11Hsm: never a second object under one CKA_ID (custody relies on this).
    if (this.idTaken(target.objectId)) throw new CustosError("KEY_EXISTS", `an HSM object with id ${target.objectId} already exists`);
    const { privateKey } = this.keyPair();
    let secret: Buffer;
    try {
      const aesKey = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: envelope.oaepHash }, envelope.encryptedAesKey);
      const d = createDecipheriv("id-aes256-wrap-pad", aesKey, Buffer.from("a65959a6", "hex"));
      secret = Buffer.concat([d.update(envelope.wrappedKey), d.final()]);
    } catch (e) {
      throw new CustosError("ENVELOPE_INVALID", "import envelope does not open", { cause: e });
    }
    this.objects.set(target.objectId, secret);
  }

  /** Opens the envelope into a node:crypto Ed25519 key, checked against `publicKeySpki` like Pkcs11Hsm's pair check. */
  async unwrapPrivateKey(algorithm: EddsaAlgorithm, envelope: ImportEnvelope, target: SecretObjectRef, publicKeySpki: Buffer): Promise<void> {
    this.calls.push(`unwrap-private:${target.objectId}`);
    await Promise.resolve();
    this.failIfDown("C_UnwrapKey");
    if (algorithmSpec(algorithm).kind !== "eddsa") throw new CustosError("INVALID_ARGUMENT", `cannot import a ${algorithm} private key`);
    this.checkEnvelope(envelope);
    if (this.idTaken(target.objectId)) throw new CustosError("KEY_EXISTS", `an HSM object with id ${target.objectId} already exists`);
    let privateKey: KeyObject;
    try {
      const aesKey = privateDecrypt(
        { key: this.keyPair().privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: envelope.oaepHash },
        envelope.encryptedAesKey,
      );
      const d = createDecipheriv("id-aes256-wrap-pad", aesKey, Buffer.from("a65959a6", "hex"));
      privateKey = createPrivateKey({ key: Buffer.concat([d.update(envelope.wrappedKey), d.final()]), format: "der", type: "pkcs8" });
    } catch (e) {
      throw new CustosError("ENVELOPE_INVALID", "import envelope does not open", { cause: e });
    }
    if (publicKeySpki.length !== ED25519_SPKI_PREFIX.length + 32 || !publicKeySpki.subarray(0, ED25519_SPKI_PREFIX.length).equals(ED25519_SPKI_PREFIX)) {
      throw new CustosError("INVALID_ARGUMENT", "the public key is not an Ed25519 SubjectPublicKeyInfo");
    }
    const publicKey = createPublicKey({ key: publicKeySpki, format: "der", type: "spki" });
    const challenge = Buffer.from("pair check");
    if (privateKey.asymmetricKeyType !== "ed25519" || !edVerify(null, challenge, publicKey, edSign(null, challenge, privateKey))) {
      throw new CustosError("ENVELOPE_INVALID", "the wrapped private key does not match the proposal's public key");
    }
    this.keyPairs.set(target.objectId, { publicKey, privateKey });
  }

  async hasSecret(objectId: string): Promise<boolean> {
    return this.has(objectId);
  }

  async listSecretIds(): Promise<string[]> {
    return [...this.objects.keys(), ...this.keyPairs.keys()];
  }

  async destroySecret(objectId: string): Promise<void> {
    this.calls.push(`destroy:${objectId}`);
    this.objects.delete(objectId);
    this.keyPairs.delete(objectId);
  }

  private has(objectId: string): boolean {
    return this.objects.has(objectId) || this.keyPairs.has(objectId);
  }

  /** Like Pkcs11Hsm's check before it creates: any token object under the CKA_ID (the token's own keys too). */
  private idTaken(objectId: string): boolean {
    return this.has(objectId) || objectId === CHECKPOINT_KEY_ID || objectId === WRAPPING_KEY_ID;
  }

  /** The objects under this CKA_ID, with the attributes the real token's templates give them. */
  objectsWithId(objectId: string): FakeObject[] {
    if (this.objects.has(objectId)) return [SECRET];
    if (this.keyPairs.has(objectId) || objectId === CHECKPOINT_KEY_ID || objectId === WRAPPING_KEY_ID) return [PRIVATE, PUBLIC];
    return [];
  }

  /** How many objects the fake holds (a failed call must not change it). */
  objectCount(): number {
    return this.objects.size + 2 * this.keyPairs.size + 4; // + the checkpoint and wrapping key pairs
  }

  async checkpointPublicKey(): Promise<Buffer> {
    return this.checkpointPair().publicKey.export({ type: "spki", format: "der" });
  }

  /** ECDSA P-256 over the statement's SHA-256, r‖s: what Pkcs11Hsm's CKM_ECDSA over checkpointDigest gives. */
  async signCheckpoint(head: CheckpointHead): Promise<Buffer> {
    return cryptoSign("sha256", checkpointStatement(head), { key: this.checkpointPair().privateKey, dsaEncoding: "ieee-p1363" });
  }

  /** As Pkcs11Hsm, before it touches the token: format, wrapping key and OAEP hash. */
  private checkEnvelope(envelope: ImportEnvelope): void {
    const wrapping = this.wrappingKey();
    if (envelope.format !== ENVELOPE_FORMAT) throw new CustosError("ENVELOPE_INVALID", `unknown envelope format ${JSON.stringify(envelope.format)}`);
    if (envelope.wrappingKeyFingerprint !== wrapping.fingerprint) throw new CustosError("ENVELOPE_INVALID", "envelope was made for another wrapping key");
    if (envelope.oaepHash !== wrapping.oaepHash) throw new CustosError("ENVELOPE_INVALID", `this HSM unwraps OAEP with ${wrapping.oaepHash} only`);
  }

  private checkpointPair() {
    return (this.checkpointKey ??= generateKeyPairSync("ec", { namedCurve: "P-256" }));
  }

  wrappingKey(): WrappingKeyInfo {
    const { publicKey } = this.keyPair();
    return {
      spkiPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
      fingerprint: spkiFingerprint(publicKey.export({ type: "spki", format: "der" })),
      oaepHash: this.oaepHash,
    };
  }

  check(): void {}

  status(): HsmStatus {
    return { ready: !this.down, dispatch: "async", sessions: 1, sessionsInUse: 0, waiters: 0 };
  }

  async close(): Promise<void> {}

  private failIfDown(op: string): void {
    if (this.down) throw new CustosError("HSM_UNAVAILABLE", `${op}: CKR_SESSION_HANDLE_INVALID`, { retryable: true });
  }

  /** Generated on first use: tests that only sign skip the RSA key generation. */
  private keyPair() {
    return (this.rsa ??= generateKeyPairSync("rsa", { modulusLength: 2048 }));
  }
}
