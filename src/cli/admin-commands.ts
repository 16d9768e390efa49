import type { Command } from "commander";
import { unary } from "../client/connection.js";
import { ALGORITHM_ENUM } from "../transport/grpc/enums.js";
import { Environment, type KeyInfo } from "../gen/custos/v1/custody.js";
import { isSigningAlgorithm } from "../hsm/algorithms.js";
import { buildEnvelope, padHmacSecret } from "../hsm/envelope.js";
import { SignatureEncoding } from "../gen/custos/v1/signer.js";
import { CliError, connect, dataDirOf, pinnedFingerprint, type ConnectOptions } from "./context.js";
import { readSecret } from "./secret-input.js";

type Opts = Record<string, string | undefined>;

function connectOpts(o: Opts): ConnectOptions {
  return { dataDir: dataDirOf(o), ...(o.address ? { address: o.address } : {}), ...(o.ca ? { ca: o.ca } : {}), ...(o.cert ? { cert: o.cert } : {}), ...(o.certKey ? { certKey: o.certKey } : {}) };
}

/** Adds the connection options every networked command takes. */
export function withConnection(cmd: Command): Command {
  return cmd
    .option("--data-dir <dir>", "data directory (default $CUSTOS_DATA_DIR or ./.custos)")
    .option("--address <host:port>", "gRPC address (default: from DIR/connection.json)")
    .option("--ca <file>", "CA certificate (default: from DIR/connection.json)")
    .option("--cert <file>", "client certificate to act with")
    .option("--cert-key <file>", "private key of --cert");
}

export function registerKeyCommands(program: Command): void {
  const key = program.command("key").description("exchange keys held in the HSM");

  withConnection(key.command("import"))
    .description("import an exchange secret, wrapped on this machine for the HSM (secret on stdin or a hidden prompt)")
    .requiredOption("--key <id>", "key id, e.g. binance-main")
    .requiredOption("--exchange <name>", "exchange, e.g. binance")
    .option("--api-key-id <id>", "the exchange's public API key (returned with signatures)", "")
    .option("--algorithm <alg>", "hmac-sha256 | hmac-sha384 | hmac-sha512", "hmac-sha256")
    .option("--environment <env>", "mainnet | testnet", "mainnet")
    .option("--label <text>", "human-readable label")
    .option("--max-age-days <n>", "rotation due after this many days (default 45)")
    .option("--fingerprint <sha256:hex>", "pinned wrapping-key fingerprint (default: DIR/wrapping-key.fingerprint)")
    .action(async (o: Opts) => {
      const opts = connectOpts(o);
      const algorithm = o.algorithm!;
      if (!isSigningAlgorithm(algorithm)) throw new CliError(`unknown algorithm ${algorithm}`);
      if (o.environment !== "mainnet" && o.environment !== "testnet") throw new CliError("--environment must be mainnet or testnet");
      const pinned = pinnedFingerprint({ dataDir: opts.dataDir, ...(o.fingerprint ? { fingerprint: o.fingerprint } : {}) });
      const { custody } = connect(opts, "admin");
      const wrapping = await unary(custody, "getWrappingKey", {});
      if (wrapping.fingerprint !== pinned) {
        throw new CliError(`wrapping key fingerprint ${wrapping.fingerprint} does not match the pinned ${pinned}: refusing to import`);
      }
      const secret = await readSecret(`secret for ${o.key}: `);
      const padded = padHmacSecret(secret, algorithm);
      let envelope;
      try {
        // buildEnvelope also checks the SPKI against the fingerprint it was served with.
        envelope = buildEnvelope(padded, { spkiPem: wrapping.spkiPem, fingerprint: pinned, oaepHash: wrapping.oaepHash as "sha1" | "sha256" });
      } finally {
        secret.fill(0);
        padded.fill(0);
      }
      const info = await unary(custody, "importKey", {
        keyId: o.key!,
        exchange: o.exchange!,
        environment: o.environment === "testnet" ? Environment.ENVIRONMENT_TESTNET : Environment.ENVIRONMENT_MAINNET,
        label: o.label ?? "",
        apiKeyId: o.apiKeyId ?? "",
        algorithm: ALGORITHM_ENUM[algorithm],
        envelope,
        maxAgeDays: o.maxAgeDays ? Number(o.maxAgeDays) : 0,
      });
      console.log(`imported ${info.keyId} version ${info.activeVersion}`);
      custody.close();
    });

  withConnection(key.command("list"))
    .description("keys with their versions, age and rotation due date")
    .option("--json", "print JSON")
    .action(async (o: Opts & { json?: boolean }) => {
      const { custody } = connect(connectOpts(o), "admin");
      const { keys } = await unary(custody, "listKeys", {});
      custody.close();
      if (o.json) return void console.log(JSON.stringify(keys, null, 2));
      if (keys.length === 0) return void console.log("no keys");
      for (const k of keys) console.log(formatKey(k));
    });
}

