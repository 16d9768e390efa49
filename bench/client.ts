/**
 * Load-generator process (one per client; the orchestrator spawns them so that their CPU
 * is measured apart from the server's). Argument: one JSON object (ClientJob). Prints one
 * JSON line (ClientResult) and exits.
 *
 *   latency  grpc-js unary, closed loop, one call at a time: p50/p99/p99.9.
 *   unary    grpc-js unary with `inFlight` calls outstanding (the fallback capacity
 *            generator when h2load cannot present a client certificate).
 *   stream   one bidirectional SignStream with `inFlight` requests outstanding; either
 *            through grpc-js (impl "grpc") or a lean node:http2 client that frames the
 *            gRPC messages itself (impl "h2", about half the client CPU per message).
 */
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import http2 from "node:http2";
import { signerClient } from "../src/client/connection.js";
import { SignStreamResponse, type SignRequest as SignRequestMsg, type SignResponse, type SignedExchangeRequest } from "../src/gen/custos/v1/signer.js";
import {
  EXCHANGE_QUERY,
  PAYLOAD,
  SECRET,
  cpuSinceUs,
  encodedSignRequest,
  exchangeRequest,
  round,
  signRequest,
  summarize,
  type LatencySummary,
} from "./common.js";

export interface ClientJob {
  mode: "latency" | "unary" | "stream";
  grpc: string;
  caPath: string;
  certPath: string;
  keyPath: string;
  /** latency: calls measured (after `warmupCalls`), capped by `seconds`. */
  calls?: number;
  warmupCalls?: number;
  seconds: number;
  warmupSeconds?: number;
  inFlight?: number;
  impl?: "grpc" | "h2";
  /** latency mode: raw `Sign` (default) or `SignExchangeRequest` for a Binance order. */
  rpc?: "sign" | "exchange";
}

export interface ClientResult {
  mode: string;
  impl: string;
  calls: number;
  errors: number;
  seconds: number;
  per_s: number;
  latency?: LatencySummary;
  /** This client process's CPU during the measured window (all threads). */
  cpu_us: number;
  cpu_us_per_call: number;
  cores: number;
}

const EXPECTED = createHmac("sha256", SECRET).update(PAYLOAD).digest();

function check(res: SignResponse): void {
  if (!Buffer.from(res.signature).equals(EXPECTED)) throw new Error("signature differs from node:crypto HMAC-SHA256");
}

/** The signature covers the final query up to "&signature=" (Binance). */
function checkExchange(res: SignedExchangeRequest): void {
  const signed = res.query.slice(0, res.query.lastIndexOf("&signature="));
  if (!signed.startsWith(EXCHANGE_QUERY) || res.signature !== createHmac("sha256", SECRET).update(signed).digest("hex")) {
    throw new Error("exchange signature differs from node:crypto HMAC-SHA256 over the final query");
  }
}

function result(job: ClientJob, impl: string, calls: number, errors: number, wallMs: number, cpuUs: number, latency?: LatencySummary): ClientResult {
  return {
    mode: job.mode,
    impl,
    calls,
    errors,
    seconds: round(wallMs / 1000, 3),
    per_s: Math.round((calls / wallMs) * 1000),
    ...(latency ? { latency } : {}),
    cpu_us: cpuUs,
    cpu_us_per_call: calls ? round(cpuUs / calls, 2) : 0,
    cores: round(cpuUs / 1000 / wallMs, 2),
  };
}

// ---- grpc-js unary --------------------------------------------------------------------------

async function latency(job: ClientJob): Promise<ClientResult> {
  const client = signerClient(job.grpc, job);
  const req: SignRequestMsg = signRequest();
  const exchange = exchangeRequest();
  const call =
    job.rpc === "exchange"
      ? () =>
          new Promise<void>((resolve, reject) =>
            client.signExchangeRequest(exchange, (err, res) => {
              if (err) return reject(err);
              if (!checked) checkExchange(res);
              resolve();
            }),
          )
      : () =>
          new Promise<void>((resolve, reject) =>
            client.sign(req, (err, res) => {
              if (err) return reject(err);
              if (!checked) check(res);
              resolve();
            }),
          );
  let checked = false;
  await call();
  checked = true;
  for (let i = 0; i < (job.warmupCalls ?? 2000); i++) await call();
  const n = job.calls ?? 20_000;
  const samples = new Float64Array(n);
  windowMarker("start");
  const until = performance.now() + job.seconds * 1000;
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  let done = 0;
  while (done < n && performance.now() < until) {
    const s = performance.now();
    await call();
    samples[done++] = (performance.now() - s) * 1e6;
  }
  const wall = performance.now() - t0;
  const cpuUs = cpuSinceUs(cpu);
  windowMarker("end");
  client.close();
  return result(job, "grpc-js", done, 0, wall, cpuUs, summarize(samples, done));
}

