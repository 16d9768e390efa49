import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { createHmac } from "node:crypto";
import { once } from "node:events";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { KeyInfo } from "../../src/gen/custos/v1/custody.js";
import type { FaultStep } from "../../src/governance/fault.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { auditEvents, lastLine, runCli, spawnService, tempDir, tokenSecretIds, type AuditBody, type ChildService, type CliResult } from "../helpers/harness.js";

/**
 * Crash safety of proposal execution: the service SIGKILLs itself at each fault step of an
 * import, a rotation or a destruction (CUSTOS_FAULT), restarts without the fault, and must end
 * exactly where an uninterrupted run ends: the proposal executed once, one HSM object per live
 * version and none for a destroyed one, signatures by the right secret, an intact audit chain.
 */

const KEY = "crash";
const SECRET_V1 = "crash-recovery-secret-v1-0123456789abcdef012345";
const SECRET_V2 = "crash-recovery-secret-v2-fedcba9876543210fedcba";
const PAYLOAD = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=60000";
const hmac = (secret: string) => createHmac("sha256", secret).update(PAYLOAD).digest("hex");

type Operation = "import" | "rotate" | "destroy";

interface Case {
  step: FaultStep;
  /** The operation the fault interrupts (the ones before it run normally). */
  operation: Operation;
  /** The proposal was still `executing` at the crash: the restart resumes it (reconcile.resume). */
  resumed: boolean;
  /** What the crash left: key versions in the store and HSM objects (proves the fault hit that step). */
  atCrash: { versions: Record<string, string>; objects: number[] };
}

const CASES: Case[] = [
  { step: "import:after-hsm", operation: "import", resumed: true, atCrash: { versions: {}, objects: [1] } },
  { step: "import:after-record", operation: "import", resumed: false, atCrash: { versions: { 1: "active" }, objects: [1] } },
  { step: "import:between-audit-records", operation: "import", resumed: false, atCrash: { versions: { 1: "active" }, objects: [1] } },
  { step: "rotate:after-hsm", operation: "rotate", resumed: true, atCrash: { versions: { 1: "active" }, objects: [1, 2] } },
  { step: "rotate:after-record", operation: "rotate", resumed: false, atCrash: { versions: { 1: "retiring", 2: "active" }, objects: [1, 2] } },
  { step: "destroy:after-mark", operation: "destroy", resumed: true, atCrash: { versions: { 1: "destroying", 2: "active" }, objects: [1, 2] } },
  { step: "destroy:after-hsm", operation: "destroy", resumed: true, atCrash: { versions: { 1: "destroying", 2: "active" }, objects: [2] } },
];

const PROPOSAL_KIND: Record<Operation, string> = { import: "import_key", rotate: "rotate_key", destroy: "destroy_version" };

/** What an uninterrupted run ends with, after each operation. */
const EXPECTED: Record<Operation, { versions: Record<string, string>; objects: string[]; active: { version: number; secret: string }; executed: number }> = {
  import: { versions: { 1: "active" }, objects: [`custos:${KEY}:v1`], active: { version: 1, secret: SECRET_V1 }, executed: 1 },
  rotate: {
    versions: { 1: "retiring", 2: "active" },
    objects: [`custos:${KEY}:v1`, `custos:${KEY}:v2`],
    active: { version: 2, secret: SECRET_V2 },
    executed: 2,
  },
  destroy: { versions: { 1: "destroyed", 2: "active" }, objects: [`custos:${KEY}:v2`], active: { version: 2, secret: SECRET_V2 }, executed: 3 },
};

/** The embedded default's CLI (its dev officer approves at once, so each command executes). */
const operations: Record<Operation, (dir: string) => Promise<CliResult>> = {
  import: (dir) => runCli(["key", "import", "--data-dir", dir, "--key", KEY, "--raw"], { input: SECRET_V1 }),
  rotate: (dir) => runCli(["key", "rotate", "--data-dir", dir, "--key", KEY, "--grace", "24h"], { input: SECRET_V2 }),
  destroy: (dir) => runCli(["key", "destroy", "--data-dir", dir, "--key", KEY, "--version", "1"]),
};
const ORDER: Operation[] = ["import", "rotate", "destroy"];

