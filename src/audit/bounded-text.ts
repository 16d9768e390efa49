import { sha256Hex } from "./sha256.js";

/** The longest caller-supplied string custos writes into an audit record or a log line. */
export const MAX_TEXT_CHARS = 256;

/**
 * Characters that could forge or hide lines in a terminal, a log viewer or a SIEM: C0 and C1
 * controls, DEL, the Unicode line and paragraph separators, bidirectional overrides and
 * isolates (which reorder what a reader sees), lone surrogates (not encodable: UTF-8 would
 * silently replace them) and the backslash (so an escape written by custos cannot be faked).
 */
const NEEDS_ESCAPE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this escapes
  /[\\\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this escapes
const ESCAPED_UNIT = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]/;

/**
 * A caller-supplied string made safe to store and log: escaped (`\uXXXX`, `\\`) and, when
 * the result is longer than `max` characters, cut to a prefix followed by a marker with the
 * original length and the SHA-256 of the whole value (UTF-8), so equal values still compare
 * equal: `abc…[60000 chars sha256:…]`. Returns `s` itself when nothing needs changing (the
 * sign path calls this for every audited field). Reads at most `max` + 1 characters of `s`
 * besides the digest.
 */
export function boundText(s: string, max = MAX_TEXT_CHARS): string {
  if (s.length <= max && !NEEDS_ESCAPE.test(s)) return s;
  const pieces: string[] = [];
  let length = 0;
  let i = 0;
  while (i < s.length && length <= max) {
    const piece = escapedAt(s, i);
    pieces.push(piece.text);
    length += piece.text.length;
    i += piece.units;
  }
  if (i >= s.length && length <= max) return pieces.join("");
  const marker = `…[${s.length} chars sha256:${sha256Hex(s)}]`;
  let out = "";
  for (const p of pieces) {
    if (out.length + p.length > max - marker.length) break; // never half an escape or a pair
    out += p;
  }
  return out + marker;
}

/** The character at `i` as written: itself, a whole surrogate pair, or its escape. */
function escapedAt(s: string, i: number): { text: string; units: number } {
  const c = s.charCodeAt(i);
  if (c >= 0xd800 && c <= 0xdbff) {
    const next = s.charCodeAt(i + 1);
    if (next >= 0xdc00 && next <= 0xdfff) return { text: s.slice(i, i + 2), units: 2 };
  }
  if (c === 0x5c) return { text: "\\\\", units: 1 };
  const ch = s[i]!;
  return { text: ESCAPED_UNIT.test(ch) ? `\\u${c.toString(16).padStart(4, "0")}` : ch, units: 1 };
}

/** Every string value of a flat record bounded (numbers and booleans kept); `record` itself if none changed. */
export function boundStrings<T extends object>(record: T, max = MAX_TEXT_CHARS): T {
  let out: Record<string, unknown> | undefined;
  for (const k in record) {
    const v: unknown = record[k];
    if (typeof v !== "string") continue;
    const b = boundText(v, max);
    if (b !== v) (out ??= { ...record } as Record<string, unknown>)[k] = b;
  }
  return (out as T | undefined) ?? record;
}
