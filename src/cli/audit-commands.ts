import { createPublicKey, type KeyObject } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { loadConfig, withPostgresFlag, type CustosConfig } from "../config/config.js";
import { CliError, dataDirOf } from "./context.js";
import { Progress } from "./progress.js";

/**
 * `custos audit verify`: every link of the chain, every signed checkpoint (the database's, the
 * data dir's checkpoint file, and any log given), that the chain still reaches them, and the
 * governance rows against their audit events.
 */
export function registerAuditCommands(program: Command): void {
  const audit = program.command("audit").description("the hash-chained audit log");
  audit
    .command("verify")
    .description("check every link of the audit chain, its signed checkpoints, and governance rows against their events")
    .option("--data-dir <dir>", "data directory")
    .option("--log <file...>", "custos log file(s) to read audit.checkpoint lines from (a copy the database cannot rewrite)")
    .option("--public-key <file>", "checkpoint public key (SPKI PEM) kept elsewhere; default: from the HSM, else DIR/audit-checkpoint-key.pem")
    .option("--postgres <url>", "verify the chain on PostgreSQL (default $CUSTOS_POSTGRES_URL or store.postgres; prefer those: argv is visible)")
    .action(async (o: { dataDir?: string; log?: string[]; publicKey?: string; postgres?: string }) => {
      const config = withPostgresFlag(loadConfig(dataDirOf(o)), o.postgres);
      const { openConfiguredStore } = await import("../store/open-store.js");
      const { verifyAuditChain } = await import("../audit/audit-log.js");
      const { RewindAcceptances, verifyCheckpoints } = await import("../audit/checkpoint-verify.js");
      const { GovernanceAuditIndex } = await import("../audit/governance-crosscheck.js");
      const cp = await import("../audit/checkpoint.js");
      const problems: string[] = [];
      const key = await checkpointKey(config, o.publicKey, problems);

      const store = await openConfiguredStore(config.store, { readonly: true });
      try {
        const acceptances = new RewindAcceptances();
        const governance = new GovernanceAuditIndex();
        const progress = new Progress("verifying audit events", (await store.audit.lastAudit())?.seq ?? 0);
        const chain = await verifyAuditChain(store, {
          pageSize: 10_000,
          onProgress: (events) => progress.update(events),
          onPage: (page) => {
            acceptances.observe(page);
            governance.observe(page);
          },
        });
        progress.done();
        if (!chain.ok) throw new CliError(`audit chain broken at event ${chain.brokenAt}: ${chain.problem} (${chain.events} events verified before it)`);

        const found: Array<Parameters<typeof cp.checkpointLine>[0] & { source: "database" | "file" | "log" }> = [];
        for (const c of await store.audit.listCheckpoints()) found.push({ ...c, source: "database" });
        const filePath = cp.checkpointFilePath(config.dataDir);
        for (const [i, line] of (cp.readCheckpointFile(filePath) ?? []).entries()) {
          if (line === "malformed") problems.push(`line ${i + 1} of ${filePath} is not a checkpoint`);
          else found.push({ ...line, source: "file" });
        }
        for (const log of o.log ?? []) for (const c of cp.checkpointsInLog(readFileSync(log, "utf8"))) found.push({ ...c, source: "log" });

        let summary = "no checkpoints";
        if (found.length === 0) {
          // A data dir whose custos published a checkpoint key has had checkpoints: none left means they were removed.
          if (existsSync(join(config.dataDir, cp.CHECKPOINT_KEY_FILE)))
            problems.push(`no checkpoints found (database, ${filePath}), though custos has signed them here: they were removed`);
        } else if (!key) {
          problems.push("no checkpoint public key (HSM, DIR/audit-checkpoint-key.pem or --public-key) to verify the checkpoints with");
        } else {
          const report = await verifyCheckpoints(store, found, key.publicKey, acceptances);
          problems.push(...report.problems);
          for (const a of report.accepted) {
            process.stderr.write(
              `note: the checkpoint of event ${a.checkpoint.seq} signed at ${a.checkpoint.at} was given up by an operator (audit.rewind_accepted, event ${a.acceptedAt})\n`,
            );
          }
          const n = report.newest;
          summary =
            `${report.checked} checkpoints verified (key from ${key.source})` +
            (n ? `; the chain reaches the newest, event ${n.seq} signed at ${n.at} (${n.sources.join(", ")})` : "");
        }
        problems.push(...(await governance.findings(store)));
        if (problems.length > 0) throw new CliError(`audit verification failed: ${problems.join("; ")}`);
        console.log(`audit chain ok: ${chain.events} events, head ${chain.lastHash}`);
        console.log(`checkpoints ok: ${summary}`);
      } finally {
        await store.close();
      }
    });
}

/**
 * The checkpoint public key: --public-key if given; else the HSM's (when its PIN is at hand),
 * checked against the data dir's published copy; else that copy.
 */
async function checkpointKey(
  config: CustosConfig,
  file: string | undefined,
  problems: string[],
): Promise<{ publicKey: KeyObject; source: string } | undefined> {
  if (file) return { publicKey: createPublicKey(readFileSync(file)), source: file };
  const publishedPath = join(config.dataDir, "audit-checkpoint-key.pem");
  const published = existsSync(publishedPath) ? createPublicKey(readFileSync(publishedPath)) : undefined;
  let fromHsm: KeyObject | undefined;
  try {
    const { useSofthsmConf } = await import("../config/embedded.js");
    const { readSecretEnv, readSecretFile } = await import("../config/secrets.js");
    const { readCheckpointPublicKey } = await import("../hsm/index.js");
    useSofthsmConf(config);
    const pin = config.hsm.pinFile ? readSecretFile(config.hsm.pinFile) : readSecretEnv(config.hsm.pinEnv!);
    const spki = readCheckpointPublicKey(config.hsm.modulePath, config.hsm.tokenLabel, pin);
    if (spki) fromHsm = createPublicKey({ key: spki, format: "der", type: "spki" });
  } catch {
    // No PIN or no token here (e.g. verifying a copied data dir): the published copy serves.
  }
  if (fromHsm && published && !fromHsm.equals(published)) problems.push(`${publishedPath} is not the HSM's checkpoint key`);
  if (fromHsm) return { publicKey: fromHsm, source: "the HSM" };
  return published ? { publicKey: published, source: publishedPath } : undefined;
}
