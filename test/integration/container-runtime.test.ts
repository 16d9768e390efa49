import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { join } from "node:path";
import tls from "node:tls";
import type { ConnectionFile } from "../../src/client/connection.js";
import { asMap, dockerYaml, runtimeStage } from "../helpers/docker-assets.js";
import { REPO, tempDir } from "../helpers/harness.js";
import { assetMetricNames, isExported, typesFromExposition } from "../helpers/monitoring-assets.js";

/**
 * The container's runtime, without a container engine: the files the Dockerfile's last stage
 * copies are assembled in a temp dir (node_modules pruned to production packages, as
 * `npm prune --omit=dev` leaves them), and custos runs from there with the image's CMD and
 * environment and compose's server names. Listen addresses stay on loopback (127.0.0.2 for
 * HTTP shows the configured address is the one bound).
 */

const stage = runtimeStage();
const HTTP_HOST = "127.0.0.2";

/** Production packages of package-lock.json (what `npm prune --omit=dev` keeps). */
function productionPackages(): string[] {
  const lock = JSON.parse(readFileSync(join(REPO, "package-lock.json"), "utf8")) as { packages: Record<string, { dev?: boolean }> };
  return Object.entries(lock.packages)
    .filter(([path, p]) => path.startsWith("node_modules/") && p.dev !== true)
    .map(([path]) => path);
}

/** The build stage's outputs the runtime stage copies, as this checkout has them. */
function fromBuildStage(src: string, into: string): void {
  if (src === "/app/dist") cpSync(join(REPO, "dist"), into, { recursive: true });
  else if (src === "/app/node_modules") {
    for (const path of productionPackages()) cpSync(join(REPO, path), join(into, "..", path), { recursive: true });
  } else throw new Error(`the test does not know the build stage's ${src}: teach it`);
}

/** Assembles the runtime file set in `app` the way the Dockerfile's last stage does. */
function assembleImageFiles(app: string): void {
  assert.equal(stage.workdir, "/app");
  for (const c of stage.copies) {
    const dest = join(app, c.dest);
    if (c.from === "build") fromBuildStage(c.src, dest);
    else if (c.from === undefined) cpSync(join(REPO, c.src), c.dest.endsWith("/") ? join(dest, c.src) : dest, { recursive: true });
    else throw new Error(`COPY --from=${c.from}`);
  }
}

interface Running {
  proc: ChildProcess;
  conn: ConnectionFile;
  stderr(): string;
  stop(): Promise<number | null>;
}