async function exitOf(proc: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (proc.exitCode === null && proc.signalCode === null) await Promise.race([once(proc, "exit"), new Promise((r) => setTimeout(r, 10_000))]);
  return { code: proc.exitCode, signal: proc.signalCode };
}

async function versionStates(dir: string): Promise<Record<string, string>> {
  const r = await runCli(["key", "list", "--json", "--data-dir", dir]);
  assert.equal(r.code, 0, r.stderr);
  const key = (JSON.parse(r.stdout) as KeyInfo[]).find((k) => k.keyId === KEY);
  return key ? Object.fromEntries(key.versions.map((v) => [v.version, v.state])) : {};
}

async function sign(dir: string, version?: number): Promise<{ code: number | null; version: number; signature: string; stderr: string }> {
  const r = await runCli(["sign", "--data-dir", dir, "--key", KEY, "--payload", PAYLOAD, ...(version === undefined ? [] : ["--version", String(version)])]);
  return { code: r.code, version: Number(/^key \S+ version (\d+)/m.exec(r.stderr)?.[1] ?? 0), signature: lastLine(r.stdout), stderr: r.stderr };
}

/** Proposals as `custos proposal list` prints them: id, state, kind, target. */
async function proposals(dir: string): Promise<Array<{ id: string; state: string; kind: string; target: string }>> {
  const r = await runCli(["proposal", "list", "--data-dir", dir]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout
    .trim()
    .split("\n")
    .filter((l) => l.includes("\t"))
    .map((l) => {
      const [id, state, kind, target] = l.split("\t") as [string, string, string, string];
      return { id, state, kind, target };
    });
}

/** The store as the crash left it (read-only, service down): key versions and the interrupted proposal's state. */
async function storeAtCrash(dir: string, kind: string): Promise<{ versions: Record<string, string>; proposalState: string | undefined }> {
  const store = new SqliteStore(join(dir, "custos.db"), { readonly: true });
  try {
    const key = (await store.keys.listKeys()).find((k) => k.id === KEY);
    const proposal = (await store.governance.listProposals()).find((p) => p.kind === kind);
    return { versions: key ? Object.fromEntries(key.versions.map((v) => [v.version, v.state])) : {}, proposalState: proposal?.state };
  } finally {
    await store.close();
  }
}

const about = (events: AuditBody[], proposal: string) => events.filter((e) => e.details?.proposal === proposal);

describe("crash recovery: SIGKILL at each step of a proposal's execution, then a restart", () => {
  /** Each recovered run's interrupted proposal and final audit events, for the audit checks below. */
  const recovered = new Map<FaultStep, { proposal: string; events: AuditBody[] }>();

  for (const c of CASES) {
    it(`${c.step}: the restart finishes the ${c.operation} exactly once`, { timeout: 60_000 }, async (t) => {
      const dir = tempDir("custos-crash-");
      let svc: ChildService | undefined;
      try {
        svc = await spawnService(dir, { CUSTOS_FAULT: c.step });
        for (const op of ORDER.slice(0, ORDER.indexOf(c.operation))) {
          const r = await operations[op](dir);
          assert.equal(r.code, 0, `${op} before the fault: ${r.stderr}`);
        }

        // The interrupted operation: the service kills itself mid-execution, the CLI sees the call fail.
        const interrupted = await operations[c.operation](dir);
        assert.notEqual(interrupted.code, 0, `the ${c.operation} was expected to be cut off: ${interrupted.stdout}`);
        assert.deepEqual(
          await exitOf(svc.proc),
          { code: null, signal: "SIGKILL" },
          `the service did not SIGKILL itself at ${c.step}:\n${svc.stderr().slice(-2000)}`,
        );
        t.diagnostic(`CLI saw: ${interrupted.stderr.trim()}`);
        assert.deepEqual(
          await storeAtCrash(dir, PROPOSAL_KIND[c.operation]),
          { versions: c.atCrash.versions, proposalState: c.resumed ? "executing" : "executed" },
          "store at the crash",
        );
        assert.deepEqual(
          await tokenSecretIds(dir),
          c.atCrash.objects.map((v) => `custos:${KEY}:v${v}`),
          "HSM objects at the crash",
        );

        svc = await spawnService(dir);
        const expected = EXPECTED[c.operation];

        // Key versions and HSM objects: exactly those of an uninterrupted run, no orphan, none left over.
        assert.deepEqual(await versionStates(dir), expected.versions);
        assert.deepEqual(await tokenSecretIds(dir), expected.objects, "one HSM object per live version, none for a destroyed one");

        // The interrupted proposal executed, once.
        const mine = (await proposals(dir)).filter((p) => p.kind === PROPOSAL_KIND[c.operation]);
        assert.equal(mine.length, 1, JSON.stringify(mine));
        const proposal = mine[0]!;
        assert.deepEqual([proposal.state, proposal.target], ["executed", KEY]);

        // Signatures by the right secret; a destroyed version refuses.
        const unpinned = await sign(dir);
        assert.equal(unpinned.code, 0, unpinned.stderr);
        assert.deepEqual([unpinned.version, unpinned.signature], [expected.active.version, hmac(expected.active.secret)]);
        const v1 = await sign(dir, 1);
        if (c.operation === "destroy") {
          assert.match(v1.stderr, /FAILED_PRECONDITION \(VERSION_NOT_USABLE\)/);
        } else {
          assert.equal(v1.code, 0, v1.stderr);
          assert.deepEqual([v1.version, v1.signature], [1, hmac(SECRET_V1)]);
        }

        assert.equal(await svc.stop(), 0, svc.stderr());
        svc = undefined;

        // The audit chain: intact, one execution of each proposal, the recovery recorded.
        const verify = await runCli(["audit", "verify", "--data-dir", dir]);
        assert.equal(verify.code, 0, verify.stderr);
        const events = await auditEvents(dir);
        const ofProposal = about(events, proposal.id);
        assert.equal(ofProposal.filter((e) => e.kind === "proposal.execute").length, 1, "execution started once");
        assert.equal(ofProposal.filter((e) => e.kind === "proposal.executed").length, 1, "executed (and audited) once");
        assert.equal(events.filter((e) => e.kind === "proposal.executed").length, expected.executed, "every proposal executed once");
        assert.equal(ofProposal.filter((e) => e.kind === "proposal.failed").length, 0);
        assert.deepEqual(
          events.filter((e) => e.kind === "reconcile.destroy_orphan"),
          [],
          "no orphan to sweep: the resume adopted or destroyed every object",
        );
        if (c.resumed) {
          assert.ok(
            ofProposal.some((e) => e.kind === "reconcile.resume"),
            `no reconcile.resume for ${proposal.id}: ${JSON.stringify(ofProposal.map((e) => e.kind))}`,
          );
        }
        recovered.set(c.step, { proposal: proposal.id, events });
      } finally {
        if (svc && svc.proc.exitCode === null && svc.proc.signalCode === null) await svc.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  // The chain tells what happened: the key change itself once, and the recovery
  // (reconcile.resume for an interrupted execution, reconcile.complete past the record step).
  for (const c of CASES) {
    it(`${c.step}: the audit chain records the ${c.operation} once and the recovery`, () => {
      const run = recovered.get(c.step);
      assert.ok(run, `the ${c.step} recovery did not complete`);
      const ofProposal = about(run.events, run.proposal);
      const kinds = JSON.stringify(ofProposal.map((e) => e.kind));
      const domain = { import: "key.import", rotate: "key.rotate", destroy: "key.destroy_version" }[c.operation];
      assert.equal(ofProposal.filter((e) => e.kind === domain && e.outcome === "ok").length, 1, `one ${domain} event for ${run.proposal}: ${kinds}`);
      assert.ok(
        ofProposal.some((e) => e.kind.startsWith("reconcile.")),
        `no reconcile.* event for ${run.proposal}: ${kinds}`,
      );
    });
  }
});
