/**
 * The monitoring assets shipped in docker/ (Grafana dashboard, Prometheus alert rules) and the
 * metric names they use, for tests that check those names against real exports.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "./harness.js";

export const DASHBOARD = join(REPO, "docker/grafana/custos-dashboard.json");
export const ALERT_RULES = join(REPO, "docker/prometheus/custos-alerts.yml");

// custos's own metrics, and prom-client's unprefixed process and Node.js defaults.
const METRIC = /\b(?:custos|process|nodejs)_[a-zA-Z0-9_]+/g;

/** Every PromQL string of a Grafana dashboard: panel target exprs and variable queries. */
export function dashboardQueries(dashboard: unknown): string[] {
  const out: string[] = [];
  const walk = (v: unknown, key = ""): void => {
    if (typeof v === "string") {
      if (key === "expr" || key === "query" || key === "definition") out.push(v);
    } else if (Array.isArray(v)) {
      for (const x of v) walk(x);
    } else if (v && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) walk(x, k);
    }
  };
  walk(dashboard);
  return out;
}

/** Alert rules read from the YAML file without a YAML parser: name and one-line expr of each. */
export function alertRules(yaml: string): Array<{ alert: string; expr: string; severity: string | undefined }> {
  const rules: Array<{ alert: string; expr: string; severity: string | undefined }> = [];
  // Each rule starts at "- alert:"; its expr and severity follow before the next rule.
  for (const block of yaml.split(/^\s*- alert:/m).slice(1)) {
    const alert = block.split("\n")[0]!.trim();
    const expr = /^\s*expr:\s*(.+)$/m.exec(block)?.[1]?.trim() ?? "";
    const severity = /^\s*severity:\s*(\S+)\s*$/m.exec(block)?.[1];
    rules.push({ alert, expr, severity });
  }
  return rules;
}

/** Metric names (custos_*, process_*, nodejs_*) used by the dashboard's queries and the rules' expressions (comments ignored). */
export function assetMetricNames(): { dashboard: Set<string>; rules: Set<string> } {
  const dashboard = new Set(dashboardQueries(JSON.parse(readFileSync(DASHBOARD, "utf8"))).flatMap((q) => q.match(METRIC) ?? []));
  const rules = new Set(alertRules(readFileSync(ALERT_RULES, "utf8")).flatMap((r) => r.expr.match(METRIC) ?? []));
  return { dashboard, rules };
}

/** Is `name` exported, given metric name → type? A histogram exports NAME_bucket, NAME_sum, NAME_count. */
export function isExported(name: string, types: ReadonlyMap<string, string>): boolean {
  if (types.has(name)) return true;
  const m = /^(.+)_(bucket|sum|count)$/.exec(name);
  return m !== null && (types.get(m[1]!) === "histogram" || types.get(m[1]!) === "summary");
}

/** Metric name → type from Prometheus exposition text (its # TYPE lines). */
export function typesFromExposition(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
}
