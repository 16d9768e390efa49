import { Command, CommanderError } from "commander";
import { join } from "node:path";
import { existsSync, readFileSync } from "node:fs";
import { defaultSofthsmModule, loadConfig, withPostgresFlag } from "../config/config.js";
import { createSecretFile, readSecretEnv, readSecretFile } from "../config/secrets.js";
import { CustosError } from "../errors.js";
import { createLogger } from "../log.js";
import { registerClientCommands, registerKeyCommands, registerSignCommand, registerSignRequestCommand, registerSignWsAuthCommand } from "./admin-commands.js";
import { registerGovernanceCommands, registerKeyLifecycleCommands } from "./governance-commands.js";
import { CliError, dataDirOf, describeRpcError } from "./context.js";
import { registerAuditCommands } from "./audit-commands.js";
import { registerStoreCommands } from "./store-commands.js";
import { tryCommands } from "./banner.js";
import { registerWaitCommand } from "./wait.js";
import { registerGatewayCommand } from "./gateway-command.js";
import { registerStopCommands } from "./stop-command.js";

// The service, HSM and store modules load only in the commands that use them, so
// `--help` and the networked admin commands start fast.
const lazy = {
  service: () => import("../service.js"),
  embedded: () => import("../config/embedded.js"),
  hsm: () => import("../hsm/index.js"),
};

const program = new Command("custos")
  .description("HSM-backed custody and signing for exchange API keys")
  .version(packageVersion(), "-V, --version", "print the custos version")
  // Only before a command: `custos sign … --version N` is the key version, not this one.
  .enablePositionalOptions()
  .showHelpAfterError()
  .exitOverride();

/** The version in this checkout's package.json (dist/src/cli/ → the repository root). */
function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version;
}

/** `custos serve`'s options. */
type ServeOptions = {
  dataDir?: string;
  grpcPort?: string;
  httpPort?: string;
  consolePort?: string;
  host?: string;
  acceptAuditRewind?: boolean;
  postgres?: string;
};

program
  .command("serve")
  .description("run the service (embedded default: SoftHSM2 token, SQLite and dev PKI under the data dir)")
  .option("--data-dir <dir>", "data directory (default $CUSTOS_DATA_DIR or ./.custos)")
  .option("--grpc-port <port>", "override the gRPC port (0 = any free port)")
  .option("--http-port <port>", "override the HTTP port (0 = any free port)")
  .option("--console-port <port>", "override the officer console's HTTPS port (default 7402; 0 = any free port, also the default with --http-port 0)")
  .option("--host <address>", "override the listen address of both ports (e.g. 0.0.0.0 in a container)")
  .option(
    "--accept-audit-rewind",
    "serve although the audit chain is shorter than, or differs from, its last signed checkpoint (audited as audit.rewind_accepted)",
  )
  .option("--postgres <url>", "the store on PostgreSQL (replicas share it); prefer $CUSTOS_POSTGRES_URL or store.postgres: argv is visible to every user")
  .action(async (o: ServeOptions) => {
    const config = withPostgresFlag(loadConfig(dataDirOf(o)), o.postgres);
    if (o.grpcPort !== undefined) config.grpc.port = Number(o.grpcPort);
    if (o.httpPort !== undefined) config.http.port = Number(o.httpPort);
    if (o.consolePort !== undefined) config.console.port = Number(o.consolePort);
    if (o.host !== undefined) config.grpc.host = config.http.host = config.console.host = o.host;
    const logger = createLogger(config.logLevel);
    // Signals are handled from before the start: connection.json appears inside startService, and a
    // SIGTERM that follows it at once must drain and exit 0, not kill the process by default.
    let stopRequested: string | undefined;
    let shutdown = (signal: string) => void (stopRequested ??= signal);
    process.once("SIGTERM", () => shutdown("SIGTERM"));
    process.once("SIGINT", () => shutdown("SIGINT"));
    const { startService } = await lazy.service();
    const service = await startService(config, logger, { acceptAuditRewind: o.acceptAuditRewind === true }).catch((e: unknown) => {
      // A refused audit chain or an unreachable store names its code, for operators and their scripts.
      if (e instanceof CustosError && (e.code.startsWith("AUDIT_") || e.code === "STORE_ERROR")) throw new CliError(`${e.code}: ${e.message}`);
      throw e;
    });
    const c = service.connection;
    process.stderr.write(
      [
        "",
        `custos is serving ${config.embedded ? "(embedded default: dev PKI, SoftHSM2 token and SQLite in " + config.dataDir + ")" : ""}`,
        `  gRPC (TLS 1.3, mTLS)  ${c.grpc}   server name ${c.serverName}`,
        `  HTTP                  ${c.http}/healthz  /readyz  /metrics`,
        ...(c.console ? [`  officer console       ${c.console}  (HTTPS, passkeys; first login: custos officer enroll-token)`] : []),
        `  CA certificate        ${c.caPath}`,
        ...(c.client ? [`  trading client cert   ${c.client.certPath} (+ .key)`] : []),
        ...(c.admin ? [`  administrator cert    ${c.admin.certPath} (+ .key)`] : []),
        ...(c.officer ? [`  dev officer cert      ${c.officer.certPath} (+ .key); signing key ${c.officer.officerKeyPath}`] : []),
        `  wrapping key          ${c.wrappingKeyFingerprint || "none: run custos hsm init"}`,
        ...(service.replicaId ? [`  replica               ${service.replicaId}  (stop only this one: custos stop --replica ${service.replicaId})`] : []),
        `  connection details    ${join(config.dataDir, "connection.json")}`,
        ...(config.embedded
          ? [
              "",
              '  !! DEV GOVERNANCE: one local officer ("dev", key in this data dir), threshold 1.',
              "  !! Every key import, rotation and grant here is approved by that one key on this",
              "  !! machine. A configured deployment (custos.json) never does this: see README, Governance.",
            ]
          : []),
        ...(config.embedded ? tryCommands(config.dataDir) : []),
        "",
      ].join("\n") + "\n",
    );
    // SQLite: the service holds the data dir's lock and wrote DIR/custos.pid; replicas: DIR/replicas/ID.json
    // (both for `custos stop`). They go when it stops.
    shutdown = (signal: string) => {
      logger.info({ event: "service.stopping", signal }, "draining in-flight calls");
      service.stop().then(
        () => process.exit(0),
        (e: unknown) => {
          logger.error({ event: "service.stop_failed", err: e }, "shutdown failed");
          process.exit(1);
        },
      );
    };
    if (stopRequested) shutdown(stopRequested);
  });

