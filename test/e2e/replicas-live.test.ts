import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import pg from "pg";
import type { AuditRecord } from "../../src/audit/audit-log.js";
import { signerClient, unary } from "../../src/client/connection.js";
import { SignatureEncoding, type SignerClient } from "../../src/gen/custos/v1/signer.js";
import { PgStore } from "../../src/store/postgres/pg-store.js";
import {
  cliOk,
  createOfficer,
  failure,
  officerArgs,
  runCli,
  spawnService,
  tempDir,
  writeConfiguredDeployment,
  type ChildService,
  type CliOfficer,
} from "../helpers/harness.js";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";
import { until } from "../helpers/until.js";

/**
 * Replicas while they run: two (and, for the crash, three) `custos serve` processes on one
 * data dir and one PostgreSQL database. A change committed through one is enforced by the
 * others without a restart (the change feed, and its poll when the listening session dies);
 * a destroyed version stops signing everywhere; deciding votes cast on two replicas at once
 * execute once; an execution a SIGKILLed replica left is finished by another; a PostgreSQL
 * restart and outage are ridden out, failing closed past the audit backlog bound.
 */
const KEY = "okx-main";
const ALPHA = "spiffe://custos/engine/alpha";
const SECRET_V1 = "replica-secret-one-0123456789abcdef012345";
const SECRET_V2 = "replica-secret-two-fedcba9876543210fedcba";
const PAYLOAD = Buffer.from("instId=BTC-USDT-SWAP&side=buy&sz=1");
const hmac = (secret: string) => createHmac("sha256", secret).update(PAYLOAD).digest();

