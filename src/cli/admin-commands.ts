import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import type { Command } from "commander";
import { unary } from "../client/connection.js";
import { ALGORITHM_ENUM, ALGORITHM_NAMES, ENVIRONMENT_NAMES } from "../transport/grpc/enums.js";
import { Environment, type CustodyClient, type KeyInfo, type WrappedKeyEnvelope, type WrappingKey } from "../gen/custos/v1/custody.js";
import { isHmacAlgorithm, isSigningAlgorithm, type SigningAlgorithm } from "../hsm/algorithms.js";
import { buildEnvelope, padHmacSecret } from "../hsm/envelope.js";
import { dialectFor } from "../exchanges/registry.js";
import { SignatureEncoding } from "../gen/custos/v1/signer.js";
import { CliError, connect, pinnedFingerprint } from "./context.js";
import { connectOpts, proposeFromCli, reportProposal, type Opts } from "./officer-context.js";
import { readSecret } from "./secret-input.js";
import { readApiPassphrase, signPassphrase } from "./api-passphrase.js";
import { newKeyExchange, newKeyExchangeNote } from "./new-key-exchange.js";
import { SIGNED_PASSPHRASE_EXCHANGE, signedPassphraseFingerprint } from "../governance/proposal-input.js";

export { connectOpts } from "./officer-context.js";

/** Adds the connection options every networked command takes. */
export function withConnection(cmd: Command): Command {
  return cmd
    .option("--data-dir <dir>", "data directory (default $CUSTOS_DATA_DIR or ./.custos)")
    .option("--address <host:port>", "gRPC address (default: from DIR/connection.json)")
    .option("--ca <file>", "CA certificate (default: from DIR/connection.json)")
    .option("--cert <file>", "client certificate to act with")
    .option("--cert-key <file>", "private key of --cert");
}

/** Options every new key takes (import and generate). */
export function withNewKeyOptions(cmd: Command): Command {
  return cmd
    .option("--exchange <name>", "exchange custos reads requests for (binance, bybit, okx, …) or its ccxt id (binanceusdm → binance)")
    .option("--raw", "a key that signs raw bytes only: no exchange dialect, no request policy (stored with exchange raw)")
    .option("--environment <env>", "mainnet | testnet", "mainnet")
    .option("--label <text>", "human-readable label")
    .option("--max-age-days <n>", "rotation due after this many days (default 45)");
}

/** A new key's metadata from those options and --key / --exchange or --raw / --api-key-id. */
export function newKeyFields(o: Opts, exchange: string) {
  if (o.environment !== "mainnet" && o.environment !== "testnet") throw new CliError("--environment must be mainnet or testnet");
  return {
    keyId: o.key!,
    exchange,
    environment: o.environment === "testnet" ? Environment.ENVIRONMENT_TESTNET : Environment.ENVIRONMENT_MAINNET,
    label: o.label ?? "",
    apiKeyId: o.apiKeyId ?? "",
    maxAgeDays: o.maxAgeDays ? Number(o.maxAgeDays) : 0,
  };
}

