import { createPublicKey } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { guardClient, readConnectionFile, unary } from "../client/connection.js";
import { assertDigest, castVote } from "../client/officer.js";
import { readSecretFile } from "../config/secrets.js";
import { Algorithm, FreezeTarget, type ProposalInfo } from "../gen/custos/v1/custody.js";
import { encryptOfficerKey, generateOfficerKey, publicKeyFingerprint, replaceOfficerKeyFile, writeOfficerKeyFile } from "../governance/officer-key.js";
import { isSigningAlgorithm } from "../hsm/algorithms.js";
import { newKeyFields, withNewKeyOptions, wrapSecretFromInput, withConnection } from "./admin-commands.js";
import { newKeyExchange, newKeyExchangeNote } from "./new-key-exchange.js";
import { CliError, connect, dataDirOf, identityFor } from "./context.js";
import { createEnrollmentToken } from "../governance/enrollment.js";
import { connectOpts, officerPassphrase, officerSigningKey, proposeFromCli, reportProposal, type Opts } from "./officer-context.js";
import { loadOfficerKey } from "../client/officer.js";
import { readSecret } from "./secret-input.js";

/** "2d", "36h", "90m", "3600s" or plain seconds → seconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(text.trim());
  if (!m) throw new CliError(`cannot read duration ${JSON.stringify(text)} (use e.g. 24h, 2d, 90m)`);
  return Number(m[1]) * { "": 1, s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as "" | "s" | "m" | "h" | "d"];
}

/** Options of every command that signs as an officer. */
function withOfficerKey(cmd: Command): Command {
  return cmd
    .option("--officer <name>", "the officer signing (checked against the key's registered fingerprint)")
    .option("--officer-key <file>", "the officer's encrypted Ed25519 key (default on the embedded default: the dev officer's)")
    .option("--passphrase-file <file>", "file (0600) holding the key's passphrase; else $CUSTOS_OFFICER_PASSPHRASE or a prompt");
}

/** A new passphrase: from a 0600 file, else typed twice at a prompt. */
async function newPassphrase(file: string | undefined, option: string): Promise<string> {
  if (file) return readSecretFile(file);
  if (!process.stdin.isTTY) throw new CliError(`no passphrase: pass ${option} FILE (0600)`);
  const a = (await readSecret("new passphrase: ")).toString("utf8");
  const b = (await readSecret("repeat passphrase: ")).toString("utf8");
  if (a !== b) throw new CliError("passphrases differ");
  return a;
}

