import { createHash, type Hash } from "node:crypto";

/**
 * A fresh SHA-256 context, copied from a template rather than created. Node 20's
 * createHash() makes OpenSSL 3.0 fetch the digest implementation on every call, under
 * process-wide locks that the event loop's TLS and SoftHSM2 (which shares Node's OpenSSL)
 * take too; at tens of thousands of audit digests a second on the writer thread, that
 * contention cost the stream load ~10 % of its throughput (bench/README.md). A copy skips
 * the fetch. The template is never updated or finalised.
 */
const TEMPLATE = createHash("sha256");

export function sha256(): Hash {
  return TEMPLATE.copy();
}

export function sha256Hex(data: Uint8Array | string): string {
  return TEMPLATE.copy().update(data).digest("hex");
}
