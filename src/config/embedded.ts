import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createToken, ensureCheckpointKey, ensureWrappingKey } from "../hsm/index.js";
import { findSlotByLabel, loadModule } from "../hsm/pkcs11/module.js";
import { generateOfficerKey, writeOfficerKeyFile } from "../governance/officer-key.js";
import { createDevCa, issueClientCert, issueDevServerCert, loadIssued, missingServerNames, serverCertNames, writeIssued } from "../pki/index.js";
import { EMBEDDED_ADMIN, EMBEDDED_CLIENT, EMBEDDED_OFFICER, type CustosConfig } from "./config.js";
import { createSecretFile, readSecretFile } from "./secrets.js";

const TEMPLATE = fileURLToPath(new URL("../../../hsm/softhsm2.conf.template", import.meta.url));

/** Certificates the embedded default issues for its own CLI. */
export const EMBEDDED_CERTS = { admin: "admin", client: "client", officer: "officer-dev" } as const;

/** The embedded default's one local officer: its certificate, and its Ed25519 key under a generated passphrase. */
export interface DevOfficer {
  id: string;
  identity: string;
  certPath: string;
  certKeyPath: string;
  /** Encrypted PKCS#8 PEM. */
  keyPath: string;
  passphraseFile: string;
  publicKeyPem: string;
}

export interface EmbeddedSetup {
  createdToken: boolean;
  createdWrappingKey: boolean;
  createdPki: boolean;
  /** The server certificate was reissued to carry `serverNames` it lacked. */
  reissuedServerCert: boolean;
  devOfficer: DevOfficer;
}

/** Where the dev officer's files live in a data dir. */
export function devOfficerPaths(dir: string): Omit<DevOfficer, "publicKeyPem"> {
  return {
    ...EMBEDDED_OFFICER,
    certPath: join(dir, "pki", `${EMBEDDED_CERTS.officer}.crt`),
    certKeyPath: join(dir, "pki", `${EMBEDDED_CERTS.officer}.key`),
    keyPath: join(dir, "officers", "dev.key.pem"),
    passphraseFile: join(dir, "secrets", "officer-dev.passphrase"),
  };
}

/** Points SoftHSM2 at this data dir's own config; must run before the module loads. */
export function useSofthsmConf(config: CustosConfig): void {
  if (config.hsm.softhsmConf) process.env.SOFTHSM2_CONF = config.hsm.softhsmConf;
}

/**
 * First start of the embedded default: a SoftHSM2 token under the data dir (generated PINs
 * in 0600 files), its wrapping key, and a dev PKI (CA, server, an administrator and a
 * trading client certificate). Idempotent: later starts adopt what exists.
 */
export async function ensureEmbedded(config: CustosConfig): Promise<EmbeddedSetup> {
  const dir = config.dataDir;
  for (const sub of ["", "secrets", "tokens", "pki", "officers"]) mkdirSync(join(dir, sub), { recursive: true, mode: 0o700 });
  const conf = config.hsm.softhsmConf!;
  if (!existsSync(conf)) {
    writeFileSync(conf, readFileSync(TEMPLATE, "utf8").replace("@TOKENDIR@", join(dir, "tokens")), { mode: 0o600 });
  }
  useSofthsmConf(config);

  const userPinFile = config.hsm.pinFile!;
  const soPinFile = join(dir, "secrets/so.pin");
  let createdToken = false;
  if (!findSlotByLabel(loadModule(config.hsm.modulePath), config.hsm.tokenLabel)) {
    const soPin = existsSync(soPinFile) ? readSecretFile(soPinFile) : createSecretFile(soPinFile);
    const userPin = existsSync(userPinFile) ? readSecretFile(userPinFile) : createSecretFile(userPinFile);
    createToken(config.hsm.modulePath, config.hsm.tokenLabel, soPin, userPin);
    createdToken = true;
  }
  const { created: createdWrappingKey } = ensureWrappingKey(config.hsm.modulePath, config.hsm.tokenLabel, readSecretFile(userPinFile));
  // A new token gets its audit checkpoint key with its wrapping key, as `custos hsm init` does.
  if (createdToken) ensureCheckpointKey(config.hsm.modulePath, config.hsm.tokenLabel, readSecretFile(userPinFile));

  let createdPki = false;
  const pki = join(dir, "pki");
  if (!existsSync(config.tls.caPath)) {
    const ca = await createDevCa();
    await writeIssued(pki, "ca", ca);
    await issueDevServerCert(pki, config.serverNames);
    await writeIssued(pki, EMBEDDED_CERTS.admin, await issueClientCert(ca, { name: "bootstrap-admin", uri: EMBEDDED_ADMIN }));
    await writeIssued(pki, EMBEDDED_CERTS.client, await issueClientCert(ca, { name: "dev-engine", uri: EMBEDDED_CLIENT }));
    createdPki = true;
  }
  // A data dir made before a name was configured (e.g. a compose volume): reissue from the dev CA.
  const serverPem = readFileSync(config.tls.certPath, "utf8");
  const reissuedServerCert = !createdPki && missingServerNames(serverPem, config.serverNames).length > 0;
  if (reissuedServerCert) await issueDevServerCert(pki, [...serverCertNames(serverPem), ...config.serverNames]);
  return { createdToken, createdWrappingKey, createdPki, reissuedServerCert, devOfficer: await ensureDevOfficer(dir) };
}

/** The dev officer's certificate and key pair (also added to data dirs made before governance). */
async function ensureDevOfficer(dir: string): Promise<DevOfficer> {
  const paths = devOfficerPaths(dir);
  if (!existsSync(paths.certPath)) {
    const ca = await loadIssued(join(dir, "pki"), "ca");
    await writeIssued(join(dir, "pki"), EMBEDDED_CERTS.officer, await issueClientCert(ca, { name: "dev-officer", uri: paths.identity }));
  }
  const publicPath = join(dir, "officers", "dev.pub.pem");
  if (!existsSync(paths.keyPath)) {
    const passphrase = existsSync(paths.passphraseFile) ? readSecretFile(paths.passphraseFile) : createSecretFile(paths.passphraseFile);
    const key = generateOfficerKey(passphrase);
    writeOfficerKeyFile(paths.keyPath, key.privateKeyPem);
    writeFileSync(publicPath, key.publicKeyPem, { mode: 0o644 });
  }
  return { ...paths, publicKeyPem: readFileSync(publicPath, "utf8") };
}

/** Issues another client certificate from the data dir's dev CA. */
export async function issueDevClient(dataDir: string, name: string, uri: string): Promise<{ certPath: string; keyPath: string }> {
  const pki = join(dataDir, "pki");
  const ca = await loadIssued(pki, "ca");
  return writeIssued(pki, `client-${name}`, await issueClientCert(ca, { name, uri }));
}
