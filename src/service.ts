import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import type { FastifyInstance } from "fastify";
import { AuditLog } from "./audit/audit-log.js";
import { writePrivateFile } from "./private-file.js";
import { WorkerChainWriter } from "./audit/worker-chain-writer.js";
import { AdaptiveChainWriter } from "./audit/adaptive-chain-writer.js";
import { StoreChainWriter } from "./audit/chain-writer.js";
import { DEFAULT_REFUSAL_SAMPLING } from "./audit/refusal-sampler.js";
import type { Checkpoint } from "./audit/checkpoint.js";
import { checkpointFilePath } from "./audit/checkpoint.js";
import { AuditCheckpointer } from "./audit/checkpointer.js";
import { checkAuditIntegrity, recordAcceptedRewind } from "./audit/integrity-at-start.js";
import type { ConnectionFile } from "./client/connection.js";
import { CONNECTION_FILE, FINGERPRINT_FILE, LOOPBACK_CIDRS, type CustosConfig } from "./config/config.js";
import { assertServerCertNames } from "./pki/server-names.js";
import { devOfficerPaths, ensureEmbedded, EMBEDDED_CERTS, useSofthsmConf, type EmbeddedSetup } from "./config/embedded.js";
import { readSecretEnv, readSecretFile } from "./config/secrets.js";
import { ensureCheckpointKey, Pkcs11Hsm } from "./hsm/index.js";
import { GovernanceService } from "./governance/governance-service.js";
import { ageDays, dueAt } from "./keys/model.js";
import { AnomalyDetector, bothObservers } from "./monitoring/anomaly.js";
import { CUSTOS_ACTOR, respondToAnomalies } from "./monitoring/anomaly-response.js";
import { systemClock, type Clock } from "./clock.js";
import { AccessDirectory } from "./signing/directory.js";
import { SignService, type SignDecisionLog } from "./signing/sign-service.js";
import { HttpEgress } from "./egress/http-egress.js";
import { ExchangePermissionChecker, type CheckTrigger } from "./exchange-permissions/checker.js";
import { startReplica } from "./replication/replica.js";
import { joinReplicaSet, writeConnectionFile, type ReplicaMembership } from "./replication/replica-connection.js";
import { liveReplicas } from "./replication/replica-registry.js";
import { openConfiguredStore, storeLocationOf } from "./store/open-store.js";
import { redactPostgresUrl } from "./store/postgres/pg-url.js";
import { lockDataDir } from "./store/sqlite/data-dir-lock.js";
import { readPem, startGrpcServer } from "./transport/grpc/server.js";
import { Metrics } from "./transport/http/metrics.js";
import { buildHttp } from "./transport/http/server.js";
import { OfficerConsole } from "./transport/http/console/officer-console.js";

/** What a client needs to reach this service; written to DIR/connection.json once serving. */
export type ConnectionInfo = ConnectionFile;

export interface RunningService {
  /** This process's own addresses (with replicas, connection.json names every live one). */
  connection: ConnectionInfo;
  /** Replicas (PostgreSQL): the id this one is registered under in DIR/replicas/. */
  replicaId?: string;
  embeddedSetup?: EmbeddedSetup;
  hsm: Pkcs11Hsm;
  governance: GovernanceService;
  /** The health/metrics HTTP app (listening): in-process probes use its `inject()`, with no socket in between. */
  http: FastifyInstance;
  /** Anomaly detection on signing traffic; absent when `anomaly.enabled` is false. */
  anomalies?: AnomalyDetector;
  /** Signs a checkpoint of the audit chain's head now (undefined if the head is already checkpointed). */
  checkpoint(): Promise<Checkpoint | undefined>;
  /** Runs governance housekeeping now (expiries, grace periods, overdue-key warnings), as its timer does. */
  housekeeping(): Promise<void>;
  /** Drains in-flight calls, flushes the audit log, checkpoints it, closes HSM and store. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Serve although the audit chain fails its last checkpoint (`serve --accept-audit-rewind`); audited. */
  acceptAuditRewind?: boolean;
  /** The sign path's rate limits and timestamps, the overdue-key warnings and governance read it (default: the system clock). */
  clock?: Clock;
}

