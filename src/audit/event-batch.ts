import type { AuditEvent } from "./audit-log.js";
import { sha256Hex } from "./sha256.js";

/** An event as the chain writer sees it: its time (ISO 8601) and what happened. */
export interface QueuedEvent {
  at: string;
  event: AuditEvent;
}

/** Queued events, encoded: what crosses to the audit writer thread (one copy, no objects). */
export interface EncodedEvents {
  bytes: Uint8Array;
  count: number;
}

/**
 * Payloads up to this size are copied into the batch and digested by the writer; larger ones
 * are digested at once (a copy would cost more than the digest it saves).
 */
export const DEFERRED_DIGEST_MAX_BYTES = 1024;

const JSON_EVENT = 1;
const SIGN_EVENT = 2;
const OUTCOMES = ["allowed", "denied", "ok", "failed"] as const;
const NO_PAYLOAD = 0;
const RAW_PAYLOAD = 1;
const HEX_DIGEST = 2;
const ABSENT = 0xffffffff;

/**
 * Encodes audit events as they are recorded into one growing buffer. Sign decisions — one
 * per signature, tens of thousands a second — cost the event loop a few field copies: no
 * event objects that would live until the flush (and age into V8's old generation), no
 * timestamp string, no structured clone, and for small payloads not even the SHA-256, which
 * the writer computes. Other events (rare) travel as JSON.
 *
 * Entry: u8 tag, f64 epoch ms, then
 *   JSON_EVENT: str json
 *   SIGN_EVENT: str kind, u8 outcome, str actor, str key, str reason, str peer, u32 version,
 *               u8 detail count, (str name, str value) per detail,
 *               u8 payload mode, then the raw payload (u32 length + bytes) or the hex digest (str)
 * where str = u32 UTF-8 length + bytes (length 0xFFFFFFFF: absent).
 */
export class EventBatchWriter {
  private buf: Buffer;
  private view: DataView;
  private at = 0;
  count = 0;

  constructor(private readonly initialBytes = 64 * 1024) {
    this.buf = Buffer.allocUnsafeSlow(initialBytes);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  /** Appends one event; `payload`, if given, is digested (SHA-256) into `payloadSha256`. */
  add(event: AuditEvent, payload?: Uint8Array): void {
    const now = Date.now();
    if (event.kind.startsWith("sign") && event.payloadSha256 === undefined && flatStrings(event.details)) this.addSign(now, event, payload);
    else this.addJson(now, payload ? { ...event, payloadSha256: sha256Hex(payload) } : event);
    this.count++;
  }

  /** The encoded events so far (a copy), and a fresh start. */
  take(): EncodedEvents {
    const out = { bytes: Uint8Array.prototype.slice.call(this.buf, 0, this.at), count: this.count };
    this.at = 0;
    this.count = 0;
    if (this.buf.byteLength > 4 * this.initialBytes) this.resize(this.initialBytes);
    return out;
  }

  private addSign(now: number, e: AuditEvent, payload: Uint8Array | undefined): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    const small = payload !== undefined && payload.byteLength <= DEFERRED_DIGEST_MAX_BYTES;
    this.reserve(64 + 3 * (e.actor.length + (e.key?.length ?? 0) + (e.reason?.length ?? 0) + (e.peer?.length ?? 0)) + (small ? payload.byteLength : 0));
    const details = e.details ? Object.entries(e.details as Record<string, string>) : [];
    let detailChars = 0;
    for (const [k, v] of details) detailChars += k.length + v.length + 8;
    this.reserve(3 * (e.kind.length + detailChars) + 8);
    this.u8(SIGN_EVENT);
    this.f64(now);
    this.str(e.kind);
    this.u8(OUTCOMES.indexOf(e.outcome));
    this.str(e.actor);
    this.str(e.key);
    this.str(e.reason);
    this.str(e.peer);
    this.u32(e.version ?? 0);
    this.u8(details.length);
    for (const [k, v] of details) {
      this.str(k);
      this.str(v);
    }
    if (payload === undefined) {
      this.u8(NO_PAYLOAD);
    } else if (small) {
      this.u8(RAW_PAYLOAD);
      this.u32(payload.byteLength);
      this.buf.set(payload, this.at);
      this.at += payload.byteLength;
    } else {
      this.u8(HEX_DIGEST);
      this.reserve(72);
      this.str(sha256Hex(payload));
    }
  }