export function registerKeyCommands(program: Command): void {
  const key = program.command("key").description("exchange keys held in the HSM");

  withNewKeyOptions(withConnection(key.command("import")))
    .description("import an exchange secret, wrapped on this machine for the HSM (secret on stdin or a hidden prompt)")
    .requiredOption("--key <id>", "key id, e.g. binance-main")
    .option("--api-key-id <id>", "the exchange's public API key (returned with signatures)", "")
    .option("--algorithm <alg>", "hmac-sha256 | hmac-sha384 | hmac-sha512 (default: the exchange's, else hmac-sha256); ed25519 with --pkcs8-file")
    .option(
      "--pkcs8-file <file>",
      "ed25519 only: an existing private key to migrate, PKCS#8 PEM or DER in a 0600 file (wrapped here; the HSM must support unwrapping Ed25519 keys)",
    )
    .option("--fingerprint <sha256:hex>", "pinned wrapping-key fingerprint (default: DIR/wrapping-key.fingerprint)")
    .option(
      "--api-passphrase-file <file>",
      "kucoinfutures: file (0600) holding the API passphrase; else $CUSTOS_API_PASSPHRASE or a prompt (only its HMAC is sent)",
    )
    .action(async (o: Opts) => {
      const exchange = newKeyExchange(o);
      const dialect = dialectFor(exchange);
      const algorithm = o.algorithm ?? dialect?.algorithm ?? "hmac-sha256";
      if (!isSigningAlgorithm(algorithm)) throw new CliError(`unknown algorithm ${algorithm}`);
      if (dialect && dialect.algorithm !== algorithm && !dialect.otherAlgorithms?.includes(algorithm))
        throw new CliError(`${exchange} signs with ${dialect.algorithm}, not ${algorithm}`);
      const fields = newKeyFields(o, exchange);
      if ((algorithm === "ed25519") !== Boolean(o.pkcs8File)) {
        throw new CliError(
          algorithm === "ed25519"
            ? "ed25519 keys are generated inside the HSM (`custos key generate`), or migrated with --pkcs8-file FILE"
            : "--pkcs8-file is for ed25519 keys",
        );
      }
      const { envelope, publicKeyPem, signedPassphrase } = o.pkcs8File
        ? { ...(await wrapPkcs8File(o, o.pkcs8File)), signedPassphrase: "" }
        : { ...(await wrapSecretFromInput(o, algorithm, `secret for ${o.key} (${exchange}): `, exchange)), publicKeyPem: "" };
      const p = await proposeFromCli(o, {
        kind: {
          $case: "importKey",
          importKey: { ...fields, algorithm: ALGORITHM_ENUM[algorithm], envelope, publicKeyPem, signedPassphrase },
        },
        ttlSeconds: 0,
      });
      reportProposal(p, `imported ${o.key} version 1`);
      newKeyExchangeNote(o, exchange);
      if (dialect?.signaturesAreLogins) {
        console.error(
          `note: every ${exchange} signature is also a login, so ${o.key} signs nothing until a policy attests that its ${exchange} scope grants ` +
            `no withdrawal or transfer rights: check the scope at the exchange, then custos key policy --key ${o.key} --policy '{"exchangeScopeExcludesFunds": true}'`,
        );
      }
    });

  withConnection(key.command("list"))
    .description("keys with their versions, age and rotation due date")
    .option("--json", "print JSON")
    .action(async (o: Opts & { json?: boolean }) => {
      const { custody } = connect(connectOpts(o), "officer");
      const { keys } = await unary(custody, "listKeys", {});
      custody.close();
      if (o.json) return void console.log(JSON.stringify(keys.map(keyListEntry), null, 2));
      if (keys.length === 0) return void console.log("no keys");
      for (const k of keys) console.log(formatKey(k));
    });
}

/** A key as `key list --json` prints it: enums by the names the CLI takes (hmac-sha256, mainnet), not their numbers. */
export function keyListEntry(k: KeyInfo) {
  return { ...k, environment: ENVIRONMENT_NAMES[k.environment] ?? "unspecified", algorithm: ALGORITHM_NAMES[k.algorithm] ?? "unspecified" };
}

function formatKey(k: KeyInfo): string {
  const versions = k.versions.map((v) => `v${v.version}:${v.state}${v.state === "retiring" && v.retireAt ? `(until ${v.retireAt})` : ""}`).join(" ");
  const overdue = k.dueAt && Date.parse(k.dueAt) <= Date.now() ? " OVERDUE" : "";
  const frozen = k.frozen ? `\tFROZEN (${k.frozenReason})` : "";
  const exchange = k.rawOnly ? `${k.exchange} (RAW-ONLY: no request policy)` : k.exchange;
  // What custos last read from the exchange about the key's own settings; UNSAFE stands out like FROZEN.
  const permissions = k.exchangePermissions.startsWith("unsafe")
    ? `\tEXCHANGE-SIDE UNSAFE (${k.exchangePermissions.slice(8)})`
    : k.exchangePermissions
      ? `\texchange-side ${k.exchangePermissions}`
      : "";
  return `${k.keyId}\t${exchange}\tactive v${k.activeVersion}\tage ${k.ageDays}d\tdue ${k.dueAt.slice(0, 10)}${overdue}\t${versions}${frozen}${permissions}`;
}

/**
 * Reads an exchange secret (stdin or hidden prompt), checks the service's wrapping key against
 * the pinned fingerprint, wraps the secret on this machine and zero-fills the plaintext.
 * HMAC algorithms only: an Ed25519 key is generated inside the HSM, so there is no secret to wrap.
 * KuCoin Futures: also reads the API passphrase (`--api-passphrase-file`, `$CUSTOS_API_PASSPHRASE`
 * or a prompt) and returns `signedPassphrase` = base64(HMAC-SHA256(secret, passphrase)), made
 * here while the secret is in hand; the passphrase itself goes nowhere. "" for other exchanges.
 */