/** The composition root: wires the concrete HSM, store and transports around the domain. */
export async function startService(config: CustosConfig, logger: Logger, options: StartOptions = {}): Promise<RunningService> {
  // One service per SQLite data dir: a second one is refused before it touches anything. On
  // PostgreSQL, several services on one data dir (token, PKI, PINs) are replicas: no lock.
  const dataDirLock = config.store.postgres ? undefined : lockDataDir(config.dataDir);
  const clock = options.clock ?? systemClock;
  // A stale connection file would tell clients we are up before we are. Replicas: only when no
  // other replica serves the data dir (the file names the live ones; this one joins it once serving).
  const connectionFile = join(config.dataDir, CONNECTION_FILE);
  if (!config.store.postgres || liveReplicas(config.dataDir).length === 0) rmSync(connectionFile, { force: true });
  if (!config.embedded) useSofthsmConf(config);
  const embeddedSetup = config.embedded ? await ensureEmbedded(config) : undefined;
  if (!config.embedded) assertServerCertNames(config.tls.certPath, config.serverNames);
  if (embeddedSetup?.reissuedServerCert) {
    logger.info({ event: "pki.server_cert_reissued", names: config.serverNames }, "dev server certificate reissued for the configured server names");
  }
  const pin = config.hsm.pinFile ? readSecretFile(config.hsm.pinFile) : readSecretEnv(config.hsm.pinEnv!);
  // A token made before audit checkpoints gets its checkpoint key here, on its first start.
  const checkpointKey = ensureCheckpointKey(config.hsm.modulePath, config.hsm.tokenLabel, pin);
  const hsm = await Pkcs11Hsm.open({ ...config.hsm, pin, logger: logger.child({ component: "hsm" }) });
  const storeLocation = storeLocationOf(config.store);
  const store = await openConfiguredStore(config.store).catch(async (e: unknown) => {
    await hsm.close();
    throw e;
  });
  if (config.store.postgres) logger.info({ event: "store.postgres", database: redactPostgresUrl(config.store.postgres.url) }, "store on PostgreSQL");
  // Nothing is written to the chain before it is known to match its last signed checkpoint.
  const integrity = await checkAuditIntegrity(config.dataDir, store, hsm, options.acceptAuditRewind === true).catch(async (e: unknown) => {
    await hsm.close();
    await store.close();
    throw e;
  });
  // Audit events are serialised, chained and inserted on a writer thread of their own; small
  // batches (a lone sign waiting for its record) on the event loop (adaptive-chain-writer.ts).
  const audit = await AuditLog.open(store, logger, {
    flushIntervalMs: config.audit.flushIntervalMs,
    acknowledge: config.audit.acknowledge,
    maxUnwrittenSeconds: config.audit.maxUnwrittenSeconds,
    refusalSampling: { ...DEFAULT_REFUSAL_SAMPLING, ...config.audit.refusals },
    writer: new AdaptiveChainWriter(new StoreChainWriter(store), new WorkerChainWriter(storeLocation)),
  });
  if (checkpointKey.created) {
    logger.warn({ event: "audit.checkpoint_key_created" }, "created the token's audit checkpoint key (this token had none)");
    await audit.recordNow({ kind: "audit.checkpoint_key.created", actor: "system", outcome: "ok", details: { keyFingerprint: integrity.keyFingerprint } });
  }
  if (integrity.acceptedRewind) await recordAcceptedRewind(audit, integrity.acceptedRewind, logger);
  const checkpointer = new AuditCheckpointer({
    audit,
    store,
    signer: hsm,
    filePath: checkpointFilePath(config.dataDir),
    logger: logger.child({ component: "audit" }),
    intervalMs: config.audit.checkpointIntervalMs,
    ...(integrity.newest ? { last: integrity.newest } : {}),
  });
  // An accepted rewind is attested at once: the next start compares with this checkpoint.
  if (integrity.acceptedRewind) await checkpointer.checkpoint(true);
  const directory = new AccessDirectory();
  // Replicas on PostgreSQL: the change feed starts before the first full load, so a change
  // another replica commits in between is seen; housekeeping waits for leadership.
  const replica = config.store.postgres
    ? await startReplica({
        url: config.store.postgres.url,
        store,
        directory,
        custody: hsm,
        limits: config.limits,
        logger,
      })
    : undefined;

  // Bootstrap identities exist before the first call; re-registering keeps their CIDRs current.
  for (const admin of config.bootstrapAdmins) {
    const existing = await store.clients.getClient(admin.identity);
    const same = existing?.role === "admin" && existing.cidrs.join(",") === admin.cidrs.join(",");
    if (!same) {
      await store.clients.upsertClient({
        identity: admin.identity,
        name: "bootstrap-admin",
        role: "admin",
        cidrs: admin.cidrs,
        createdAt: existing?.createdAt ?? new Date().toISOString(),
      });
      await audit.recordNow({
        kind: "client.bootstrap",
        actor: "system",
        outcome: "ok",
        details: { identity: admin.identity, role: "admin", cidrs: admin.cidrs.join(",") },
      });
    }
  }
  for (const identity of config.autoGrant) {
    if (!(await store.clients.getClient(identity))) {
      await store.clients.upsertClient({ identity, name: "dev-engine", role: "trader", cidrs: LOOPBACK_CIDRS, createdAt: new Date().toISOString() });
      await audit.recordNow({ kind: "client.bootstrap", actor: "system", outcome: "ok", details: { identity, role: "trader" } });
    }
  }
  await directory.reload(store);

  // The officer console's passkeys verify console votes, so they exist before governance.
  const officerConsole = config.console.enabled ? new OfficerConsole(config.console, store) : undefined;
  const governance = new GovernanceService(
    store,
    hsm,
    audit,
    directory,
    logger.child({ component: "governance" }),
    {
      proposerCounts: config.governance.proposerCounts,
      veto: config.governance.veto,
      bootstrapAdmins: config.bootstrapAdmins,
      autoGrant: config.autoGrant,
      proposalTtlMs: config.governance.proposalTtlHours * 3_600_000,
      maxProposalTtlMs: config.governance.maxProposalTtlHours * 3_600_000,
      now: () => clock.now(),
      ...(replica ? { claims: replica.claims } : {}),
    },
    officerConsole?.passkeys,
  );
  await governance.load();
  // Another replica may add an officer or change the threshold: re-read them with every change.
  replica?.onChange(() => governance.load());
  if (config.embedded && !governance.initialised && embeddedSetup) {
    // The embedded default only: one local dev officer, threshold 1. Never in a configured deployment.
    const o = embeddedSetup.devOfficer;
    await governance.init(null, [{ id: o.id, displayName: "dev officer (embedded default)", identity: o.identity, publicKeyPem: o.publicKeyPem }], 1);
  }
  // Crash recovery: finish interrupted executions first, then sweep objects nothing references
  // (replicas: only what no live replica is running).
  await governance.resume(replica ? { whileOthersRun: true } : {});
  const orphans = await governance.destroyOrphans();
  if (orphans.length) logger.warn({ event: "reconcile.orphans", count: orphans.length }, "destroyed HSM objects with no key record");
  await directory.reload(store);

  let auditRef: AuditLog | undefined = audit;
  const metrics = new Metrics(hsm, () => auditRef);
  audit.onFlush = (seconds) => metrics.observeAuditFlush(seconds);
  const anomalies = config.anomaly.enabled ? anomalyDetector(config, audit, logger, metrics, directory, governance) : undefined;
  const egress = new HttpEgress(
    {
      ...config.egress,
      ...(config.egress.trustedCaFile ? { trustedCaPem: readFileSync(config.egress.trustedCaFile, "utf8") } : {}),
    },
    metrics,
  );
  // The exchange-side half of the hybrid: each key's permissions read from its exchange after an
  // import, rotation, API key id or policy change, then every egress.permissionCheckIntervalMs (housekeeping).
  const permissions = new ExchangePermissionChecker({
    hsm,
    egress,
    now: () => clock.now(),
    keys: store.keys,
    policy: (keyId) => directory.policy(keyId),
    audit,
    freeze: (keyId, reason) => governance.freezeAsService(CUSTOS_ACTOR, "key", keyId, reason),
    observer: metrics,
    logger: logger.child({ component: "exchange-permissions" }),
    intervalMs: config.egress.permissionCheckIntervalMs,
  });
  // The newest verdict of any replica: this process's, or the one the store holds (reloaded on change).
  governance.reportExchangePermissions((keyId) => permissions.verdict(keyId, directory.key(keyId)?.exchangePermissions));
  if (config.egress.permissionChecks) {
    governance.onExecuted((p) => {
      const trigger = PERMISSION_CHECK_AFTER[p.kind];
      if (trigger) void permissions.check(p.target, trigger);
      // A destroyed version's passphrase (OKX, Bitget: held in memory for the check) goes with it.
      if (p.kind === "destroy_version") void permissions.forgetStalePassphrase(p.target);
    });
  }
  const signer = new SignService(directory, hsm, audit, anomalies ? bothObservers(metrics, anomalies) : metrics, {
    maxPayloadBytes: config.grpc.maxPayloadBytes,
    clientRate: config.limits.client,
    keyRate: config.limits.key,
    decisionLog: signDecisionLog(logger.child({ component: "signer" })),
    clock,
    maxUnwrittenAuditSeconds: config.audit.maxUnwrittenSeconds,
    egress,
    ...(config.egress.permissionChecks ? { passphraseSeen: permissions.callerPassphrase.bind(permissions) } : {}),
    ...(replica ? { shared: { clientLimiter: replica.clientLimiter, keyLimiter: replica.keyLimiter, nonces: replica.nonces } } : {}),
  });
  const grpc = await startGrpcServer(
    {
      ...config.grpc,
      caPem: readPem(config.tls.caPath),
      certPem: readPem(config.tls.certPath),
      keyPem: readPem(config.tls.keyPath),
      onTlsRefused: ({ ip, reason }) =>
        audit.recordRefusal({ kind: "connection.refused", actor: "unknown", outcome: "denied", reason, ...(ip ? { peer: ip } : {}) }),
      refusals: audit,
    },
    signer,
    governance,
    logger.child({ component: "grpc" }),
  );
  metrics.watchGovernance(async () => {
    const [keys, clients, pending] = await Promise.all([store.keys.listKeys(), store.clients.listClients(), store.governance.listProposals("pending")]);
    return {
      keys: keys.flatMap((k) => {
        const due = dueAt(k);
        // Whole days, toward zero: 44.9 → 44, overdue by 1.2 days → -1 (and never "-0").
        return due ? [{ id: k.id, daysUntilDue: Math.trunc((due.getTime() - clock.now()) / 86_400_000) || 0, ageDays: ageDays(k) ?? 0 }] : [];
      }),
      pendingProposals: pending.length,
      frozenKeys: keys.filter((k) => k.frozenAt).length,
      frozenClients: clients.filter((c) => c.frozenAt).length,
    };
  });
  const http = buildHttp({
    hsm,
    metrics,
    logger,
    storeCheck: async () => void (await store.audit.lastAudit()),
    auditBacklog: () => ({ lagSeconds: audit.lagSeconds, maxSeconds: config.audit.maxUnwrittenSeconds }),
    overdueKeys: () => governance.overdueKeys(),
  });
  await http.listen({ host: config.http.host, port: config.http.port });
  const httpAddress = http.server.address();
  const httpPort = typeof httpAddress === "object" && httpAddress ? httpAddress.port : config.http.port;
  const consoleUrl = await officerConsole?.start({
    governance,
    audit,
    tls: config.tls,
    clientRate: config.limits.client,
    clientLastSeen: (identity) => signer.clientLastSeen(identity),
    devMode: config.embedded,
    httpPort: config.http.port,
    logger,
  });

  let fingerprint = "";
  try {
    fingerprint = hsm.wrappingKey().fingerprint;
  } catch {
    logger.warn({ event: "hsm.no_wrapping_key" }, "token has no wrapping key: run `custos hsm init` before importing keys");
  }
  const pki = join(config.dataDir, "pki");
  const connection: ConnectionInfo = {
    grpc: `${hostPart(config.grpc.host)}:${grpc.port}`,
    http: `http://${hostPart(config.http.host)}:${httpPort}`,
    ...(consoleUrl ? { console: consoleUrl } : {}),
    serverName: "localhost",
    caPath: config.tls.caPath,
    wrappingKeyFingerprint: fingerprint,
    ...(config.embedded
      ? {
          admin: { certPath: join(pki, `${EMBEDDED_CERTS.admin}.crt`), keyPath: join(pki, `${EMBEDDED_CERTS.admin}.key`) },
          client: { certPath: join(pki, `${EMBEDDED_CERTS.client}.crt`), keyPath: join(pki, `${EMBEDDED_CERTS.client}.key`) },
          officer: officerConnection(config.dataDir),
        }
      : {}),
  };
  if (config.embedded && fingerprint && !existsSync(join(config.dataDir, FINGERPRINT_FILE))) {
    // Trust on first use: the CLI pins this fingerprint for imports into this data dir.
    writePrivateFile(join(config.dataDir, FINGERPRINT_FILE), fingerprint + "\n");
  }
  // Replicas register in DIR/replicas/ (for `custos stop`) and connection.json names every live
  // one; one SQLite process writes connection.json as before, naming itself.
  const membership: ReplicaMembership | undefined = config.store.postgres
    ? joinReplicaSet(config.dataDir, connection, (e) => logger.warn({ event: "replica.connection_file_failed", err: e }, "could not rewrite connection.json"))
    : undefined;
  const connectionText = membership ? undefined : writeConnectionFile(config.dataDir, { ...connection, addresses: [connection.grpc] });
  await audit.recordNow({
    kind: "service.start",
    actor: "system",
    outcome: "ok",
    details: { grpc: connection.grpc, dispatch: hsm.status().dispatch, ...(membership ? { replica: membership.id } : {}) },
  });

  // gRPC health follows the HSM: load balancers stop routing signs while sessions reopen.
  const healthTimer = setInterval(() => {
    hsm.check();
    const serving = hsm.status().ready ? "SERVING" : "NOT_SERVING";
    grpc.health.setStatus("custos.v1.Signer", serving);
    grpc.health.setStatus("", serving);
  }, 1_000);
  healthTimer.unref();
  anomalies?.start();
  checkpointer.start();
  // Every start attests the head it serves from, so a data dir with a published checkpoint key
  // always has a checkpoint: `audit verify` reads none left as checkpoints removed.
  await checkpointer.checkpoint();

  // Governance housekeeping: expired proposals end, grace periods end, overdue keys are
  // reported (a warning a day per key).
  const warnedOverdue = new Map<string, number>();
  const housekeeping = async () => {
    // Replicas: one at a time (the one holding the housekeeping lock); it also resumes executions a dead replica left.
    if (replica && !replica.leadership.isLeader()) return;
    try {
      // Replicas: executions a dead replica left (its claims ended with its session), then remnants.
      if (replica) {
        await governance.resume({ whileOthersRun: true });
        await governance.destroyOrphans();
      }
      await governance.expireDue();
      await governance.retireDue();
      // Not awaited: exchanges answer in their own time (bounded by the egress timeouts); checkDue never throws.
      if (config.egress.permissionChecks) void permissions.checkDue();
      for (const k of await governance.overdueKeys()) {
        if (clock.now() - (warnedOverdue.get(k.id) ?? 0) < 86_400_000) continue;
        warnedOverdue.set(k.id, clock.now());
        logger.warn({ event: "key.overdue", key: k.id, dueAt: k.dueAt }, "key is past its max age: rotate it");
      }
    } catch (e) {
      logger.error({ event: "governance.housekeeping_failed", err: e }, "governance housekeeping failed; retrying");
    }
  };
  await housekeeping();
  const housekeepingTimer = setInterval(() => void housekeeping(), config.governance.housekeepingMs ?? 10_000);
  housekeepingTimer.unref();

  let stopping: Promise<void> | undefined;
  return {
    connection,
    ...(membership ? { replicaId: membership.id } : {}),
    ...(embeddedSetup ? { embeddedSetup } : {}),
    hsm,
    governance,
    http,
    ...(anomalies ? { anomalies } : {}),
    checkpoint: () => checkpointer.checkpoint(),
    housekeeping,
    stop() {
      stopping ??= (async () => {
        // Gone before the drain: `custos wait` and scripts polling for it must not see a stopping service.
        // Replicas: this one leaves the registry and connection.json names the others (or goes with the last).
        if (membership) membership.leave();
        else if (readIfExists(connectionFile) === connectionText) rmSync(connectionFile, { force: true });
        clearInterval(healthTimer);
        clearInterval(housekeepingTimer);
        anomalies?.stop();
        await grpc.shutdown(5_000);
        await permissions.stop();
        await egress.close();
        await http.close();
        await officerConsole?.close();
        await audit.recordNow({ kind: "service.stop", actor: "system", outcome: "ok" });
        checkpointer.stop();
        // The last checkpoint covers service.stop: a chain shortened while custos is down fails it.
        await checkpointer.checkpoint().catch(() => undefined);
        await audit.close();
        auditRef = undefined;
        await hsm.close();
        await replica?.stop();
        await store.close();
        dataDirLock?.release();
      })();
      return stopping;
    },
  };
}

