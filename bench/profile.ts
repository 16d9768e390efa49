/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): top functions by self time, and self time
 * by origin (custos src/ file, npm package, Node internals, native/GC).
 * Usage: node dist/bench/profile.js FILE.cpuprofile [top]
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  top: Array<{ fn: string; where: string; selfMs: number; share: number }>;
  byOrigin: Array<{ origin: string; selfMs: number; share: number }>;
}

function origin(url: string, fn: string): string {
  if (!url) return fn.startsWith("(") ? fn : "(native)";
  const m = /\/dist\/(src\/.*?\.js)$/.exec(url) ?? /\/dist\/(bench\/.*?\.js)$/.exec(url);
  if (m) return m[1]!.replace(/\.js$/, ".ts");
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return `npm:${pkg[1]}`;
  if (url.startsWith("node:")) return `node:${url.slice(5).split("/")[0]}`;
  return url;
}

export function summarizeProfile(file: string, topN = 25): ProfileSummary {
  const p = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i + 1] ?? 0));
  }
  const fns = new Map<string, { fn: string; where: string; us: number }>();
  const origins = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    const { functionName, url, lineNumber } = n.callFrame;
    if (functionName === "(idle)") {
      idle += us;
      continue;
    }
    total += us;
    const fn = functionName || "(anonymous)";
    const where = url ? `${origin(url, fn)}:${lineNumber + 1}` : origin(url, fn);
    const key = `${fn}@${where}`;
    const f = fns.get(key) ?? { fn, where, us: 0 };
    f.us += us;
    fns.set(key, f);
    const o = origin(url, fn);
    origins.set(o, (origins.get(o) ?? 0) + us);
  }
  const share = (us: number) => Math.round((us / total) * 1000) / 10;
  return {
    totalMs: Math.round(total / 1000),
    idleMs: Math.round(idle / 1000),
    top: [...fns.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, topN)
      .map((f) => ({ fn: f.fn, where: f.where, selfMs: Math.round(f.us / 1000), share: share(f.us) })),
    byOrigin: [...origins.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, topN)
      .map(([o, us]) => ({ origin: o, selfMs: Math.round(us / 1000), share: share(us) })),
  };
}

export function printProfile(s: ProfileSummary, print: (line: string) => void = console.log): void {
  print(`busy ${s.totalMs} ms sampled (idle ${s.idleMs} ms)`);
  print("  self %  self ms  function                                   where");
  for (const t of s.top) print(`  ${t.share.toFixed(1).padStart(6)}  ${String(t.selfMs).padStart(7)}  ${t.fn.slice(0, 42).padEnd(42)} ${t.where}`);
  print("  by origin:");
  for (const o of s.byOrigin) print(`  ${o.share.toFixed(1).padStart(6)}  ${String(o.selfMs).padStart(7)}  ${o.origin}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (!file) {
    console.error("usage: node dist/bench/profile.js FILE.cpuprofile [top]");
    process.exit(2);
  }
  printProfile(summarizeProfile(file, Number(process.argv[3] ?? 30)));
}
