import assert from "node:assert/strict";
import { chmodSync, existsSync, readdirSync, rmSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { after, describe, it } from "node:test";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { runCli, spawnService, tempDir, type ChildService } from "../helpers/harness.js";

/**
 * The modes of what custos writes: owner-only (0600) for everything but certificates and
 * officer public keys (0644), even under a permissive umask. The database's WAL and shared
 * memory files are checked while the service runs (they exist only then).
 */

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

const mode = (path: string) => statSync(path).mode & 0o777;
/** Certificates and published public keys (officers', the audit checkpoint key's) stay readable by others. */
const isPublic = (name: string) => name.endsWith(".crt") || name.endsWith(".pub.pem") || name === "audit-checkpoint-key.pem";

let service: ChildService | undefined;
after(async () => {
  await service?.stop();
  if (service) rmSync(service.dir, { recursive: true, force: true });
});

describe("file modes", () => {
  it("a serving embedded default under umask 022: the database, its WAL and SHM, pid, connection and secrets are 0600", { timeout: 120_000 }, async () => {
    const previous = process.umask(0o022); // the child inherits it
    try {
      service = await spawnService();
    } finally {
      process.umask(previous);
    }
    const dir = service.dir;
    const deadline = Date.now() + 10_000;
    while (!existsSync(join(dir, "custos.pid")) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const imported = await runCli(["key", "import", "--data-dir", dir, "--key", "modes", "--raw"], { input: "file-modes-secret" });
    assert.equal(imported.code, 0, imported.stderr);

    const files = filesUnder(dir).map((p) => relative(dir, p));
    for (const name of [
      "custos.db",
      "custos.db-wal",
      "custos.db-shm",
      "custos.pid",
      "connection.json",
      "wrapping-key.fingerprint",
      "secrets/user.pin",
      "pki/server.key",
    ]) {
      assert.ok(files.includes(name), `${name} exists (${files.join(", ")})`);
    }
    const wrong = files.filter((f) => mode(join(dir, f)) !== (isPublic(f) ? 0o644 : 0o600)).map((f) => `${f} ${mode(join(dir, f)).toString(8)}`);
    assert.deepEqual(wrong, []);
    assert.ok(files.some(isPublic), "certificates are still readable by others");
  });

  it("a database, WAL and SHM an older release left world-readable are narrowed to 0600 when the store opens", async () => {
    const dir = tempDir();
    try {
      const path = join(dir, "custos.db");
      const older = new SqliteStore(path); // open: its WAL and SHM files exist
      const all = [path, `${path}-wal`, `${path}-shm`];
      for (const p of all) chmodSync(p, 0o644);
      const store = new SqliteStore(path);
      try {
        assert.deepEqual(all.map(mode), [0o600, 0o600, 0o600]);
      } finally {
        await store.close();
        await older.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
