import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { CONFIG_FILE, DEFAULT_GRPC_PORT, EMBEDDED_ADMIN, EMBEDDED_CLIENT, loadConfig, withEnvironment } from "../../src/config/config.js";
import { ConfigError } from "../../src/config/config-sections.js";
import { createSecretFile, readSecretFile } from "../../src/config/secrets.js";
import { CustosError } from "../../src/errors.js";

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "custos-config-"));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const isInvalidArgument = (e: unknown) => e instanceof CustosError && e.code === "INVALID_ARGUMENT";

/** The smallest valid custos.json. */
const MINIMAL = {
  tls: { caPath: "pki/ca.crt", certPath: "pki/server.crt", keyPath: "pki/server.key" },
  hsm: { modulePath: "/usr/lib/softhsm/libsofthsm2.so", tokenLabel: "custos", pinFile: "secrets/user.pin" },
};

function withConfig(json: unknown): string {
  const dir = tempDir();
  writeFileSync(join(dir, CONFIG_FILE), typeof json === "string" ? json : JSON.stringify(json));
  return dir;
}

describe("loadConfig", () => {
  it("without custos.json → the embedded default, everything under the data dir", () => {
    const dir = tempDir();
    const c = loadConfig(dir);
    assert.equal(c.embedded, true);
    assert.equal(c.dataDir, dir);
    for (const p of [c.tls.caPath, c.tls.certPath, c.tls.keyPath, c.hsm.pinFile!, c.hsm.softhsmConf!, c.store.sqlitePath]) {
      assert.ok(p.startsWith(dir + "/"), `${p} is under the data dir`);
    }
    assert.equal(c.hsm.pinEnv, undefined);
    assert.deepEqual(
      c.bootstrapAdmins.map((a) => a.identity),
      [EMBEDDED_ADMIN],
    );
    assert.deepEqual(c.autoGrant, [EMBEDDED_CLIENT]);
    assert.equal(c.grpc.host, "127.0.0.1", "the embedded default listens on loopback only");
    assert.equal(existsSync(join(dir, CONFIG_FILE)), false, "loading creates nothing");
  });

  it("resolves a relative data dir to an absolute one", () => {
    const dir = tempDir();
    const c = loadConfig(relative(process.cwd(), dir));
    assert.equal(c.dataDir, dir);
  });

  it("with a minimal custos.json → configured mode with defaults filled in", () => {
    const dir = withConfig(MINIMAL);
    const c = loadConfig(dir);
    assert.equal(c.embedded, false);
    assert.deepEqual(c.autoGrant, [], "no auto-grant outside the embedded default");
    assert.deepEqual(c.bootstrapAdmins, []);
    assert.equal(c.grpc.port, DEFAULT_GRPC_PORT);
    assert.equal(c.hsm.sessions, 8);
    assert.equal(c.hsm.dispatch, "auto");
    assert.equal(c.store.sqlitePath, join(dir, "custos.db"));
  });

  it("resolves relative paths against the data dir and keeps absolute ones", () => {
    const dir = withConfig({
      ...MINIMAL,
      tls: { caPath: "/etc/custos/ca.crt", certPath: "pki/server.crt", keyPath: "../outside/server.key" },
      hsm: { ...MINIMAL.hsm, softhsmConf: "softhsm2.conf" },
      store: { sqlitePath: "db/custos.db" },
    });
    const c = loadConfig(dir);
    assert.equal(c.tls.caPath, "/etc/custos/ca.crt");
    assert.equal(c.tls.certPath, join(dir, "pki/server.crt"));
    assert.equal(c.tls.keyPath, join(dir, "../outside/server.key"));
    assert.equal(c.hsm.pinFile, join(dir, "secrets/user.pin"));
    assert.equal(c.hsm.softhsmConf, join(dir, "softhsm2.conf"));
    assert.equal(c.store.sqlitePath, join(dir, "db/custos.db"));
  });

  it("takes a PIN from an environment variable instead of a file", () => {
    const c = loadConfig(withConfig({ ...MINIMAL, hsm: { modulePath: "/m.so", tokenLabel: "t", pinEnv: "CUSTOS_PIN" } }));
    assert.equal(c.hsm.pinEnv, "CUSTOS_PIN");
    assert.equal(c.hsm.pinFile, undefined);
  });

  it("governance: quorum rules default to no self-approval and veto; the embedded default's one officer counts", () => {
    assert.deepEqual(loadConfig(withConfig(MINIMAL)).governance, { proposerCounts: false, veto: true, proposalTtlHours: 24, maxProposalTtlHours: 168 });
    const c = loadConfig(withConfig({ ...MINIMAL, governance: { veto: false, housekeepingMs: 500 } }));
    assert.deepEqual(c.governance, { proposerCounts: false, veto: false, proposalTtlHours: 24, maxProposalTtlHours: 168, housekeepingMs: 500 });
    assert.equal(loadConfig(tempDir()).governance.proposerCounts, true);
  });

  it("governance: a proposal's longest lifetime is 7 days by default, configurable up to 30 days and never below the default lifetime", () => {
    assert.equal(loadConfig(withConfig({ ...MINIMAL, governance: { maxProposalTtlHours: 72 } })).governance.maxProposalTtlHours, 72);
    assert.equal(
      loadConfig(withConfig({ ...MINIMAL, governance: { proposalTtlHours: 240 } })).governance.maxProposalTtlHours,
      240,
      "follows a longer default lifetime",
    );
    assert.equal(loadConfig(withConfig({ ...MINIMAL, governance: { maxProposalTtlHours: 720 } })).governance.maxProposalTtlHours, 720);
  });

  it("bootstrap administrators: loopback unless CIDRs are given", () => {
    const c = loadConfig(withConfig({ ...MINIMAL, bootstrapAdmins: [{ identity: "spiffe://x/admin" }] }));
    assert.deepEqual(c.bootstrapAdmins, [{ identity: "spiffe://x/admin", cidrs: ["127.0.0.0/8", "::1/128"] }]);
  });

  it("merges partial sections over the defaults", () => {
    const c = loadConfig(withConfig({ ...MINIMAL, grpc: { port: 9000 }, bootstrapAdmins: [{ identity: "spiffe://x/admin", cidrs: ["10.0.0.0/8"] }] }));
    assert.equal(c.grpc.port, 9000);
    assert.equal(c.grpc.host, "127.0.0.1");
    assert.deepEqual(c.bootstrapAdmins, [{ identity: "spiffe://x/admin", cidrs: ["10.0.0.0/8"] }]);
  });

  it("reads pki.serverNames (host names and IP addresses); none by default", () => {
    assert.deepEqual(loadConfig(withConfig(MINIMAL)).serverNames, []);
    assert.deepEqual(loadConfig(tempDir()).serverNames, []);
    const names = ["custos", "signer.internal", "10.1.2.3"];
    assert.deepEqual(loadConfig(withConfig({ ...MINIMAL, pki: { serverNames: names } })).serverNames, names);
  });

  it("takes listen addresses and extra server names from the environment, over custos.json, in either mode", () => {
    const configured = loadConfig(withConfig({ ...MINIMAL, http: { host: "127.0.0.1", port: 9001 }, pki: { serverNames: ["custos"] } }));
    const env = { CUSTOS_HTTP_HOST: "0.0.0.0", CUSTOS_GRPC_HOST: "::", CUSTOS_CONSOLE_HOST: "127.0.0.2", CUSTOS_SERVER_NAMES: " signer , custos,10.0.0.7" };
    const c = withEnvironment(configured, env);
    assert.deepEqual([c.http.host, c.http.port, c.grpc.host, c.console.host], ["0.0.0.0", 9001, "::", "127.0.0.2"]);
    assert.deepEqual(c.serverNames, ["custos", "signer", "10.0.0.7"]);
    const embedded = withEnvironment(loadConfig(tempDir()), { CUSTOS_HTTP_HOST: "0.0.0.0" });
    assert.deepEqual([embedded.embedded, embedded.http.host, embedded.grpc.host], [true, "0.0.0.0", "127.0.0.1"]);
    const untouched = withEnvironment(configured, { CUSTOS_HTTP_HOST: "" });
    assert.equal(untouched.http.host, "127.0.0.1", "an empty variable changes nothing");
  });

  it("refuses a listen address that is not an IP literal, and a bad server name, with INVALID_ARGUMENT", () => {
    const c = loadConfig(tempDir());
    assert.throws(() => withEnvironment(c, { CUSTOS_HTTP_HOST: "custos" }), isInvalidArgument);
    assert.throws(() => withEnvironment(c, { CUSTOS_GRPC_HOST: "0.0.0.0:7400" }), isInvalidArgument);
    assert.throws(() => withEnvironment(c, { CUSTOS_SERVER_NAMES: "custos,bad_name" }), isInvalidArgument);
  });

  it("merges a partial rate limit over that bucket's defaults", () => {
    const c = loadConfig(withConfig({ ...MINIMAL, limits: { client: { perSecond: 5 } } }));
    assert.equal(c.limits.client.perSecond, 5);
    assert.equal(typeof c.limits.client.burst, "number", "burst kept (a missing burst disables the limiter)");
    assert.ok(Number.isFinite(c.limits.client.burst));
    assert.deepEqual(c.limits.key, loadConfig(withConfig(MINIMAL)).limits.key);
  });

  const refused: Array<[string, unknown]> = [
    ["invalid JSON", "{ tls: "],
    ["an unknown top-level key", { ...MINIMAL, autoGrant: ["spiffe://custos/engine/dev"] }],
    ["a misspelt key", { ...MINIMAL, limit: {} }],
    ["no tls section", { hsm: MINIMAL.hsm }],
    ["no tls.caPath", { ...MINIMAL, tls: { certPath: "a", keyPath: "b" } }],
    ["no tls.certPath", { ...MINIMAL, tls: { caPath: "a", keyPath: "b" } }],
    ["no tls.keyPath", { ...MINIMAL, tls: { caPath: "a", certPath: "b" } }],
    ["no hsm section", { tls: MINIMAL.tls }],
    ["no hsm.modulePath", { ...MINIMAL, hsm: { tokenLabel: "t", pinFile: "p" } }],
    ["no hsm.tokenLabel", { ...MINIMAL, hsm: { modulePath: "/m.so", pinFile: "p" } }],
    ["both pinFile and pinEnv", { ...MINIMAL, hsm: { ...MINIMAL.hsm, pinEnv: "CUSTOS_PIN" } }],
    ["neither pinFile nor pinEnv", { ...MINIMAL, hsm: { modulePath: "/m.so", tokenLabel: "t" } }],
    // A limit that is not a number would switch the rate limiter off (NaN tokens always pass).
    ["a non-numeric rate", { ...MINIMAL, limits: { client: { perSecond: "5", burst: 10 } } }],
    ["a negative burst", { ...MINIMAL, limits: { key: { perSecond: 5, burst: -1 } } }],
    ["a misspelt limits bucket", { ...MINIMAL, limits: { clients: { perSecond: 5, burst: 10 } } }],
    ["an unknown governance setting", { ...MINIMAL, governance: { threshold: 1 } }],
    ["a non-boolean veto", { ...MINIMAL, governance: { veto: "yes" } }],
    ["a proposal lifetime of zero", { ...MINIMAL, governance: { proposalTtlHours: 0 } }],
    ["a longest proposal lifetime above 30 days", { ...MINIMAL, governance: { maxProposalTtlHours: 721 } }],
    ["a longest proposal lifetime below the default lifetime", { ...MINIMAL, governance: { proposalTtlHours: 48, maxProposalTtlHours: 24 } }],
    ["a non-numeric longest proposal lifetime", { ...MINIMAL, governance: { maxProposalTtlHours: "7d" } }],
    ["a bootstrap administrator with a malformed CIDR", { ...MINIMAL, bootstrapAdmins: [{ identity: "spiffe://x/admin", cidrs: ["10.0.0.0/"] }] }],
    ["a bootstrap administrator without an identity", { ...MINIMAL, bootstrapAdmins: [{ cidrs: ["10.0.0.0/8"] }] }],
    ["a housekeeping interval under 100 ms", { ...MINIMAL, governance: { housekeepingMs: 5 } }],
    ["an unknown pki setting", { ...MINIMAL, pki: { serverName: "custos" } }],
    ["pki.serverNames that is not a list", { ...MINIMAL, pki: { serverNames: "custos" } }],
    ["a server name with a space", { ...MINIMAL, pki: { serverNames: ["custos signer"] } }],
    ["a wildcard server name", { ...MINIMAL, pki: { serverNames: ["*.example.com"] } }],
  ];
  for (const [name, json] of refused) {
    it(`refuses ${name} with INVALID_ARGUMENT`, () => {
      assert.throws(() => loadConfig(withConfig(json)), isInvalidArgument);
    });
  }
});

