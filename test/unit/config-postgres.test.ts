import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { CONFIG_FILE, loadConfig, withEnvironment, withPostgresFlag } from "../../src/config/config.js";
import { ConfigError } from "../../src/config/config-sections.js";
import { CustosError } from "../../src/errors.js";
import { redactPostgresUrl } from "../../src/store/postgres/pg-url.js";
import { storeLocationOf } from "../../src/store/open-store.js";

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const MINIMAL = {
  tls: { caPath: "pki/ca.crt", certPath: "pki/server.crt", keyPath: "pki/server.key" },
  hsm: { modulePath: "/usr/lib/softhsm/libsofthsm2.so", tokenLabel: "custos", pinFile: "secrets/user.pin" },
};

function withConfig(json: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), "custos-config-pg-"));
  dirs.push(dir);
  writeFileSync(join(dir, CONFIG_FILE), JSON.stringify(json));
  return dir;
}

const FROM_FILE = "postgres://custos:file-secret@db.internal:5432/custos";
const FROM_ENV = "postgresql://custos:env-secret@db.internal/custos";
const FROM_FLAG = "postgres://custos@127.0.0.1:6543/custos";

describe("the PostgreSQL store setting", () => {
  it("store.postgres in custos.json moves the store to PostgreSQL; without it the store is the SQLite file", () => {
    const sqlite = loadConfig(withConfig(MINIMAL));
    assert.equal(sqlite.store.postgres, undefined);
    assert.deepEqual(storeLocationOf(sqlite.store), { backend: "sqlite", path: sqlite.store.sqlitePath });
    const pg = withEnvironment(loadConfig(withConfig({ ...MINIMAL, store: { postgres: FROM_FILE } })), {});
    assert.deepEqual(pg.store.postgres, { url: FROM_FILE, setting: "store.postgres" });
    assert.deepEqual(storeLocationOf(pg.store), { backend: "postgres", url: FROM_FILE });
  });

  it("precedence: --postgres over CUSTOS_POSTGRES_URL over store.postgres; an empty variable changes nothing", () => {
    const file = loadConfig(withConfig({ ...MINIMAL, store: { postgres: FROM_FILE } }));
    assert.deepEqual(withEnvironment(file, { CUSTOS_POSTGRES_URL: "" }).store.postgres, { url: FROM_FILE, setting: "store.postgres" });
    const env = withEnvironment(file, { CUSTOS_POSTGRES_URL: FROM_ENV });
    assert.deepEqual(env.store.postgres, { url: FROM_ENV, setting: "CUSTOS_POSTGRES_URL" });
    assert.deepEqual(withPostgresFlag(env, FROM_FLAG).store.postgres, { url: FROM_FLAG, setting: "--postgres" });
    assert.equal(withPostgresFlag(env, undefined), env);
    // The embedded default takes the environment's URL too.
    const embedded = mkdtempSync(join(tmpdir(), "custos-config-pg-"));
    dirs.push(embedded);
    assert.equal(withEnvironment(loadConfig(embedded), { CUSTOS_POSTGRES_URL: FROM_ENV }).store.postgres?.url, FROM_ENV);
  });

  it("a value that is not a postgres:// URL is refused naming its setting, without repeating the value", () => {
    const bad = "mysql://root:hunter2@db/custos";
    assert.throws(
      () => loadConfig(withConfig({ ...MINIMAL, store: { postgres: bad } })),
      (e: unknown) => e instanceof ConfigError && e.setting === "store.postgres" && !e.message.includes("hunter2"),
    );
    assert.throws(
      () => loadConfig(withConfig({ ...MINIMAL, store: { postgres: 5432 } })),
      (e: unknown) => e instanceof ConfigError && e.setting === "store.postgres",
    );
    const base = loadConfig(withConfig(MINIMAL));
    for (const [apply, setting] of [
      [() => withEnvironment(base, { CUSTOS_POSTGRES_URL: bad }), "CUSTOS_POSTGRES_URL"],
      [() => withPostgresFlag(base, bad), "--postgres"],
    ] as const) {
      assert.throws(
        apply,
        (e: unknown) => e instanceof CustosError && e.code === "INVALID_ARGUMENT" && e.message.includes(setting) && !e.message.includes("hunter2"),
      );
    }
  });

  it("the URL is named with its password redacted, in the authority and in the query", () => {
    assert.equal(redactPostgresUrl(FROM_FILE), "postgres://custos:***@db.internal:5432/custos");
    assert.equal(redactPostgresUrl("postgres://db/custos?user=c&password=hunter2"), "postgres://db/custos?user=c&password=***");
    assert.equal(redactPostgresUrl(FROM_FLAG), FROM_FLAG);
    assert.ok(!redactPostgresUrl("not a url hunter2").includes("hunter2"));
  });
});
