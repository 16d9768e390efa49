import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, it } from "node:test";
import {
  approveAs,
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
import { startPostgres } from "../helpers/postgres.js";

/**
 * From the embedded store to the replicated one: a configured deployment served on SQLite
 * (governance, a key, a client and its grant, signatures, an audit chain with checkpoints), then
 * `custos store migrate`, then `custos serve` on PostgreSQL signing with the same key, and
 * `custos audit verify` giving the same head on both sides.
 */
const dir = tempDir("custos-migrate-");
const cluster = await startPostgres();
let service: ChildService | undefined;
after(async () => {
  await service?.stop();
  cluster.close();
  rmSync(dir, { recursive: true, force: true });
});

const KEY = "okx-main";
const SECRET = "migrated-deployment-secret-0123456789abcdef";
const hmac = (payload: string) => createHmac("sha256", SECRET).update(payload).digest("hex");
const HEAD = /^audit chain ok: (\d+) events, head ([0-9a-f]{64})$/m;

it("moves a served SQLite deployment to PostgreSQL, which then signs with the same key and verifies with the same head", { timeout: 300_000 }, async () => {
  const { fingerprint, pki } = await writeConfiguredDeployment(dir, { audit: { flushIntervalMs: 50 } });
  const alpha = ["--data-dir", dir, "--cert", join(pki, "alpha.crt"), "--cert-key", join(pki, "alpha.key")];
  const ops = ["--data-dir", dir, "--cert", join(pki, "ops.crt"), "--cert-key", join(pki, "ops.key")];
  service = await spawnService(dir);
  const keys = join(dir, "officers");
  mkdirSync(keys, { mode: 0o700 });
  const [alice, bob, carol] = [await createOfficer(dir, "alice", keys), await createOfficer(dir, "bob", keys), await createOfficer(dir, "carol", keys)] as [
    CliOfficer,
    CliOfficer,
    CliOfficer,
  ];
  cliOk(
    await runCli(["governance", "init", ...ops, ...[alice, bob, carol].flatMap((o) => ["--officer", `${o.name}=${o.publicKeyPath}`]), "--threshold", "2"]),
    "init",
  );
  const pass = async (args: string[], input?: string) => {
    const id = cliOk(await runCli([...args, ...officerArgs(dir, alice)], input === undefined ? {} : { input }), args.join(" "));
    assert.equal(cliOk(await approveAs(dir, id, bob), "approve"), "pending");
    assert.equal(cliOk(await approveAs(dir, id, carol), "approve"), "executed");
  };
  await pass(["key", "import", "--key", KEY, "--raw", "--fingerprint", fingerprint], SECRET);
  await pass(["client", "add", "spiffe://custos/engine/alpha", "--cidr", "127.0.0.1/32"]);
  await pass(["client", "grant", "spiffe://custos/engine/alpha", "--key", KEY]);
  const before = "instId=BTC-USDT&side=buy";
  assert.equal(lastLine(cliOk(await runCli(["sign", ...alpha, "--key", KEY, "--payload", before]), "sign on SQLite")), hmac(before));

  // custos must be stopped: the serve lock refuses the move while it runs.
  const env = { CUSTOS_POSTGRES_URL: cluster.url };
  const whileServing = await runCli(["store", "migrate", "--data-dir", dir], { env });
  assert.notEqual(whileServing.code, 0);
  assert.match(whileServing.stderr, /PRECONDITION_FAILED/);
  assert.equal(await service.stop(), 0);
  service = undefined;

  const onSqlite = await runCli(["audit", "verify", "--data-dir", dir]);
  assert.equal(onSqlite.code, 0, onSqlite.stderr);
  const [, events, head] = HEAD.exec(onSqlite.stdout) ?? [];
  assert.ok(events && head, onSqlite.stdout);

  const moved = await runCli(["store", "migrate", "--data-dir", dir], { env });
  assert.equal(moved.code, 0, moved.stderr);
  assert.match(moved.stdout, new RegExp(`^audit chain: ${events} events, head ${head}$`, "m"));
  const onPostgres = await runCli(["audit", "verify", "--data-dir", dir], { env });
  assert.equal(onPostgres.code, 0, onPostgres.stderr);
  assert.deepEqual(HEAD.exec(onPostgres.stdout)?.slice(1), [events, head], "the same chain, event for event");
  assert.match(onPostgres.stdout, /^checkpoints ok: [1-9]\d* checkpoints verified/m);

  const again = await runCli(["store", "migrate", "--data-dir", dir], { env });
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /PRECONDITION_FAILED/, "a second move into the now non-empty database is refused");

  // Served from PostgreSQL: the same key (the HSM's), client and grant; governance as it was.
  service = await spawnService(dir, env);
  const after = "instId=ETH-USDT&side=sell";
  assert.equal(lastLine(cliOk(await runCli(["sign", ...alpha, "--key", KEY, "--payload", after]), "sign on PostgreSQL")), hmac(after));
  // The moved officers and threshold govern: a change still takes two of them.
  await pass(["client", "add", "spiffe://custos/engine/beta", "--cidr", "127.0.0.1/32"]);
  assert.match(cliOk(await runCli(["client", "list", ...officerArgs(dir, bob)]), "client list"), /spiffe:\/\/custos\/engine\/beta/);
  assert.equal(await service.stop(), 0);
  service = undefined;
  const continued = await runCli(["audit", "verify", "--data-dir", dir], { env });
  assert.equal(continued.code, 0, continued.stderr);
  assert.ok(Number(HEAD.exec(continued.stdout)?.[1]) > Number(events), "the chain continued on PostgreSQL from the moved head");
});