describe("loadConfig: every section validated, refusals name the setting", () => {
  // [what, custos.json, the setting's path the ConfigError names]
  const refused: Array<[string, unknown, string]> = [
    ["a configuration that is not an object", [MINIMAL], ""],
    ["an unknown top-level setting", { ...MINIMAL, autoGrant: ["spiffe://custos/engine/dev"] }, "autoGrant"],
    ["a misspelt hsm.dispatch (it once meant sync dispatch)", { ...MINIMAL, hsm: { ...MINIMAL.hsm, dispatch: "workr" } }, "hsm.dispatch"],
    ["an unknown hsm setting", { ...MINIMAL, hsm: { ...MINIMAL.hsm, session: 4 } }, "hsm.session"],
    ["a non-numeric hsm.sessions", { ...MINIMAL, hsm: { ...MINIMAL.hsm, sessions: "8" } }, "hsm.sessions"],
    ["zero hsm.sessions", { ...MINIMAL, hsm: { ...MINIMAL.hsm, sessions: 0 } }, "hsm.sessions"],
    ["an hsm.oaepHash outside sha1/sha256", { ...MINIMAL, hsm: { ...MINIMAL.hsm, oaepHash: "md5" } }, "hsm.oaepHash"],
    ["an hsm.modulePath that is not a string", { ...MINIMAL, hsm: { ...MINIMAL.hsm, modulePath: 7 } }, "hsm.modulePath"],
    ["an hsm section that is a string", { ...MINIMAL, hsm: "softhsm" }, "hsm"],
    ["an unknown grpc setting", { ...MINIMAL, grpc: { prot: 7400 } }, "grpc.prot"],
    ["a grpc.port out of range", { ...MINIMAL, grpc: { port: 70_000 } }, "grpc.port"],
    ["a grpc.port given as text", { ...MINIMAL, grpc: { port: "7400" } }, "grpc.port"],
    ["a fractional grpc.maxPayloadBytes", { ...MINIMAL, grpc: { maxPayloadBytes: 1.5 } }, "grpc.maxPayloadBytes"],
    ["a grpc.host that is not a string", { ...MINIMAL, grpc: { host: 0 } }, "grpc.host"],
    ["an unknown http setting", { ...MINIMAL, http: { hots: "0.0.0.0" } }, "http.hots"],
    ["a negative http.port", { ...MINIMAL, http: { port: -1 } }, "http.port"],
    ["an unknown tls setting", { ...MINIMAL, tls: { ...MINIMAL.tls, crlPath: "x" } }, "tls.crlPath"],
    ["a tls.caPath that is not a string", { ...MINIMAL, tls: { ...MINIMAL.tls, caPath: ["a"] } }, "tls.caPath"],
    ["an unknown store setting", { ...MINIMAL, store: { path: "custos.db" } }, "store.path"],
    ["a store.sqlitePath that is not a string", { ...MINIMAL, store: { sqlitePath: 1 } }, "store.sqlitePath"],
    ["an unknown audit setting", { ...MINIMAL, audit: { flushMs: 50 } }, "audit.flushMs"],
    ["a non-numeric audit.flushIntervalMs", { ...MINIMAL, audit: { flushIntervalMs: "250" } }, "audit.flushIntervalMs"],
    ["a zero audit.checkpointIntervalMs", { ...MINIMAL, audit: { checkpointIntervalMs: 0 } }, "audit.checkpointIntervalMs"],
    ["an unknown audit.refusals setting", { ...MINIMAL, audit: { refusals: { window: 10 } } }, "audit.refusals.window"],
    ["a negative audit.refusals.individualPerSource", { ...MINIMAL, audit: { refusals: { individualPerSource: -1 } } }, "audit.refusals.individualPerSource"],
    ["a logLevel pino does not have", { ...MINIMAL, logLevel: "verbose" }, "logLevel"],
    ["an unknown limits.client setting", { ...MINIMAL, limits: { client: { rate: 5 } } }, "limits.client.rate"],
    ["a limits section that is a number", { ...MINIMAL, limits: 5 }, "limits"],
    ["a non-numeric limits.key.burst", { ...MINIMAL, limits: { key: { burst: "10" } } }, "limits.key.burst"],
    ["a governance section that is a list", { ...MINIMAL, governance: [] }, "governance"],
    ["an unknown governance setting", { ...MINIMAL, governance: { threshold: 1 } }, "governance.threshold"],
    ["a non-boolean governance.veto", { ...MINIMAL, governance: { veto: "yes" } }, "governance.veto"],
    ["an unknown anomaly setting", { ...MINIMAL, anomaly: { treshold: 5 } }, "anomaly.treshold"],
    ["an anomaly.threshold out of range", { ...MINIMAL, anomaly: { threshold: 0 } }, "anomaly.threshold"],
    ["an unknown console setting", { ...MINIMAL, console: { sessionMinute: 5 } }, "console.sessionMinute"],
    ["a console.enabled that is not a boolean", { ...MINIMAL, console: { enabled: "no" } }, "console.enabled"],
    ["an unknown pki setting", { ...MINIMAL, pki: { serverName: "custos" } }, "pki.serverName"],
    ["an unknown bootstrapAdmins field", { ...MINIMAL, bootstrapAdmins: [{ identity: "spiffe://x/admin", cidr: "10.0.0.0/8" }] }, "bootstrapAdmins[0].cidr"],
  ];
  for (const [name, json, setting] of refused) {
    it(`refuses ${name} (INVALID_ARGUMENT, setting "${setting}")`, () => {
      assert.throws(
        () => loadConfig(withConfig(json)),
        (e: unknown) => e instanceof ConfigError && e.code === "INVALID_ARGUMENT" && e.setting === setting,
      );
    });
  }

  it("accepts every documented value of each enum and the README's example settings", () => {
    for (const dispatch of ["sync", "async", "worker", "auto"]) {
      assert.equal(loadConfig(withConfig({ ...MINIMAL, hsm: { ...MINIMAL.hsm, dispatch } })).hsm.dispatch, dispatch);
    }
    for (const oaepHash of ["sha1", "sha256"]) assert.equal(loadConfig(withConfig({ ...MINIMAL, hsm: { ...MINIMAL.hsm, oaepHash } })).hsm.oaepHash, oaepHash);
    const c = loadConfig(
      withConfig({
        ...MINIMAL,
        grpc: { host: "0.0.0.0", port: 7400, maxPayloadBytes: 65536 },
        http: { host: "127.0.0.1", port: 7401 },
        hsm: { ...MINIMAL.hsm, softhsmConf: "softhsm2.conf", sessions: 4 },
        store: { sqlitePath: "custos.db" },
        audit: { flushIntervalMs: 50, checkpointIntervalMs: 1000, refusals: { windowMs: 1000, individualPerSource: 0, maxSources: 5 } },
        logLevel: "debug",
      }),
    );
    const read = [c.grpc.port, c.grpc.maxPayloadBytes, c.http.port, c.hsm.sessions, c.audit.flushIntervalMs, c.logLevel];
    assert.deepEqual(read, [7400, 65536, 7401, 4, 50, "debug"]);
    assert.deepEqual(c.audit.refusals, { windowMs: 1000, individualPerSource: 0, maxSources: 5 });
  });
});

