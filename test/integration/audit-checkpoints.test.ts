import assert from "node:assert/strict";
import { createHash, createPublicKey, verify } from "node:crypto";
import { copyFileSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { unary } from "../../src/client/connection.js";
import { auditEvents, devOfficerClient, importSecret, runCli, spawnService, tempDir, type ChildService, type CliResult } from "../helpers/harness.js";
import { signerClient } from "../../src/client/connection.js";

/**
 * Signed audit checkpoints against the attacks they exist for, on a real `custos serve` (SoftHSM2
 * token, SQLite) and the real CLI: the chain cut, its last event deleted, an event rewritten and
 * the chain re-computed after it, the database shortened while custos runs; and a governance row
 * whose audit event is gone.
 */

type Row = { seq: number; body: string; prev_hash: string; hash: string };
type FileCheckpoint = { seq: number; hash: string; at: string; keyFingerprint: string; signature: string };

const GENESIS = "0".repeat(64);

/** The chain's link as SECURITY.md states it, computed here independently of custos. */
const link = (prevHash: string, body: string) => createHash("sha256").update(`${prevHash}\n${body}`).digest("hex");

function fileCheckpoints(dir: string): FileCheckpoint[] {
  return readFileSync(join(dir, "audit-checkpoints.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as FileCheckpoint);
}

/** A checkpoint's signature, checked with node:crypto against the published key and the documented statement. */
function signatureVerifies(dir: string, c: FileCheckpoint): boolean {
  const key = createPublicKey(readFileSync(join(dir, "audit-checkpoint-key.pem")));
  const statement = `custos.audit-checkpoint.v1\n${c.seq}\n${c.hash}\n${c.at}\n`;
  return verify("sha256", Buffer.from(statement), { key, dsaEncoding: "ieee-p1363" }, Buffer.from(c.signature, "base64"));
}

function withDb<T>(dir: string, fn: (db: Database.Database) => T): T {
  const db = new Database(join(dir, "custos.db"));
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/** What an attacker holding the database (and no HSM PIN) does to hide events: also wipes the stored checkpoints. */
function deleteEventsAfter(db: Database.Database, seq: number): void {
  db.prepare("DELETE FROM audit_events WHERE seq > ?").run(seq);
  db.prepare("DELETE FROM audit_checkpoints").run();
}

/** Rewrites event `seq`'s body and re-computes every hash from it on: a chain whose links all verify. */
function rewriteAndRechain(db: Database.Database, seq: number, rewrite: (body: string) => string): void {
  const rows = db.prepare("SELECT * FROM audit_events ORDER BY seq").all() as Row[];
  let prev = GENESIS;
  const update = db.prepare("UPDATE audit_events SET body = ?, prev_hash = ?, hash = ? WHERE seq = ?");
  for (const r of rows) {
    const body = r.seq === seq ? rewrite(r.body) : r.body;
    if (r.seq === seq) assert.notEqual(body, r.body, "the rewrite changed nothing");
    const hash = link(prev, body);
    update.run(body, prev, hash, r.seq);
    prev = hash;
  }
  db.prepare("DELETE FROM audit_checkpoints").run();
}

/** Until `custos serve` has installed its signal handlers (it writes custos.pid in the same tick) and /readyz answers 200. */
async function untilServing(svc: ChildService): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!existsSync(join(svc.dir, "custos.pid"))) {
    if (Date.now() > deadline) assert.fail("custos.pid never appeared");
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal((await fetch(`${svc.conn.http}/readyz`)).status, 200);
}

function failed(r: CliResult, what: string): string {
  assert.notEqual(r.code, 0, `${what} should fail; stdout: ${r.stdout}`);
  return r.stderr;
}

describe("audit checkpoints: signed, kept outside the database, checked by verify and at start", () => {
  let svc: ChildService;
  let dir: string;
  let backup: string;
  let logFile: string;
  let lastSeq = 0;

  const verifyCli = (...extra: string[]) => runCli(["audit", "verify", "--data-dir", dir, ...extra]);
  /** Puts the database and the checkpoint file back as the clean stop left them. */
  const restore = () => {
    rmSync(join(dir, "custos.db-wal"), { force: true });
    rmSync(join(dir, "custos.db-shm"), { force: true });
    copyFileSync(backup, join(dir, "custos.db"));
    copyFileSync(`${backup}.checkpoints`, join(dir, "audit-checkpoints.jsonl"));
  };

  before(async () => {
    svc = await spawnService();
    dir = svc.dir;
    const custody = devOfficerClient(svc.conn);
    const signer = signerClient(svc.conn.grpc, { caPath: svc.conn.caPath, ...svc.conn.client! });
    try {
      await importSecret(custody, "k", Buffer.alloc(32, 7));
      for (let i = 0; i < 3; i++) await unary(signer, "sign", { keyId: "k", version: 0, payload: Buffer.from(`order ${i}`), encoding: 0 });
    } finally {
      custody.close();
      signer.close();
    }
    assert.equal(await svc.stop(), 0, svc.stderr());
    logFile = join(tempDir("custos-log-"), "custos.log");
    writeFileSync(logFile, svc.stdout());
    lastSeq = withDb(dir, (db) => (db.prepare("SELECT MAX(seq) AS s FROM audit_events").get() as { s: number }).s);
    backup = join(tempDir("custos-db-"), "custos.db");
    copyFileSync(join(dir, "custos.db"), backup);
    copyFileSync(join(dir, "audit-checkpoints.jsonl"), `${backup}.checkpoints`);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("writes the shutdown checkpoint of the last event to the file (0600), the log and the database, signed by the HSM key", () => {
    const file = fileCheckpoints(dir);
    assert.equal((statSync(join(dir, "audit-checkpoints.jsonl")).mode & 0o777).toString(8), "600");
    const newest = file.at(-1)!;
    const head = withDb(dir, (db) => db.prepare("SELECT seq, hash FROM audit_events WHERE seq = ?").get(lastSeq) as { seq: number; hash: string });
    assert.deepEqual({ seq: newest.seq, hash: newest.hash }, head);
    assert.ok(signatureVerifies(dir, newest));
    const logged = svc
      .stdout()
      .split("\n")
      .filter((l) => l.includes('"audit.checkpoint"'))
      .map((l) => JSON.parse(l) as FileCheckpoint & { event: string });
    assert.deepEqual(
      logged.map((l) => ({ seq: l.seq, hash: l.hash, at: l.at, signature: l.signature })),
      file.map((c) => ({ seq: c.seq, hash: c.hash, at: c.at, signature: c.signature })),
    );
    const stored = withDb(dir, (db) => db.prepare("SELECT seq, hash, at, signature FROM audit_checkpoints ORDER BY at").all());
    assert.deepEqual(
      stored,
      file.map((c) => ({ seq: c.seq, hash: c.hash, at: c.at, signature: c.signature })),
    );
  });

  it("verifies the untouched chain and its checkpoints", async () => {
    const r = await verifyCli("--log", logFile);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`audit chain ok: ${lastSeq} events`));
    assert.match(r.stdout, new RegExp(`checkpoints ok: .*the chain reaches the newest, event ${lastSeq} `));
  });

  it("fails verify when the chain is cut after an event and the stored checkpoints deleted", async () => {
    withDb(dir, (db) => deleteEventsAfter(db, lastSeq - 4));
    try {
      assert.match(failed(await verifyCli(), "verify of a cut chain"), new RegExp(`checkpoint of event ${lastSeq} .*ends at event ${lastSeq - 4}, shorter`));
    } finally {
      restore();
    }
  });

  it("fails verify when only the last event is deleted", async () => {
    withDb(dir, (db) => db.prepare("DELETE FROM audit_events WHERE seq = ?").run(lastSeq));
    try {
      assert.match(failed(await verifyCli(), "verify without the last event"), new RegExp(`ends at event ${lastSeq - 1}, shorter`));
    } finally {
      restore();
    }
  });

  it("fails verify when an event is rewritten and every hash after it re-computed", async () => {
    withDb(dir, (db) => rewriteAndRechain(db, 3, (body) => body.replace(/"outcome":"ok"/, '"outcome":"failed"')));
    try {
      // Every link holds: only the checkpoint shows the rewrite.
      assert.match(failed(await verifyCli(), "verify of a re-chained rewrite"), new RegExp(`event ${lastSeq} in the database differs from the checkpoint`));
    } finally {
      restore();
    }
  });

  it("finds the checkpoint in a log given on the command line when the file and the table are gone too", async () => {
    withDb(dir, (db) => deleteEventsAfter(db, lastSeq - 2));
    const file = join(dir, "audit-checkpoints.jsonl");
    const saved = readFileSync(file);
    rmSync(file);
    try {
      assert.match(failed(await verifyCli("--log", logFile), "verify with the log as the only witness"), /\(log\): the database's audit chain ends at event/);
    } finally {
      writeFileSync(file, saved, { mode: 0o600 });
      restore();
    }
  });

  it("reports a governance row without its audit event", async () => {
    withDb(dir, (db) => {
      const p = db.prepare("SELECT * FROM proposals LIMIT 1").get() as Record<string, unknown>;
      db.prepare(
        "INSERT INTO proposals (id, kind, target, canonical, digest, proposer, state, created_at, expires_at, executed_at) VALUES ('forged', 'set_threshold', 'governance', '{}', 'd', ?, 'executed', ?, ?, ?)",
      ).run(p.proposer, p.created_at, p.expires_at, p.created_at);
      db.prepare("INSERT INTO votes (proposal_id, officer_id, decision, digest, signature, at) VALUES ('forged', ?, 'approve', 'd', 's', ?)").run(
        p.proposer,
        p.created_at,
      );
    });
    try {
      const stderr = failed(await verifyCli(), "verify with a forged proposal");
      assert.match(stderr, /proposal\(s\) without their proposal\.create audit event: forged/);
      assert.match(stderr, /vote\(s\) without their audit event: approve by \S+ on forged/);
      assert.match(stderr, /executed proposal\(s\) without their proposal\.executed audit event: forged/);
    } finally {
      restore();
    }
  });

  it("refuses to start on a shortened chain (AUDIT_REWOUND, no connection file), and serves with --accept-audit-rewind, audited", async () => {
    withDb(dir, (db) => deleteEventsAfter(db, lastSeq - 3));
    const refused = await runCli(["serve", "--data-dir", dir, "--grpc-port", "0", "--http-port", "0"]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /^custos: AUDIT_REWOUND: /m);
    assert.equal(existsSync(join(dir, "connection.json")), false);

    const accepted = await spawnService(dir, {}, ["--accept-audit-rewind"]);
    await untilServing(accepted);
    assert.equal(await accepted.stop(), 0, accepted.stderr());
    const events = await auditEvents(dir);
    const acceptance = events.find((e) => e.kind === "audit.rewind_accepted");
    assert.ok(acceptance, "the acceptance is audited");
    assert.equal(acceptance.seq, lastSeq - 2, "the chain continues from what the database holds");
    assert.equal(acceptance.reason, "AUDIT_REWOUND");
    assert.deepEqual({ seq: acceptance.details?.checkpointSeq, at: acceptance.details?.databaseSeq }, { seq: lastSeq, at: lastSeq - 3 });
    // The accepted state verifies: the given-up checkpoint is named, the new ones hold.
    const r = await verifyCli();
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`checkpoint of event ${lastSeq} .* was given up by an operator`));
    // And the next start, without the flag, serves.
    const again = await spawnService(dir);
    await untilServing(again);
    assert.equal(await again.stop(), 0, again.stderr());
  });

  it("refuses to start after the database was shortened while custos served", async () => {
    restore();
    const live = await spawnService(dir);
    await untilServing(live);
    const head = (await auditEvents(dir)).at(-1)!.seq;
    withDb(dir, (db) => deleteEventsAfter(db, head - 3));
    assert.equal(await live.stop(), 0, live.stderr());
    assert.match(live.stdout(), /"event":"audit\.chain_diverged"/);
    const refused = await runCli(["serve", "--data-dir", dir, "--grpc-port", "0", "--http-port", "0"]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /^custos: AUDIT_REWOUND: /m);
    assert.equal(existsSync(join(dir, "connection.json")), false);
  });
});
