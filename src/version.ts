import { readFileSync } from "node:fs";

/**
 * custos's version, from the package.json next to `dist/` (the container image copies it too).
 * "unknown" when that file is missing: a build-info label is no reason to refuse to start.
 */
export function custosVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { name?: string; version?: unknown };
    return pkg.name === "custos" && typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch {
    return "unknown";
  }
}
