/** The exchange of a new key (key import, key generate), as the officer's CLI resolves and reports it. */
import { canonicalExchange, RAW_EXCHANGE } from "../exchanges/registry.js";
import { CustosError } from "../errors.js";
import { CliError } from "./context.js";
import type { Opts } from "./officer-context.js";

/**
 * The exchange a new key is proposed with, resolved as the service resolves it: a dialect's id,
 * a ccxt alias turned into that id, or `raw` asked for with --raw. A typo fails here, before any
 * secret is read. {@link newKeyExchangeNote} says afterwards what the quorum approves.
 */
export function newKeyExchange(o: Opts): string {
  if (o.raw && o.exchange !== undefined && o.exchange !== RAW_EXCHANGE) throw new CliError("--raw keys have no exchange: pass --raw or --exchange, not both");
  if (!o.raw && o.exchange === undefined) throw new CliError("pass --exchange NAME (e.g. binance), or --raw for a key that signs raw bytes only");
  try {
    return canonicalExchange(o.raw ? RAW_EXCHANGE : o.exchange!);
  } catch (e) {
    // The same words the service would answer with.
    if (e instanceof CustosError) throw new CliError(`INVALID_ARGUMENT (${e.code}): ${e.message}`);
    throw e;
  }
}

/** Once proposed (a failure stays one stderr line): an alias resolved, or a raw-only key, said on stderr. */
export function newKeyExchangeNote(o: Opts, exchange: string): void {
  if (exchange === RAW_EXCHANGE) console.error(`note: ${o.key} signs raw bytes only: no exchange dialect reads its requests and no request policy applies`);
  else if (exchange !== o.exchange) console.error(`note: ${o.exchange} is ccxt's id for ${exchange}: ${o.key} was proposed as a ${exchange} key`);
}
