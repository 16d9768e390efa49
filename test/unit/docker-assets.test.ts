import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, posix } from "node:path";
import { DEFAULT_CONSOLE_PORT, DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT, embeddedConfig, withEnvironment } from "../../src/config/config.js";
import { parseServerNameList } from "../../src/pki/server-names.js";
import { DOCKER_DIR, asList, asMap, dockerYaml, runtimeStage, volumeMount } from "../helpers/docker-assets.js";
import { ALERT_RULES, DASHBOARD, alertRules } from "../helpers/monitoring-assets.js";
import { parseYamlSubset } from "../helpers/yaml-subset.js";

/** The container files (Dockerfile, compose.yaml, Prometheus and Grafana provisioning) against what custos listens on and serves. */

const CUSTOS_PORTS = [DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT, DEFAULT_CONSOLE_PORT];
const compose = asMap(dockerYaml("compose.yaml"), "compose.yaml");
const services = asMap(compose.services, "services");
const service = (name: string) => asMap(services[name], `services.${name}`);
const mounts = (name: string) => asList(service(name).volumes, `${name}.volumes`).map(volumeMount);

describe("docker assets", () => {
  it("the image runs custos as node, exposes its three ports and listens on every interface", () => {
    const stage = runtimeStage();
    assert.equal(stage.user, "node");
    assert.deepEqual([...stage.expose].sort(), [...CUSTOS_PORTS].sort());
    assert.deepEqual(stage.cmd.slice(0, 3), ["node", "bin/custos.js", "serve"]);
    // The environment the image sets, through the code custos reads it with.
    const config = withEnvironment(embeddedConfig(stage.env.CUSTOS_DATA_DIR!), stage.env);
    assert.deepEqual([config.grpc.host, config.http.host, config.console.host], ["0.0.0.0", "0.0.0.0", "0.0.0.0"]);
    assert.equal(config.dataDir, "/data");
  });

  it("compose publishes custos's ports on the host's loopback only, keeps /data in a volume and names the certificate custos", () => {
    const custos = service("custos");
    assert.deepEqual(
      asList(custos.ports, "custos.ports"),
      CUSTOS_PORTS.map((p) => `127.0.0.1:${p}:${p}`),
    );
    for (const [name, s] of Object.entries(services)) {
      for (const p of asList(asMap(s, name).ports ?? [], `${name}.ports`)) assert.match(String(p), /^127\.0\.0\.1:\d+:\d+$/, `${name} publishes ${String(p)}`);
    }
    assert.ok(
      mounts("custos").some((m) => m.target === runtimeStage().env.CUSTOS_DATA_DIR && !m.source.startsWith(".")),
      "the data dir is a named volume",
    );
    const names = parseServerNameList(String(asMap(custos.environment, "custos.environment").CUSTOS_SERVER_NAMES), "compose");
    assert.ok(names.includes("custos"), "other containers dial the service name");
    const probe = asList(asMap(custos.healthcheck, "healthcheck").test, "healthcheck.test").join(" ");
    assert.ok(probe.includes(`http://127.0.0.1:${DEFAULT_HTTP_PORT}/readyz`), probe);
  });

  it("every file compose mounts exists in docker/, read-only", () => {
    for (const name of Object.keys(services)) {
      for (const m of mounts(name).filter((x) => x.source.startsWith("."))) {
        assert.ok(existsSync(join(DOCKER_DIR, m.source)), `${name}: ${m.source}`);
        assert.equal(m.readOnly, true, `${name}: ${m.source} mounted read-only`);
      }
    }
  });

  it("Prometheus loads its config and custos-alerts.yml from the mounts and scrapes custos's HTTP port", () => {
    const prometheus = service("prometheus");
    const byTarget = new Map(mounts("prometheus").map((m) => [m.target, m.source]));
    const configFile = asList(prometheus.command, "prometheus.command")
      .map(String)
      .find((a) => a.startsWith("--config.file="))!
      .split("=")[1]!;
    assert.equal(byTarget.get(configFile), "./prometheus/prometheus.yml");
    const config = asMap(dockerYaml("prometheus/prometheus.yml"), "prometheus.yml");
    const ruleFiles = asList(config.rule_files, "rule_files").map(String);
    assert.deepEqual(
      ruleFiles.map((f) => byTarget.get(f)),
      ["./prometheus/custos-alerts.yml"],
    );
    assert.equal(join(DOCKER_DIR, "prometheus/custos-alerts.yml"), ALERT_RULES);
    const jobs = asList(config.scrape_configs, "scrape_configs").map((j) => asMap(j, "scrape config"));
    const custosJob = jobs.find((j) => j.job_name === "custos")!;
    assert.equal(custosJob.metrics_path ?? "/metrics", "/metrics");
    const targets = asList(custosJob.static_configs, "static_configs").flatMap((s) => asList(asMap(s, "static config").targets, "targets").map(String));
    assert.deepEqual(targets, [`custos:${DEFAULT_HTTP_PORT}`]);
    // custos and Prometheus share a network, so the service name resolves.
    const nets = (name: string) => asList(service(name).networks, `${name}.networks`).map(String);
    assert.ok(nets("prometheus").some((n) => nets("custos").includes(n)));
  });

  it("Grafana provisions a default Prometheus datasource at the prometheus service and the custos dashboard", () => {
    const byTarget = new Map(mounts("grafana").map((m) => [m.target, m.source]));
    const provisioning = byTarget.get("/etc/grafana/provisioning")!;
    assert.ok(statSync(join(DOCKER_DIR, provisioning)).isDirectory());
    const ds = asList(asMap(dockerYaml(join(provisioning, "datasources/prometheus.yml")), "datasources").datasources, "datasources").map((d) =>
      asMap(d, "datasource"),
    );
    assert.equal(ds.length, 1);
    assert.equal(ds[0]!.type, "prometheus");
    assert.equal(ds[0]!.isDefault, "true");
    const url = new URL(String(ds[0]!.url));
    assert.ok(url.hostname in services, url.hostname);
    assert.ok(
      asList(service(url.hostname).ports, "ports").some((p) => String(p).endsWith(`:${url.port}`)),
      "Prometheus listens on the datasource's port",
    );
    // The dashboard's datasource variable picks the default datasource of this type.
    const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as { templating: { list: Array<{ type: string; query: string }> } };
    assert.equal(dashboard.templating.list.find((v) => v.type === "datasource")?.query, ds[0]!.type);
    const providers = asList(asMap(dockerYaml(join(provisioning, "dashboards/custos.yml")), "dashboards").providers, "providers").map((p) =>
      asMap(p, "provider"),
    );
    const path = String(asMap(providers[0]!.options, "options").path);
    const dashboardMount = [...byTarget].find(([, source]) => join(DOCKER_DIR, source) === DASHBOARD);
    assert.ok(dashboardMount, "custos-dashboard.json is mounted");
    assert.equal(posix.dirname(dashboardMount[0]), path);
    assert.equal(dirname(DASHBOARD), join(DOCKER_DIR, "grafana"));
  });

  it("the alert rules file is well-formed: groups of rules, each with alert, expr and a severity, as the rules reader sees them", () => {
    const groups = asList(asMap(dockerYaml("prometheus/custos-alerts.yml"), "alerts").groups, "groups");
    const rules = groups.flatMap((g) => asList(asMap(g, "group").rules, "rules").map((r) => asMap(r, "rule")));
    for (const r of rules)
      assert.ok(typeof r.alert === "string" && typeof r.expr === "string" && typeof asMap(r.labels, "labels").severity === "string", JSON.stringify(r));
    const read = alertRules(readFileSync(ALERT_RULES, "utf8"));
    assert.deepEqual(
      rules.map((r) => [r.alert, r.expr, asMap(r.labels, "labels").severity]),
      read.map((r) => [r.alert, r.expr, r.severity]),
    );
  });

  it("the YAML-subset reader refuses what it does not understand instead of misreading it", () => {
    for (const bad of ["a: |\n  text", "a: &x 1", "a: *x", "a: {b: 1}", "a:\n\tb: 1", "a: 1\n   b: 2", "a: 1\na: 2", "a: [1, [2]]", 'a: "open']) {
      assert.throws(() => parseYamlSubset(bad), Error, bad);
    }
    assert.deepEqual(parseYamlSubset("a:\n- x # c\n- 'y''s'\nb: {}\nc: [\"p\", q]"), { a: ["x", "y's"], b: {}, c: ["p", "q"] });
  });
});