const hsm = program.command("hsm").description("token administration");
hsm
  .command("init")
  .description("create (or adopt) the token's RSA-3072 wrapping key and its audit checkpoint key; print the wrapping key's fingerprint")
  .option("--data-dir <dir>", "data directory")
  .action(async (o: { dataDir?: string }) => {
    const config = loadConfig(dataDirOf(o));
    const { ensureEmbedded, useSofthsmConf } = await lazy.embedded();
    const { ensureCheckpointKey, ensureWrappingKey, Pkcs11Hsm } = await lazy.hsm();
    if (config.embedded) await ensureEmbedded(config);
    else useSofthsmConf(config);
    const pin = config.hsm.pinFile ? readSecretFile(config.hsm.pinFile) : readSecretEnv(config.hsm.pinEnv!);
    const { created } = ensureWrappingKey(config.hsm.modulePath, config.hsm.tokenLabel, pin);
    const checkpointKey = ensureCheckpointKey(config.hsm.modulePath, config.hsm.tokenLabel, pin);
    console.error(`${checkpointKey.created ? "created" : "adopted"} audit checkpoint key (ECDSA P-256, signs audit checkpoints only)`);
    const logger = createLogger("warn");
    const h = await Pkcs11Hsm.open({ ...config.hsm, pin, logger });
    const w = h.wrappingKey();
    await h.close();
    console.log(`${created ? "created" : "adopted"} wrapping key on token "${config.hsm.tokenLabel}" (RSA-3072, unwrap only)`);
    console.log(w.spkiPem.trim());
    console.log(w.fingerprint);
  });

