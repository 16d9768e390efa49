import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { rmSync } from "node:fs";
import { after, it } from "node:test";
import { runCli, spawnService, type ChildService } from "../helpers/harness.js";

/** `custos pki issue-client` on the embedded default, then registering and granting that client. */
let service: ChildService | undefined;
after(async () => {
  await service?.stop();
  if (service) rmSync(service.dir, { recursive: true, force: true });
});

it("issues a client certificate that signs once registered and granted", { timeout: 120_000 }, async () => {
  service = await spawnService();
  const dd = ["--data-dir", service.dir];
  const secret = "issue-client-secret";
  assert.equal((await runCli(["key", "import", ...dd, "--key", "okx-main", "--raw"], { input: secret })).code, 0);

  const issued = await runCli(["pki", "issue-client", "beta", ...dd]);
  assert.equal(issued.code, 0, issued.stderr);
  const identity = /^identity (\S+)$/m.exec(issued.stdout)?.[1];
  const cert = /^certificate (\S+)$/m.exec(issued.stdout)?.[1];
  const key = /^key (\S+)$/m.exec(issued.stdout)?.[1];
  assert.equal(identity, "spiffe://custos/engine/beta");
  assert.ok(cert && key, issued.stdout);
  const beta = [...dd, "--cert", cert, "--cert-key", key];
  const payload = "instId=BTC-USDT-SWAP";

  // Unregistered: the certificate is valid, the identity unknown.
  assert.match((await runCli(["sign", ...beta, "--key", "okx-main", "--payload", payload])).stderr, /UNAUTHENTICATED \(UNKNOWN_CLIENT\)/);
  assert.equal((await runCli(["client", "add", identity, ...dd, "--cidr", "127.0.0.0/8"])).code, 0);
  assert.match((await runCli(["sign", ...beta, "--key", "okx-main", "--payload", payload])).stderr, /PERMISSION_DENIED \(NO_GRANT\)/);
  assert.equal((await runCli(["client", "grant", identity, ...dd, "--key", "okx-main"])).code, 0);

  const signed = await runCli(["sign", ...beta, "--key", "okx-main", "--payload", payload, "--encoding", "base64"]);
  assert.equal(signed.code, 0, signed.stderr);
  assert.equal(signed.stdout.trim().split("\n").at(-1), createHmac("sha256", secret).update(payload).digest("base64"));

  const list = await runCli(["client", "list", ...dd]);
  assert.match(list.stdout, new RegExp(`^${identity}\\ttrader\\t127\\.0\\.0\\.0/8\\tokx-main$`, "m"));
  const keys = await runCli(["key", "list", ...dd]);
  assert.match(keys.stdout, /^okx-main\traw \(RAW-ONLY: no request policy\)\tactive v1\tage 0d\tdue \d{4}-\d{2}-\d{2}\tv1:active$/m);
});