export function registerGovernanceCommands(program: Command): void {
  const officer = program.command("officer").description("key officers: their keys and membership");

  officer
    .command("keygen")
    .description("create an officer's Ed25519 key, encrypted under a passphrase; prints the public key and fingerprint")
    .requiredOption("--out <file>", "where to write the encrypted private key (0600); the public key goes to FILE.pub")
    .option("--passphrase-file <file>", "file (0600) holding the passphrase; else a prompt (asked twice)")
    .action(async (o: Opts) => {
      if (existsSync(o.out!)) throw new CliError(`${o.out} exists: refusing to overwrite an officer key`);
      const key = generateOfficerKey(await newPassphrase(o.passphraseFile, "--passphrase-file"));
      writeOfficerKeyFile(o.out!, key.privateKeyPem);
      writeFileSync(`${o.out}.pub`, key.publicKeyPem, { mode: 0o644 });
      process.stdout.write(key.publicKeyPem);
      console.log(key.fingerprint);
    });

  officer
    .command("rekey")
    .description("re-encrypt an officer key file under a new passphrase and custos's current file protection; the key and its fingerprint stay the same")
    .requiredOption("--officer-key <file>", "the officer's encrypted Ed25519 key, replaced in place")
    .option("--passphrase-file <file>", "file (0600) holding the current passphrase; else $CUSTOS_OFFICER_PASSPHRASE or a prompt")
    .option("--new-passphrase-file <file>", "file (0600) holding the new passphrase; else a prompt (asked twice)")
    .action(async (o: Opts) => {
      const key = loadOfficerKey(o.officerKey!, await officerPassphrase(o));
      replaceOfficerKeyFile(o.officerKey!, encryptOfficerKey(key, await newPassphrase(o.newPassphraseFile, "--new-passphrase-file")));
      console.log(publicKeyFingerprint(createPublicKey(key)));
    });

  withOfficerKey(officer.command("enroll-token"))
    .description("a one-time token (valid 10 minutes) to open the officer console and register a passkey; made offline, signed with the officer key")
    .option("--data-dir <dir>", "data directory of the embedded default (its dev officer is the default officer)")
    .action(async (o: Opts) => {
      const officerId = o.officer ?? (o.officerKey ? undefined : readConnectionFile(dataDirOf(o)).officer?.id);
      if (!officerId) throw new CliError("pass --officer NAME (the officer id the token enrolls)");
      const token = createEnrollmentToken(await officerSigningKey(o), officerId);
      console.error(`enrollment token for officer ${officerId}: paste it at the console's /console/enroll within 10 minutes (usable once)`);
      console.log(token);
    });

  withConnection(officer.command("add <name>"))
    .description("propose a new officer")
    .requiredOption("--public-key <file>", "the officer's Ed25519 public key (PEM, from `custos officer keygen`)")
    .option("--identity <uri>", "the officer certificate's identity (default spiffe://custos/officer/NAME)")
    .option("--display-name <text>", "human-readable name")
    .action(async (name: string, o: Opts) => {
      const publicKeyPem = readFileSync(o.publicKey!, "utf8");
      const identity = o.identity ?? `spiffe://custos/officer/${name}`;
      const p = await proposeFromCli(o, {
        kind: { $case: "addOfficer", addOfficer: { officer: { id: name, displayName: o.displayName ?? name, identity, publicKeyPem } } },
        ttlSeconds: 0,
      });
      reportProposal(p, `officer ${name} added (${publicKeyFingerprint(publicKeyPem)})`);
    });

  withConnection(officer.command("remove <name>"))
    .description("propose removing an officer (their pending approvals stop counting)")
    .action(async (name: string, o: Opts) => {
      const p = await proposeFromCli(o, { kind: { $case: "removeOfficer", removeOfficer: { officerId: name } }, ttlSeconds: 0 });
      reportProposal(p, `officer ${name} removed`);
    });

  const governance = program.command("governance").description("the officer set and its threshold");

  withConnection(governance.command("init"))
    .description("set the first officers and threshold, once (acts as a bootstrap administrator)")
    .requiredOption("--officer <name=pubkey-file...>", "an officer and their public key file (repeatable)")
    .requiredOption("--threshold <m>", "approvals needed (M of N)")
    .action(async (o: Opts & { officer: string[] }) => {
      const officers = o.officer.map((spec) => {
        const [name, file] = spec.split("=", 2);
        if (!name || !file) throw new CliError(`--officer takes NAME=PUBKEY_FILE, not ${JSON.stringify(spec)}`);
        return { id: name, displayName: name, identity: `spiffe://custos/officer/${name}`, publicKeyPem: readFileSync(file, "utf8") };
      });
      const { custody } = connect(connectOpts(o), "admin");
      const g = await unary(custody, "initGovernance", { officers, threshold: Number(o.threshold) }).finally(() => custody.close());
      for (const x of g.officers) console.error(`officer ${x.id}\t${x.identity}\t${x.fingerprint}`);
      console.log(`governance initialised: ${g.threshold} of ${g.officers.length} officers`);
    });

  withConnection(governance.command("show"))
    .description("officers, threshold and quorum rules")
    .action(async (o: Opts) => {
      const { custody } = connect(connectOpts(o), "officer");
      const g = await unary(custody, "getGovernance", {}).finally(() => custody.close());
      if (!g.initialised) return void console.log("governance not initialised");
      for (const x of g.officers) console.log(`officer ${x.id}\t${x.status}\t${x.identity}\t${x.fingerprint}`);
      console.log(
        `threshold ${g.threshold} of ${g.officers.filter((x) => x.status === "active").length}; proposer counts: ${g.proposerCounts}; veto: ${g.veto}`,
      );
    });

  withConnection(governance.command("threshold <m>"))
    .description("propose a new threshold")
    .action(async (m: string, o: Opts) => {
      const p = await proposeFromCli(o, { kind: { $case: "setThreshold", setThreshold: { threshold: Number(m) } }, ttlSeconds: 0 });
      reportProposal(p, `threshold is ${m}`);
    });

  const proposal = program.command("proposal").description("proposals waiting for (or done with) the quorum");

  withConnection(proposal.command("list"))
    .description("proposals, newest last")
    .option("--state <state>", "pending | executing | executed | rejected | expired | failed")
    .action(async (o: Opts) => {
      const { custody } = connect(connectOpts(o), "officer");
      const { proposals } = await unary(custody, "listProposals", { state: o.state ?? "" }).finally(() => custody.close());
      if (proposals.length === 0) return void console.log("no proposals");
      for (const p of proposals)
        console.log(
          `${p.id}\t${p.state}\t${p.kind}\t${p.target}\tby ${p.proposer}\tapprovals ${p.approvals.join(",") || "-"}${p.state === "pending" ? ` (${p.needed} more)` : ""}\texpires ${p.expiresAt}`,
        );
    });

  withConnection(proposal.command("show <id>"))
    .description("exactly what a proposal changes, and the digest an approval signs")
    .action(async (id: string, o: Opts) => {
      const { custody } = connect(connectOpts(o), "officer");
      const p = await unary(custody, "getProposal", { id }).finally(() => custody.close());
      assertDigest(p);
      printProposal(p);
    });

  for (const decision of ["approve", "reject"] as const) {
    const cmd = withOfficerKey(withConnection(proposal.command(`${decision} <id>`)))
      .description(
        decision === "approve"
          ? "sign the proposal's digest with your officer key and approve it"
          : "sign and send a rejection (cancels it under the veto rule)",
      )
      .option("--reason <text>", "why (recorded in the audit log)");
    cmd.action(async (id: string, o: Opts) => {
      const key = await officerSigningKey(o);
      const opts = connectOpts(o);
      if (o.officer) await checkOfficerKey(o, key);
      const { custody } = connect(opts, "officer");
      const p = await castVote(custody, id, decision, key, o.reason ?? "").finally(() => custody.close());
      console.error(
        `${decision === "approve" ? "approved" : "rejected"} ${p.kind} ${p.target} (digest ${p.digest}); state ${p.state}${p.state === "pending" ? `, ${p.needed} more approval(s) needed` : ""}`,
      );
      console.log(p.state);
    });
  }

  const freeze = program.command("freeze").description("freeze a key or a client at once (any officer, or a client with the freeze grant)");
  for (const target of ["key", "client"] as const) {
    withConnection(freeze.command(`${target} <id>`))
      .requiredOption("--reason <text>", "why (recorded in the audit log)")
      .action(async (id: string, o: Opts) => {
        const opts = connectOpts(o);
        const conn = readConnectionFile(opts.dataDir);
        // An officer by default; --cert/--cert-key acts as any identity (e.g. a risk engine).
        const guard = guardClient(opts.address ?? conn.grpc, identityFor(opts, conn, "officer"), conn.serverName);
        const r = await unary(guard, "freeze", {
          target: target === "key" ? FreezeTarget.FREEZE_TARGET_KEY : FreezeTarget.FREEZE_TARGET_CLIENT,
          id,
          reason: o.reason!,
        }).finally(() => guard.close());
        console.log(`${target} ${id} frozen at ${r.frozenAt}`);
      });
  }

  const thaw = program.command("thaw").description("propose thawing a frozen key or client (needs the quorum)");
  for (const target of ["key", "client"] as const) {
    withConnection(thaw.command(`${target} <id>`)).action(async (id: string, o: Opts) => {
      const p = await proposeFromCli(o, {
        kind: { $case: "thaw", thaw: { target: target === "key" ? FreezeTarget.FREEZE_TARGET_KEY : FreezeTarget.FREEZE_TARGET_CLIENT, id } },
        ttlSeconds: 0,
      });
      reportProposal(p, `${target} ${id} thawed`);
    });
  }
}

