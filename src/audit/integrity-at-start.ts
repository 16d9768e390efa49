import { createPublicKey } from "node:crypto";
import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { CustosError } from "../errors.js";
import { spkiFingerprint } from "../hsm/envelope.js";
import type { AuditCheckpointSigner } from "../hsm/hsm.js";
import type { StoreSlice } from "../store/store.js";
import type { AuditLog } from "./audit-log.js";
import { CHECKPOINT_KEY_FILE, checkpointFilePath, type Checkpoint } from "./checkpoint.js";
import { REWIND_ACCEPTED } from "./checkpoint-verify.js";
import { checkAgainstCheckpoints, type AuditRewind } from "./rewind-check.js";

export interface AuditIntegrity {
  /** The newest checkpoint the database still reaches (absent before the first one). */
  newest?: Checkpoint;
  /** A rewind the operator accepted (`--accept-audit-rewind`); record it with recordAcceptedRewind. */
  acceptedRewind?: AuditRewind;
  keyFingerprint: string;
}

/**
 * Before custos serves: publishes the checkpoint public key in the data dir and compares the
 * database's audit chain with its newest checkpoints. A shortened or rewritten chain, or a
 * checkpoint that does not verify, throws AUDIT_REWOUND / AUDIT_CHECKPOINT_INVALID unless the
 * operator accepts it by name (`acceptRewind`).
 */
export async function checkAuditIntegrity(
  dataDir: string,
  store: StoreSlice<"audit">,
  signer: AuditCheckpointSigner,
  acceptRewind: boolean,
): Promise<AuditIntegrity> {
  const spki = await signer.checkpointPublicKey();
  const publicKey = createPublicKey({ key: spki, format: "der", type: "spki" });
  const published = join(dataDir, CHECKPOINT_KEY_FILE);
  // A temp file per process: replicas starting together on one data dir publish the same key side by side.
  const tmp = `${published}.${process.pid}.tmp`;
  writeFileSync(tmp, publicKey.export({ type: "spki", format: "pem" }).toString(), { mode: 0o644 });
  renameSync(tmp, published);
  const keyFingerprint = spkiFingerprint(spki);
  const { rewind, newest } = await checkAgainstCheckpoints(store, checkpointFilePath(dataDir), publicKey);
  if (rewind && !acceptRewind) {
    throw new CustosError(
      rewind.code,
      `refusing to serve: ${rewind.problem}; the database's chain ends at event ${rewind.database.seq}. ` +
        "Restore the database, or accept this state with `custos serve --accept-audit-rewind` (audited)",
    );
  }
  return { ...(newest ? { newest } : {}), ...(rewind ? { acceptedRewind: rewind } : {}), keyFingerprint };
}

/** The audit event of an accepted rewind: what the checkpoint said, what the database holds, and why they differ. */
export async function recordAcceptedRewind(audit: AuditLog, rewind: AuditRewind, logger: Logger): Promise<void> {
  const c = rewind.checkpoint;
  logger.warn({ event: REWIND_ACCEPTED, reason: rewind.code }, `serving on an audit chain the operator accepted: ${rewind.problem}`);
  await audit.recordNow({
    kind: REWIND_ACCEPTED,
    actor: "operator",
    outcome: "ok",
    reason: rewind.code,
    details: {
      problem: rewind.problem,
      databaseSeq: rewind.database.seq,
      databaseHash: rewind.database.hash,
      ...(c ? { checkpointSeq: c.seq, checkpointHash: c.hash, checkpointAt: c.at, checkpointSource: c.source } : {}),
    },
  });
}
