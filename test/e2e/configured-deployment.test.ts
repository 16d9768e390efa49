import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, it } from "node:test";
import {
  approveAs,
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

/**
 * A configured deployment, as an operator sets one up: a token made by hsm/create-token.sh,
 * their own PKI, a custos.json. Nothing is implicit: no dev certificates, no governance until
 * a bootstrap administrator sets the officers, no automatic grants, the wrapping-key
 * fingerprint must be pinned by hand, and every change waits for two of three officers.
 */
const dir = tempDir("custos-configured-");
let service: ChildService | undefined;
after(async () => {
  await service?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

it("runs from custos.json with an operator-made token, PKI, officers and explicit grants", { timeout: 180_000 }, async () => {
  // 1–3. Token and wrapping key (PINs generated into 0600 files, never on a command line),
  // the operator's own PKI, and custos.json (relative paths resolve against the data dir).
  const { fingerprint, pki } = await writeConfiguredDeployment(dir);
  for (const f of ["so.pin", "user.pin"]) assert.equal(statSync(join(dir, "hsm", f)).mode & 0o777, 0o600, f);
  service = await spawnService(dir);
  assert.equal(service.conn.admin, undefined, "a configured deployment has no dev certificates");
  assert.equal(service.conn.officer, undefined, "a configured deployment has no dev officer");
  assert.equal(service.conn.wrappingKeyFingerprint, fingerprint);

  const ops = ["--data-dir", dir, "--cert", join(pki, "ops.crt"), "--cert-key", join(pki, "ops.key")];
  const alpha = ["--data-dir", dir, "--cert", join(pki, "alpha.crt"), "--cert-key", join(pki, "alpha.key")];
  const secret = "configured-deployment-secret-0123456789abcdef";

  // 4. Three officers: their own Ed25519 keys (passphrases in 0600 files) and mTLS certificates.
  const keys = join(dir, "officers");
  mkdirSync(keys, { mode: 0o700 });
  const [alice, bob, carol] = [await createOfficer(dir, "alice", keys), await createOfficer(dir, "bob", keys), await createOfficer(dir, "carol", keys)] as [
    CliOfficer,
    CliOfficer,
    CliOfficer,
  ];
  for (const o of [alice, bob, carol]) {
    assert.equal(o.identity, `spiffe://custos/officer/${o.name}`);
    for (const f of [o.passphraseFile, o.keyPath, o.certKeyPath]) assert.equal(statSync(f).mode & 0o777, 0o600, f);
  }

  // 5. Governance: no officer acts before it exists; only the bootstrap administrator sets it, once.
  const early = await runCli(["key", "import", ...officerArgs(dir, alice), "--key", "bybit-main", "--raw", "--fingerprint", fingerprint], { input: secret });
  assert.notEqual(early.code, 0);
  assert.match(early.stderr, /FAILED_PRECONDITION \(GOVERNANCE_NOT_INITIALISED\)/);
  const officerFlags = [alice, bob, carol].flatMap((o) => ["--officer", `${o.name}=${o.publicKeyPath}`]);
  const notAdmin = await runCli(["governance", "init", ...officerArgs(dir, alice), ...officerFlags, "--threshold", "2"]);
  assert.match(notAdmin.stderr, /PERMISSION_DENIED \(ROLE_NOT_ALLOWED\)/);
  const init = await runCli(["governance", "init", ...ops, ...officerFlags, "--threshold", "2"]);
  assert.equal(init.code, 0, init.stderr);
  assert.equal(lastLine(init.stdout), "governance initialised: 2 of 3 officers");
  const again = await runCli(["governance", "init", ...ops, ...officerFlags, "--threshold", "1"]);
  assert.match(again.stderr, /ALREADY_EXISTS \(GOVERNANCE_EXISTS\)/);

  /** Proposes as alice; bob's approval leaves it pending, carol's executes it. */
  const proposeAndPass = async (args: string[], input?: string): Promise<string> => {
    const proposed = await runCli([...args, ...officerArgs(dir, alice)], input === undefined ? {} : { input });
    assert.equal(proposed.code, 0, proposed.stderr);
    const id = lastLine(proposed.stdout);
    assert.match(id, UUID, "a proposing command prints the proposal id last");
    const first = await approveAs(dir, id, bob);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(lastLine(first.stdout), "pending");
    const second = await approveAs(dir, id, carol);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(lastLine(second.stdout), "executed");
    return id;
  };

  // 6. No pinned fingerprint → the CLI refuses to wrap anything; pinned → a proposal.
  const unpinned = await runCli(["key", "import", ...officerArgs(dir, alice), "--key", "bybit-main", "--raw"], { input: secret });
  assert.notEqual(unpinned.code, 0);
  assert.match(unpinned.stderr, /pinned wrapping-key fingerprint/);
  await proposeAndPass(["key", "import", "--key", "bybit-main", "--raw", "--fingerprint", fingerprint], secret);
  const listed = await runCli(["key", "list", ...officerArgs(dir, bob)]);
  assert.match(listed.stdout, /^bybit-main\traw \(RAW-ONLY: no request policy\)\tactive v1\t/m);

  // 7. A trading client: registered and allowed, but nothing is granted implicitly.
  await proposeAndPass(["client", "add", "spiffe://custos/engine/alpha", "--cidr", "127.0.0.1/32"]);
  const payload = "category=linear&symbol=BTCUSDT";
  const refused = await runCli(["sign", ...alpha, "--key", "bybit-main", "--payload", payload]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /PERMISSION_DENIED \(NO_GRANT\)/);

  await proposeAndPass(["client", "grant", "spiffe://custos/engine/alpha", "--key", "bybit-main"]);
  const signed = await runCli(["sign", ...alpha, "--key", "bybit-main", "--payload", payload]);
  assert.equal(signed.code, 0, signed.stderr);
  assert.equal(lastLine(signed.stdout), createHmac("sha256", secret).update(payload).digest("hex"));

  // 8. The trading client cannot administer; the administrator cannot sign.
  const clientAdmin = await runCli(["client", "list", ...alpha]);
  assert.match(clientAdmin.stderr, /PERMISSION_DENIED \(ROLE_NOT_ALLOWED\)/);
  const adminSign = await runCli(["sign", ...ops, "--key", "bybit-main", "--payload", payload]);
  assert.match(adminSign.stderr, /PERMISSION_DENIED \(ROLE_NOT_ALLOWED\)/);

  // 9. `hsm init` adopts the existing wrapping key (same fingerprint).
  assert.equal(await service.stop(), 0);
  service = undefined;
  const hsmInit = await runCli(["hsm", "init", "--data-dir", dir]);
  assert.equal(hsmInit.code, 0, hsmInit.stderr);
  assert.match(hsmInit.stdout, /adopted wrapping key/);
  assert.equal(lastLine(hsmInit.stdout), fingerprint);
  const verify = await runCli(["audit", "verify", "--data-dir", dir]);
  assert.equal(verify.code, 0, verify.stderr);
});