/** Key rotation and destruction: proposals on an existing key. */
export function registerKeyLifecycleCommands(program: Command): void {
  const key = program.commands.find((c) => c.name() === "key")!;

  withConnection(key.command("rotate"))
    .description(
      "propose a new version of a key (HMAC: new secret on stdin or a hidden prompt; Ed25519: a new pair generated in the HSM, activated by set-api-key-id once registered)",
    )
    .requiredOption("--key <id>", "key id")
    .option("--api-key-id <id>", "the exchange's public API key of the new secret (default: unchanged)", "")
    .option("--grace <duration>", "how long the old version still signs for clients that pin it (default 24h)", "24h")
    .option("--fingerprint <sha256:hex>", "pinned wrapping-key fingerprint (default: DIR/wrapping-key.fingerprint)")
    .option("--api-passphrase-file <file>", "kucoinfutures: file (0600) holding the new API key's passphrase; else $CUSTOS_API_PASSPHRASE or a prompt")
    .action(async (o: Opts) => {
      const { custody } = connect(connectOpts(o), "officer");
      const { keys } = await unary(custody, "listKeys", {}).finally(() => custody.close());
      const current = keys.find((k) => k.keyId === o.key);
      if (!current) throw new CliError(`no key ${o.key}`);
      if (current.algorithm === Algorithm.ALGORITHM_ED25519) {
        if (o.apiKeyId) throw new CliError("an Ed25519 key's new API key id is set once the exchange registered its public key: key set-api-key-id");
        const rotateKey = { keyId: o.key!, envelope: undefined, apiKeyId: "", graceSeconds: parseDuration(o.grace!), signedPassphrase: "" };
        const p = await proposeFromCli(o, { kind: { $case: "rotateKey", rotateKey }, ttlSeconds: 0 });
        if (p.state === "executed") {
          const { custody: after } = connect(connectOpts(o), "officer");
          const { keys: now } = await unary(after, "listKeys", {}).finally(() => after.close());
          process.stdout.write(now.find((k) => k.keyId === o.key)?.versions.find((v) => v.state === "pending")?.publicKeyPem ?? "");
        }
        reportProposal(
          p,
          `new version of ${o.key} generated (pending): register the public key above with the exchange, then \`custos key set-api-key-id --key ${o.key} --api-key-id ID\` activates it`,
        );
        return;
      }
      const algorithm = ({ 1: "hmac-sha256", 2: "hmac-sha384", 3: "hmac-sha512" } as Record<number, string>)[current.algorithm] ?? "";
      if (!isSigningAlgorithm(algorithm)) throw new CliError(`key ${o.key} has an unsupported algorithm`);
      const { envelope, signedPassphrase } = await wrapSecretFromInput(o, algorithm, `new secret for ${o.key}: `, current.exchange);
      const rotateKey = { keyId: o.key!, envelope, apiKeyId: o.apiKeyId ?? "", graceSeconds: parseDuration(o.grace!), signedPassphrase };
      const p = await proposeFromCli(o, { kind: { $case: "rotateKey", rotateKey }, ttlSeconds: 0 });
      reportProposal(p, `rotated ${o.key}: version ${current.versions.length + 1} active`);
    });

  withNewKeyOptions(withConnection(key.command("generate")))
    .description("propose a key generated inside the HSM (Ed25519); prints its public key for the exchange once executed")
    .requiredOption("--key <id>", "key id")
    .option("--algorithm <alg>", "ed25519", "ed25519")
    .option("--api-key-id <id>", "the exchange's API key id, if already known", "")
    .action(async (o: Opts) => {
      if (o.algorithm !== "ed25519") throw new CliError("only ed25519 keys are generated in the HSM");
      const exchange = newKeyExchange(o);
      const p = await proposeFromCli(o, {
        kind: { $case: "generateKey", generateKey: { ...newKeyFields(o, exchange), algorithm: Algorithm.ALGORITHM_ED25519 } },
        ttlSeconds: 0,
      });
      if (p.state === "executed") {
        // The public key, in the PEM form exchanges (Binance) ask for when registering a key.
        const { custody } = connect(connectOpts(o), "officer");
        const { keys } = await unary(custody, "listKeys", {}).finally(() => custody.close());
        process.stdout.write(keys.find((k) => k.keyId === o.key)?.publicKeyPem ?? "");
      }
      reportProposal(p, `generated ${o.key} version 1 (ed25519); register the public key above with the exchange`);
      newKeyExchangeNote(o, exchange);
    });

  withConnection(key.command("set-api-key-id"))
    .description(
      "propose the exchange API key id of a key (e.g. once the exchange registered a generated key's public key); activates a rotated Ed25519 key's pending version",
    )
    .requiredOption("--key <id>", "key id")
    .requiredOption("--api-key-id <id>", "the id the exchange assigned")
    .action(async (o: Opts) => {
      const p = await proposeFromCli(o, { kind: { $case: "setApiKeyId", setApiKeyId: { keyId: o.key!, apiKeyId: o.apiKeyId! } }, ttlSeconds: 0 });
      reportProposal(p, `API key id of ${o.key} set`);
    });

  withConnection(key.command("destroy"))
    .description("propose destroying a (non-active) version's HSM object")
    .requiredOption("--key <id>", "key id")
    .requiredOption("--version <n>", "version")
    .action(async (o: Opts) => {
      const p = await proposeFromCli(o, { kind: { $case: "destroyVersion", destroyVersion: { keyId: o.key!, version: Number(o.version) } }, ttlSeconds: 0 });
      reportProposal(p, `destroyed ${o.key} version ${o.version}`);
    });

  withConnection(key.command("policy"))
    .description("propose a key's request policy (JSON; enforced by exchange-aware signing)")
    .requiredOption("--key <id>", "key id")
    .requiredOption("--policy <json>", "policy as a JSON object")
    .action(async (o: Opts) => {
      const p = await proposeFromCli(o, { kind: { $case: "setPolicy", setPolicy: { keyId: o.key!, policyJson: o.policy! } }, ttlSeconds: 0 });
      reportProposal(p, `policy of ${o.key} set`);
    });
}

