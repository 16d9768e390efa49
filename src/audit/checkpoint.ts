import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { KeyObject } from "node:crypto";
import { verifyCheckpointSignature } from "../hsm/checkpoint-statement.js";
import type { StoredCheckpoint } from "../store/store.js";

/**
 * Signed checkpoints of the audit chain's head, and the places they are kept outside the
 * database: an append-only file in the data dir (one JSON line each) and the service log.
 */

/** A checkpoint: the chain head (seq, hash), when it was signed, by which key, and the signature. */
export type Checkpoint = StoredCheckpoint;

/** Where a checkpoint was read from (verification reports it). */
export type CheckpointSource = "database" | "file" | "log";

/** The append-only checkpoint file in a data dir. */
export const CHECKPOINT_FILE = "audit-checkpoints.jsonl";
/** The checkpoint key's public half, published in the data dir (SPKI PEM). */
export const CHECKPOINT_KEY_FILE = "audit-checkpoint-key.pem";

export function checkpointFilePath(dataDir: string): string {
  return join(dataDir, CHECKPOINT_FILE);
}

/** The checkpoint's JSON line (the file's format). */
export function checkpointLine(c: Checkpoint): string {
  return JSON.stringify({ seq: c.seq, hash: c.hash, at: c.at, keyFingerprint: c.keyFingerprint, signature: c.signature }) + "\n";
}

/** A checkpoint from a parsed JSON object (a file line or a log line), or undefined if it is not one. */
export function checkpointFrom(value: unknown): Checkpoint | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.seq !== "number" || typeof v.hash !== "string" || typeof v.at !== "string" || typeof v.signature !== "string") return undefined;
  return { seq: v.seq, hash: v.hash, at: v.at, keyFingerprint: typeof v.keyFingerprint === "string" ? v.keyFingerprint : "", signature: v.signature };
}

/** Appends one line to the checkpoint file (created 0600) and syncs it to disk before returning. */
export function appendCheckpointFile(path: string, c: Checkpoint): void {
  const fd = openSync(path, "a", 0o600);
  try {
    writeSync(fd, checkpointLine(c));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** A checkpoint file's lines, in order: a checkpoint, or `malformed` for a line that is not one. */
export function readCheckpointFile(path: string): Array<Checkpoint | "malformed"> | undefined {
  if (!existsSync(path)) return undefined;
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.trim().length > 0)
    .map((l) => {
      try {
        return checkpointFrom(JSON.parse(l)) ?? "malformed";
      } catch {
        return "malformed";
      }
    });
}

/** The checkpoints in a custos log (pino JSON lines with `event: "audit.checkpoint"`); other lines are skipped. */
export function checkpointsInLog(text: string): Checkpoint[] {
  const out: Checkpoint[] = [];
  for (const line of text.split("\n")) {
    if (!line.includes('"audit.checkpoint"')) continue;
    try {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      const c = parsed.event === "audit.checkpoint" ? checkpointFrom(parsed) : undefined;
      if (c) out.push(c);
    } catch {
      /* not a JSON line */
    }
  }
  return out;
}

/** True if the checkpoint's signature verifies with the checkpoint public key. */
export function checkpointSignatureOk(c: Checkpoint, publicKey: KeyObject): boolean {
  return verifyCheckpointSignature(c, Buffer.from(c.signature, "base64"), publicKey);
}