function formatKey(k: KeyInfo): string {
  const ageDays = Math.floor((Date.now() - Date.parse(k.createdAt)) / 86_400_000);
  const versions = k.versions.map((v) => `v${v.version}:${v.state}`).join(" ");
  return `${k.keyId}\t${k.exchange}\tactive v${k.activeVersion}\tage ${ageDays}d\tdue ${k.dueAt.slice(0, 10)}\t${versions}`;
}

export function registerClientCommands(program: Command): void {
  const client = program.command("client").description("trading clients, their grants and address allowlists");

  withConnection(client.command("add <identity>"))
    .description("register a client identity (URI SAN of its certificate, or cn:NAME)")
    .option("--name <name>", "display name")
    .option("--role <role>", "trader | admin", "trader")
    .option("--cidr <cidr...>", "allowed source addresses (repeatable)", [] as string[])
    .action(async (identity: string, o: Opts & { cidr: string[] }) => {
      const { custody } = connect(connectOpts(o), "admin");
      const c = await unary(custody, "addClient", { identity, name: o.name ?? "", role: o.role!, cidrs: o.cidr });
      custody.close();
      console.log(`client ${c.identity} (${c.role}) allowed from ${c.cidrs.join(", ") || "nowhere"}`);
    });

  withConnection(client.command("grant <identity>"))
    .description("let a client sign with a key")
    .requiredOption("--key <id>", "key id")
    .action(async (identity: string, o: Opts) => {
      const { custody } = connect(connectOpts(o), "admin");
      const c = await unary(custody, "grantKey", { identity, keyId: o.key! });
      custody.close();
      console.log(`client ${c.identity} may sign with ${c.grantedKeys.join(", ")}`);
    });

  withConnection(client.command("list"))
    .description("clients with their roles, CIDRs and grants")
    .action(async (o: Opts) => {
      const { custody } = connect(connectOpts(o), "admin");
      const { clients } = await unary(custody, "listClients", {});
      custody.close();
      for (const c of clients) console.log(`${c.identity}\t${c.role}\t${c.cidrs.join(",") || "-"}\t${c.grantedKeys.join(",") || "-"}`);
    });
}

export function registerSignCommand(program: Command): void {
  withConnection(program.command("sign"))
    .description("sign a payload with a key (prints the signature on the last line)")
    .requiredOption("--key <id>", "key id")
    .requiredOption("--payload <string>", "payload to sign (UTF-8)")
    .option("--encoding <enc>", "hex | base64", "hex")
    .option("--version <n>", "pin a key version")
    .action(async (o: Opts) => {
      const encoding = o.encoding === "base64" ? SignatureEncoding.SIGNATURE_ENCODING_BASE64 : o.encoding === "hex" ? SignatureEncoding.SIGNATURE_ENCODING_HEX : undefined;
      if (encoding === undefined) throw new CliError("--encoding must be hex or base64");
      const { signer } = connect(connectOpts(o), "client");
      const res = await unary(signer, "sign", { keyId: o.key!, version: o.version ? Number(o.version) : 0, payload: Buffer.from(o.payload!, "utf8"), encoding });
      signer.close();
      console.error(`key ${o.key} version ${res.keyVersion}${res.apiKeyId ? ` api key ${res.apiKeyId}` : ""}`);
      console.log(res.signatureText);
    });
}