/** With --officer NAME: the key must be the one registered for NAME (signing with the wrong key is refused anyway). */
async function checkOfficerKey(o: Opts, key: import("node:crypto").KeyObject): Promise<void> {
  const { createPublicKey } = await import("node:crypto");
  const { custody } = connect(connectOpts(o), "officer");
  const g = await unary(custody, "getGovernance", {}).finally(() => custody.close());
  const registered = g.officers.find((x) => x.id === o.officer);
  if (!registered) throw new CliError(`no officer ${o.officer}`);
  const fingerprint = publicKeyFingerprint(createPublicKey(key));
  if (registered.fingerprint !== fingerprint) throw new CliError(`--officer-key is not ${o.officer}'s registered key (${registered.fingerprint})`);
}

function printProposal(p: ProposalInfo): void {
  console.log(`proposal ${p.id}`);
  console.log(`  kind      ${p.kind}`);
  console.log(`  target    ${p.target}`);
  console.log(`  state     ${p.state}${p.failure ? ` (${p.failure})` : ""}`);
  console.log(`  proposer  ${p.proposer}`);
  console.log(`  created   ${p.createdAt}`);
  console.log(`  expires   ${p.expiresAt}`);
  console.log(`  approvals ${p.approvals.join(", ") || "none"}${p.state === "pending" ? ` (${p.needed} more needed)` : ""}`);
  if (p.rejections.length) console.log(`  rejected by ${p.rejections.join(", ")}`);
  console.log("  changes:");
  for (const line of p.summary) console.log(`    ${line}`);
  console.log(`  content   ${p.canonical}`);
  console.log(`  digest    ${p.digest}`);
}
