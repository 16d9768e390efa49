import type { Logger } from "pino";
import { spkiFingerprint } from "../hsm/envelope.js";
import type { AuditCheckpointSigner } from "../hsm/hsm.js";
import type { StoreSlice } from "../store/store.js";
import type { AuditLog } from "./audit-log.js";
import { appendCheckpointFile, type Checkpoint } from "./checkpoint.js";
import { reachProblem } from "./rewind-check.js";

export interface CheckpointerOptions {
  audit: AuditLog;
  store: StoreSlice<"audit">;
  signer: AuditCheckpointSigner;
  /** The append-only checkpoint file (DIR/audit-checkpoints.jsonl). */
  filePath: string;
  logger: Logger;
  /** A checkpoint at least this often while the chain grows (`audit.checkpointIntervalMs`). */
  intervalMs: number;
  /** The newest checkpoint at start, so an unchanged head is not signed again. */
  last?: Checkpoint;
  /** Injected clock (tests). */
  now?: () => Date;
}

/**
 * Signs the audit chain's head with the HSM's checkpoint key and writes the checkpoint where
 * the database cannot rewrite it: the checkpoint file (fsync'd) and the log (`audit.checkpoint`),
 * as well as the database. It attests the head this process wrote, not what the database
 * now says: a database shortened under a running service then disagrees with the checkpoint,
 * and the next start refuses it.
 */
export class AuditCheckpointer {
  private last: Checkpoint | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<Checkpoint | undefined> | undefined;
  private fingerprint: string | undefined;

  constructor(private readonly opts: CheckpointerOptions) {
    this.last = opts.last;
  }

  /** Starts the periodic checkpoints. */
  start(): void {
    this.timer = setInterval(() => void this.checkpoint().catch(() => undefined), this.opts.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /**
   * Writes what is queued, then signs and records a checkpoint of the head, unless the head is
   * the last checkpoint's (`force` signs it anyway). Concurrent callers share one run.
   */
  async checkpoint(force = false): Promise<Checkpoint | undefined> {
    while (this.running) await this.running;
    this.running = this.run(force).finally(() => (this.running = undefined));
    return this.running;
  }

  private async run(force: boolean): Promise<Checkpoint | undefined> {
    const { audit, store, signer, logger } = this.opts;
    try {
      await audit.flush();
      const head = audit.head;
      if (!force && this.last && this.last.seq === head.seq && this.last.hash === head.hash) return undefined;
      this.fingerprint ??= spkiFingerprint(await signer.checkpointPublicKey());
      const at = (this.opts.now?.() ?? new Date()).toISOString();
      const signature = await signer.signCheckpoint({ ...head, at });
      const c: Checkpoint = { seq: head.seq, hash: head.hash, at, keyFingerprint: this.fingerprint, signature: signature.toString("base64") };
      // Outside the database first: the file and the log are what a rewritten database cannot change.
      appendCheckpointFile(this.opts.filePath, c);
      logger.info({ event: "audit.checkpoint", ...c }, "audit chain checkpoint signed");
      await store.audit.appendCheckpoint(c);
      this.last = c;
      await this.compareStored(c);
      return c;
    } catch (e) {
      logger.error({ event: "audit.checkpoint_failed", err: e }, "audit checkpoint failed; will retry");
      throw e;
    }
  }

  /** Says so at once if the stored chain no longer holds what this process wrote. */
  private async compareStored(c: Checkpoint): Promise<void> {
    const store = this.opts.store;
    const problem = await reachProblem(store, c, (await store.audit.lastAudit())?.seq ?? 0);
    if (!problem) return;
    this.opts.logger.error(
      { event: "audit.chain_diverged", seq: c.seq, hash: c.hash },
      `the database's audit chain no longer holds the events this service wrote (${problem}): the next start refuses it`,
    );
  }
}
