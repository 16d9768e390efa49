/**
 * Starts test/helpers/replica-worker.js as a separate process and reads its JSON lines.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const WORKER = fileURLToPath(new URL("./replica-worker.js", import.meta.url));

/** A worker process: its messages so far, a way to wait for one, and its stdin. */
export interface ReplicaProcess {
  readonly proc: ChildProcess;
  readonly messages: Array<Record<string, unknown>>;
  /** Resolves with the first message (from index `from`) matching `match`, or rejects after `timeoutMs`. */
  waitFor(match: (m: Record<string, unknown>) => boolean, timeoutMs?: number, from?: number): Promise<Record<string, unknown>>;
  send(line: string): void;
  /** Resolves when the process has exited. */
  readonly exited: Promise<number | null>;
}

export function startReplicaProcess(role: string, url: string, args: string[] = []): ReplicaProcess {
  const proc = spawn(process.execPath, [WORKER, role, url, ...args], { stdio: ["pipe", "pipe", "pipe"] });
  const messages: Array<Record<string, unknown>> = [];
  const waiters = new Set<() => void>();
  let buffered = "";
  let stderr = "";
  proc.stdout!.on("data", (d: Buffer) => {
    buffered += d.toString();
    for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
      messages.push(JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>);
      buffered = buffered.slice(nl + 1);
    }
    for (const w of waiters) w();
  });
  proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  void exited.then(() => {
    for (const w of waiters) w();
  });
  return {
    proc,
    messages,
    exited,
    send: (line) => proc.stdin!.write(`${line}\n`),
    waitFor(match, timeoutMs = 10_000, from = 0) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const hit = messages.slice(from).find(match);
          if (hit) {
            done();
            resolve(hit);
          } else if (proc.exitCode !== null) {
            done();
            reject(new Error(`the ${role} worker exited ${proc.exitCode} first: ${stderr}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`the ${role} worker sent no matching message within ${timeoutMs} ms: ${stderr}`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
}
