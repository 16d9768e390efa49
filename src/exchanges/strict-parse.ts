import { CustosError } from "../errors.js";
import type { StrictReading } from "./dialect.js";

/*
 * One strict reading of request bodies and query strings, shared by every dialect. Exchanges
 * differ in which copy of a repeated name they read (first, last, or all), so custos reads a
 * request only when there is one copy to read: a repeated name is refused, never resolved.
 */

function invalid(message: string, cause?: unknown): CustosError {
  return new CustosError("INVALID_ARGUMENT", message, cause === undefined ? undefined : { cause });
}

/**
 * JSON as the exchange will read it: JSON.parse, plus a refusal of any object that names a
 * key twice (at any depth). INVALID_ARGUMENT when it is not JSON.
 */
export function parseJsonStrict(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw invalid("request body is not JSON", e);
  }
  // Only objects can repeat a key, and only a text with two colons can hold two keys.
  if (typeof value === "object" && value !== null && text.indexOf(":") !== text.lastIndexOf(":")) checkDuplicateKeys(text);
  return value;
}

/**
 * Scans valid JSON (JSON.parse has accepted it) for an object naming a key twice. Keys are
 * compared after unescaping, as parsers compare them ("a" and "\u0061" are the same key).
 */
function checkDuplicateKeys(text: string): void {
  // One set of keys per open object; null for an open array.
  const stack: Array<Set<string> | null> = [];
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const end = stringEnd(text, i);
      const top = stack[stack.length - 1];
      if (top) {
        // A string directly followed by ":" is a key of the innermost object.
        let j = end;
        while (j < text.length && isSpace(text.charCodeAt(j))) j++;
        if (text.charCodeAt(j) === 0x3a /* : */) {
          const raw = text.slice(i, end);
          const key = raw.includes("\\") ? (JSON.parse(raw) as string) : raw.slice(1, -1);
          if (top.has(key)) throw invalid(`request body names ${JSON.stringify(key)} twice in one object`);
          top.add(key);
        }
      }
      i = end;
      continue;
    }
    if (c === 0x7b /* { */) stack.push(new Set());
    else if (c === 0x5b /* [ */) stack.push(null);
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) stack.pop();
    i++;
  }
}

/** Index just past the closing quote of the string starting at `start`. */
function stringEnd(text: string, start: number): number {
  let i = start + 1;
  for (;;) {
    const q = text.indexOf('"', i);
    if (q < 0) return text.length; // unreachable for text JSON.parse accepted
    let backslashes = 0;
    for (let k = q - 1; text.charCodeAt(k) === 0x5c; k--) backslashes++;
    if (backslashes % 2 === 0) return q + 1;
    i = q + 1;
  }
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/**
 * application/x-www-form-urlencoded pairs (a query string or form body), decoded exactly as
 * URLSearchParams decodes them; a name given twice, after decoding, is refused. The sign path
 * parses each request once (`readStrict`) and hands the pairs to the dialect.
 */
export function formPairsStrict(text: string): ReadonlyArray<[string, string]> {
  if (text === "") return NO_PAIRS;
  const out: Array<[string, string]> = [];
  if (text.includes("%") || text.includes("+")) {
    for (const pair of new URLSearchParams(text)) out.push(pair);
  } else {
    // Nothing to decode: a scan reads the same pairs, several times faster on the sign path.
    let start = 0;
    while (start <= text.length) {
      let end = text.indexOf("&", start);
      if (end < 0) end = text.length;
      if (end > start) {
        const eq = text.indexOf("=", start);
        out.push(eq < 0 || eq > end ? [text.slice(start, end), ""] : [text.slice(start, eq), text.slice(eq + 1, end)]);
      }
      start = end + 1;
    }
  }
  refuseRepeatedNames(out);
  return out;
}

const NO_PAIRS: ReadonlyArray<[string, string]> = Object.freeze([]);

function refuseRepeatedNames(pairs: ReadonlyArray<[string, string]>): void {
  // A request has a handful of parameters: comparing pairs beats building a Set below ~16.
  if (pairs.length <= 16) {
    for (let i = 1; i < pairs.length; i++) {
      const name = pairs[i]![0];
      for (let j = 0; j < i; j++) if (pairs[j]![0] === name) throw invalid(`parameter ${name} is sent twice`);
    }
    return;
  }
  const seen = new Set<string>();
  for (const [name] of pairs) {
    if (seen.has(name)) throw invalid(`parameter ${name} is sent twice`);
    seen.add(name);
  }
}

/**
 * The sign path's one strict reading of a REST request, before any dialect reads it: the query
 * string and a form body may not repeat a name, and a JSON body may not repeat a key in any
 * object. The parse is handed to the dialect (`Dialect.read`), so nothing is parsed twice.
 * Dialects parse JSON carried inside a parameter (Binance batchOrders, Kraken `json`) with
 * `parseJsonStrict` themselves.
 */
export function readStrict(req: { query: string; body: string }): StrictReading {
  const query = formPairsStrict(req.query);
  const first = firstNonSpace(req.body);
  if (first === 0x7b /* { */ || first === 0x5b /* [ */) return { query, json: { value: parseJsonStrict(req.body) } };
  if (req.body !== "") return { query, form: formPairsStrict(req.body) };
  return { query };
}

/** `readStrict` for callers that need only its refusals. */
export function checkStrictRequest(req: { query: string; body: string }): void {
  readStrict(req);
}

function firstNonSpace(text: string): number | undefined {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (!isSpace(c)) return c;
  }
  return undefined;
}