  private addJson(now: number, e: AuditEvent): void {
    const json = JSON.stringify(e);
    this.reserve(16 + 3 * json.length);
    this.u8(JSON_EVENT);
    this.f64(now);
    this.str(json);
  }

  private reserve(bytes: number): void {
    if (this.at + bytes > this.buf.byteLength) this.resize(Math.max(2 * this.buf.byteLength, this.at + bytes));
  }

  private resize(bytes: number): void {
    const next = Buffer.allocUnsafeSlow(bytes);
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength);
  }

  private u8(v: number): void {
    this.buf[this.at++] = v;
  }

  private u32(v: number): void {
    this.view.setUint32(this.at, v, true);
    this.at += 4;
  }

  private f64(v: number): void {
    this.view.setFloat64(this.at, v, true);
    this.at += 8;
  }

  private str(s: string | undefined): void {
    if (s === undefined) {
      this.u32(ABSENT);
      return;
    }
    const length = s.length === 0 ? 0 : this.buf.write(s, this.at + 4, "utf8");
    this.u32(length);
    this.at += length;
  }
}

/** Details the compact sign encoding carries: at most 255 string values (else the event goes as JSON). */
function flatStrings(details: AuditEvent["details"]): boolean {
  if (details === undefined) return true;
  const values = Object.values(details);
  return values.length < 256 && values.every((v) => typeof v === "string");
}

/** The events of an encoded batch, in order, with deferred payload digests computed. */
export function decodeEvents(encoded: EncodedEvents): QueuedEvent[] {
  const { bytes } = encoded;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: QueuedEvent[] = [];
  let at = 0;
  const u32 = () => {
    const v = view.getUint32(at, true);
    at += 4;
    return v;
  };
  const str = (): string | undefined => {
    const length = u32();
    if (length === ABSENT) return undefined;
    const s = length === 0 ? "" : buf.toString("utf8", at, at + length);
    at += length;
    return s;
  };
  while (at < bytes.byteLength) {
    const tag = buf[at++];
    const time = new Date(view.getFloat64(at, true)).toISOString();
    at += 8;
    if (tag === JSON_EVENT) {
      out.push({ at: time, event: JSON.parse(str() ?? "null") as AuditEvent });
      continue;
    }
    if (tag !== SIGN_EVENT) throw new Error(`audit batch: unknown entry tag ${tag}`);
    const kind = str() ?? "sign";
    const outcome = OUTCOMES[buf[at++]!];
    if (outcome === undefined) throw new Error("audit batch: unknown outcome");
    const actor = str() ?? "unknown";
    const key = str();
    const reason = str();
    const peer = str();
    const version = u32();
    const detailCount = buf[at++]!;
    let details: Record<string, string> | undefined;
    for (let i = 0; i < detailCount; i++) {
      const k = str() ?? "";
      (details ??= {})[k] = str() ?? "";
    }
    const mode = buf[at++];
    let payloadSha256: string | undefined;
    if (mode === RAW_PAYLOAD) {
      const length = u32();
      payloadSha256 = sha256Hex(bytes.subarray(at, at + length));
      at += length;
    } else if (mode === HEX_DIGEST) {
      payloadSha256 = str();
    } else if (mode !== NO_PAYLOAD) {
      throw new Error(`audit batch: unknown payload mode ${mode}`);
    }
    const event: AuditEvent = { kind, actor, outcome };
    if (reason !== undefined) event.reason = reason;
    if (key !== undefined) event.key = key;
    if (version) event.version = version;
    if (payloadSha256 !== undefined) event.payloadSha256 = payloadSha256;
    if (peer !== undefined) event.peer = peer;
    if (details) event.details = details;
    out.push({ at: time, event });
  }
  if (out.length !== encoded.count) throw new Error(`audit batch: ${out.length} events decoded, ${encoded.count} expected`);
  return out;
}
