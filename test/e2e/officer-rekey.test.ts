import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { CustosError } from "../../src/errors.js";
import { loadOfficerPrivateKey, publicKeyFingerprint } from "../../src/governance/officer-key.js";
import { cliOk, lastLine, runCli, writeSecretFile } from "../helpers/harness.js";

/**
 * `custos officer rekey`: an officer key file re-encrypted in place under a new passphrase and
 * today's protection (PBKDF2-HMAC-SHA256, 600,000 iterations), the key itself unchanged — so
 * no governance change is needed. The openssl CLI reads the result independently.
 */

const iterationsOf = (file: string) =>
  execFileSync("openssl", ["asn1parse", "-in", file], { encoding: "utf8" }).match(/:PBKDF2[\s\S]*?INTEGER\s+:([0-9A-F]+)/)?.[1];

describe("officer key files: rekey", () => {
  const dir = mkdtempSync(join(tmpdir(), "custos-rekey-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const oldPass = writeSecretFile(join(dir, "old.pass"), "the old passphrase of alice");
  const newPass = writeSecretFile(join(dir, "new.pass"), "the new passphrase of alice");

  it("re-encrypts under the new passphrase; the fingerprint stays, the old passphrase stops working, nothing else is left behind", async () => {
    const key = join(dir, "alice.key");
    const fingerprint = lastLine(cliOk(await runCli(["officer", "keygen", "--out", key, "--passphrase-file", oldPass]), "keygen"));
    const rekeyed = lastLine(
      cliOk(await runCli(["officer", "rekey", "--officer-key", key, "--passphrase-file", oldPass, "--new-passphrase-file", newPass]), "rekey"),
    );
    assert.equal(rekeyed, fingerprint);

    const pem = readFileSync(key, "utf8");
    assert.equal(statSync(key).mode & 0o777, 0o600);
    assert.equal(publicKeyFingerprint(readFileSync(`${key}.pub`, "utf8")), fingerprint);
    assert.throws(
      () => loadOfficerPrivateKey(pem, readFileSync(oldPass, "utf8").trim()),
      (e: unknown) => e instanceof CustosError && e.code === "UNAUTHENTICATED",
    );
    const loaded = loadOfficerPrivateKey(pem, readFileSync(newPass, "utf8").trim());
    assert.equal(publicKeyFingerprint(loaded), fingerprint);
    assert.equal(iterationsOf(key), "0927C0", "600,000 iterations");
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.startsWith(".")),
      [],
      "no temporary file left",
    );
  });

  it("upgrades a key file written with OpenSSL's default encryption (2,048 iterations)", async () => {
    const key = join(dir, "legacy.key");
    const pair = generateKeyPairSync("ed25519", {
      publicKeyEncoding: { type: "spki", format: "pem" },
      privateKeyEncoding: { type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: readFileSync(oldPass, "utf8").trim() },
    });
    writeFileSync(key, pair.privateKey, { mode: 0o600 });
    assert.equal(iterationsOf(key), "0800", "OpenSSL's default: 2,048");
    const rekeyed = lastLine(
      cliOk(await runCli(["officer", "rekey", "--officer-key", key, "--passphrase-file", oldPass, "--new-passphrase-file", newPass]), "rekey"),
    );
    assert.equal(rekeyed, publicKeyFingerprint(pair.publicKey));
    assert.equal(iterationsOf(key), "0927C0");
  });

  it("a wrong current passphrase or a short new one changes nothing", async () => {
    const key = join(dir, "bob.key");
    cliOk(await runCli(["officer", "keygen", "--out", key, "--passphrase-file", oldPass]), "keygen");
    const before = readFileSync(key);
    const wrong = await runCli(["officer", "rekey", "--officer-key", key, "--passphrase-file", newPass, "--new-passphrase-file", newPass]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /wrong passphrase/);
    const short = writeSecretFile(join(dir, "short.pass"), "short");
    const tooShort = await runCli(["officer", "rekey", "--officer-key", key, "--passphrase-file", oldPass, "--new-passphrase-file", short]);
    assert.equal(tooShort.code, 1);
    assert.match(tooShort.stderr, /at least 8 characters/);
    assert.deepEqual(readFileSync(key), before);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.startsWith(".")),
      [],
    );
  });
});