describe("replicas enforce each other's changes while they run", () => {
  const dir = tempDir("custos-replicas-live-");
  let cluster: TestPostgres;
  let env: NodeJS.ProcessEnv;
  let a: ChildService;
  let b: ChildService;
  let crashing: ChildService | undefined;
  let officers: [CliOfficer, CliOfficer, CliOfficer];
  let fingerprint: string;
  let pki: string;
  const signers: SignerClient[] = [];

  before(async () => {
    cluster = await startPostgres();
    env = { CUSTOS_POSTGRES_URL: cluster.url };
    // Housekeeping every 300 ms (the leader resumes abandoned executions in it); a 2 s audit backlog bound.
    const made = await writeConfiguredDeployment(dir, { audit: { flushIntervalMs: 50, maxUnwrittenSeconds: 2 }, governance: { housekeepingMs: 300 } });
    fingerprint = made.fingerprint;
    pki = made.pki;
    a = await spawnService(dir, env);
    b = await spawnService(dir, env);
    const keys = join(dir, "officers");
    mkdirSync(keys, { mode: 0o700 });
    officers = [await createOfficer(dir, "alice", keys), await createOfficer(dir, "bob", keys), await createOfficer(dir, "carol", keys)];
    const ops = ["--cert", join(pki, "ops.crt"), "--cert-key", join(pki, "ops.key")];
    const officerFlags = officers.flatMap((o) => ["--officer", `${o.name}=${o.publicKeyPath}`]);
    cliOk(await runCli(["governance", "init", "--data-dir", dir, ...ops, "--address", a.conn.grpc, ...officerFlags, "--threshold", "2"]), "governance init");
  });
  after(async () => {
    for (const s of signers) s.close();
    await crashing?.stop();
    await a?.stop();
    await b?.stop();
    cluster?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const signerAt = (svc: ChildService): SignerClient => {
    const s = signerClient(svc.conn.grpc, { caPath: join(pki, "ca.crt"), certPath: join(pki, "alpha.crt"), keyPath: join(pki, "alpha.key") });
    signers.push(s);
    return s;
  };
  const sign = (s: SignerClient, version = 0, keyId = KEY) =>
    unary(s, "sign", { keyId, version, payload: PAYLOAD, encoding: SignatureEncoding.SIGNATURE_ENCODING_RAW });
  /** The sign's outcome: its signature, or the refusal's reason. */
  const outcome = (s: SignerClient, version = 0, keyId = KEY) =>
    sign(s, version, keyId).then(
      (r) => ({ signature: r.signature, reason: "" }),
      (e: unknown) => ({ signature: undefined, reason: failure(e).reason ?? status[failure(e).code] }),
    );
  const approve = (id: string, officer: CliOfficer, svc: ChildService) =>
    runCli([
      "proposal",
      "approve",
      id,
      ...officerArgs(dir, officer),
      "--address",
      svc.conn.grpc,
      "--officer-key",
      officer.keyPath,
      "--passphrase-file",
      officer.passphraseFile,
    ]);
  const propose = async (args: string[], svc: ChildService, input?: string): Promise<string> =>
    cliOk(await runCli([...args, ...officerArgs(dir, officers[0]), "--address", svc.conn.grpc], input === undefined ? {} : { input }), args.join(" "));
  /** Proposed on `svc` by alice, approved there by bob and carol (2 of 3). */
  const pass = async (args: string[], svc: ChildService, input?: string): Promise<string> => {
    const id = await propose(args, svc, input);
    assert.equal(cliOk(await approve(id, officers[1], svc), "approve as bob"), "pending");
    assert.equal(cliOk(await approve(id, officers[2], svc), "approve as carol"), "executed");
    return id;
  };
  const events = async (): Promise<AuditRecord[]> => {
    const store = await PgStore.open(cluster.url);
    try {
      return (await store.audit.readAudit(0, 1_000_000)).map((e) => JSON.parse(e.body) as AuditRecord);
    } finally {
      await store.close();
    }
  };
  /** A change committed straight to the shared store, as another replica's transaction would. */
  const setFrozen = async (frozen: boolean) => {
    const store = await PgStore.open(cluster.url);
    try {
      await store.keys.setKeyFrozen(KEY, frozen ? { at: new Date().toISOString(), reason: "test" } : null);
    } finally {
      await store.close();
    }
  };

  it("a key imported and granted through one replica signs through the other without a restart", { timeout: 240_000 }, async () => {
    const onB = signerAt(b);
    await pass(["key", "import", "--key", KEY, "--raw", "--fingerprint", fingerprint], a, SECRET_V1);
    await pass(["client", "add", ALPHA, "--cidr", "127.0.0.1/32"], a);
    await pass(["client", "grant", ALPHA, "--key", KEY], a);
    const signed = await until("B signs with the key A imported", async () => (await outcome(onB)).signature);
    assert.deepEqual(signed, hmac(SECRET_V1));
  });

  it("a freeze through one replica is enforced by the other, each of 20 times", { timeout: 120_000 }, async () => {
    const onB = signerAt(b);
    const guard = runCli(["freeze", "key", KEY, "--reason", "drill", ...officerArgs(dir, officers[1]), "--address", a.conn.grpc]);
    cliOk(await guard, "freeze through A");
    await until("B refuses the frozen key", async () => ((await outcome(onB)).reason === "KEY_FROZEN" ? true : undefined), 5_000);
    // Thawing needs a quorum; the store-level toggles below stand for committed changes of another replica.
    for (let i = 0; i < 20; i++) {
      await setFrozen(false);
      await until(`B signs again after thaw ${i}`, async () => ((await outcome(onB)).signature ? true : undefined), 5_000);
      await setFrozen(true);
      await until(`B refuses after freeze ${i}`, async () => ((await outcome(onB)).reason === "KEY_FROZEN" ? true : undefined), 5_000);
    }
    await setFrozen(false);
    await until("B signs after the last thaw", async () => ((await outcome(onB)).signature ? true : undefined), 5_000);
  });

  it("a replica whose listening session was killed still converges, by polling the generation", { timeout: 60_000 }, async () => {
    const onB = signerAt(b);
    const admin = new pg.Client({ connectionString: cluster.url });
    await admin.connect();
    try {
      const killed = await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'custos-change-feed'");
      assert.ok((killed.rowCount ?? 0) >= 2, "both replicas' listening sessions ended");
      await setFrozen(true);
      await until("B refuses without its listening session", async () => ((await outcome(onB)).reason === "KEY_FROZEN" ? true : undefined), 10_000);
      await setFrozen(false);
      await until("B signs again", async () => ((await outcome(onB)).signature ? true : undefined), 10_000);
    } finally {
      await admin.end();
    }
  });

  it("a version destroyed through one replica stops signing on the other, which destroys its own session copies", { timeout: 240_000 }, async () => {
    const onB = signerAt(b);
    await pass(["key", "rotate", "--key", KEY, "--grace", "24h", "--fingerprint", fingerprint], a, SECRET_V2);
    await until("B signs with v2", async () => ((await outcome(onB)).signature?.equals(hmac(SECRET_V2)) ? true : undefined));
    // B signs pinned v1 during the grace period: it now holds a session copy of v1.
    assert.deepEqual((await sign(onB, 1)).signature, hmac(SECRET_V1));
    await pass(["key", "destroy", "--key", KEY, "--version", "1"], a);
    await until("B refuses v1", async () => ((await outcome(onB, 1)).reason === "VERSION_NOT_USABLE" ? true : undefined), 5_000);
    assert.match(b.stdout(), /"event":"replica.session_copies_destroyed","objectId":"custos:okx-main:v1"/);
    assert.deepEqual((await sign(onB)).signature, hmac(SECRET_V2));
  });

  it("deciding votes cast on two replicas at the same moment execute the proposal once", { timeout: 120_000 }, async () => {
    const id = await propose(["client", "add", "spiffe://custos/engine/beta", "--cidr", "127.0.0.1/32"], a);
    const [onA, onB] = await Promise.all([approve(id, officers[1], a), approve(id, officers[2], b)]);
    assert.equal(onA.code, 0, onA.stderr);
    assert.equal(onB.code, 0, onB.stderr);
    const all = await until("the proposal's records", async () => {
      const e = await events();
      return e.some((x) => x.kind === "proposal.executed" && x.details?.proposal === id) ? e : undefined;
    });
    const of = (kind: string) => all.filter((e) => e.kind === kind && e.details?.proposal === id).length;
    assert.deepEqual([of("proposal.execute"), of("proposal.executed")], [1, 1]);
  });

  it("an execution a SIGKILLed replica left is finished by another", { timeout: 240_000 }, async () => {
    crashing = await spawnService(dir, { ...env, CUSTOS_FAULT: "import:after-hsm" });
    const id = await propose(["key", "import", "--key", "crash-key", "--raw", "--fingerprint", fingerprint], crashing, "crash-key-secret-0123456789abcdef0123");
    assert.equal(cliOk(await approve(id, officers[1], crashing), "approve as bob"), "pending");
    const deciding = await approve(id, officers[2], crashing);
    assert.notEqual(deciding.code, 0, "the executing replica died under the deciding vote");
    const exit = await crashing.stop();
    assert.equal(exit, null, "killed by SIGKILL");
    crashing = undefined;
    const all = await until(
      "another replica resumes and finishes the import",
      async () => {
        const e = await events();
        return e.some((x) => x.kind === "proposal.executed" && x.details?.proposal === id) ? e : undefined;
      },
      30_000,
    );
    assert.ok(all.some((e) => e.kind === "reconcile.resume" && e.details?.proposal === id));
    assert.equal(all.filter((e) => e.kind === "proposal.executed" && e.details?.proposal === id).length, 1);
  });

  it("rides out a PostgreSQL restart, and past the audit backlog bound refuses until the store is back", { timeout: 120_000 }, async () => {
    const onA = signerAt(a);
    let acknowledged = 0;
    const count = async () => {
      const r = await outcome(onA);
      if (r.signature) acknowledged++;
      return r;
    };
    const before = (await events()).filter((e) => e.kind === "sign" && e.outcome === "allowed" && e.key === KEY).length;
    assert.ok((await count()).signature);
    cluster.stopServer();
    // Signing goes on from memory while the backlog is young, then stops: no signature without its record.
    const during = await count();
    assert.ok(during.signature, `signs while the unwritten audit backlog is within its bound (refused: ${during.reason})`);
    await until("refused past the bound", async () => ((await count()).reason === "AUDIT_BACKLOG" ? true : undefined), 15_000);
    cluster.startServer();
    await until("signs again once the backlog is written", async () => ((await count()).signature ? true : undefined), 20_000);
    // Nothing acknowledged is lost: every signature returned has its record in the chain.
    const allowed = await until("every acknowledged signature audited", async () => {
      const n = (await events()).filter((e) => e.kind === "sign" && e.outcome === "allowed" && e.key === KEY).length - before;
      return n === acknowledged ? n : undefined;
    });
    assert.equal(allowed, acknowledged);
    const verified = await runCli(["audit", "verify", "--data-dir", dir], { env });
    assert.equal(verified.code, 0, verified.stderr);
  });
});