async function unaryLoad(job: ClientJob): Promise<ClientResult> {
  const client = signerClient(job.grpc, job);
  const req = signRequest();
  const k = job.inFlight ?? 16;
  let measuring = false;
  let stop = false;
  let calls = 0;
  let errors = 0;
  let firstError: unknown;
  const loop = () =>
    new Promise<void>((resolve) => {
      const next = () => {
        if (stop) return resolve();
        client.sign(req, (err) => {
          if (measuring) {
            if (err) {
              errors++;
              firstError ??= err;
            } else calls++;
          }
          next();
        });
      };
      next();
    });
  await new Promise<void>((resolve, reject) =>
    client.sign(req, (err, res) => {
      if (err) return reject(err);
      check(res);
      resolve();
    }),
  );
  const loops = Array.from({ length: k }, loop);
  await sleep((job.warmupSeconds ?? 1) * 1000);
  windowMarker("start");
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  measuring = true;
  await sleep(job.seconds * 1000);
  measuring = false;
  const wall = performance.now() - t0;
  const cpuUs = cpuSinceUs(cpu);
  windowMarker("end");
  stop = true;
  await Promise.all(loops);
  client.close();
  if (errors) process.stderr.write(`unary errors: ${errors}, first: ${String(firstError)}\n`);
  return result(job, "grpc-js", calls, errors, wall, cpuUs);
}

// ---- bidirectional stream ------------------------------------------------------------------

/** Shared bookkeeping of a stream run: send times by request id, windowed counting. */
class StreamBook {
  readonly sent = new Float64Array(1 << 16);
  samples: Float64Array;
  n = 0;
  calls = 0;
  errors = 0;
  windowStart = Infinity;
  windowEnd = Infinity;

  constructor(maxSamples: number) {
    this.samples = new Float64Array(maxSamples);
  }

  onSend(id: number): void {
    this.sent[id & 0xffff] = performance.now();
  }

  onReply(id: number, ok: boolean): void {
    const now = performance.now();
    const sentAt = this.sent[id & 0xffff]!;
    if (now < this.windowStart || now > this.windowEnd) return;
    if (!ok) {
      this.errors++;
      return;
    }
    this.calls++;
    if (sentAt >= this.windowStart && this.n < this.samples.length) this.samples[this.n++] = (now - sentAt) * 1e6;
  }
}

