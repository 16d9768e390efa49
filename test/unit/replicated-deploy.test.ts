import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { DEFAULT_CONSOLE_PORT, DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT, loadConfig } from "../../src/config/config.js";
import { parseServerNameList } from "../../src/pki/server-names.js";
import { asList, asMap, DOCKER_DIR, dockerYaml, runtimeStage, volumeMount } from "../helpers/docker-assets.js";
import { REPO, tempDir } from "../helpers/harness.js";
import { ALERT_RULES } from "../helpers/monitoring-assets.js";
import { parseYamlSubset, type YamlValue } from "../helpers/yaml-subset.js";

/**
 * The replicated deployment files (docker/compose.replicas.yaml, deploy/k8s/) against what
 * custos does. CUSTOS_POSTGRES_URL is the contract for `custos serve` on PostgreSQL
 * (the PostgreSQL store's branch reads it).
 */
const POSTGRES_URL_ENV = "CUSTOS_POSTGRES_URL";
const CUSTOS_PORTS = [DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT, DEFAULT_CONSOLE_PORT];
const K8S = join(REPO, "deploy/k8s");

type Map = { [key: string]: YamlValue };
const compose = asMap(dockerYaml("compose.replicas.yaml"), "compose.replicas.yaml");
const services = asMap(compose.services, "services");
const service = (name: string): Map => asMap(services[name], `services.${name}`);
const replicaNames = Object.keys(services).filter((n) => asMap(service(n).build ?? {}, "build").dockerfile === "docker/Dockerfile");
const k8s = (file: string): Map => asMap(parseYamlSubset(readFileSync(join(K8S, file), "utf8")), file);
const envFile = (path: string): Record<string, string> =>
  Object.fromEntries(
    readFileSync(path, "utf8")
      .trim()
      .split("\n")
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );

describe("docker/compose.replicas.yaml", () => {
  it("runs at least two custos replicas of the image, sharing one data volume, with identical server names naming each replica", () => {
    assert.ok(replicaNames.length >= 2, replicaNames.join());
    const dataDir = runtimeStage().env.CUSTOS_DATA_DIR;
    const volumes = replicaNames.map((n) =>
      asList(service(n).volumes, `${n}.volumes`)
        .map(volumeMount)
        .find((m) => m.target === dataDir),
    );
    assert.ok(volumes.every((v) => v !== undefined && !v.source.startsWith(".")));
    assert.equal(new Set(volumes.map((v) => v?.source)).size, 1, "one shared volume (token, PKI, PINs)");
    const names = replicaNames.map((n) => String(asMap(service(n).environment, `${n}.environment`).CUSTOS_SERVER_NAMES));
    assert.equal(new Set(names).size, 1, "the replicas would reissue the shared server certificate for each other");
    const listed = parseServerNameList(names[0] as string, "compose");
    for (const n of replicaNames) assert.ok(listed.includes(n), `the certificate must name ${n}`);
  });

  it("publishes each replica's three ports on the host's loopback, on distinct host ports; probes /readyz", () => {
    const hostPorts: string[] = [];
    for (const n of replicaNames) {
      const ports = asList(service(n).ports, `${n}.ports`).map(String);
      assert.deepEqual(
        ports.map((p) => Number(p.split(":")[2])),
        CUSTOS_PORTS,
      );
      for (const p of ports) assert.match(p, /^127\.0\.0\.1:\d+:\d+$/);
      hostPorts.push(...ports.map((p) => p.split(":")[1] as string));
      const probe = asList(asMap(service(n).healthcheck, "healthcheck").test, "healthcheck.test").join(" ");
      assert.ok(probe.includes(`http://127.0.0.1:${DEFAULT_HTTP_PORT}/readyz`), probe);
    }
    assert.equal(new Set(hostPorts).size, hostPorts.length, "two replicas publish the same host port");
  });

  it("the PostgreSQL URL reaches the replicas from an env file the secrets script writes (0600), matching the database's credentials", () => {
    const postgres = service("postgres");
    const dir = tempDir("custos-secrets-");
    execFileSync("bash", [join(DOCKER_DIR, "make-postgres-secrets.sh"), dir]);
    const pgEnv = asList(postgres.env_file, "postgres.env_file").map(String);
    assert.deepEqual(pgEnv, ["./secrets/postgres.env"]);
    const database = envFile(join(dir, "postgres.env"));
    const custosEnv = envFile(join(dir, "custos.env"));
    for (const f of ["postgres.env", "custos.env"]) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
    const url = new URL(custosEnv[POSTGRES_URL_ENV] ?? "");
    const pgSettings = asMap(postgres.environment, "postgres.environment");
    assert.equal(url.hostname, "postgres");
    assert.ok("postgres" in services);
    assert.equal(url.port, "5432");
    assert.equal(url.username, pgSettings.POSTGRES_USER);
    assert.equal(url.pathname, `/${pgSettings.POSTGRES_DB}`);
    assert.equal(url.password, database.POSTGRES_PASSWORD);
    assert.ok((database.POSTGRES_PASSWORD ?? "").length >= 32);
    for (const n of replicaNames) {
      assert.deepEqual(asList(service(n).env_file, `${n}.env_file`).map(String), ["./secrets/custos.env"]);
      assert.equal(POSTGRES_URL_ENV in asMap(service(n).environment, "environment"), false, "no URL (with its password) in the compose file");
    }
    // A second run refuses to overwrite the credentials a running database was created with.
    assert.throws(() => execFileSync("bash", [join(DOCKER_DIR, "make-postgres-secrets.sh"), dir], { stdio: "pipe" }));
    assert.ok(readFileSync(join(REPO, ".gitignore"), "utf8").split("\n").includes("docker/secrets/"), "the secrets are never committed");
  });

  it("starts PostgreSQL first and the second replica after the first is healthy (the first initialises the shared volume)", () => {
    const [first, ...others] = replicaNames as [string, ...string[]];
    assert.equal(asMap(asMap(service(first).depends_on, "depends_on").postgres, "postgres").condition, "service_healthy");
    for (const n of others) {
      const deps = asMap(service(n).depends_on, `${n}.depends_on`);
      assert.equal(asMap(deps.postgres, "postgres").condition, "service_healthy");
      assert.equal(asMap(deps[first], first).condition, "service_healthy");
    }
  });

  it("Prometheus scrapes every replica's HTTP port and loads custos's alert rules; Grafana provisions the dashboard", () => {
    const mounts = asList(service("prometheus").volumes, "prometheus.volumes").map(volumeMount);
    const byTarget = new Map(mounts.map((m) => [m.target, m.source]));
    const config = asMap(dockerYaml(String(byTarget.get("/etc/prometheus/prometheus.yml"))), "prometheus config");
    const rules = asList(config.rule_files, "rule_files").map((f) => byTarget.get(String(f)));
    assert.deepEqual(
      rules.map((r) => join(DOCKER_DIR, String(r))),
      [ALERT_RULES],
    );
    const job = asList(config.scrape_configs, "scrape_configs")
      .map((j) => asMap(j, "job"))
      .find((j) => j.job_name === "custos");
    const targets = asList(asMap(asList(job?.static_configs, "static_configs")[0], "static").targets, "targets").map(String);
    assert.deepEqual(
      targets,
      replicaNames.map((n) => `${n}:${DEFAULT_HTTP_PORT}`),
    );
    const grafana = asList(service("grafana").volumes, "grafana.volumes").map(volumeMount);
    assert.ok(grafana.some((m) => m.target === "/etc/grafana/provisioning" && m.source === "./grafana/provisioning"));
    assert.ok(grafana.some((m) => m.source === "./grafana/custos-dashboard.json"));
    for (const s of Object.values(services)) {
      for (const m of asList(asMap(s, "service").volumes ?? [], "volumes")
        .map(volumeMount)
        .filter((x) => x.source.startsWith("."))) {
        statSync(join(DOCKER_DIR, m.source));
        assert.equal(m.readOnly, true, m.source);
      }
    }
  });
});

