import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import pg from "pg";
import { type ConnectionFile, readConnectionFile } from "../../src/client/connection.js";
import { CustosClient, StreamDenial } from "../../src/client/custos-client.js";
import type { ReplicaEntry } from "../../src/replication/replica-registry.js";
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
 * Replicas as an operator runs them: each registers in DIR/replicas/ and connection.json names
 * every live one (the TypeScript client uses them all); `custos stop` stops one replica or all;
 * a client's and a key's rate limits hold for the deployment, not per replica; and the nonces
 * custos picks for Kraken Futures rise across both replicas and never repeat.
 */
const ALPHA = "spiffe://custos/engine/alpha";
const BETA = "spiffe://custos/engine/beta";
const CLIENT_KEY = "raw-client-limited";
const SHARED_KEY = "raw-key-limited";
const KF_KEY = "kf-main";
const RAW_SECRET = "replica-operations-secret-0123456789abcdef";
// Kraken Futures hands out a base64 secret and signs with the decoded bytes.
const KF_SECRET = Buffer.from("kraken futures replica secret, 64 bytes long, decoded before use").toString("base64");
/** The deployment's limits (custos.json): each test below hammers one of them. */
const CLIENT_LIMIT = { perSecond: 100, burst: 20 };
const KEY_LIMIT = { perSecond: 150, burst: 20 };
/** How long each rate-limit run hammers, and the most calls one of its loops may make. */
const HAMMER_MS = 3_000;
const MAX_CALLS_PER_LOOP = 20_000;

/**
 * A stopped replica's exit code. `custos stop` reports a replica stopped once its pid no longer
 * runs custos; a child of this test is a zombie until this process reaps it, which may come a
 * moment later.
 */
function exitCode(svc: ChildService): Promise<number | null> {
  if (svc.proc.exitCode !== null) return Promise.resolve(svc.proc.exitCode);
  return new Promise((r) => svc.proc.once("exit", (code) => r(code)));
}

