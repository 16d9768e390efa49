import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { KeyInfo } from "../../src/gen/custos/v1/custody.js";
import {
  writeConfiguredDeployment,
  approveAs,
  auditEvents,
  createOfficer,
  officerArgs,
  runCli,
  spawnService,
  tempDir,
  tokenSecretIds,
  type ChildService,
  type CliOfficer,
  cliOk as ok,
} from "../helpers/harness.js";

/**
 * The governance headline, end to end through the CLI against a real `custos serve` of a
 * configured deployment with three officers and a threshold of two: import, grant, rotate
 * with a grace period, and the old version's HSM object destroyed ahead of its grace period by
 * a quorum. (Destruction when a grace period ends is housekeeping's, tested on the real token
 * with a clock moved by hand: test/integration/grace-period.test.ts.)
 */

const KEY = "binance-main";
const ALPHA = "spiffe://custos/engine/alpha";
const SECRET_V1 = "rotation-secret-one-0123456789abcdef0123456789";
const SECRET_V2 = "rotation-secret-two-fedcba9876543210fedcba9876";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface Deployment {
  dir: string;
  service: ChildService;
  fingerprint: string;
  /** The trading client's connection flags. */
  alpha: string[];
  officers: [CliOfficer, CliOfficer, CliOfficer];
}

/**
 * A configured deployment with governance: operator token and PKI, custos.json, three officers
 * and threshold 2 set by the bootstrap admin.
 */
async function configuredDeployment(dir: string): Promise<Deployment> {
  const { fingerprint, pki } = await writeConfiguredDeployment(dir, { audit: { flushIntervalMs: 50 }, governance: { housekeepingMs: 500 } });
  const service = await spawnService(dir);
  const keys = join(dir, "officers");
  mkdirSync(keys, { mode: 0o700 });
  const officers: CliOfficer[] = [];
  for (const name of ["alice", "bob", "carol"]) officers.push(await createOfficer(dir, name, keys));
  const init = await runCli([
    "governance",
    "init",
    ...["--data-dir", dir, "--cert", join(pki, "ops.crt"), "--cert-key", join(pki, "ops.key")],
    ...officers.flatMap((o) => ["--officer", `${o.name}=${o.publicKeyPath}`]),
    "--threshold",
    "2",
  ]);
  assert.equal(init.code, 0, init.stderr);
  return {
    dir,
    service,
    fingerprint,
    alpha: ["--data-dir", dir, "--cert", join(pki, "alpha.crt"), "--cert-key", join(pki, "alpha.key")],
    officers: officers as Deployment["officers"],
  };
}

const hmac = (secret: string, payload: string) => createHmac("sha256", secret).update(payload).digest("hex");

