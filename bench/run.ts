/**
 * `npm run bench`: serving speed of our ONNX Runtime engine and our TF.js (wasm) engine against the PyTorch
 * reference (bench/torch_ref.py) on identical random weights, at realistic sizes (see families.ts), all at the
 * same thread count. Prints a table and, last, one JSON line with the ONNX/PyTorch latency ratios.
 *
 * Options: --threads N (default 2), --families a,b, --skip-tfjs, --skip-torch, --no-install (never apt-get
 * python3-torch when torch is missing), --b1-runs N (default 3).
 * PyTorch comes from Debian's python3-torch; when it is missing the bench installs it if it runs as root with
 * apt-get available, else it runs without the reference and says so.
 */
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { BATCH, convFlops, FAMILIES, files, prepare, type Family } from "./families.ts";

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const flag = (name: string) => argv.includes(`--${name}`);
const threads = Number(opt("threads", "2"));
const b1Runs = Number(opt("b1-runs", "3"));
const families = opt("families", FAMILIES.join(",")).split(",") as Family[];
const here = import.meta.dirname;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ganserve-bench-"));
const benchStart = performance.now();
const log = (s: string) => process.stderr.write(`${s}\n`);

// Debian's python3-torch lands in the system interpreter's dist-packages, which a pyenv/venv python3 first on
// PATH does not see: every python3 on PATH is tried in order. GANSERVE_BENCH_PYTHON overrides.
const PYTHONS = [
  process.env.GANSERVE_BENCH_PYTHON,
  ...(process.env.PATH ?? "").split(path.delimiter).map((d) => path.join(d, "python3")).filter((p) => fs.existsSync(p)),
].filter((p): p is string => !!p);
let python = "python3";
function torchAvailable(): boolean {
  for (const p of PYTHONS)
    if (spawnSync(p, ["-c", "import torch, numpy"], { stdio: "ignore" }).status === 0) {
      python = p;
      return true;
    }
  return false;
}

