/**
 * Throwaway PostgreSQL clusters for tests and the bench: `initdb` in a temp directory, one
 * `postgres` process listening on loopback only (a random port), stopped and deleted at the
 * end. Debian's PostgreSQL binaries (hsm/bootstrap.sh installs `postgresql` in test and bench
 * mode); the system's own cluster is never touched. PostgreSQL refuses to run as root, so
 * under root the cluster is owned by and run as the `postgres` user the package creates.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

/** A running cluster: `url` names a fresh database in it. */
export interface TestPostgres {
  /** postgres://…@127.0.0.1:PORT/DB — trust authentication, loopback only. */
  readonly url: string;
  readonly port: number;
  /** Another fresh, empty database in the same cluster. */
  createDatabase(name: string): Promise<string>;
  /** Fast shutdown (connections are cut, nothing committed is lost). */
  stopServer(): void;
  /** Starts the stopped server again on the same port and data. */
  startServer(): void;
  /** Stops the server and deletes the cluster. Idempotent. */
  close(): void;
}

/** The newest installed PostgreSQL's bin directory. */
export function postgresBin(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, "bin", "initdb"))) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (!newest) throw new Error("PostgreSQL is not installed: run `bash hsm/bootstrap.sh test` (it installs Debian's postgresql)");
  return join(root, newest, "bin");
}

/** Starts a throwaway cluster and creates database `db` in it. */
export async function startPostgres(db = "custos"): Promise<TestPostgres> {
  const bin = postgresBin();
  const dir = mkdtempSync(join(tmpdir(), "custos-pg-"));
  const data = join(dir, "data");
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? Number(execFileSync("id", ["-u", "postgres"]).toString().trim()) : undefined;
  const group = asRoot ? Number(execFileSync("id", ["-g", "postgres"]).toString().trim()) : undefined;
  if (owner !== undefined && group !== undefined) {
    chmodSync(dir, 0o700);
    chownSync(dir, owner, group);
  }
  const run = (tool: string, args: string[]): void => {
    const [cmd, argv] = asRoot ? ["runuser", ["-u", "postgres", "--", join(bin, tool), ...args]] : [join(bin, tool), args];
    const r = spawnSync(cmd, argv, { encoding: "utf8", cwd: dir });
    if (r.status !== 0) throw new Error(`${tool} failed (${r.status}): ${r.stderr || r.stdout}`);
  };
  run("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"]);
  const port = await freePort();
  // Loopback only, sockets inside the cluster's directory, no fsync (a test cluster dies with its run).
  const conf = [
    "listen_addresses = '127.0.0.1'",
    `port = ${port}`,
    `unix_socket_directories = '${dir}'`,
    "fsync = off",
    "full_page_writes = off",
    "max_connections = 200",
    "log_min_messages = warning",
  ];
  writeFileSync(join(data, "postgresql.auto.conf"), `${conf.join("\n")}\n`);
  if (owner !== undefined && group !== undefined) chownSync(join(data, "postgresql.auto.conf"), owner, group);
  const logFile = join(dir, "server.log");
  const start = (): void => run("pg_ctl", ["-D", data, "-l", logFile, "-w", "-t", "60", "start"]);
  const stop = (): void => run("pg_ctl", ["-D", data, "-m", "fast", "-w", "-t", "60", "stop"]);
  start();
  let running = true;
  const base = `postgres://postgres@127.0.0.1:${port}`;
  const createDatabase = async (name: string): Promise<string> => {
    const admin = new pg.Client({ connectionString: `${base}/postgres` });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE "${name.replace(/"/g, "")}"`);
    } finally {
      await admin.end();
    }
    return `${base}/${name}`;
  };
  const url = await createDatabase(db);
  return {
    url,
    port,
    createDatabase,
    stopServer() {
      if (running) stop();
      running = false;
    },
    startServer() {
      if (!running) start();
      running = true;
    },
    close() {
      if (running) {
        try {
          stop();
        } catch {
          // already gone: the directory is removed below anyway
        }
      }
      running = false;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