export async function wrapSecretFromInput(
  o: Opts,
  algorithm: SigningAlgorithm,
  prompt: string,
  exchange: string,
): Promise<{ envelope: WrappedKeyEnvelope; signedPassphrase: string }> {
  if (!isHmacAlgorithm(algorithm)) {
    throw new CliError(
      `${algorithm} keys are not typed in as secrets: a secret import takes hmac-sha256, hmac-sha384 or hmac-sha512 (ed25519: key generate, or key import --pkcs8-file)`,
    );
  }
  const withPassphrase = exchange === SIGNED_PASSPHRASE_EXCHANGE;
  if (!withPassphrase && o.apiPassphraseFile) throw new CliError(`--api-passphrase-file is for ${SIGNED_PASSPHRASE_EXCHANGE} keys`);
  const wrapping = await pinnedWrappingKey(o);
  // The passphrase first: a missing one fails before the secret is read.
  const passphrase = withPassphrase ? await readApiPassphrase(o.apiPassphraseFile, `API passphrase for ${o.key}: `) : undefined;
  let typed: Buffer | undefined;
  let secret: Buffer | undefined;
  let padded: Buffer | undefined;
  try {
    typed = await readSecret(prompt);
    // Some exchanges hand out a base64 secret but sign with the decoded bytes (Kraken Futures):
    // the HSM must hold what the HMAC uses.
    secret = dialectFor(exchange)?.secretEncoding === "base64" ? decodeBase64Secret(typed) : typed;
    padded = padHmacSecret(secret, algorithm);
    const signedPassphrase = passphrase ? signPassphrase(secret, passphrase) : "";
    // buildEnvelope also checks the SPKI against the fingerprint it was served with.
    const envelope = buildEnvelope(padded, wrapping);
    if (signedPassphrase)
      console.error(`API passphrase set: signed passphrase sha256 ${signedPassphraseFingerprint(signedPassphrase)}… (as the proposal's summary shows)`);
    return { envelope, signedPassphrase };
  } finally {
    passphrase?.fill(0);
    typed?.fill(0);
    secret?.fill(0);
    padded?.fill(0);
  }
}

/** The service's wrapping key, refused unless it matches the pinned fingerprint. */
async function pinnedWrappingKey(o: Opts): Promise<{ spkiPem: string; fingerprint: string; oaepHash: "sha1" | "sha256" }> {
  const opts = connectOpts(o);
  const pinned = pinnedFingerprint({ dataDir: opts.dataDir, ...(o.fingerprint ? { fingerprint: o.fingerprint } : {}) });
  const { custody } = connect(opts, "officer");
  let wrapping: WrappingKey;
  try {
    wrapping = await unary(custody, "getWrappingKey", {});
  } finally {
    custody.close();
  }
  if (wrapping.fingerprint !== pinned) {
    throw new CliError(`wrapping key fingerprint ${wrapping.fingerprint} does not match the pinned ${pinned}: refusing to import`);
  }
  // buildEnvelope also checks the SPKI against the pinned fingerprint.
  return { spkiPem: wrapping.spkiPem, fingerprint: pinned, oaepHash: wrapping.oaepHash as "sha1" | "sha256" };
}

/**
 * An existing Ed25519 private key (migration), read from a 0600 file, normalised to PKCS#8 DER
 * and wrapped on this machine; its public key goes into the proposal for the officers to approve.
 */
async function wrapPkcs8File(o: Opts, path: string): Promise<{ envelope: WrappedKeyEnvelope; publicKeyPem: string }> {
  if ((statSync(path).mode & 0o077) !== 0) throw new CliError(`${path} must not be readable by group or others (chmod 600)`);
  const raw = readFileSync(path);
  let key: KeyObject;
  try {
    key = raw.includes("-----BEGIN") ? createPrivateKey(raw) : createPrivateKey({ key: raw, format: "der", type: "pkcs8" });
  } catch {
    throw new CliError(`${path} is not a PKCS#8 private key`);
  } finally {
    raw.fill(0);
  }
  if (key.asymmetricKeyType !== "ed25519") throw new CliError(`${path} holds a ${key.asymmetricKeyType ?? "unknown"} key, not Ed25519`);
  const wrapping = await pinnedWrappingKey(o);
  const der = key.export({ format: "der", type: "pkcs8" });
  try {
    return { envelope: buildEnvelope(der, wrapping), publicKeyPem: createPublicKey(key).export({ format: "pem", type: "spki" }).toString() };
  } finally {
    der.fill(0);
  }
}

