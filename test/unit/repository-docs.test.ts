import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { REPO } from "../helpers/harness.js";

/** What a new user reads: the license, the documents the README links to, and no command that leaves the repository. */
describe("repository documents", () => {
  it("LICENSE is the full Apache License 2.0 that package.json names", () => {
    const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { license: string };
    assert.equal(pkg.license, "Apache-2.0");
    const license = readFileSync(join(REPO, "LICENSE"), "utf8");
    assert.match(license, /^\s*Apache License\s+Version 2\.0, January 2004/);
    const sections = [
      "1. Definitions.",
      "9. Accepting Warranty or Additional Liability.",
      "END OF TERMS AND CONDITIONS",
      "APPENDIX: How to apply the Apache License",
    ];
    for (const section of sections) {
      assert.ok(license.includes(section), `LICENSE has "${section}"`);
    }
  });

  it("every relative link in README.md, SECURITY.md and docs/DESIGN.md names a file in the repository", () => {
    for (const doc of ["README.md", "SECURITY.md", "docs/DESIGN.md"]) {
      const text = readFileSync(join(REPO, doc), "utf8");
      for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        assert.ok(existsSync(join(REPO, dirname(doc), target!)), `${doc} links to ${target}`);
      }
    }
    assert.match(readFileSync(join(REPO, "README.md"), "utf8"), /\]\(docs\/DESIGN\.md\)/, "the README points at the design document");
  });

  it("no document, banner or CLI help suggests `npx custos` as a command", () => {
    const files = ["README.md", "SECURITY.md", "docs/DESIGN.md", "bench/README.md", ...sources(join(REPO, "src"))];
    for (const file of files) {
      const text = readFileSync(file.startsWith("/") ? file : join(REPO, file), "utf8");
      // The warnings name it in prose ("never … `npx custos`"); any other mention is a suggestion.
      const commandLines = text.split("\n").filter((line) => /npx\s+custos\b/.test(line) && !/never|Never|not this one/.test(line));
      assert.deepEqual(commandLines, [], file);
    }
  });
});

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith(".ts") ? [path] : [];
  });
}
