import type { Logger } from "pino";
import type { AuditEvent } from "../audit/audit-log.js";
import type { AnomalyFinding } from "./anomaly.js";

/** The actor of what custos does on its own (anomaly events, automatic freezes). */
export const CUSTOS_ACTOR = "custos";

export interface AnomalyResponseDeps {
  audit: { record(event: AuditEvent): void };
  logger: Logger;
  /** Counts raised anomalies (the `custos_anomalies_total` counter). */
  counted?: (finding: AnomalyFinding) => void;
  /**
   * Freezes a client on custos's own authority; resolves false if it was frozen already.
   * Absent: automatic freezing is off.
   */
  freezeClient?: (client: string, reason: string) => Promise<boolean>;
}

/**
 * What custos does when the detector raises an anomaly: an `anomaly` audit event (actor
 * `custos`), a warn log line with the stable field names, the metric, and — only if the
 * finding asks for it and automatic freezing is configured — a freeze of the client.
 */
export function respondToAnomalies(deps: AnomalyResponseDeps): (finding: AnomalyFinding) => void {
  const freezing = new Set<string>();
  const respond = (f: AnomalyFinding) => {
    const score = round(f.score);
    const facts = {
      client: f.client,
      signal: f.signal,
      score,
      rateScore: round(f.rateScore),
      mixScore: round(f.mixScore),
      count: round(f.count),
      expected: round(f.expected),
      ...(f.endpointClass ? { endpointClass: f.endpointClass } : {}),
    };
    deps.audit.record({ kind: "anomaly", actor: CUSTOS_ACTOR, outcome: "ok", ...(f.key ? { key: f.key } : {}), details: facts });
    deps.logger.warn({ event: "anomaly", key: f.key, ...facts, freeze: f.freeze && !!deps.freezeClient }, "signing traffic deviates from its baseline");
    deps.counted?.(f);
    if (!f.freeze || !deps.freezeClient || freezing.has(f.client)) return;
    // One freeze at a time per client: several of its keys may cross in the same interval.
    freezing.add(f.client);
    const reason = `anomaly: ${f.signal} score ${score} on key ${f.key || "(unknown key)"}`;
    deps
      .freezeClient(f.client, reason)
      .then(
        (frozen) => frozen && deps.logger.warn({ event: "anomaly.freeze", client: f.client, key: f.key, score }, "client frozen automatically"),
        (e: unknown) => deps.logger.error({ event: "anomaly.freeze_failed", client: f.client, err: e }, "automatic freeze failed"),
      )
      .finally(() => freezing.delete(f.client));
  };
  // Runs on the detector's timer: a throw here must not become an uncaught exception.
  return (f) => {
    try {
      respond(f);
    } catch (e) {
      deps.logger.error({ event: "anomaly.response_failed", client: f.client, key: f.key, err: e }, "could not record an anomaly");
    }
  };
}

const round = (x: number) => Math.round(x * 100) / 100;