function ensureTorch(): string | null {
  if (flag("skip-torch")) return "skipped (--skip-torch)";
  if (torchAvailable()) return null;
  if (flag("no-install")) return "python3-torch is not installed (--no-install)";
  if (process.getuid?.() !== 0 || spawnSync("apt-get", ["--version"], { stdio: "ignore" }).status !== 0)
    return "python3-torch is not installed and apt-get cannot run here";
  log("PyTorch missing: apt-get install -y python3-torch ...");
  try {
    execFileSync("apt-get", ["update"], { stdio: "ignore", timeout: 300_000 });
    execFileSync("apt-get", ["install", "-y", "--no-install-recommends", "python3-torch", "python3-numpy"], { stdio: "ignore", timeout: 900_000, env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  } catch (e) {
    return `installing python3-torch failed: ${(e as Error).message.split("\n")[0]}`;
  }
  return torchAvailable() ? null : "python3-torch installed but `import torch` still fails";
}

interface Result {
  engine: string;
  cold_ms: number;
  latency_ms: number;
  latency_median_ms?: number;
  batch8_ms: number | null;
  peak_rss_mb: number;
  version?: string;
  error?: string;
  max_diff_vs_torch?: { abs: number; rel: number };
}

function runJson(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Result | { error: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 64 << 20, env: { ...process.env, ...env } });
  const line = r.stdout.trim().split("\n").filter((l) => l.startsWith("{")).pop();
  if (r.status !== 0 || !line) return { error: `exit ${r.status}: ${(r.stderr || "").trim().split("\n").slice(-3).join(" | ")}` };
  return JSON.parse(line) as Result;
}

const worker = (engine: string, family: Family, b8: boolean, runs: number) =>
  runJson(process.execPath, ["--import", "tsx", path.join(here, "worker.ts"), engine, family, dir, String(threads), String(runs), b8 ? "1" : "0"], {
    // Pin every math library to the same thread count, whichever one an engine uses.
    OMP_NUM_THREADS: String(threads),
  });

/** max|a - b| and that relative to max|b| (random-init outputs can be tiny, which makes the absolute diff flatter). */
function maxDiff(a: string, b: string): { abs: number; rel: number } | undefined {
  if (!fs.existsSync(a) || !fs.existsSync(b)) return undefined;
  const x = new Float32Array(new Uint8Array(fs.readFileSync(a)).buffer);
  const y = new Float32Array(new Uint8Array(fs.readFileSync(b)).buffer);
  if (x.length !== y.length) return { abs: Infinity, rel: Infinity };
  let m = 0;
  let scale = 0;
  for (let i = 0; i < x.length; i++) {
    m = Math.max(m, Math.abs(x[i] - y[i]));
    scale = Math.max(scale, Math.abs(y[i]));
  }
  return { abs: m, rel: scale > 0 ? m / scale : m };
}

const torchNote = ensureTorch();
if (torchNote) log(`PyTorch reference unavailable: ${torchNote}`);
const table: { family: Family; gflop: number; results: (Result | { engine: string; error: string })[] }[] = [];
for (const family of families) {
  log(`[${family}] writing random weights and inputs ...`);
  await prepare(dir, family);
  const f = files(dir, family);
  const results: (Result | { engine: string; error: string })[] = [];
  log(`[${family}] onnx ...`);
  results.push({ engine: "onnx", ...worker("onnx", family, true, b1Runs) } as Result);
  let torch: Result | undefined;
  if (!torchNote) {
    log(`[${family}] torch ...`);
    const cfgPath = path.join(dir, `${family}.torch.json`);
    fs.writeFileSync(cfgPath, JSON.stringify({ ...JSON.parse(fs.readFileSync(f.config, "utf8")), _b1_runs: b1Runs }));
    const r = runJson(python, [path.join(here, "torch_ref.py"), family, cfgPath, f.weights, f.inputs, f.out("torch"), String(threads)], { OMP_NUM_THREADS: String(threads) });
    results.push({ engine: "torch", ...r } as Result);
    if (!("error" in r)) torch = r;
  }
  if (!flag("skip-tfjs")) {
    // The stock wasm backend is single-threaded in Node and 5-10x slower: one timed batch-1 run, and batch 8 only
    // where it fits the time budget (estimated from the batch-1 time).
    log(`[${family}] tfjs-wasm ...`);
    const probe = worker("tfjs-wasm", family, false, 1);
    let r = probe;
    if (!("error" in probe) && probe.latency_ms * BATCH * 2 < 90_000) {
      // Batch 8 at 256² can exceed the wasm heap; keep the batch-1 numbers when it does.
      const full = worker("tfjs-wasm", family, true, 1);
      r = "error" in full ? probe : full;
      if ("error" in full) log(`[${family}] tfjs-wasm batch ${BATCH} failed: ${full.error}`);
    }
    results.push({ engine: "tfjs-wasm", ...r } as Result);
  }
  if (torch) for (const r of results) if (!("error" in r) && r.engine !== "torch") r.max_diff_vs_torch = maxDiff(f.out(r.engine), f.out("torch"));
  table.push({ family, gflop: convFlops(family) / 1e9, results });
  for (const e of ["onnx", "tfjs-wasm", "torch"]) fs.rmSync(f.out(e), { force: true });
  fs.rmSync(f.weights, { force: true });
}
fs.rmSync(dir, { recursive: true, force: true });

const fmt = (v: number | null | undefined, d = 0) => (v == null || !Number.isFinite(v) ? "n/a" : v.toFixed(d));
const lines = [
  `threads ${threads} · ${os.cpus()[0]?.model ?? "cpu"} · batch-1 latency is the best of ${b1Runs} warm runs (median in brackets; the machine is shared, and the minimum is the estimate least disturbed by other load); batch ${BATCH} is one warm run`,
  "| model | engine | conv GFLOP/img | cold start ms | latency b1 ms | img/s b1 | GFLOP/s b1 | b8 ms | img/s b8 | GFLOP/s b8 | peak RSS MB | max abs diff vs torch |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|",
];
const ratios: Record<string, number | null> = {};
const detail: Record<string, Record<string, unknown>> = {};
for (const row of table) {
  const torch = row.results.find((r) => r.engine === "torch" && !("error" in r)) as Result | undefined;
  const onnx = row.results.find((r) => r.engine === "onnx" && !("error" in r)) as Result | undefined;
  ratios[row.family] = torch && onnx ? onnx.latency_ms / torch.latency_ms : null;
  detail[row.family] = {};
  for (const r of row.results) {
    detail[row.family][r.engine] = r;
    if ("error" in r && r.error) {
      lines.push(`| ${row.family} | ${r.engine} | ${fmt(row.gflop, 1)} | error: ${r.error} |||||||||`);
      continue;
    }
    const x = r as Result;
    const b8 = x.batch8_ms;
    lines.push(
      `| ${row.family} | ${x.engine} | ${fmt(row.gflop, 1)} | ${fmt(x.cold_ms)} | ${fmt(x.latency_ms)} (${fmt(x.latency_median_ms)}) | ${fmt(1000 / x.latency_ms, 2)} | ${fmt((row.gflop * 1000) / x.latency_ms, 1)} | ${fmt(b8)} | ${b8 ? fmt((BATCH * 1000) / b8, 2) : "n/a"} | ${b8 ? fmt((row.gflop * BATCH * 1000) / b8, 1) : "n/a"} | ${fmt(x.peak_rss_mb)} | ${x.max_diff_vs_torch === undefined ? "-" : `${x.max_diff_vs_torch.abs.toExponential(1)} (rel ${x.max_diff_vs_torch.rel.toExponential(1)})`} |`,
    );
  }
}
if (torchNote) lines.push(`PyTorch reference: ${torchNote}`);
lines.push(`total bench time ${((performance.now() - benchStart) / 1000).toFixed(0)} s`);
console.log(lines.join("\n"));
const batchRatios: Record<string, number | null> = {};
for (const row of table) {
  const t = detail[row.family].torch as Result | undefined;
  const o = detail[row.family].onnx as Result | undefined;
  batchRatios[row.family] = t?.batch8_ms && o?.batch8_ms ? o.batch8_ms / t.batch8_ms : null;
}
console.log(JSON.stringify({ ratios, batch8_ratios: batchRatios, threads, torch: torchNote ?? "ok", results: detail }));
