import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, it } from "node:test";
import { defaultSofthsmModule } from "../../src/config/config.js";
import { createDevCa, issueClientCert, issueServerCert, writeIssued } from "../../src/pki/index.js";
import { REPO, runCli, spawnService, tempDir, type ChildService } from "../helpers/harness.js";

/**
 * A configured deployment, as an operator sets one up: a token made by hsm/create-token.sh,
 * their own PKI, a custos.json. Nothing is implicit: no dev certificates, no automatic grants,
 * the wrapping-key fingerprint must be pinned by hand.
 */
const dir = tempDir("custos-configured-");
let service: ChildService | undefined;
after(async () => {
  await service?.stop();
  rmSync(dir, { recursive: true, force: true });
});

it("runs from custos.json with an operator-made token, PKI and explicit grants", { timeout: 180_000 }, async () => {
  // 1. Token and wrapping key; PINs generated into 0600 files, never on a command line.
  const out = execFileSync("bash", [join(REPO, "hsm/create-token.sh"), join(dir, "hsm"), "prod"], { encoding: "utf8" });
  const fingerprint = /sha256:[0-9a-f]{64}/.exec(out)?.[0];
  assert.ok(fingerprint, out);
  for (const f of ["so.pin", "user.pin"]) assert.equal(statSync(join(dir, "hsm", f)).mode & 0o777, 0o600, f);

  // 2. The operator's own PKI.
  const pki = join(dir, "pki");
  mkdirSync(pki);
  const ca = await createDevCa("ops CA");
  await writeIssued(pki, "ca", ca);
  await writeIssued(pki, "server", await issueServerCert(ca, { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] }));
  await writeIssued(pki, "ops", await issueClientCert(ca, { name: "ops", uri: "spiffe://custos/admin/ops" }));
  await writeIssued(pki, "alpha", await issueClientCert(ca, { name: "alpha", uri: "spiffe://custos/engine/alpha" }));

  // 3. custos.json; relative paths resolve against the data dir.
  writeFileSync(
    join(dir, "custos.json"),
    JSON.stringify({
      grpc: { port: 0 },
      http: { port: 0 },
      tls: { caPath: "pki/ca.crt", certPath: "pki/server.crt", keyPath: "pki/server.key" },
      hsm: { modulePath: defaultSofthsmModule(), tokenLabel: "prod", pinFile: "hsm/user.pin", softhsmConf: "hsm/softhsm2.conf" },
      bootstrapAdmins: [{ identity: "spiffe://custos/admin/ops" }],
    }),
  );
  service = await spawnService(dir);
  assert.equal(service.conn.admin, undefined, "a configured deployment has no dev certificates");
  assert.equal(service.conn.wrappingKeyFingerprint, fingerprint);

  const ops = ["--data-dir", dir, "--cert", join(pki, "ops.crt"), "--cert-key", join(pki, "ops.key")];
  const alpha = ["--data-dir", dir, "--cert", join(pki, "alpha.crt"), "--cert-key", join(pki, "alpha.key")];
  const secret = "configured-deployment-secret-0123456789abcdef";

  // 4. No pinned fingerprint → the CLI refuses to wrap anything.
  const unpinned = await runCli(["key", "import", ...ops, "--key", "bybit-main", "--exchange", "bybit"], { input: secret });
  assert.notEqual(unpinned.code, 0);
  assert.match(unpinned.stderr, /pinned wrapping-key fingerprint/);

  const imported = await runCli(["key", "import", ...ops, "--key", "bybit-main", "--exchange", "bybit", "--fingerprint", fingerprint], { input: secret });
  assert.equal(imported.code, 0, imported.stderr);

  // 5. A trading client: registered and allowed, but nothing is granted implicitly.
  const added = await runCli(["client", "add", "spiffe://custos/engine/alpha", ...ops, "--cidr", "127.0.0.1/32"]);
  assert.equal(added.code, 0, added.stderr);
  const payload = "category=linear&symbol=BTCUSDT";
  const refused = await runCli(["sign", ...alpha, "--key", "bybit-main", "--payload", payload]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /PERMISSION_DENIED \(NO_GRANT\)/);

  const granted = await runCli(["client", "grant", "spiffe://custos/engine/alpha", ...ops, "--key", "bybit-main"]);
  assert.equal(granted.code, 0, granted.stderr);
  const signed = await runCli(["sign", ...alpha, "--key", "bybit-main", "--payload", payload]);
  assert.equal(signed.code, 0, signed.stderr);
  assert.equal(signed.stdout.trim().split("\n").at(-1), createHmac("sha256", secret).update(payload).digest("hex"));

  // 6. The trading client cannot administer; the administrator cannot sign.
  const clientAdmin = await runCli(["client", "list", ...alpha]);
  assert.match(clientAdmin.stderr, /PERMISSION_DENIED \(ROLE_NOT_ALLOWED\)/);
  const adminSign = await runCli(["sign", ...ops, "--key", "bybit-main", "--payload", payload]);
  assert.match(adminSign.stderr, /PERMISSION_DENIED \(ROLE_NOT_ALLOWED\)/);

  // 7. `hsm init` adopts the existing wrapping key (same fingerprint).
  assert.equal(await service.stop(), 0);
  service = undefined;
  const init = await runCli(["hsm", "init", "--data-dir", dir]);
  assert.equal(init.code, 0, init.stderr);
  assert.match(init.stdout, /adopted wrapping key/);
  assert.equal(init.stdout.trim().split("\n").at(-1), fingerprint);
  const verify = await runCli(["audit", "verify", "--data-dir", dir]);
  assert.equal(verify.code, 0, verify.stderr);
});