hsm
  .command("create-token")
  .description("initialise a new token (PINs generated into 0600 files if absent) and its wrapping key")
  .requiredOption("--label <label>", "token label")
  .requiredOption("--so-pin-file <file>", "security officer PIN file")
  .requiredOption("--pin-file <file>", "user PIN file (custos reads it via hsm.pinFile)")
  .option("--softhsm-conf <file>", "softhsm2.conf to use (exported as SOFTHSM2_CONF)")
  .option("--module <path>", "PKCS#11 module", defaultSofthsmModule())
  .action(async (o: { label: string; soPinFile: string; pinFile: string; softhsmConf?: string; module: string }) => {
    if (o.softhsmConf) process.env.SOFTHSM2_CONF = o.softhsmConf;
    const { createToken, ensureCheckpointKey, ensureWrappingKey, Pkcs11Hsm } = await lazy.hsm();
    const soPin = existsSync(o.soPinFile) ? readSecretFile(o.soPinFile) : createSecretFile(o.soPinFile);
    const userPin = existsSync(o.pinFile) ? readSecretFile(o.pinFile) : createSecretFile(o.pinFile);
    createToken(o.module, o.label, soPin, userPin);
    ensureWrappingKey(o.module, o.label, userPin);
    ensureCheckpointKey(o.module, o.label, userPin);
    const h = await Pkcs11Hsm.open({
      modulePath: o.module,
      tokenLabel: o.label,
      pin: userPin,
      sessions: 1,
      dispatch: "sync",
      oaepHash: "sha1",
      logger: createLogger("warn"),
    });
    const fingerprint = h.wrappingKey().fingerprint;
    await h.close();
    console.log(`token "${o.label}" created with its wrapping key\n${fingerprint}`);
  });

const pki = program.command("pki").description("dev PKI of an embedded data dir");
pki
  .command("issue-client <name>")
  .description("issue a trading-client certificate from the data dir's dev CA")
  .option("--data-dir <dir>", "data directory")
  .option("--uri <uri>", "identity (URI SAN); default spiffe://custos/engine/NAME")
  .action(async (name: string, o: { dataDir?: string; uri?: string }) => {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) throw new CliError("name must be 1–64 of [A-Za-z0-9._-]");
    const uri = o.uri ?? `spiffe://custos/engine/${name}`;
    const { issueDevClient } = await lazy.embedded();
    const paths = await issueDevClient(dataDirOf(o), name, uri);
    console.log(`identity ${uri}\ncertificate ${paths.certPath}\nkey ${paths.keyPath}`);
    console.log(`register it: custos client add ${uri} --cidr 127.0.0.1/32 && custos client grant ${uri} --key KEY`);
  });

pki
  .command("issue-officer <name>")
  .description("issue an officer's mTLS certificate (identity spiffe://custos/officer/NAME) from the data dir's dev CA")
  .option("--data-dir <dir>", "data directory")
  .action(async (name: string, o: { dataDir?: string }) => {
    if (!/^[a-z0-9][a-z0-9._-]{0,31}$/.test(name)) throw new CliError("officer name must be 1–32 of [a-z0-9._-]");
    const uri = `spiffe://custos/officer/${name}`;
    const { issueDevClient } = await lazy.embedded();
    const paths = await issueDevClient(dataDirOf(o), `officer-${name}`, uri);
    console.error(`certificate ${paths.certPath}\nkey ${paths.keyPath}`);
    console.log(uri);
  });

pki
  .command("server-cert")
  .description("reissue the data dir's server certificate from its dev CA for localhost, 127.0.0.1, ::1 and each --name (restart custos to serve it)")
  .option("--data-dir <dir>", "data directory")
  .requiredOption("--name <name...>", "a host name or IP address clients dial custos by, e.g. custos on a compose network (repeatable)")
  .action(async (o: { dataDir?: string; name: string[] }) => {
    const { issueDevServerCert } = await import("../pki/server-names.js");
    const issued = await issueDevServerCert(join(dataDirOf(o), "pki"), o.name);
    console.log(`server certificate ${issued.certPath} (key ${issued.keyPath})\nnames ${issued.names.join(" ")}`);
    console.log("restart custos to serve it");
  });

registerAuditCommands(program);
registerStoreCommands(program);
registerKeyCommands(program);
registerKeyLifecycleCommands(program);
registerClientCommands(program);
registerSignCommand(program);
registerSignRequestCommand(program);
registerSignWsAuthCommand(program);
registerGovernanceCommands(program);
registerStopCommands(program);
registerWaitCommand(program);
registerGatewayCommand(program);

export async function main(argv: string[]): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) process.exit(e.exitCode);
    const message = e instanceof CliError || e instanceof CustosError ? e.message : describeRpcError(e);
    process.stderr.write(`custos: ${message}\n`);
    process.exit(1);
  }
}