describe("readSecretFile", () => {
  function secretFile(content: string, mode: number): string {
    const path = join(tempDir(), "user.pin");
    writeFileSync(path, content);
    chmodSync(path, mode); // explicit: writeFileSync's mode is subject to the umask
    return path;
  }

  it("reads a 0600 file, trimmed", () => {
    assert.equal(readSecretFile(secretFile("1234-abcd\n", 0o600)), "1234-abcd");
    assert.equal(readSecretFile(secretFile("1234-abcd", 0o400)), "1234-abcd");
  });

  for (const mode of [0o644, 0o640, 0o604, 0o660, 0o606]) {
    it(`refuses a 0${mode.toString(8)} file with INVALID_ARGUMENT`, () => {
      assert.throws(() => readSecretFile(secretFile("1234", mode)), isInvalidArgument);
    });
  }

  it("refuses a missing file and an empty file with INVALID_ARGUMENT", () => {
    assert.throws(() => readSecretFile(join(tempDir(), "nope.pin")), isInvalidArgument);
    assert.throws(() => readSecretFile(secretFile(" \n", 0o600)), isInvalidArgument);
  });

  it("never puts the file's content into the error", () => {
    const path = secretFile("hunter2-pin", 0o644);
    assert.throws(
      () => readSecretFile(path),
      (e: unknown) => e instanceof CustosError && !e.message.includes("hunter2") && !String(e.stack).includes("hunter2"),
    );
  });
});

describe("createSecretFile", () => {
  it("writes a random PIN to a new 0600 file that readSecretFile accepts", () => {
    const path = join(tempDir(), "so.pin");
    const pin = createSecretFile(path);
    assert.ok(pin.length >= 24);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(readFileSync(path, "utf8").trim(), pin);
    assert.equal(readSecretFile(path), pin);
  });

  it("generates a different PIN each time", () => {
    const d = tempDir();
    assert.notEqual(createSecretFile(join(d, "a.pin")), createSecretFile(join(d, "b.pin")));
  });

  it("never overwrites: the second call throws and the first PIN stays", () => {
    const path = join(tempDir(), "user.pin");
    const pin = createSecretFile(path);
    assert.throws(
      () => createSecretFile(path),
      (e: unknown) => (e as NodeJS.ErrnoException).code === "EEXIST",
    );
    assert.equal(readSecretFile(path), pin);
  });
});