/** A base64 secret (whitespace ignored) → its bytes; refuses anything that is not base64. */
function decodeBase64Secret(typed: Buffer): Buffer {
  const text = typed.toString("latin1").replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || text.length % 4 !== 0) throw new CliError("this exchange's secret is base64: the input is not");
  return Buffer.from(text, "base64");
}

/** The client's current access, to change one part of it in a set_grants proposal. */
async function currentAccess(custody: CustodyClient, identity: string) {
  const { clients } = await unary(custody, "listClients", {});
  return clients.find((c) => c.identity === identity);
}

export function registerClientCommands(program: Command): void {
  const client = program.command("client").description("trading clients, their grants and address allowlists");

  withConnection(client.command("add <identity>"))
    .description("propose a trading client (identity = URI SAN of its certificate, or cn:NAME); keeps its grants")
    .option("--name <name>", "display name")
    .option("--cidr <cidr...>", "allowed source addresses (repeatable)", [] as string[])
    .option("--can-freeze", "may freeze keys and clients (a risk engine)")
    .action(async (identity: string, o: Opts & { cidr: string[]; canFreeze?: boolean }) => {
      const { custody } = connect(connectOpts(o), "officer");
      const existing = await currentAccess(custody, identity).finally(() => custody.close());
      const p = await proposeFromCli(o, {
        kind: {
          $case: "setGrants",
          setGrants: { identity, name: o.name ?? existing?.name ?? "", cidrs: o.cidr, keyIds: existing?.grantedKeys ?? [], canFreeze: Boolean(o.canFreeze) },
        },
        ttlSeconds: 0,
      });
      reportProposal(p, `client ${identity} allowed from ${o.cidr.join(", ") || "nowhere"}`);
    });

  grantCommand(client.command("grant <identity>"));
  // Also `custos grant IDENTITY --key ID`, as the governance CLI contract names it.
  grantCommand(program.command("grant <identity>"));

  withConnection(client.command("list"))
    .description("clients with their roles, CIDRs, grants and frozen state")
    .action(async (o: Opts) => {
      const { custody } = connect(connectOpts(o), "officer");
      const { clients } = await unary(custody, "listClients", {});
      custody.close();
      for (const c of clients) {
        console.log(
          `${c.identity}\t${c.role}\t${c.cidrs.join(",") || "-"}\t${c.grantedKeys.join(",") || "-"}${c.canFreeze ? "\tcan-freeze" : ""}${c.frozen ? `\tFROZEN (${c.frozenReason})` : ""}`,
        );
      }
    });
}

function grantCommand(cmd: Command): void {
  withConnection(cmd)
    .description("propose that a client may sign with a key (its other grants and CIDRs stay)")
    .requiredOption("--key <id>", "key id")
    .action(async (identity: string, o: Opts) => {
      const { custody } = connect(connectOpts(o), "officer");
      const existing = await currentAccess(custody, identity).finally(() => custody.close());
      if (!existing) throw new CliError(`no client ${identity}: add it first (custos client add ${identity} --cidr …)`);
      const keyIds = [...new Set([...existing.grantedKeys, o.key!])].sort();
      const p = await proposeFromCli(o, {
        kind: { $case: "setGrants", setGrants: { identity, name: existing.name, cidrs: existing.cidrs, keyIds, canFreeze: existing.canFreeze } },
        ttlSeconds: 0,
      });
      reportProposal(p, `client ${identity} may sign with ${keyIds.join(", ")}`);
    });
}