describe("governance: import, grant and rotation by a 2-of-3 quorum, through the CLI", () => {
  const dir = tempDir("custos-rotation-");
  let d: Deployment;
  let alice: CliOfficer, bob: CliOfficer, carol: CliOfficer;

  before(async () => {
    d = await configuredDeployment(dir);
    [alice, bob, carol] = d.officers;
  });
  after(async () => {
    await d?.service.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Proposes as alice (stdin `input`); returns the proposal id the CLI printed last. */
  const proposeAsAlice = async (args: string[], input?: string): Promise<string> => {
    const id = ok(await runCli([...args, ...officerArgs(dir, alice)], input === undefined ? {} : { input }), args.join(" "));
    assert.match(id, UUID, "a proposing command prints the proposal id last");
    return id;
  };
  const approve = async (id: string, officer: CliOfficer): Promise<string> => ok(await approveAs(dir, id, officer), `approve ${id} as ${officer.name}`);
  const sign = (payload: string, version?: number) =>
    runCli(["sign", ...d.alpha, "--key", KEY, "--payload", payload, ...(version === undefined ? [] : ["--version", String(version)])]);
  /** Signs and returns the version the service reported and the signature. */
  const signed = async (payload: string, version?: number): Promise<{ version: number; signature: string }> => {
    const r = await sign(payload, version);
    const signature = ok(r, `sign${version === undefined ? "" : ` --version ${version}`}`);
    const reported = /^key \S+ version (\d+)/m.exec(r.stderr)?.[1];
    assert.ok(reported, r.stderr);
    return { version: Number(reported), signature };
  };
  const keyInfo = async (): Promise<KeyInfo> => {
    const r = await runCli(["key", "list", "--json", ...officerArgs(dir, bob)]);
    assert.equal(r.code, 0, r.stderr);
    const keys = JSON.parse(r.stdout) as KeyInfo[];
    const k = keys.find((x) => x.keyId === KEY);
    assert.ok(k, `no ${KEY} in key list`);
    return k;
  };
  const versionStates = async () => Object.fromEntries((await keyInfo()).versions.map((v) => [v.version, v.state]));

  it("imports v1 and grants a trading client, each change approved by two officers", async () => {
    const imported = await proposeAsAlice(["key", "import", "--key", KEY, "--raw", "--fingerprint", d.fingerprint], SECRET_V1);
    assert.equal(await approve(imported, bob), "pending");
    assert.equal(await approve(imported, carol), "executed");

    const added = await proposeAsAlice(["client", "add", ALPHA, "--cidr", "127.0.0.1/32"]);
    assert.equal(await approve(added, bob), "pending");
    assert.equal(await approve(added, carol), "executed");
    const granted = await proposeAsAlice(["client", "grant", ALPHA, "--key", KEY]);
    assert.equal(await approve(granted, carol), "pending");
    assert.equal(await approve(granted, bob), "executed");

    const payload = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=60000";
    assert.deepEqual(await signed(payload), { version: 1, signature: hmac(SECRET_V1, payload) });
    assert.deepEqual(await tokenSecretIds(dir), [`custos:${KEY}:v1`]);
  });

  it("rotates only at the second approval; the old version signs for pinned clients during the grace period", async () => {
    const payload = "symbol=ETHUSDT&side=SELL&type=MARKET&quantity=2";
    const rotation = await proposeAsAlice(["key", "rotate", "--key", KEY, "--grace", "24h", "--fingerprint", d.fingerprint], SECRET_V2);
    assert.deepEqual(await versionStates(), { 1: "active" }, "a proposal changes nothing");
    assert.deepEqual(await signed(payload), { version: 1, signature: hmac(SECRET_V1, payload) });

    assert.equal(await approve(rotation, bob), "pending");
    assert.deepEqual(await signed(payload), { version: 1, signature: hmac(SECRET_V1, payload) }, "one approval of two changes nothing");

    assert.equal(await approve(rotation, carol), "executed");
    assert.deepEqual(await signed(payload), { version: 2, signature: hmac(SECRET_V2, payload) }, "unpinned signs use v2 at once");
    assert.deepEqual(await signed(payload, 1), { version: 1, signature: hmac(SECRET_V1, payload) }, "pinned v1 still signs during its grace period");
    const states = await versionStates();
    assert.deepEqual(states, { 1: "retiring", 2: "active" });
    assert.deepEqual(await tokenSecretIds(dir), [`custos:${KEY}:v1`, `custos:${KEY}:v2`]);
  });

  it("destroys v1 ahead of its grace period only at the second approval: its HSM object is gone and pinned signs fail", async () => {
    const destroy = await proposeAsAlice(["key", "destroy", "--key", KEY, "--version", "1"]);
    assert.equal(await approve(destroy, bob), "pending");
    assert.deepEqual(await versionStates(), { 1: "retiring", 2: "active" }, "one approval destroys nothing");
    assert.equal(await approve(destroy, carol), "executed");
    assert.deepEqual(await versionStates(), { 1: "destroyed", 2: "active" });
    assert.deepEqual(await tokenSecretIds(dir), [`custos:${KEY}:v2`], "v1's HSM object is destroyed, v2's is the only one");

    const payload = "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=3";
    const pinned = await sign(payload, 1);
    assert.notEqual(pinned.code, 0);
    assert.match(pinned.stderr, /FAILED_PRECONDITION \(VERSION_NOT_USABLE\)/);
    assert.deepEqual(await signed(payload), { version: 2, signature: hmac(SECRET_V2, payload) });
  });

  it("refuses a forged approval: one officer's certificate with another officer's key", async () => {
    const id = ok(
      await runCli(["key", "policy", "--key", KEY, "--policy", '{"symbols":["BTCUSDT"],"maxQuantity":{"BTCUSDT":5}}', ...officerArgs(dir, carol)]),
      "key policy",
    );
    assert.match(id, UUID);
    const forged = await approveAs(dir, id, alice, bob);
    assert.notEqual(forged.code, 0);
    assert.match(forged.stderr, /PERMISSION_DENIED \(BAD_SIGNATURE\)/);
    const shown = ok(await runCli(["proposal", "show", id, ...officerArgs(dir, bob)]), "proposal show");
    assert.match(shown, /digest/);
    const listed = (await runCli(["proposal", "list", "--state", "pending", ...officerArgs(dir, bob)])).stdout;
    assert.match(listed, new RegExp(`^${id}\\tpending\\tset_policy\\t${KEY}\\tby carol\\tapprovals - \\(2 more\\)\\t`, "m"), "the forgery did not count");
    const denied = (await auditEvents(dir)).filter((e) => e.kind === "proposal.approve" && e.outcome === "denied");
    assert.deepEqual(
      denied.map((e) => [e.actor, e.reason, e.details?.proposal]),
      [["alice", "BAD_SIGNATURE", id]],
    );
  });

  it("refuses a trading client's certificate on officer calls", async () => {
    const r = await runCli(["proposal", "list", ...d.alpha]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /PERMISSION_DENIED \(ROLE_NOT_ALLOWED\)/);
  });

  it("leaves a verifiable audit chain with the proposals, the rotation and the destruction", async () => {
    const verify = await runCli(["audit", "verify", "--data-dir", dir]);
    assert.equal(verify.code, 0, verify.stderr);
    assert.match(verify.stdout, /^audit chain ok: \d+ events/);
    const events = await auditEvents(dir);
    const kinds = new Set(events.filter((e) => e.outcome === "ok").map((e) => e.kind));
    for (const kind of [
      "governance.init",
      "proposal.create",
      "proposal.approve",
      "proposal.execute",
      "proposal.executed",
      "key.import",
      "key.rotate",
      "key.destroy_version",
    ]) {
      assert.ok(kinds.has(kind), `no ${kind} event in the audit chain`);
    }
    assert.equal(events.filter((e) => e.kind === "proposal.executed").length, 5, "import, client add, grant, rotate, destroy: each executed once");
    const rotated = events.find((e) => e.kind === "key.rotate")!;
    assert.deepEqual([rotated.key, rotated.version], [KEY, 2]);
    const destroyed = events.filter((e) => e.kind === "key.destroy_version");
    assert.deepEqual(
      destroyed.map((e) => [e.key, e.version, e.actor, e.details?.proposal !== undefined]),
      [[KEY, 1, "officers", true]],
    );
  });
});
