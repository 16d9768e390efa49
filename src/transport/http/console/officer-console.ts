import { readFileSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { AuditLog } from "../../../audit/audit-log.js";
import { AuditChainMonitor } from "../../../audit/chain-monitor.js";
import { DEFAULT_CONSOLE_PORT, type ConsoleConfig } from "../../../config/config.js";
import { EnrollmentVerifier } from "../../../governance/enrollment.js";
import type { GovernanceService } from "../../../governance/governance-service.js";
import { Passkeys } from "../../../governance/passkey.js";
import type { StoreSlice } from "../../../store/store.js";
import { buildConsole } from "./console.js";
import type { AuditRow } from "./views-state.js";

export interface ConsoleStartOptions {
  governance: GovernanceService;
  audit: AuditLog;
  /** The service's TLS server certificate and key (PEM files): the console is HTTPS only. */
  tls: { certPath: string; keyPath: string };
  clientRate: { perSecond: number; burst: number };
  /** When a client last called (the signer's rate limiter). */
  clientLastSeen(identity: string): Date | undefined;
  /** The embedded default's dev governance: the console shows a warning banner on every page. */
  devMode: boolean;
  /** The HTTP listener's configured port: 0 makes an unset console port 0 as well. */
  httpPort: number;
  logger: Logger;
}

/**
 * The officer console as the service wires it: `passkeys` exists before the governance
 * service (which verifies passkey votes with it); `start` opens the HTTPS listener once
 * governance exists and returns the console's URL.
 */
export class OfficerConsole {
  readonly passkeys: Passkeys;
  private origin = "";
  private app: FastifyInstance | undefined;

  constructor(
    private readonly config: ConsoleConfig,
    private readonly store: StoreSlice<"console" | "audit" | "governance">,
  ) {
    this.passkeys = new Passkeys(store, { rpId: config.rpId, rpName: "custos officer console", origins: () => [this.origin] });
  }

  async start(o: ConsoleStartOptions): Promise<string> {
    const port = this.config.port ?? (o.httpPort === 0 ? 0 : DEFAULT_CONSOLE_PORT);
    // The origin is known once the port is: until then no ceremony can verify.
    const owner = this;
    const chain = new AuditChainMonitor(this.store);
    const app = buildConsole({
      governance: o.governance,
      passkeys: this.passkeys,
      enrollment: new EnrollmentVerifier(this.store.console),
      sessionRecords: this.store.console,
      audit: (e) => o.audit.recordNow(e),
      auditLater: (e) => o.audit.record(e),
      ...(this.config.anonymousRate ? { anonymousRate: this.config.anonymousRate } : {}),
      recentAudit: (limit) => this.recentAudit(limit),
      readAudit: async (afterSeq, limit) => (await this.store.audit.readAudit(afterSeq, limit)).map((e) => JSON.parse(e.body) as AuditRow),
      lastAuditSeq: async () => (await this.store.audit.lastAudit())?.seq ?? 0,
      devMode: o.devMode,
      verifyAudit: () => chain.check(),
      clientRate: o.clientRate,
      clientLastSeen: o.clientLastSeen,
      get origin() {
        return owner.origin;
      },
      sessionTtlMs: this.config.sessionMinutes * 60_000,
      tls: { cert: readFileSync(o.tls.certPath), key: readFileSync(o.tls.keyPath) },
      logger: o.logger,
    });
    await app.listen({ host: this.config.host, port });
    const address = app.server.address();
    const bound = typeof address === "object" && address ? address.port : port;
    this.origin = this.config.origin ?? `https://${this.config.rpId}:${bound}`;
    this.app = app;
    return `${this.origin}/console`;
  }

  async close(): Promise<void> {
    await this.app?.close();
  }

  /** The newest `limit` audit events, newest first. */
  private async recentAudit(limit: number): Promise<AuditRow[]> {
    const last = (await this.store.audit.lastAudit())?.seq ?? 0;
    const events = await this.store.audit.readAudit(Math.max(0, last - limit), limit);
    return events.map((e) => JSON.parse(e.body) as AuditRow).reverse();
  }
}