/** Starts the image's CMD from `app` with the image's environment; loopback addresses and free ports. */
async function startFromImageFiles(app: string, data: string, serverNames: string): Promise<Running> {
  const connFile = join(data, "connection.json");
  rmSync(connFile, { force: true });
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CUSTOS_") || k === "CUSTOS_PKCS11_MODULE"));
  const listen = { CUSTOS_GRPC_HOST: "127.0.0.1", CUSTOS_CONSOLE_HOST: "127.0.0.1", CUSTOS_HTTP_HOST: HTTP_HOST };
  const env = { ...inherited, ...stage.env, ...listen, CUSTOS_DATA_DIR: data, CUSTOS_SERVER_NAMES: serverNames };
  assert.equal(stage.cmd[0], "node");
  const proc = spawn(process.execPath, [...stage.cmd.slice(1), "--grpc-port", "0", "--http-port", "0"], { cwd: app, env, stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  proc.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  const deadline = Date.now() + 60_000;
  while (!existsSync(connFile)) {
    if (proc.exitCode !== null) throw new Error(`custos exited ${proc.exitCode}: ${err}`);
    if (Date.now() > deadline) throw new Error(`custos did not serve within 60 s: ${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    proc,
    conn: JSON.parse(readFileSync(connFile, "utf8")) as ConnectionFile,
    stderr: () => err,
    stop() {
      if (proc.exitCode === null) proc.kill("SIGTERM");
      return exited;
    },
  };
}

/** A TLS 1.3 handshake with the gRPC port as a bot dialling `name`, verifying the server certificate for it. */
function handshake(conn: ConnectionFile, name: string): Promise<{ authorized: boolean; errorCode?: string }> {
  const port = Number(conn.grpc.slice(conn.grpc.lastIndexOf(":") + 1));
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      servername: name,
      ca: readFileSync(conn.caPath),
      cert: readFileSync(conn.client!.certPath),
      key: readFileSync(conn.client!.keyPath),
      ALPNProtocols: ["h2"],
      minVersion: "TLSv1.3",
    });
    socket.once("secureConnect", () => {
      resolve({ authorized: socket.authorized });
      socket.destroy();
    });
    socket.once("error", (e: NodeJS.ErrnoException) => resolve({ authorized: false, ...(e.code ? { errorCode: e.code } : {}) }));
  });
}

describe("the container's runtime file set, served from a copy", () => {
  const root = tempDir("custos-image-");
  const app = join(root, "app");
  const data = join(root, "data");
  const custosService = asMap(asMap(asMap(dockerYaml("compose.yaml"), "compose").services, "services").custos, "services.custos");
  const composeNames = String(asMap(custosService.environment, "custos.environment").CUSTOS_SERVER_NAMES);
  let svc: Running;

  before(async () => {
    mkdirSync(app, { recursive: true });
    mkdirSync(data, { mode: 0o700 });
    assembleImageFiles(app);
    svc = await startFromImageFiles(app, data, composeNames);
  });
  after(async () => {
    await svc?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it("runs from the copy alone: production packages only, native modules loaded from it", () => {
    assert.ok(existsSync(join(app, "node_modules/pkcs11js")) && existsSync(join(app, "hsm/softhsm2.conf.template")));
    for (const dev of ["typescript", "ccxt", "playwright-core", "ts-proto"]) assert.equal(existsSync(join(app, "node_modules", dev)), false, dev);
    const maps = readFileSync(`/proc/${svc.proc.pid}/maps`, "utf8");
    assert.ok(maps.includes(join(app, "node_modules")), "native addons mapped from the copy");
    assert.equal(maps.includes(join(REPO, "node_modules")), false, "nothing mapped from the checkout");
  });

  it("answers /readyz on the HTTP address from the environment, and not on 127.0.0.1", async () => {
    const http = new URL(svc.conn.http);
    assert.equal(http.hostname, HTTP_HOST);
    const ready = await fetch(new URL("/readyz", http));
    assert.equal(ready.status, 200);
    const refused = await new Promise<string | undefined>((resolve) => {
      const s = netConnect({ host: "127.0.0.1", port: Number(http.port) });
      s.once("connect", () => {
        s.destroy();
        resolve(undefined);
      });
      s.once("error", (e: NodeJS.ErrnoException) => resolve(e.code));
    });
    assert.equal(refused, "ECONNREFUSED");
  });

  it("serves a certificate a bot dialling custos (compose's service name) verifies, and no other name", async () => {
    assert.ok(composeNames.split(",").includes("custos"));
    assert.deepEqual(await handshake(svc.conn, "custos"), { authorized: true });
    assert.deepEqual(await handshake(svc.conn, "localhost"), { authorized: true });
    assert.deepEqual(await handshake(svc.conn, "signer"), { authorized: false, errorCode: "ERR_TLS_CERT_ALTNAME_INVALID" });
  });

  it("exports every metric the shipped alert rules and dashboard name, the standard process names and custos_build_info", async () => {
    const text = await (await fetch(new URL("/metrics", svc.conn.http))).text();
    const types = typesFromExposition(text);
    const { dashboard, rules } = assetMetricNames();
    assert.ok(dashboard.size >= 15 && rules.size >= 6);
    assert.deepEqual(
      [...dashboard, ...rules].filter((n) => !isExported(n, types)),
      [],
    );
    for (const n of ["process_cpu_seconds_total", "nodejs_eventloop_lag_seconds", "process_resident_memory_bytes"]) assert.ok(types.has(n), n);
    const version = (JSON.parse(readFileSync(join(app, "package.json"), "utf8")) as { version: string }).version;
    assert.match(text, new RegExp(`^custos_build_info\\{version="${version.replaceAll(".", "\\.")}",node="${process.version}",[^}]*\\} 1$`, "m"));
  });

  it("custos pki server-cert --name adds a name; after a restart both it and the configured name verify", async () => {
    const args = ["bin/custos.js", "pki", "server-cert", "--data-dir", data, "--name", "signer"];
    const cli = spawn(process.execPath, args, { cwd: app, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    cli.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    assert.equal(await new Promise((r) => cli.once("exit", r)), 0);
    assert.match(out, /^names localhost 127\.0\.0\.1 ::1 signer$/m);
    assert.equal(await svc.stop(), 0);
    // The new certificate lacks "custos" (still in CUSTOS_SERVER_NAMES): the restart reissues it with both.
    svc = await startFromImageFiles(app, data, composeNames);
    assert.deepEqual(await handshake(svc.conn, "signer"), { authorized: true });
    assert.deepEqual(await handshake(svc.conn, "custos"), { authorized: true });
    assert.deepEqual(await handshake(svc.conn, "other"), { authorized: false, errorCode: "ERR_TLS_CERT_ALTNAME_INVALID" });
  });
});
