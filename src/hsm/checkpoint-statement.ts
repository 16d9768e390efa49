import { createHash, createPublicKey, verify, type KeyObject } from "node:crypto";

/**
 * What the HSM's audit checkpoint key signs, and nothing else: a fixed, domain-separated
 * statement about the audit chain's head. The key is reachable only through
 * `AuditCheckpointSigner.signCheckpoint`, which builds this statement itself, so the key
 * cannot be made to sign caller-chosen bytes.
 */

/** The chain head a checkpoint attests: its last event's seq and hash, and when it was signed. */
export interface CheckpointHead {
  seq: number;
  /** Hex SHA-256 chain hash of event `seq` (the genesis hash for an empty chain). */
  hash: string;
  /** ISO 8601 UTC time of signing. */
  at: string;
}

const CONTEXT = "custos.audit-checkpoint.v1";

/** The signed statement's bytes. Refuses heads that could be ambiguous in this encoding. */
export function checkpointStatement(head: CheckpointHead): Buffer {
  if (!Number.isSafeInteger(head.seq) || head.seq < 0) throw new RangeError("checkpoint seq must be a non-negative integer");
  if (!/^[0-9a-f]{64}$/.test(head.hash)) throw new RangeError("checkpoint hash must be 64 lowercase hex digits");
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(head.at)) throw new RangeError("checkpoint time must be ISO 8601 UTC with milliseconds");
  return Buffer.from(`${CONTEXT}\n${head.seq}\n${head.hash}\n${head.at}\n`);
}

/** SHA-256 of the statement: what CKM_ECDSA signs (the HSM signs a digest computed outside it). */
export function checkpointDigest(head: CheckpointHead): Buffer {
  return createHash("sha256").update(checkpointStatement(head)).digest();
}

/** True if `signature` (ECDSA P-256 r‖s, 64 bytes) is the checkpoint key's signature of `head`. */
export function verifyCheckpointSignature(head: CheckpointHead, signature: Buffer, publicKey: KeyObject): boolean {
  let statement: Buffer;
  try {
    statement = checkpointStatement(head);
  } catch {
    return false;
  }
  return signature.length === 64 && verify("sha256", statement, { key: publicKey, dsaEncoding: "ieee-p1363" }, signature);
}

/** The P-256 public key from its uncompressed point (04 ‖ X ‖ Y), as the token's CKA_EC_POINT holds it. */
export function p256PublicKey(point: Buffer): KeyObject {
  // CKA_EC_POINT comes DER-wrapped (04 41 04 …) from SoftHSM2; some tokens give the bare point.
  const raw = point.length === 67 && point[0] === 0x04 && point[1] === 0x41 ? point.subarray(2) : point;
  if (raw.length !== 65 || raw[0] !== 0x04) throw new RangeError(`unexpected P-256 CKA_EC_POINT (${point.length} bytes)`);
  return createPublicKey({
    key: { kty: "EC", crv: "P-256", x: raw.subarray(1, 33).toString("base64url"), y: raw.subarray(33).toString("base64url") },
    format: "jwk",
  });
}
