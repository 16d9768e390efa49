import { existsSync } from "node:fs";
import type { Command } from "commander";
import { loadConfig } from "../config/config.js";
import { postgresSetting } from "../config/config-sections.js";
import { CustosError } from "../errors.js";
import { CliError, dataDirOf } from "./context.js";
import { Progress } from "./progress.js";

/** `custos store migrate --to URL`: a SQLite deployment's whole state moved to PostgreSQL. */
export function registerStoreCommands(program: Command): void {
  const store = program.command("store").description("the database custos keeps its state in");
  store
    .command("migrate")
    .description("copy a stopped SQLite deployment (keys, clients, grants, governance, console state, the whole audit chain) into an empty PostgreSQL database")
    .option("--data-dir <dir>", "data directory (default $CUSTOS_DATA_DIR or ./.custos)")
    .option("--to <url>", "the PostgreSQL database (default $CUSTOS_POSTGRES_URL; prefer it when the URL has a password: argv is visible)")
    .action(async (o: { dataDir?: string; to?: string }) => {
      const config = loadConfig(dataDirOf(o));
      const url = o.to ?? process.env.CUSTOS_POSTGRES_URL;
      if (!url) throw new CliError("name the PostgreSQL database: --to URL or $CUSTOS_POSTGRES_URL");
      postgresSetting(url, o.to ? "--to" : "CUSTOS_POSTGRES_URL");
      if (!existsSync(config.store.sqlitePath)) throw new CliError(`no SQLite database at ${config.store.sqlitePath}: nothing to migrate`);
      const { lockDataDir } = await import("../store/sqlite/data-dir-lock.js");
      const { moveSqliteToPostgres, STORE_TABLES } = await import("../store/migrate-to-postgres.js");
      const { redactPostgresUrl } = await import("../store/postgres/pg-url.js");
      // custos must be stopped: the serve lock is held while copying, so none can start meanwhile.
      const lock = withCode(() => lockDataDir(config.dataDir));
      try {
        const progress = new Map<string, Progress>();
        const report = await moveSqliteToPostgres(config.store.sqlitePath, url, (table, done, total) => {
          let p = progress.get(table);
          if (!p) progress.set(table, (p = new Progress(`copying ${table}`, total)));
          p.update(done);
          if (done === total) p.done();
        }).catch((e: unknown) =>
          withCode(() => {
            throw e;
          }),
        );
        console.log(`moved ${config.store.sqlitePath} to ${redactPostgresUrl(url)}`);
        for (const table of STORE_TABLES) console.log(`  ${table}\t${report.rows[table]}`);
        const head = report.auditHead;
        console.log(head ? `audit chain: ${head.seq} events, head ${head.hash}` : "audit chain: empty");
        console.log("serve it with CUSTOS_POSTGRES_URL (or store.postgres in custos.json); the SQLite file is left as it was");
      } finally {
        lock.release();
      }
    });
}

/** `fn`'s result; a typed error it throws is printed with its code (scripts and tests switch on it). */
function withCode<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof CustosError) throw new CliError(`${e.code}: ${e.message}`);
    throw e;
  }
}
