/**
 * Shared pieces of the benchmark: the request everybody sends, percentile maths, CPU
 * bookkeeping and a line-oriented JSON protocol between the orchestrator and its children.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { ExchangeRequest, SignRequest, SignatureEncoding } from "../src/gen/custos/v1/signer.js";

export const KEY_ID = "bench";
export const API_KEY_ID = "api-bench";
/** A 64-character exchange-style secret (HMAC-SHA256 wants ≥ 32 bytes on SoftHSM2). */
export const SECRET = Buffer.from("Jx7pQ2vR9sT4wY6zA1bC3dE5fG8hK0mN2pQ4rS6tU8vW0xY2zA4bC6dE8fG0hJ2k");
/** A Binance-style signed query string of 213 bytes (the size HSM-NOTES measured with). */
export const PAYLOAD = Buffer.from(
  "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.00150000&price=64250.10&newClientOrderId=bench-7f3a9c21e4d84b0f&newOrderRespType=RESULT&recvWindow=5000&timestamp=1700000000000&selfTradePreventionMode=NONE",
);

/** A Binance-dialect key (same secret) for the exchange-request loads. */
export const EXCHANGE_KEY_ID = "bench-binance";
/** A USDⓈ-M futures limit order; custos adds recvWindow, its own timestamp and the signature. */
export const EXCHANGE_QUERY =
  "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.0015&price=64250.10&newClientOrderId=bench-7f3a9c21e4d84b0f&newOrderRespType=RESULT";

export function exchangeRequest(): ExchangeRequest {
  return {
    keyId: EXCHANGE_KEY_ID,
    version: 0,
    method: "POST",
    path: "/fapi/v1/order",
    query: EXCHANGE_QUERY,
    queryParams: [],
    body: Buffer.alloc(0),
    timestampMs: "0",
    nonce: "",
    expires: "0",
    recvWindowMs: 5000,
    passphrase: "",
    apiKeyVersion: "",
    omitNonce: false,
  };
}

export function encodedExchangeRequest(): Buffer {
  return Buffer.from(ExchangeRequest.encode(exchangeRequest()).finish());
}

export function signRequest(): SignRequest {
  return { keyId: KEY_ID, version: 0, payload: PAYLOAD, encoding: SignatureEncoding.SIGNATURE_ENCODING_RAW };
}

/** gRPC length-prefixed message: 1 byte flags (0 = uncompressed), 4 bytes big-endian length. */
export function grpcFrame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

export function encodedSignRequest(): Buffer {
  return Buffer.from(SignRequest.encode(signRequest()).finish());
}

// ---- statistics -------------------------------------------------------------------------

export interface LatencySummary {
  n: number;
  p50_us: number;
  p99_us: number;
  p999_us: number;
  mean_us: number;
  max_us: number;
}

/** Latencies in nanoseconds (Float64Array prefix of length n) → µs percentiles. */
export function summarize(samplesNs: Float64Array, n: number): LatencySummary {
  const s = samplesNs.subarray(0, n).sort();
  const at = (q: number) => (n === 0 ? 0 : s[Math.min(n - 1, Math.floor(q * n))]! / 1000);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += s[i]!;
  return {
    n,
    p50_us: round(at(0.5)),
    p99_us: round(at(0.99)),
    p999_us: round(at(0.999)),
    mean_us: round(n ? sum / n / 1000 : 0),
    max_us: round(n ? s[n - 1]! / 1000 : 0),
  };
}

export function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** CPU time (user + system, all threads of this process) in µs since `since`. */
export function cpuSinceUs(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return d.user + d.system;
}

// ---- child processes speaking JSON lines --------------------------------------------------

/**
 * A child process that writes one JSON object per stdout line; anything else it writes
 * (and all of stderr) is kept for error messages. `next()` resolves with the next object.
 */
export class JsonChild {
  readonly proc: ChildProcess;
  private readonly queue: unknown[] = [];
  private readonly waiters: Array<{ resolve: (v: unknown) => void; reject: (e: Error) => void }> = [];
  private stderrText = "";
  private exited = false;
  readonly exit: Promise<number | null>;

  /** `command` defaults to this node; the Python stream load passes Debian's python3. */
  constructor(args: string[], env: NodeJS.ProcessEnv = {}, execArgv: string[] = [], command = process.execPath) {
    this.proc = spawn(command, [...execArgv, ...args], { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
    this.proc.stderr!.on("data", (d: Buffer) => {
      this.stderrText += d.toString();
      if (this.stderrText.length > 64_000) this.stderrText = this.stderrText.slice(-32_000);
    });
    createInterface({ input: this.proc.stdout! }).on("line", (line) => {
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch {
        this.stderrText += line + "\n";
        return;
      }
      const w = this.waiters.shift();
      if (w) w.resolve(v);
      else this.queue.push(v);
    });
    this.exit = new Promise((resolve) =>
      this.proc.once("exit", (code) => {
        this.exited = true;
        for (const w of this.waiters.splice(0)) w.reject(new Error(`child ${args.join(" ")} exited ${code}: ${this.stderrText.slice(-4000)}`));
        resolve(code);
      }),
    );
  }

  get pid(): number {
    return this.proc.pid!;
  }

  stderr(): string {
    return this.stderrText;
  }

  next<T>(timeoutMs = 120_000): Promise<T> {
    if (this.queue.length) return Promise.resolve(this.queue.shift() as T);
    if (this.exited) return Promise.reject(new Error(`child exited: ${this.stderrText.slice(-4000)}`));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child timed out: ${this.stderrText.slice(-4000)}`)), timeoutMs);
      this.waiters.push({
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  send(command: object): void {
    this.proc.stdin!.write(JSON.stringify(command) + "\n");
  }

  async request<T>(command: object, timeoutMs?: number): Promise<T> {
    this.send(command);
    return this.next<T>(timeoutMs);
  }
}

/** The other side of JsonChild: commands from stdin, one JSON object per line. */
export function onCommands(handler: (cmd: { cmd: string } & Record<string, unknown>) => Promise<unknown> | unknown): void {
  createInterface({ input: process.stdin }).on("line", (line) => {
    if (!line.trim()) return;
    Promise.resolve()
      .then(() => handler(JSON.parse(line) as { cmd: string }))
      .then(
        (out) => out !== undefined && reply(out),
        (e: unknown) => reply({ error: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
      );
  });
}

export function reply(v: unknown): void {
  process.stdout.write(JSON.stringify(v) + "\n");
}

/** Entry-file path of a sibling module of this one in dist/bench. */
export function benchScript(name: string): string {
  return new URL(`./${name}`, import.meta.url).pathname;
}
