import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CUSTOS_BIN, cliInvocation, shellQuote } from "../../src/cli/invocation.js";
import { REPO, tempDir } from "../helpers/harness.js";

/** What the start banner prints to run the CLI: `custos` only when that name on PATH is this checkout's. */
describe("CLI invocation in printed commands", () => {
  const dir = tempDir("custos-invocation-");
  after(() => rmSync(dir, { recursive: true, force: true }));
  const ours = join(REPO, "bin");

  it("is this checkout's bin/custos", () => {
    assert.equal(CUSTOS_BIN, join(REPO, "bin", "custos"));
  });

  it("says `custos` when the first custos on PATH is this checkout's, directly or through a link", () => {
    assert.equal(cliInvocation(["/nonexistent", ours, "/usr/bin"].join(":")), "custos");
    const linked = join(dir, "linked");
    mkdirSync(linked);
    symlinkSync(join(REPO, "bin", "custos.js"), join(linked, "custos"));
    assert.equal(cliInvocation(linked), "custos");
  });

  it("prints the absolute path when PATH has no custos, or another one first", () => {
    assert.equal(cliInvocation("/nonexistent:/usr/bin"), join(REPO, "bin", "custos"));
    const other = join(dir, "other");
    mkdirSync(other);
    writeFileSync(join(other, "custos"), "#!/bin/sh\necho not ours\n");
    chmodSync(join(other, "custos"), 0o755);
    assert.equal(cliInvocation([other, ours].join(":")), join(REPO, "bin", "custos"));
  });

  it("quotes words the shell would split or expand", () => {
    assert.equal(shellQuote("/tmp/custos-x/data"), "/tmp/custos-x/data");
    assert.equal(shellQuote("/tmp/my data"), "'/tmp/my data'");
    assert.equal(shellQuote("/tmp/it's $HOME"), `'/tmp/it'\\''s $HOME'`);
  });
});
