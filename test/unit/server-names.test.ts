import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CustosError } from "../../src/errors.js";
import {
  assertServerCertNames,
  createDevCa,
  issueDevServerCert,
  issueServerCert,
  missingServerNames,
  serverCertNames,
  writeIssued,
} from "../../src/pki/index.js";

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "custos-names-"));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const hasCode = (code: string) => (e: unknown) => e instanceof CustosError && e.code === code;

describe("server names", () => {
  it("issues the dev server certificate for the loopback names and the given ones, from the data dir's CA", async () => {
    const pki = tempDir();
    await writeIssued(pki, "ca", await createDevCa());
    const issued = await issueDevServerCert(pki, ["custos", "signer.internal", "10.0.0.7"]);
    const pem = readFileSync(issued.certPath, "utf8");
    assert.deepEqual(serverCertNames(pem).sort(), ["10.0.0.7", "127.0.0.1", "::1", "custos", "localhost", "signer.internal"]);
    assert.deepEqual(missingServerNames(pem, ["custos", "localhost", "10.0.0.7", "::1"]), []);
    assert.deepEqual(missingServerNames(pem, ["custos-2", "cust", "10.0.0.8", "signer"]), ["custos-2", "cust", "10.0.0.8", "signer"]);
  });

  it("refuses a name that is neither a host name nor an IP address with INVALID_ARGUMENT", async () => {
    const pki = tempDir();
    await writeIssued(pki, "ca", await createDevCa());
    for (const bad of ["custos signer", "*.example.com", "-custos", "custos:7400", ""]) {
      await assert.rejects(issueDevServerCert(pki, [bad]), hasCode("INVALID_ARGUMENT"), bad);
    }
  });

  it("without a dev CA in the directory → PRECONDITION_FAILED", async () => {
    await assert.rejects(issueDevServerCert(tempDir(), ["custos"]), hasCode("PRECONDITION_FAILED"));
  });

  it("a configured deployment's certificate must carry every configured name (PRECONDITION_FAILED otherwise)", async () => {
    const dir = tempDir();
    const ca = await createDevCa();
    const { certPath } = await writeIssued(dir, "server", await issueServerCert(ca, { dnsNames: ["custos"], ipAddresses: [] }));
    assert.doesNotThrow(() => assertServerCertNames(certPath, ["custos"]));
    assert.doesNotThrow(() => assertServerCertNames(certPath, []));
    assert.throws(() => assertServerCertNames(certPath, ["custos", "signer"]), hasCode("PRECONDITION_FAILED"));
    assert.throws(() => assertServerCertNames(certPath, ["127.0.0.1"]), hasCode("PRECONDITION_FAILED"));
  });
});