describe("replicas as an operator runs them", () => {
  const dir = tempDir("custos-replica-ops-");
  let cluster: TestPostgres;
  let env: NodeJS.ProcessEnv;
  let a: ChildService;
  let b: ChildService;
  let c: ChildService | undefined;
  let officers: [CliOfficer, CliOfficer];
  let fingerprint: string;
  let pki: string;
  const clients: CustosClient[] = [];

  before(async () => {
    cluster = await startPostgres();
    env = { CUSTOS_POSTGRES_URL: cluster.url };
    const made = await writeConfiguredDeployment(dir, { audit: { flushIntervalMs: 50 }, limits: { client: CLIENT_LIMIT, key: KEY_LIMIT } });
    fingerprint = made.fingerprint;
    pki = made.pki;
    a = await spawnService(dir, env);
    b = await spawnService(dir, env);
    const keys = join(dir, "officers");
    mkdirSync(keys, { mode: 0o700 });
    officers = [await createOfficer(dir, "alice", keys), await createOfficer(dir, "bob", keys)];
    const ops = ["--cert", join(pki, "ops.crt"), "--cert-key", join(pki, "ops.key")];
    const flags = officers.flatMap((o) => ["--officer", `${o.name}=${o.publicKeyPath}`]);
    cliOk(await runCli(["governance", "init", "--data-dir", dir, ...ops, "--address", a.conn.grpc, ...flags, "--threshold", "1"]), "governance init");
    await pass(["key", "import", "--key", CLIENT_KEY, "--raw", "--fingerprint", fingerprint], RAW_SECRET);
    await pass(["key", "import", "--key", SHARED_KEY, "--raw", "--fingerprint", fingerprint], RAW_SECRET);
    await pass(["key", "import", "--key", KF_KEY, "--exchange", "krakenfutures", "--api-key-id", "kf-public-key", "--fingerprint", fingerprint], KF_SECRET);
    for (const identity of [ALPHA, BETA]) await pass(["client", "add", identity, "--cidr", "127.0.0.1/32"]);
    await pass(["client", "grant", ALPHA, "--key", CLIENT_KEY]);
    await pass(["client", "grant", ALPHA, "--key", SHARED_KEY]);
    await pass(["client", "grant", BETA, "--key", SHARED_KEY]);
    await pass(["client", "grant", BETA, "--key", KF_KEY]);
    // Both replicas sign with every key before the runs start (B learns of A's changes through the feed).
    for (const svc of [a, b]) {
      const alpha = clientOf(svc, "alpha");
      const beta = clientOf(svc, "beta");
      await until(`${svc.conn.grpc} signs`, () =>
        alpha.sign(CLIENT_KEY, Buffer.from("warm-up")).then(
          () => true,
          () => undefined,
        ),
      );
      await until(`${svc.conn.grpc} signs for beta`, () =>
        beta.sign(SHARED_KEY, Buffer.from("warm-up")).then(
          () => true,
          () => undefined,
        ),
      );
    }
  });
  after(async () => {
    for (const cl of clients) cl.close();
    await c?.stop();
    await a?.stop();
    await b?.stop();
    cluster?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Proposed by alice on replica A; threshold 1 with the proposer not counting: bob's approval executes it. */
  const pass = async (args: string[], input?: string): Promise<void> => {
    const [alice, bob] = officers;
    const id = cliOk(await runCli([...args, ...officerArgs(dir, alice), "--address", a.conn.grpc], input === undefined ? {} : { input }), args.join(" "));
    const approved = await runCli([
      "proposal",
      "approve",
      id,
      ...officerArgs(dir, bob),
      "--address",
      a.conn.grpc,
      "--officer-key",
      bob.keyPath,
      "--passphrase-file",
      bob.passphraseFile,
    ]);
    assert.equal(cliOk(approved, `approve ${args.join(" ")}`), "executed");
  };
  const clientOf = (svc: ChildService | string, name: "alpha" | "beta"): CustosClient => {
    const address = typeof svc === "string" ? svc : svc.conn.grpc;
    const cl = new CustosClient(address, { caPath: join(pki, "ca.crt"), certPath: join(pki, `${name}.crt`), keyPath: join(pki, `${name}.key`) });
    clients.push(cl);
    return cl;
  };
  const entries = (): ReplicaEntry[] =>
    readdirSync(join(dir, "replicas"))
      .filter((n) => n.endsWith(".json"))
      .map((n) => JSON.parse(readFileSync(join(dir, "replicas", n), "utf8")) as ReplicaEntry);

  /**
   * Signs with `keyId` through every (client, replica) pair, `loops` calls in flight per pair,
   * for HAMMER_MS; counts what was granted and what was refused RATE_LIMITED. Anything else fails.
   */
  const hammer = async (pairs: Array<[CustosClient, string]>, loops: number) => {
    let granted = 0;
    let limited = 0;
    const started = performance.now();
    const deadline = started + HAMMER_MS;
    const loop = async (client: CustosClient, keyId: string) => {
      for (let i = 0; i < MAX_CALLS_PER_LOOP && performance.now() < deadline; i++) {
        try {
          await client.sign(keyId, Buffer.from(`order ${i}`));
          granted++;
        } catch (e) {
          const f = failure(e);
          assert.equal(f.reason, "RATE_LIMITED", `only rate-limit refusals: ${f.details}`);
          assert.equal(f.code, status.RESOURCE_EXHAUSTED);
          limited++;
        }
      }
    };
    await Promise.all(pairs.flatMap(([client, keyId]) => Array.from({ length: loops }, () => loop(client, keyId))));
    return { granted, limited, windowS: (performance.now() - started) / 1000 };
  };
  /** The README's tolerance for a window of T seconds: burst + perSecond × T + replicas × 2 × batch, batch = ⌈perSecond / 10⌉. */
  const tolerance = (limit: { perSecond: number; burst: number }, windowS: number, replicas: number) =>
    limit.burst + limit.perSecond * windowS + replicas * 2 * Math.ceil(limit.perSecond / 10);

  it("each replica registers in DIR/replicas/ (0600) and connection.json names both, oldest first", () => {
    const registered = entries();
    assert.deepEqual(registered.map((e) => e.pid).sort(), [a.proc.pid, b.proc.pid].sort());
    for (const e of registered) {
      assert.equal(e.id, `${hostname()}-${e.pid}`);
      assert.equal(statSync(join(dir, "replicas", `${e.id}.json`)).mode & 0o777, 0o600);
      assert.ok(!Number.isNaN(Date.parse(e.startedAt)));
    }
    const conn = readConnectionFile(dir);
    assert.deepEqual(conn.addresses, [a.conn.grpc, b.conn.grpc]);
    assert.equal(conn.grpc, a.conn.grpc, "the single address is the oldest replica's");
    assert.equal(statSync(join(dir, "connection.json")).mode & 0o777, 0o600);
  });

  it("custos wait answers from the oldest replica and names them all", async () => {
    const waited = await runCli(["wait", "--data-dir", dir, "--timeout", "10"]);
    assert.equal(waited.stdout.trim(), `custos is ready: gRPC ${a.conn.grpc} (replicas: ${a.conn.grpc}, ${b.conn.grpc})`);
  });

  it("a client's rate limit holds for the deployment: one client through both replicas gets the configured rate, not twice it", {
    timeout: 60_000,
  }, async (t) => {
    const alpha = [clientOf(a, "alpha"), clientOf(b, "alpha")];
    const run = await hammer(
      alpha.map((cl) => [cl, CLIENT_KEY] as [CustosClient, string]),
      8,
    );
    const bound = tolerance(CLIENT_LIMIT, run.windowS, 2);
    t.diagnostic(`client: granted ${run.granted}, refused ${run.limited} in ${run.windowS.toFixed(2)} s (bound ${bound.toFixed(0)})`);
    assert.ok(run.granted <= bound, `granted ${run.granted} > ${bound.toFixed(0)}: the limit is not the deployment's`);
    assert.ok(run.granted >= CLIENT_LIMIT.perSecond * (run.windowS - 1), `granted only ${run.granted}`);
    // Asked for more than per-replica limits would have granted: else the run could not tell them apart.
    assert.ok(run.granted + run.limited > 2 * bound, `only ${run.granted + run.limited} requests: too few to tell`);
  });

  it("a key's rate limit holds for the deployment: two clients through both replicas get the key's rate, not twice it", { timeout: 60_000 }, async (t) => {
    const pairs: Array<[CustosClient, string]> = [
      [clientOf(a, "alpha"), SHARED_KEY],
      [clientOf(b, "alpha"), SHARED_KEY],
      [clientOf(a, "beta"), SHARED_KEY],
      [clientOf(b, "beta"), SHARED_KEY],
    ];
    const run = await hammer(pairs, 4);
    const bound = tolerance(KEY_LIMIT, run.windowS, 2);
    t.diagnostic(`key: granted ${run.granted}, refused ${run.limited} in ${run.windowS.toFixed(2)} s (bound ${bound.toFixed(0)})`);
    assert.ok(run.granted <= bound, `granted ${run.granted} > ${bound.toFixed(0)}: the limit is not the deployment's`);
    assert.ok(run.granted >= KEY_LIMIT.perSecond * (run.windowS - 1), `granted only ${run.granted}`);
    assert.ok(run.granted + run.limited > 2 * bound, `only ${run.granted + run.limited} requests: too few to tell`);
  });

  it("Kraken Futures nonces custos picks through both replicas at once: distinct, rising in call order, never reused", { timeout: 120_000 }, async () => {
    const perLoop = 40;
    const secret = Buffer.from(KF_SECRET, "base64");
    /** One signed request: which loop, when it was sent and answered, and the nonce custos picked. */
    type Draw = { loop: string; sentAt: number; answeredAt: number; nonce: bigint };
    const draws: Draw[] = [];
    type Signer = Pick<CustosClient, "signExchangeRequest">;
    /** Sequential signs through one replica (unary, or one stream session); retried when rate-limited (beta's limit is the deployment's). */
    const drawOn = async (loop: string, signer: Signer, count = perLoop): Promise<bigint[]> => {
      const nonces: bigint[] = [];
      while (nonces.length < count) {
        const sentAt = performance.now();
        const signed = await signer.signExchangeRequest({ keyId: KF_KEY, method: "GET", path: "/derivatives/api/v3/accounts" }).catch((e: unknown) => {
          const reason = e instanceof StreamDenial ? e.reason : failure(e).reason;
          if (reason === "RATE_LIMITED") return undefined;
          throw e;
        });
        if (!signed) {
          await new Promise((r) => setTimeout(r, 20)); // a retryable refusal: back off, as a client does
          continue;
        }
        const answeredAt = performance.now();
        const nonce = signed.headers.Nonce;
        assert.ok(nonce && /^\d+$/.test(nonce), `a nonce custos picked: ${nonce}`);
        // Kraken's Authent: base64(HMAC-SHA512(secret, SHA256(postData + Nonce + endpointPath))).
        const digest = createHash("sha256").update(`${nonce}/api/v3/accounts`).digest();
        assert.equal(signed.headers.Authent, createHmac("sha512", secret).update(digest).digest("base64"));
        nonces.push(BigInt(nonce));
        draws.push({ loop, sentAt, answeredAt, nonce: BigInt(nonce) });
      }
      return nonces;
    };
    const loops: Array<[string, Signer]> = [
      ["A unary", clientOf(a, "beta")],
      ["A stream", clientOf(a, "beta").streamSession()],
      ["B unary", clientOf(b, "beta")],
      ["B stream", clientOf(b, "beta").streamSession()],
    ];
    const sequences = await Promise.all(loops.map(([name, signer]) => drawOn(name, signer)));
    sequences.forEach((seq, i) => {
      for (let j = 1; j < seq.length; j++) assert.ok((seq[j] as bigint) > (seq[j - 1] as bigint), `${loops[i]?.[0]}: ${seq[j]} after ${seq[j - 1]}`);
    });
    const all = draws.map((d) => d.nonce);
    assert.equal(all.length, 4 * perLoop);
    assert.equal(new Set(all).size, all.length, "a nonce was handed out twice");
    // Across both replicas: a request sent after another was answered carries a higher nonce.
    for (const x of draws) {
      for (const y of draws) if (x.answeredAt < y.sentAt) assert.ok(y.nonce > x.nonce, `${y.loop} got ${y.nonce} after ${x.loop}'s ${x.nonce}`);
    }
    const highest = [...all].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)).at(-1) as bigint;
    // Never reused later either: the shared counter holds the highest nonce handed out, and the next one is above it.
    const db = new pg.Client({ connectionString: cluster.url });
    await db.connect();
    try {
      const { rows } = await db.query<{ last: string }>("SELECT last::text AS last FROM custos_nonce WHERE key_id = $1", [KF_KEY]);
      assert.equal(rows[0]?.last, highest.toString());
    } finally {
      await db.end();
    }
    const [next] = await drawOn("after", clientOf(b, "beta"), 1);
    assert.ok((next as bigint) > highest, "a later nonce is above every earlier one");
  });

  it("a stale entry (its process gone) is ignored and removed; custos replicas lists the live ones", async () => {
    const stale: ReplicaEntry = {
      id: `${hostname()}-999999`,
      pid: 999_999,
      host: hostname(),
      grpc: "127.0.0.1:1",
      http: "http://127.0.0.1:1",
      startedAt: "2000-01-01T00:00:00.000Z",
    };
    writeFileSync(join(dir, "replicas", `${stale.id}.json`), JSON.stringify(stale), { mode: 0o600 });
    const listed = cliOk(await runCli(["replicas", "--data-dir", dir]), "custos replicas");
    const out = (await runCli(["replicas", "--data-dir", dir])).stdout;
    assert.ok(listed.length > 0);
    assert.doesNotMatch(out, /999999/);
    assert.match(out, new RegExp(`pid ${a.proc.pid} +gRPC ${a.conn.grpc}`));
    assert.match(out, new RegExp(`pid ${b.proc.pid} +gRPC ${b.conn.grpc}`));
    assert.equal(existsSync(join(dir, "replicas", `${stale.id}.json`)), false, "the stale entry was removed");
  });

  it("custos stop --replica ID stops that one only; connection.json then names the other, and the client fails over", { timeout: 120_000 }, async () => {
    c = await spawnService(dir, env);
    const conn = await until("connection.json names three replicas", () => {
      const f = readConnectionFile(dir);
      return f.addresses?.length === 3 ? f : undefined;
    });
    assert.deepEqual(conn.addresses, [a.conn.grpc, b.conn.grpc, c.conn.grpc]);
    // The client reads every replica from the data dir; it is on A's address first.
    const viaFile = CustosClient.fromDataDir(dir, { certPath: join(pki, "alpha.crt"), keyPath: join(pki, "alpha.key") });
    clients.push(viaFile);
    assert.equal(viaFile.activeAddress, a.conn.grpc);
    await until("the client signs", () =>
      viaFile.sign(CLIENT_KEY, Buffer.from("x")).then(
        () => true,
        () => undefined,
      ),
    );

    const id = entries().find((e) => e.pid === a.proc.pid)?.id;
    assert.ok(id);
    const stopped = await runCli(["stop", "--data-dir", dir, "--replica", id]);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.match(stopped.stderr, new RegExp(`stopping replica ${id} \\(pid ${a.proc.pid}\\)`));
    assert.match(stopped.stdout, new RegExp(`replica ${id} \\(pid ${a.proc.pid}\\) stopped`));
    assert.equal(await exitCode(a), 0, "A drained and exited 0");
    assert.equal(b.proc.exitCode, null, "B still serves");
    assert.equal(c.proc.exitCode, null, "C still serves");
    const after = readConnectionFile(dir) as ConnectionFile;
    assert.deepEqual(after.addresses, [b.conn.grpc, c.conn.grpc]);
    assert.equal(after.grpc, b.conn.grpc);
    assert.deepEqual(
      entries()
        .map((e) => e.pid)
        .sort(),
      [b.proc.pid, c.proc.pid].sort(),
    );
    // A is gone: the client moves on to the next replica it read from connection.json.
    await until("the client signs through another replica", () =>
      viaFile.sign(CLIENT_KEY, Buffer.from("y")).then(
        () => true,
        () => undefined,
      ),
    );
    assert.notEqual(viaFile.activeAddress, a.conn.grpc);

    const unknown = await runCli(["stop", "--data-dir", dir, "--replica", "no-such-replica"]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no replica no-such-replica serves .*; live: /);
  });

  it("custos stop stops every replica, with progress; then nothing is registered and connection.json is gone", { timeout: 120_000 }, async () => {
    assert.ok(c);
    const stopped = await runCli(["stop", "--data-dir", dir]);
    assert.equal(stopped.code, 0, stopped.stderr);
    for (const svc of [b, c]) {
      assert.match(stopped.stderr, new RegExp(`stopping replica \\S+ \\(pid ${svc.proc.pid}\\)`));
      assert.match(stopped.stdout, new RegExp(`replica \\S+ \\(pid ${svc.proc.pid}\\) stopped`));
      assert.equal(await exitCode(svc), 0);
    }
    assert.deepEqual(entries(), []);
    assert.equal(existsSync(join(dir, "connection.json")), false);
    const again = await runCli(["stop", "--data-dir", dir]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no custos is serving/);
  });
});
