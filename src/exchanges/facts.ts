import { CustosError } from "../errors.js";
import { algorithmSpec, type SigningAlgorithm } from "../hsm/algorithms.js";
import type { EndpointClass, ExchangeRequest, PreparedWebSocketAuth, SigningContext } from "./dialect.js";
import { parseJsonStrict } from "./strict-parse.js";

/*
 * Small readers shared by the dialects: what a request names (symbols, sizes) for the policy,
 * and the check on what the HSM handed back.
 */

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * JSON read strictly (see strict-parse.ts), or undefined when it does not parse or repeats a key:
 * callers treat undefined as unreadable, which no policy check passes.
 */
export function parseJson(s: string): unknown {
  try {
    return parseJsonStrict(s);
  } catch {
    return undefined;
  }
}

/** Upper case so a per-symbol limit cannot be dodged by spelling the instrument differently. */
export function symbolOf(v: unknown): string {
  return (typeof v === "string" ? v : JSON.stringify(v)).toUpperCase();
}

/** The largest quantity named, or NaN (refused by any limit) when none is or one is not a number. */
export function largestQuantity(values: unknown[]): number {
  if (values.length === 0) return NaN;
  return Math.max(...values.map(quantityOf));
}

/** A number or numeric string (exponent allowed), absolute (BitMEX once signed orderQty for the side); else NaN. */
export function quantityOf(v: unknown): number {
  if (typeof v === "number") return Number.isFinite(v) ? Math.abs(v) : NaN;
  if (typeof v === "string" && /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(v)) return Math.abs(Number(v));
  return NaN;
}

/** The single MAC a dialect asked the HSM for, of the algorithm's length; anything else is a bug. */
export function oneMac(exchange: string, algorithm: SigningAlgorithm, macs: Buffer[]): Buffer {
  const bytes = algorithmSpec(algorithm).macBytes;
  if (macs.length !== 1 || macs[0]!.length !== bytes) {
    throw new CustosError("INTERNAL", `${exchange}: expected one ${bytes}-byte MAC, got ${macs.length} (this is a bug)`);
  }
  return macs[0]!;
}

/** A JSON string or number as text; anything else undefined. */
export function textOf(v: unknown): string | undefined {
  return typeof v === "string" ? v : typeof v === "number" ? String(v) : undefined;
}

/** An order size (number or numeric text, not negative); anything unreadable counts as unbounded. */
export function orderSize(v: unknown): number {
  const s = textOf(v);
  const n = s === undefined || s.trim() === "" ? Number.NaN : Number(s);
  return Number.isFinite(n) && n >= 0 ? n : Number.POSITIVE_INFINITY;
}

/**
 * The endpoint class of a request from an exact "METHOD path" table, then path patterns in
 * order; `unknown` (refused by the default policy) when neither lists it.
 */
export function tableClassifier(
  table: ReadonlyMap<string, EndpointClass>,
  patterns: ReadonlyArray<[RegExp, EndpointClass]>,
): (req: ExchangeRequest) => EndpointClass {
  return (req) => {
    const listed = table.get(`${req.method} ${req.path}`);
    if (listed) return listed;
    for (const [re, cls] of patterns) if (re.test(req.path)) return cls;
    return "unknown";
  };
}

/**
 * The WebSocket `login` op of OKX v5 and Bitget v2 (Bitget follows OKX's format):
 * base64(HMAC-SHA256(secret, seconds + "GET" + verifyPath)), sent with the API key, the
 * passphrase in clear and the seconds.
 */
export function passphraseLogin(exchange: string, ctx: SigningContext, verifyPath: string): PreparedWebSocketAuth {
  const invalid = (m: string) => new CustosError("INVALID_ARGUMENT", `${exchange}: ${m}`);
  if (!ctx.passphrase) throw invalid("the key needs its API passphrase to log in");
  if (!/^[\x20-\x7e]+$/.test(ctx.passphrase)) throw invalid("the API passphrase must be printable ASCII");
  if (!/^[\x21-\x7e]+$/.test(ctx.apiKeyId)) throw invalid("the API key id must be printable ASCII");
  if (!Number.isSafeInteger(ctx.timestamp) || ctx.timestamp <= 0) throw invalid("timestamp must be a positive integer of milliseconds");
  const timestamp = String(Math.floor(ctx.timestamp / 1000));
  const passphrase = ctx.passphrase;
  return {
    toSign: [Buffer.from(`${timestamp}GET${verifyPath}`, "utf8")],
    finish(macs: Buffer[]) {
      const sign = oneMac(exchange, "hmac-sha256", macs).toString("base64");
      return {
        fields: [
          ["apiKey", ctx.apiKeyId],
          ["passphrase", passphrase],
          ["timestamp", timestamp],
          ["sign", sign],
        ],
        message: JSON.stringify({ op: "login", args: [{ apiKey: ctx.apiKeyId, passphrase, timestamp, sign }] }),
        signature: sign,
        timestamp,
      };
    },
  };
}
