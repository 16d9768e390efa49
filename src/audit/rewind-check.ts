import type { KeyObject } from "node:crypto";
import type { StoreSlice } from "../store/store.js";
import { GENESIS_HASH } from "./chain.js";
import { checkpointSignatureOk, readCheckpointFile, type Checkpoint, type CheckpointSource } from "./checkpoint.js";

/** Why the database's audit chain cannot be served as it is. */
export interface AuditRewind {
  code: "AUDIT_REWOUND" | "AUDIT_CHECKPOINT_INVALID";
  /** One sentence naming the checkpoint and the event. */
  problem: string;
  /** The checkpoint the database fails, if one could be read. */
  checkpoint?: Checkpoint & { source: CheckpointSource };
  /** The database's chain head. */
  database: { seq: number; hash: string };
}

/**
 * The start-up check: the newest checkpoint in the file and in the database must verify with the
 * HSM's checkpoint key, and the database's chain must still hold the event each attests, with
 * the same hash and no event missing before it. Cheap (a few indexed reads and one count); the
 * full walk of every link is `custos audit verify`. Returns the newest checkpoint when all is well.
 */
export async function checkAgainstCheckpoints(
  store: StoreSlice<"audit">,
  filePath: string,
  publicKey: KeyObject,
): Promise<{ rewind?: AuditRewind; newest?: Checkpoint }> {
  const last = await store.audit.lastAudit();
  const database = { seq: last?.seq ?? 0, hash: last?.hash ?? GENESIS_HASH };
  const file = readCheckpointFile(filePath) ?? [];
  const stored = await store.audit.listCheckpoints();
  if (file.length === 0 && stored.length > 0) {
    return {
      rewind: {
        code: "AUDIT_REWOUND",
        problem: `the checkpoint file ${filePath} is missing or empty, but the database holds ${stored.length} checkpoints`,
        database,
      },
    };
  }
  const newestInFile = file.at(-1);
  if (newestInFile === "malformed") {
    return { rewind: { code: "AUDIT_CHECKPOINT_INVALID", problem: `the last line of ${filePath} is not a checkpoint`, database } };
  }
  const candidates: Array<Checkpoint & { source: CheckpointSource }> = [];
  if (newestInFile) candidates.push({ ...newestInFile, source: "file" });
  if (stored.length > 0) candidates.push({ ...stored.at(-1)!, source: "database" });
  for (const c of candidates) {
    const named = `the checkpoint of event ${c.seq} signed at ${c.at} (${c.source})`;
    if (!checkpointSignatureOk(c, publicKey)) {
      return { rewind: { code: "AUDIT_CHECKPOINT_INVALID", problem: `${named} does not verify with the HSM's checkpoint key`, checkpoint: c, database } };
    }
    const problem = await reachProblem(store, c, database.seq);
    if (problem) return { rewind: { code: "AUDIT_REWOUND", problem: `${named}: ${problem}`, checkpoint: c, database } };
  }
  const newest = candidates.sort((a, b) => a.at.localeCompare(b.at)).at(-1);
  return newest ? { newest } : {};
}

/** Why the stored chain does not reach checkpoint `c` (undefined if it does). */
export async function reachProblem(store: StoreSlice<"audit">, c: Checkpoint, databaseSeq: number): Promise<string | undefined> {
  if (c.seq === 0) return c.hash === GENESIS_HASH ? undefined : "an empty chain's checkpoint with a hash other than the genesis hash";
  const [row] = await store.audit.readAudit(c.seq - 1, 1);
  if (row?.seq !== c.seq) {
    return databaseSeq < c.seq
      ? `the database's audit chain ends at event ${databaseSeq}, shorter than the checkpoint`
      : `event ${c.seq} is missing from the database`;
  }
  if (row.hash !== c.hash) return `event ${c.seq} in the database differs from the checkpoint (rewritten)`;
  const present = await store.audit.countAudit(c.seq);
  if (present !== c.seq) return `${c.seq - present} of the events up to ${c.seq} are missing from the database`;
  return undefined;
}
