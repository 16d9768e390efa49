import { accessSync, constants, realpathSync } from "node:fs";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";

/** This checkout's `custos` executable (bin/custos, a link to bin/custos.js). */
export const CUSTOS_BIN = fileURLToPath(new URL("../../../bin/custos", import.meta.url));

/**
 * How to invoke this checkout's CLI in a printed command: `custos` when that name on PATH is
 * this checkout's, else its absolute path. Never `npx custos`: outside the repository npx
 * would fetch an unrelated registry package of that name.
 */
export function cliInvocation(path = process.env.PATH ?? ""): string {
  const ours = realpathOrUndefined(CUSTOS_BIN);
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, "custos");
    try {
      accessSync(candidate, constants.X_OK);
    } catch {
      continue;
    }
    // The first `custos` on PATH is the one a shell runs: it must be ours.
    return ours !== undefined && realpathOrUndefined(candidate) === ours ? "custos" : shellQuote(CUSTOS_BIN);
  }
  return shellQuote(CUSTOS_BIN);
}

/** One shell word: left bare when it is plainly safe, else single-quoted. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

function realpathOrUndefined(p: string): string | undefined {
  try {
    return realpathSync(p);
  } catch {
    return undefined;
  }
}
