import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { HsmHealth } from "../../hsm/hsm.js";
import type { Metrics } from "./metrics.js";

export interface HttpDeps {
  hsm: HsmHealth;
  metrics: Metrics;
  /** Store round trip; throws if the store is unusable. */
  storeCheck: () => Promise<void>;
  /** How long the oldest unwritten audit record has waited, and the bound past which signing stops. */
  auditBacklog?: () => { lagSeconds: number; maxSeconds: number };
  /** Keys past their max age: reported on /readyz, without failing readiness. */
  overdueKeys?: () => Promise<Array<{ id: string; dueAt: string }>>;
  logger: Logger;
}

/**
 * The HTTP side: liveness, readiness (HSM sessions, store, audit backlog) and Prometheus metrics.
 * `buildHttp` returns the app unstarted so tests can use `app.inject()`.
 */
export function buildHttp(deps: HttpDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.logger.child({ component: "http" }) as FastifyBaseLogger, // Probes and scrapes arrive every few seconds: no per-request log lines.
    logController: new LogController({ disableRequestLogging: true }),
  });

  app.get("/healthz", async () => ({ status: "ok" }));

  app.get("/readyz", async (_req, reply) => {
    deps.hsm.check(); // an idle service notices a lost HSM here, not at the next sign
    const hsm = deps.hsm.status();
    let store: { ok: boolean; reason?: string } = { ok: true };
    try {
      await deps.storeCheck();
    } catch (e) {
      store = { ok: false, reason: e instanceof Error ? e.message : "store check failed" };
    }
    const backlog = deps.auditBacklog?.();
    // Past the bound every sign is refused (AUDIT_BACKLOG): a balancer should send clients elsewhere.
    const audit = backlog ? { ok: backlog.lagSeconds <= backlog.maxSeconds, unwrittenSeconds: Math.round(backlog.lagSeconds * 1000) / 1000 } : { ok: true };
    const ready = hsm.ready && store.ok && audit.ok;
    const overdue = store.ok && deps.overdueKeys ? await deps.overdueKeys().catch(() => []) : [];
    return reply.code(ready ? 200 : 503).send({
      status: ready ? "ready" : "not ready",
      hsm: {
        ready: hsm.ready,
        ...(hsm.reason ? { reason: hsm.reason } : {}),
        dispatch: hsm.dispatch,
        sessions: hsm.sessions,
        sessionsInUse: hsm.sessionsInUse,
      },
      store,
      audit,
      keys: { overdue },
    });
  });

  app.get("/metrics", async (_req, reply) => {
    reply.header("content-type", deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });

  return app;
}