export function registerSignRequestCommand(program: Command): void {
  withConnection(program.command("sign-request"))
    .description("sign an exchange REST request through the key's dialect and policy; prints one JSON object")
    .requiredOption("--key <id>", "key id")
    .requiredOption("--method <m>", "GET | POST | PUT | DELETE")
    .requiredOption("--path <p>", "path without host or query, e.g. /fapi/v1/order")
    .option("--query <q>", "the exact query string (without ?)", "")
    .option("--body <b>", "the exact body", "")
    .option("--timestamp <ms>", "caller-chosen timestamp (ms); default: custos's clock")
    .option("--nonce <n>", "caller-chosen nonce")
    .option("--expires <s>", "caller-chosen expiry (seconds since the epoch)")
    .option("--recv-window <ms>", "receive window (Binance, Bybit)")
    .option("--api-key-version <v>", "the API key's version at the exchange (KuCoin: 2 or 3)")
    .option("--omit-nonce", "Kraken Futures: sign with no Nonce (the key's policy must set allowUntimedRequests)")
    .option("--version <n>", "pin a key version")
    .action(async (o: Opts) => {
      const { signer } = connect(connectOpts(o), "client");
      const passphrase = process.env.CUSTOS_API_PASSPHRASE ?? ""; // OKX, Bitget (KuCoin: part of the key); never argv
      const res = await unary(signer, "signExchangeRequest", {
        keyId: o.key!,
        version: o.version ? Number(o.version) : 0,
        method: o.method!.toUpperCase(),
        path: o.path!,
        query: o.query ?? "",
        queryParams: [],
        body: Buffer.from(o.body ?? "", "utf8"),
        timestampMs: o.timestamp ?? "0",
        nonce: o.nonce ?? "",
        expires: o.expires ?? "0",
        recvWindowMs: o.recvWindow ? Number(o.recvWindow) : 0,
        passphrase,
        apiKeyVersion: o.apiKeyVersion ?? "",
        omitNonce: Boolean(o.omitNonce),
      }).finally(() => signer.close());
      console.log(
        JSON.stringify({
          headers: Object.fromEntries(res.headers.map((h) => [h.name, h.value])),
          params: res.params.map((p) => [p.name, p.value]),
          query: res.query,
          body: res.body.toString("utf8"),
          signature: res.signature,
          timestamp: res.timestamp,
          keyVersion: res.keyVersion,
          apiKeyId: res.apiKeyId,
          endpointClass: res.endpointClass,
        }),
      );
    });
}

export function registerSignWsAuthCommand(program: Command): void {
  withConnection(program.command("sign-ws-auth"))
    .description("sign the key's exchange's private WebSocket login/auth message; prints one JSON object")
    .requiredOption("--key <id>", "key id")
    .option("--timestamp <ms>", "caller-chosen timestamp (ms); default: custos's clock")
    .option("--nonce <n>", "caller-chosen nonce")
    .option("--expires <s>", "caller-chosen expiry (seconds since the epoch)")
    .option("--challenge <c>", "the server's challenge (Kraken Futures)")
    .option("--channel <c>", "private channel (Gate)")
    .option("--event <e>", "subscription event (Gate)")
    .option("--ws-method <m>", "Binance WebSocket API: sign this request (e.g. order.place) instead of the login")
    .option("--param <name=value...>", "a parameter of that request (repeatable, in order)")
    .action(async (o: Opts & { param?: string[] }) => {
      const wsParams = (o.param ?? []).map((p) => {
        const at = p.indexOf("=");
        if (at <= 0) throw new CliError(`--param ${JSON.stringify(p)}: expected name=value`);
        return { name: p.slice(0, at), value: p.slice(at + 1) };
      });
      if (wsParams.length && !o.wsMethod) throw new CliError("--param needs --ws-method");
      const { signer } = connect(connectOpts(o), "client");
      const res = await unary(signer, "signWebSocketAuth", {
        keyId: o.key!,
        version: 0,
        timestampMs: o.timestamp ?? "0",
        nonce: o.nonce ?? "",
        expires: o.expires ?? "0",
        challenge: o.challenge ?? "",
        channel: o.channel ?? "",
        event: o.event ?? "",
        passphrase: process.env.CUSTOS_API_PASSPHRASE ?? "",
        wsMethod: o.wsMethod ?? "",
        wsParams,
      }).finally(() => signer.close());
      console.log(
        JSON.stringify({
          fields: Object.fromEntries(res.fields.map((f) => [f.name, f.value])),
          message: res.message,
          signature: res.signature,
          timestamp: res.timestamp,
          keyVersion: res.keyVersion,
          apiKeyId: res.apiKeyId,
        }),
      );
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
      const encoding =
        o.encoding === "base64" ? SignatureEncoding.SIGNATURE_ENCODING_BASE64 : o.encoding === "hex" ? SignatureEncoding.SIGNATURE_ENCODING_HEX : undefined;
      if (encoding === undefined) throw new CliError("--encoding must be hex or base64");
      const { signer } = connect(connectOpts(o), "client");
      const res = await unary(signer, "sign", {
        keyId: o.key!,
        version: o.version ? Number(o.version) : 0,
        payload: Buffer.from(o.payload!, "utf8"),
        encoding,
      });
      signer.close();
      console.error(`key ${o.key} version ${res.keyVersion}${res.apiKeyId ? ` api key ${res.apiKeyId}` : ""}`);
      console.log(res.signatureText);
    });
}
