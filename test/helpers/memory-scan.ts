/**
 * Searches bytes (a core dump, data files, logs) for fragments of a known secret in the
 * forms a leak would take: raw, hex, base64 (every alignment) and UTF-16LE.
 */
import { closeSync, openSync, readSync, statSync } from "node:fs";

export interface Needle {
  /** Which form and which window, e.g. "hex-upper[12..20)". */
  label: string;
  bytes: Buffer;
}

export interface Hit {
  label: string;
  /** Byte offset in the scanned file or buffer. */
  offset: number;
  /** Bytes around the hit, printable ASCII kept, the rest as '.', to say what holds it. */
  context: string;
}

const WINDOW = 8;

/** Every fragment worth looking for: 8-byte windows of the secret, and 8-char windows of its encodings. */
export function secretNeedles(secret: Buffer): Needle[] {
  const out: Needle[] = [];
  for (let i = 0; i + WINDOW <= secret.length; i++) {
    const w = secret.subarray(i, i + WINDOW);
    const at = `[${i}..${i + WINDOW})`;
    out.push({ label: `raw${at}`, bytes: Buffer.from(w) });
    out.push({ label: `hex-lower${at}`, bytes: Buffer.from(w.toString("hex")) });
    out.push({ label: `hex-upper${at}`, bytes: Buffer.from(w.toString("hex").toUpperCase()) });
    // JS engines keep strings with a char above 0xff two bytes per char.
    out.push({ label: `utf16le${at}`, bytes: Buffer.from(w.toString("latin1"), "utf16le") });
  }
  // Base64 encodes 3-byte groups: a secret embedded at offset 1 or 2 (mod 3) of a larger
  // encoded buffer encodes differently, so look for all three alignments (base64url too).
  for (const shift of [0, 1, 2]) {
    const b64 = secret.subarray(shift).toString("base64").replace(/=+$/, "");
    // Only whole 4-char groups: a trailing partial group depends on what follows the secret.
    const usable = b64.slice(0, b64.length - (b64.length % 4));
    for (let i = 0; i + WINDOW <= usable.length; i++) {
      const w = usable.slice(i, i + WINDOW);
      out.push({ label: `base64+${shift}[${i}..${i + WINDOW})`, bytes: Buffer.from(w) });
      out.push({ label: `base64url+${shift}[${i}..${i + WINDOW})`, bytes: Buffer.from(w.replace(/\+/g, "-").replace(/\//g, "_")) });
    }
  }
  const unique = new Map<string, Needle>();
  for (const n of out) if (!unique.has(n.bytes.toString("hex"))) unique.set(n.bytes.toString("hex"), n);
  return [...unique.values()];
}

/**
 * One pass over the data for all needles at once: a 2-byte prefix table rejects almost
 * every position, a 4-byte prefix map picks candidates, and only those are compared.
 */
export class Scanner {
  private readonly first = new Uint8Array(65536);
  private readonly byPrefix = new Map<number, Needle[]>();
  readonly minLength: number;
  readonly maxLength: number;

  constructor(readonly needles: Needle[]) {
    if (needles.some((n) => n.bytes.length < 4)) throw new Error("needles must be at least 4 bytes");
    for (const n of needles) {
      this.first[n.bytes[0]! | (n.bytes[1]! << 8)] = 1;
      const key = n.bytes.readUInt32LE(0);
      this.byPrefix.set(key, [...(this.byPrefix.get(key) ?? []), n]);
    }
    this.minLength = Math.min(...needles.map((n) => n.bytes.length));
    this.maxLength = Math.max(...needles.map((n) => n.bytes.length));
  }

  /** Hits in `buf`; only those ending after `skipBefore` (bytes already scanned), offsets + `base`. */
  scan(buf: Buffer, base = 0, skipBefore = 0): Hit[] {
    const hits: Hit[] = [];
    const last = buf.length - this.minLength;
    const first = this.first;
    for (let i = 0; i <= last; i++) {
      if (first[buf[i]! | (buf[i + 1]! << 8)] === 0) continue;
      const candidates = this.byPrefix.get(buf.readUInt32LE(i));
      if (!candidates) continue;
      for (const n of candidates) {
        const end = i + n.bytes.length;
        if (end <= buf.length && end > skipBefore && buf.compare(n.bytes, 0, n.bytes.length, i, end) === 0) {
          hits.push({ label: n.label, offset: base + i, context: printable(buf.subarray(Math.max(0, i - 48), Math.min(buf.length, end + 48))) });
        }
      }
    }
    return hits;
  }

  /** Streams a file in chunks, carrying the last maxLength-1 bytes over so nothing straddling a boundary is missed. */
  scanFile(path: string, chunkBytes = 64 << 20): Hit[] {
    const size = statSync(path).size;
    const carryMax = this.maxLength - 1;
    const buf = Buffer.allocUnsafe(chunkBytes + carryMax);
    const hits: Hit[] = [];
    const fd = openSync(path, "r");
    try {
      let carry = 0;
      for (let pos = 0; pos < size; ) {
        const n = readSync(fd, buf, carry, chunkBytes, pos);
        if (n === 0) break;
        const view = buf.subarray(0, carry + n);
        hits.push(...this.scan(view, pos - carry, carry));
        pos += n;
        const keep = Math.min(carryMax, view.length);
        view.copy(buf, 0, view.length - keep);
        carry = keep;
      }
    } finally {
      closeSync(fd);
    }
    return hits;
  }
}

function printable(b: Buffer): string {
  return Array.from(b, (c) => (c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : ".")).join("");
}
