import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { AuditRecord } from "../../src/audit/audit-log.js";
import { PgStore } from "../../src/store/postgres/pg-store.js";
import {
  cliOk,
  createOfficer,
  lastLine,
  officerArgs,
  runCli,
  spawnService,
  tempDir,
  writeConfiguredDeployment,
  type ChildService,
  type CliOfficer,
} from "../helpers/harness.js";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";

/**
 * Two `custos serve` processes on one data dir (token, PKI, PINs) and one PostgreSQL database,
 * each on its own ports: replicas of one deployment. A key imported through one signs through
 * both (the other after a restart: live propagation is the change feed's part), and both
 * append to the one audit chain that `custos audit verify` accepts.
 */
const KEY = "bybit-main";
const ALPHA = "spiffe://custos/engine/alpha";
const SECRET = "replicated-deployment-secret-0123456789abcdef";
const hmac = (payload: string) => createHmac("sha256", SECRET).update(payload).digest("hex");
const PASSWORD = "replica-db-password-4f1c";

describe("replicas on PostgreSQL", () => {
  const dir = tempDir("custos-replicas-");
  let cluster: TestPostgres;
  let env: NodeJS.ProcessEnv;
  let first: ChildService | undefined;
  let second: ChildService | undefined;
  let officers: [CliOfficer, CliOfficer, CliOfficer];
  let fingerprint: string;
  let alpha: string[];
  let ops: string[];

  before(async () => {
    cluster = await startPostgres();
    // The URL from the environment, as a deployment hands it over (never argv), with a password
    // (the test cluster trusts loopback and ignores it) that must appear nowhere custos writes.
    env = { CUSTOS_POSTGRES_URL: cluster.url.replace("postgres@", `postgres:${PASSWORD}@`) };
    const made = await writeConfiguredDeployment(dir, { audit: { flushIntervalMs: 50 } });
    fingerprint = made.fingerprint;
    alpha = ["--cert", join(made.pki, "alpha.crt"), "--cert-key", join(made.pki, "alpha.key")];
    ops = ["--cert", join(made.pki, "ops.crt"), "--cert-key", join(made.pki, "ops.key")];
  });
  after(async () => {
    await first?.stop();
    await second?.stop();
    cluster?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Approves proposal `id` as `officer` on the replica at `address`; returns what the CLI printed last (pending / executed). */
  const approve = async (id: string, officer: CliOfficer, address: string) =>
    cliOk(
      await runCli([
        "proposal",
        "approve",
        id,
        ...officerArgs(dir, officer),
        "--address",
        address,
        "--officer-key",
        officer.keyPath,
        "--passphrase-file",
        officer.passphraseFile,
      ]),
      `approve ${id}`,
    );
  /** Proposes on `address` as alice, approved by bob and carol (2 of 3); the change executes there. */
  const pass = async (args: string[], address: string, input?: string): Promise<void> => {
    const [alice, bob, carol] = officers;
    const id = cliOk(await runCli([...args, ...officerArgs(dir, alice), "--address", address], input === undefined ? {} : { input }), args.join(" "));
    assert.equal(await approve(id, bob, address), "pending");
    assert.equal(await approve(id, carol, address), "executed");
  };
  const sign = (address: string, payload: string) => runCli(["sign", "--data-dir", dir, ...alpha, "--address", address, "--key", KEY, "--payload", payload]);

  it("starts two replicas side by side on one data dir (no SQLite lock) and governs through them", { timeout: 240_000 }, async () => {
    first = await spawnService(dir, env);
    second = await spawnService(dir, env);
    assert.notEqual(first.conn.grpc, second.conn.grpc, "each replica on its own ports");
    assert.equal(existsSync(join(dir, "custos.db")), false, "no SQLite database: the store is PostgreSQL");
    assert.equal(existsSync(join(dir, "custos.lock")), false, "no SQLite data-dir lock");

    const keys = join(dir, "officers");
    mkdirSync(keys, { mode: 0o700 });
    officers = [await createOfficer(dir, "alice", keys), await createOfficer(dir, "bob", keys), await createOfficer(dir, "carol", keys)];
    // Governance set through the first replica; the second, started before it, is refused by the shared store.
    const officerFlags = officers.flatMap((o) => ["--officer", `${o.name}=${o.publicKeyPath}`]);
    cliOk(
      await runCli(["governance", "init", "--data-dir", dir, ...ops, "--address", first.conn.grpc, ...officerFlags, "--threshold", "2"]),
      "governance init",
    );
    const again = await runCli(["governance", "init", "--data-dir", dir, ...ops, "--address", second.conn.grpc, ...officerFlags, "--threshold", "1"]);
    assert.match(again.stderr, /ALREADY_EXISTS \(GOVERNANCE_EXISTS\)/);

    await pass(["key", "import", "--key", KEY, "--raw", "--fingerprint", fingerprint], first.conn.grpc, SECRET);
    await pass(["client", "add", ALPHA, "--cidr", "127.0.0.1/32"], first.conn.grpc);
    await pass(["client", "grant", ALPHA, "--key", KEY], first.conn.grpc);
    const payload = "category=linear&symbol=BTCUSDT&side=Buy";
    assert.equal(lastLine(cliOk(await sign(first.conn.grpc, payload), "sign on the first replica")), hmac(payload));
  });

  it("the other replica signs with the key after a restart, and both write to one chain that audit verify accepts", { timeout: 240_000 }, async () => {
    assert.ok(first && second);
    // The second replica learns of the key, client and grant from the shared store when it starts again.
    assert.equal(await second.stop(), 0);
    second = await spawnService(dir, env);
    const payload = "category=linear&symbol=ETHUSDT&side=Sell";
    assert.equal(lastLine(cliOk(await sign(second.conn.grpc, payload), "sign on the second replica")), hmac(payload));
    assert.equal(lastLine(cliOk(await sign(first.conn.grpc, payload), "sign on the first replica")), hmac(payload));

    // Verified while both serve (PostgreSQL has no data-dir lock), then after both stopped.
    const running = await runCli(["audit", "verify", "--data-dir", dir], { env });
    assert.equal(running.code, 0, running.stderr);
    const grpcOf = [first.conn.grpc, second.conn.grpc];
    for (const replica of [first, second]) {
      const metrics = await (await fetch(`${replica.conn.http}/metrics`)).text();
      assert.ok(metrics.includes("custos_"), "metrics answered");
      assert.ok(!metrics.includes(PASSWORD), "the database password is not in the metrics");
    }
    assert.equal(await first.stop(), 0);
    assert.equal(await second.stop(), 0);
    for (const replica of [first, second]) {
      assert.match(replica.stdout(), /"event":"store\.postgres"/, "the replica logs which database it uses");
      assert.ok(!replica.stdout().includes(PASSWORD) && !replica.stderr().includes(PASSWORD), "the database password is never logged");
    }
    first = second = undefined;
    const verified = await runCli(["audit", "verify", "--data-dir", dir], { env });
    assert.equal(verified.code, 0, verified.stderr);
    assert.match(verified.stdout, /^audit chain ok: \d+ events, head [0-9a-f]{64}$/m);

    const store = await PgStore.open(cluster.url);
    try {
      const events = (await store.audit.readAudit(0, 100_000)).map((e) => JSON.parse(e.body) as AuditRecord);
      const startedAt = new Set(events.filter((e) => e.kind === "service.start").map((e) => String(e.details?.grpc)));
      for (const address of grpcOf) assert.ok(startedAt.has(address), `the replica at ${address} wrote its service.start to the chain`);
      const signs = events.filter((e) => e.kind === "sign" && e.outcome === "allowed" && e.key === KEY);
      assert.equal(signs.length, 3, "every signature of both replicas is in the one chain");
      assert.deepEqual(
        events.map((e) => e.seq),
        events.map((_, i) => i + 1),
      );
    } finally {
      await store.close();
    }
  });

  it("refuses to start when PostgreSQL is unreachable, naming the setting and not the password", { timeout: 60_000 }, async () => {
    const down = await startPostgres();
    const url = down.url.replace("postgres@", "postgres:hunter2-secret@");
    down.close();
    const refused = await spawnService(dir, { CUSTOS_POSTGRES_URL: url }).then(
      async (s) => {
        await s.stop();
        return undefined;
      },
      (e: unknown) => String(e),
    );
    assert.ok(refused, "the start failed");
    assert.match(refused, /STORE_ERROR/);
    assert.match(refused, /CUSTOS_POSTGRES_URL/);
    assert.ok(!refused.includes("hunter2-secret"), "the password is never printed");
  });
});
