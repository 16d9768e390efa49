/**
 * custos's docker/ files as data, for tests: the Dockerfile's runtime stage, compose.yaml and
 * the Prometheus and Grafana provisioning files (through the strict YAML-subset reader).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "./harness.js";
import { parseYamlSubset, type YamlValue } from "./yaml-subset.js";

export const DOCKER_DIR = join(REPO, "docker");

/** The last stage of a Dockerfile: what the image runs. */
export interface RuntimeStage {
  workdir: string;
  user: string | undefined;
  /** COPY instructions in order; `from` is the build stage for `COPY --from=…`. */
  copies: Array<{ from: string | undefined; src: string; dest: string }>;
  env: Record<string, string>;
  expose: number[];
  cmd: string[];
}

/** Reads the runtime stage of docker/Dockerfile (instructions after the last FROM). */
export function runtimeStage(path = join(DOCKER_DIR, "Dockerfile")): RuntimeStage {
  const instructions = readFileSync(path, "utf8")
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  const lastFrom = instructions.map((l) => l.split(/\s+/)[0]!.toUpperCase()).lastIndexOf("FROM");
  const stage: RuntimeStage = { workdir: "/", user: undefined, copies: [], env: {}, expose: [], cmd: [] };
  for (const line of instructions.slice(lastFrom + 1)) {
    const [op, ...args] = line.split(/\s+/);
    const rest = line.slice(op!.length).trim();
    switch (op!.toUpperCase()) {
      case "WORKDIR":
        stage.workdir = rest;
        break;
      case "USER":
        stage.user = rest;
        break;
      case "COPY": {
        const from = args[0]?.startsWith("--from=") ? args.shift()!.slice("--from=".length) : undefined;
        if (args.length !== 2) throw new Error(`COPY with ${args.length} paths: ${line}`);
        stage.copies.push({ from, src: args[0]!, dest: args[1]! });
        break;
      }
      case "ENV":
        for (const pair of args) {
          const eq = pair.indexOf("=");
          if (eq < 1) throw new Error(`ENV without KEY=value: ${line}`);
          stage.env[pair.slice(0, eq)] = pair.slice(eq + 1);
        }
        break;
      case "EXPOSE":
        stage.expose.push(...args.map(Number));
        break;
      case "CMD":
        stage.cmd = JSON.parse(rest) as string[];
        break;
    }
  }
  return stage;
}

/** A YAML file under docker/, read with the strict subset reader. */
export function dockerYaml(relative: string): YamlValue {
  return parseYamlSubset(readFileSync(join(DOCKER_DIR, relative), "utf8"));
}

/** `value` as a mapping, or a thrown error naming `what`. */
export function asMap(value: YamlValue | undefined, what: string): { [key: string]: YamlValue } {
  if (value === undefined || typeof value === "string" || Array.isArray(value)) throw new Error(`${what} is not a mapping`);
  return value;
}

/** `value` as a list, or a thrown error naming `what`. */
export function asList(value: YamlValue | undefined, what: string): YamlValue[] {
  if (!Array.isArray(value)) throw new Error(`${what} is not a list`);
  return value;
}

/** A compose volume entry "SOURCE:TARGET[:ro]" split; SOURCE is a path when it starts with "." or "/". */
export function volumeMount(entry: YamlValue): { source: string; target: string; readOnly: boolean } {
  if (typeof entry !== "string") throw new Error("long-form volume entries are outside what the tests read");
  const [source, target, mode] = entry.split(":");
  return { source: source!, target: target!, readOnly: mode === "ro" };
}