async function stream(job: ClientJob): Promise<ClientResult> {
  const impl = job.impl ?? "h2";
  const k = job.inFlight ?? 64;
  const book = new StreamBook(Math.min(8_000_000, Math.ceil(job.seconds * 200_000)));
  let sending = true;
  let nextId = 1;
  let outstanding = 0;
  let drained: () => void = () => undefined;
  const done = new Promise<void>((r) => (drained = r));

  let send: (id: number) => void;
  let finish: () => void;
  let onError: (e: unknown) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => (onError = reject));
  const replied = (id: number, ok: boolean) => {
    book.onReply(id, ok);
    outstanding--;
    if (sending) {
      outstanding++;
      const nid = nextId++;
      book.onSend(nid);
      send(nid);
    } else if (outstanding === 0) drained();
  };

  if (impl === "grpc") {
    const client = signerClient(job.grpc, job);
    const call = client.signStream();
    const request = signRequest();
    let checked = false;
    call.on("data", (msg: SignStreamResponse) => {
      const ok = msg.result?.$case === "response";
      if (!checked && msg.result?.$case === "response") {
        check(msg.result.response);
        checked = true;
      }
      replied(Number(msg.requestId), ok);
    });
    call.on("error", (e) => onError(e));
    send = (id) => void call.write({ requestId: String(id), kind: { $case: "request", request } });
    finish = () => {
      call.end();
      client.close();
    };
  } else {
    const session = http2.connect(`https://${job.grpc}`, {
      ca: readFileSync(job.caPath),
      cert: readFileSync(job.certPath),
      key: readFileSync(job.keyPath),
      servername: "localhost",
      minVersion: "TLSv1.3",
    });
    session.on("error", (e) => onError(e));
    const req = session.request({
      ":method": "POST",
      ":path": "/custos.v1.Signer/SignStream",
      "content-type": "application/grpc",
      te: "trailers",
    });
    req.on("error", (e) => onError(e));
    req.on("trailers", (t) => {
      if (t["grpc-status"] !== "0") onError(new Error(`stream ended with grpc-status ${String(t["grpc-status"])}: ${String(t["grpc-message"])}`));
    });
    // SignStreamRequest{request_id=1 varint, request=2 SignRequest}, hand-framed.
    const inner = encodedSignRequest();
    const innerHead = Buffer.from([0x12, ...varint(inner.length)]);
    send = (id) => {
      const idBytes = varint(id);
      const len = 1 + idBytes.length + innerHead.length + inner.length;
      const buf = Buffer.allocUnsafe(5 + len);
      buf[0] = 0;
      buf.writeUInt32BE(len, 1);
      buf[5] = 0x08;
      let o = 6;
      for (const b of idBytes) buf[o++] = b;
      innerHead.copy(buf, o);
      inner.copy(buf, o + innerHead.length);
      req.write(buf);
    };
    // Responses: gRPC frames → SignStreamResponse{request_id=1, response=2 | denial=3}.
    let pending: Buffer = Buffer.alloc(0);
    let checked = false;
    req.on("data", (chunk: Buffer) => {
      const buf = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      let o = 0;
      while (buf.length - o >= 5) {
        const len = buf.readUInt32BE(o + 1);
        if (buf.length - o < 5 + len) break;
        const msg = buf.subarray(o + 5, o + 5 + len);
        o += 5 + len;
        if (!checked) {
          const full = SignStreamResponse.decode(msg);
          if (full.result?.$case === "response") {
            check(full.result.response);
            checked = true;
          }
        }
        // Field 1 (tag 0x08) first, as every protobuf encoder writes fields in order.
        let id = 0;
        let p = 1;
        let shift = 1;
        if (msg[0] === 0x08) {
          for (;;) {
            const b = msg[p++]!;
            id += (b & 0x7f) * shift;
            shift *= 128;
            if (b < 0x80) break;
          }
        } else p = 0;
        replied(id, msg[p] === 0x12);
      }
      pending = o === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(o));
    });
    finish = () => {
      req.end();
      session.close();
    };
  }

  for (let i = 0; i < k; i++) {
    outstanding++;
    const id = nextId++;
    book.onSend(id);
    send(id);
  }
  const run = (async () => {
    await sleep((job.warmupSeconds ?? 1) * 1000);
    windowMarker("start");
    const cpu = process.cpuUsage();
    book.windowStart = performance.now();
    book.windowEnd = book.windowStart + job.seconds * 1000;
    await sleep(job.seconds * 1000);
    const wall = performance.now() - book.windowStart;
    const cpuUs = cpuSinceUs(cpu);
    windowMarker("end");
    sending = false;
    await done;
    finish();
    return result(job, impl === "grpc" ? "grpc-js" : "node:http2", book.calls, book.errors, wall, cpuUs, summarize(book.samples, book.n));
  })();
  return Promise.race([run, failed]);
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/** Tells the orchestrator when the measured window opens and closes (it brackets the server's counters). */
function windowMarker(edge: "start" | "end"): void {
  process.stdout.write(JSON.stringify({ window: edge }) + "\n");
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

const job = JSON.parse(process.argv[2] ?? "{}") as ClientJob;
const modes = { latency, unary: unaryLoad, stream } as const;
modes[job.mode](job).then(
  (r) => {
    process.stdout.write(JSON.stringify(r) + "\n");
    process.exit(0);
  },
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