/** Proposal kinds after whose execution custos reads the key's permissions from its exchange (a new policy may ask for a freeze). */
const PERMISSION_CHECK_AFTER: Readonly<Record<string, CheckTrigger>> = {
  import_key: "import",
  rotate_key: "rotation",
  set_api_key_id: "api-key-id",
  set_policy: "policy",
};

/** Anomaly detection on signing traffic: audit event, warn log, metric; a freeze only if configured. */
function anomalyDetector(
  config: CustosConfig,
  audit: AuditLog,
  logger: Logger,
  metrics: Metrics,
  directory: AccessDirectory,
  governance: GovernanceService,
): AnomalyDetector {
  const { enabled: _, ...settings } = config.anomaly;
  const freezeClient =
    settings.autoFreezeThreshold === undefined
      ? undefined
      : async (client: string, reason: string) => {
          if (directory.client(client)?.frozenAt) return false;
          await governance.freezeAsService(CUSTOS_ACTOR, "client", client, reason);
          return true;
        };
  const detector = new AnomalyDetector(
    settings,
    respondToAnomalies({
      audit,
      logger: logger.child({ component: "anomaly" }),
      counted: (f) => metrics.anomalyRaised(f),
      ...(freezeClient ? { freezeClient } : {}),
    }),
  );
  metrics.watchAnomalies(() => detector.scores());
  return detector;
}

/** How a local client dials a listen address: a wildcard bind (0.0.0.0, ::) at loopback; IPv6 in brackets. */
function hostPart(host: string): string {
  const dial = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "::1" : host;
  return dial.includes(":") ? `[${dial}]` : dial;
}

/** The embedded default's officer, for the CLI (`connection.json`; the key stays encrypted). */
function officerConnection(dataDir: string) {
  const o = devOfficerPaths(dataDir);
  return { id: o.id, certPath: o.certPath, keyPath: o.certKeyPath, officerKeyPath: o.keyPath, passphraseFile: o.passphraseFile };
}

/**
 * Sign decisions in the logs (LOG_FIELDS): denials at info, failures at warn, allowed ones at
 * debug only — at tens of thousands a second they would cost more than the signing.
 */
function signDecisionLog(log: Logger): SignDecisionLog {
  return {
    allowedToo: log.isLevelEnabled("debug"),
    decided: (d) => {
      const line = { ...d, event: `${d.event}.${d.outcome}` };
      if (d.outcome === "allowed") log.debug(line, "signed");
      else if (d.outcome === "denied") log.info(line, "sign refused");
      else log.warn(line, "sign failed");
    },
  };
}

/** The file's text, or undefined if it is gone. */
function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}