describe("deploy/k8s", () => {
  const sts = k8s("statefulset.yaml");
  const spec = asMap(sts.spec, "spec");
  const template = asMap(spec.template, "template");
  const podSpec = asMap(template.spec, "pod spec");
  const container = asMap(asList(podSpec.containers, "containers")[0], "container");
  const labels = asMap(asMap(template.metadata, "metadata").labels, "labels");
  const ports = new Map(asList(container.ports, "ports").map((p) => [String(asMap(p, "port").name), Number(asMap(p, "port").containerPort)]));
  const env = asList(container.env, "env").map((e) => asMap(e, "env"));
  const selects = (selector: Map): boolean => Object.entries(selector).every(([k, v]) => labels[k] === v);

  it("a StatefulSet of at least two replicas, a Service and a headless Service selecting its pods, a PDB keeping one", () => {
    assert.equal(sts.kind, "StatefulSet");
    assert.ok(Number(spec.replicas) >= 2);
    assert.ok(selects(asMap(asMap(spec.selector, "selector").matchLabels, "matchLabels")));
    const headless = k8s("service-replicas.yaml");
    assert.equal(spec.serviceName, asMap(headless.metadata, "metadata").name);
    assert.equal(asMap(headless.spec, "spec").clusterIP, "None");
    for (const file of ["service.yaml", "service-replicas.yaml"]) {
      const svc = asMap(k8s(file).spec, "spec");
      assert.ok(selects(asMap(svc.selector, "selector")), file);
      for (const p of asList(svc.ports, "ports").map((x) => asMap(x, "port")))
        assert.equal(ports.get(String(p.targetPort)), Number(p.port), `${file}: ${p.name}`);
    }
    const pdb = k8s("pdb.yaml");
    assert.equal(pdb.kind, "PodDisruptionBudget");
    const pdbSpec = asMap(pdb.spec, "spec");
    assert.ok(selects(asMap(asMap(pdbSpec.selector, "selector").matchLabels, "matchLabels")));
    assert.ok(Number(pdbSpec.minAvailable) >= 1 && Number(pdbSpec.minAvailable) < Number(spec.replicas));
  });

  it("container ports, probes and scrape annotations are custos's: /readyz and /healthz on the HTTP port, /metrics", () => {
    assert.deepEqual([ports.get("grpc"), ports.get("http"), ports.get("console")], CUSTOS_PORTS);
    const probe = (name: string): Map => asMap(asMap(container[name], name).httpGet, `${name}.httpGet`);
    assert.deepEqual([probe("readinessProbe").path, probe("readinessProbe").port], ["/readyz", "http"]);
    assert.deepEqual([probe("livenessProbe").path, probe("livenessProbe").port], ["/healthz", "http"]);
    const annotations = asMap(asMap(template.metadata, "metadata").annotations, "annotations");
    assert.equal(Number(annotations["prometheus.io/port"]), DEFAULT_HTTP_PORT);
    assert.equal(annotations["prometheus.io/path"], "/metrics");
    assert.deepEqual(asList(container.args, "args").slice(0, 3), runtimeStage().cmd.slice(0, 3));
    assert.equal(Number(asMap(podSpec.securityContext, "securityContext").runAsUser), 1000, "the image's node user (token files are per user)");
  });

  it("the PostgreSQL URL and the HSM PIN come from Secrets the README creates; no secret value is in a manifest", () => {
    const readme = readFileSync(join(K8S, "README.md"), "utf8");
    const created = new Map<string, string[]>();
    for (const m of readme.matchAll(/kubectl create secret generic (\S+)((?: --from-file=[^=\s]+=\S+)+)/g)) {
      created.set(
        m[1] as string,
        [...(m[2] as string).matchAll(/--from-file=([^=\s]+)=/g)].map((k) => k[1] as string),
      );
    }
    const fromSecret = (name: string): { secret: string; key: string } => {
      const e = env.find((x) => x.name === name);
      assert.ok(e, `${name} is not set`);
      assert.equal(e.value, undefined, `${name} has a literal value`);
      const ref = asMap(asMap(e.valueFrom, "valueFrom").secretKeyRef, "secretKeyRef");
      return { secret: String(ref.name), key: String(ref.key) };
    };
    const config = loadK8sConfig();
    assert.ok(config.hsm.pinEnv && config.hsm.pinFile === undefined, "custos.json reads the PIN from the environment");
    for (const name of [POSTGRES_URL_ENV, config.hsm.pinEnv]) {
      const { secret, key } = fromSecret(name);
      assert.ok(created.get(secret)?.includes(key), `the README does not create ${secret}/${key}`);
    }
    const tlsVolume = asList(podSpec.volumes, "volumes")
      .map((v) => asMap(v, "volume"))
      .find((v) => v.secret !== undefined);
    const tlsSecret = String(asMap(tlsVolume?.secret, "secret").secretName);
    const tlsMount = asList(container.volumeMounts, "volumeMounts")
      .map((m) => asMap(m, "mount"))
      .find((m) => m.name === tlsVolume?.name);
    for (const path of [config.tls.caPath, config.tls.certPath, config.tls.keyPath]) {
      assert.ok(path.startsWith(`${tlsMount?.mountPath}/`), path);
      assert.ok(created.get(tlsSecret)?.includes(path.slice(String(tlsMount?.mountPath).length + 1)), `${tlsSecret} lacks ${path}`);
    }
  });

  it("custos.json loads as a configured deployment, on the ports the pod exposes, with the PKCS#11 module the image installs", () => {
    const config = loadK8sConfig();
    assert.equal(config.embedded, false);
    assert.deepEqual([config.grpc.port, config.http.port, config.console.port ?? DEFAULT_CONSOLE_PORT], CUSTOS_PORTS); // console.port unset: 7402
    // The runtime image installs Debian's softhsm2: its module is where custos.json points.
    assert.ok(readFileSync(join(DOCKER_DIR, "Dockerfile"), "utf8").includes("softhsm2"));
    assert.equal(config.hsm.modulePath, "/usr/lib/softhsm/libsofthsm2.so");
    const mounts = asList(container.volumeMounts, "volumeMounts").map((m) => asMap(m, "mount"));
    const configMount = mounts.find((m) => m.subPath === "custos.json");
    assert.equal(configMount?.mountPath, `${env.find((e) => e.name === "CUSTOS_DATA_DIR")?.value}/custos.json`);
    assert.ok(
      mounts.some((m) => config.hsm.softhsmConf?.startsWith(`${m.mountPath}/`)),
      "softhsm2.conf is on the shared token volume",
    );
    const kustomization = k8s("kustomization.yaml");
    const resources = asList(kustomization.resources, "resources").map(String);
    for (const f of ["statefulset.yaml", "service.yaml", "service-replicas.yaml", "pdb.yaml"]) assert.ok(resources.includes(f), f);
  });
});

/** deploy/k8s/custos.json read by custos's own config loader, from a data dir as the pod has it. */
function loadK8sConfig(): ReturnType<typeof loadConfig> {
  const dir = tempDir("custos-k8s-");
  copyFileSync(join(K8S, "custos.json"), join(dir, "custos.json"));
  return loadConfig(dir);
}
