#!/usr/bin/env node
// The `custos` command: runs the compiled CLI (`npm run serve` and `npm run build` build it).
import { existsSync } from "node:fs";

const main = new URL("../dist/src/cli/main.js", import.meta.url);
// Written after each successful build (hsm/bootstrap.sh, npm run build).
const built = new URL("../dist/.build-stamp", import.meta.url);
if (process.argv[2] === "wait" && !existsSync(built)) {
  // `npm run serve &` then `custos wait`: on a first start the CLI itself is still being built.
  const timeoutArg = process.argv.indexOf("--timeout");
  const seconds = timeoutArg > 0 ? Number(process.argv[timeoutArg + 1]) : 60;
  const deadline = Date.now() + (Number.isFinite(seconds) ? seconds : 60) * 1000;
  while (!existsSync(built) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
}
if (!existsSync(main)) {
  process.stderr.write("custos: the CLI is not built yet: run `npm run serve` (or `npm run build`) in the custos repository\n");
  process.exit(1);
}
const { main: run } = await import(main.href);
await run(process.argv);
