/**
 * `npm run bench`: serving speed of our ONNX Runtime engine and our TF.js (wasm) engine against the PyTorch
 * reference (bench/torch_ref.py) on identical random weights, at realistic sizes (see families.ts), all at the
 * same thread count. Prints the CPU, both runtimes' builds and thread counts, a table and, last, one JSON line
 * with, per family, the ONNX/PyTorch ratios at batch 1 and 8, of cold start and of peak RSS.
 *
 * Three ONNX starts per family, as a deployment sees them (inference/engines/ort-cache.ts): "onnx", the first
 * start of a model version on this CPU type (export, ORT's optimisation, the optimised graphs copied to the model
 * store; it also gives the batch-1, batch-8 and peak-RSS figures); "onnx-new-task", a task scaled from zero (an
 * empty disk; the graphs come from the model store, the embedded S3 store this bench starts, over HTTP);
 * "onnx-cached", a restart on the same disk. Their ratios are cold_start_first_build, cold_start_new_task and
 * cold_start_restart.
 *
 * Options: --threads N (default 2), --families a,b, --skip-tfjs, --skip-torch, --b1-runs N (default 3),
 * --no-install (never create the torch venv).
 * The anchor is the PyTorch people install: the official wheel, torch 2.13.0+cpu (MKL, oneDNN). The bench makes
 * a venv for it under node_modules/.cache (`pip install torch==2.13.0`; pip's configuration says where wheels
 * come from) unless GANSERVE_BENCH_PYTHON names an interpreter. A torch built on generic BLAS (Debian's
 * python3-torch) runs ConvTranspose at a few GFLOP/s: it is used only when nothing else is there, and then every
 * line that quotes it says it is not the anchor.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { cpuInfo, cpuSummary } from "../packages/core/src/inference/engines/cpu.ts";
import { startEmbeddedS3 } from "../packages/core/src/storage/embedded.ts";
import { BATCH, convFlops, FAMILIES, files, prepare, type Family } from "./families.ts";
import { findTorch, TORCH_WHEEL } from "./torch.ts";

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

interface Result {
  engine: string;
  cold_ms: number;
  /** process start to first image */
  process_ms?: number;
  latency_ms: number;
  latency_median_ms?: number;
  batch8_ms: number | null;
  peak_rss_mb: number;
  version?: string;
  error?: string;
  max_diff_vs_torch?: { abs: number; rel: number };
  /** onnx with the ORT cache: entries that appeared on this start's disk (built, or copied from the store) */
  ort_cache_writes?: number;
  /** graphs this start built and copied to the model store (a start from a cache builds none) */
  store_writes?: number;
}

/** Runs a child to its end without blocking this process, which serves the model store the workers read. */
async function runJson(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result | { error: string }> {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
  child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
  const status = await new Promise<number | null>((resolve) => child.on("close", resolve));
  const line = stdout.trim().split("\n").filter((l) => l.startsWith("{")).pop();
  if (status !== 0 || !line) return { error: `exit ${status}: ${stderr.trim().split("\n").slice(-3).join(" | ")}` };
  return JSON.parse(line) as Result;
}

const worker = (engine: string, family: Family, b8: boolean, runs: number, env: NodeJS.ProcessEnv = {}, label = engine) =>
  runJson(process.execPath, ["--import", "tsx", path.join(here, "worker.ts"), engine, family, dir, String(threads), String(runs), b8 ? "1" : "0", label], {
    // Pin every math library to the same thread count, whichever one an engine uses.
    OMP_NUM_THREADS: String(threads),
    ...env,
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

const cpu = cpuInfo();
const cpuLine = cpuSummary(cpu);
const torchBuild = flag("skip-torch") ? "skipped (--skip-torch)" : findTorch(threads, { install: !flag("no-install"), log });
const torch = typeof torchBuild === "string" ? null : torchBuild;
const torchNote = typeof torchBuild === "string" ? torchBuild : torch!.anchor ? null : `torch ${torch!.version} is built with BLAS_INFO=${torch!.blas}: NOT the anchor (the official ${TORCH_WHEEL} wheel is); its ratios overstate our lead`;
const ortVersion = (await import("onnxruntime-node")).env.versions.common;
log(`CPU: ${cpuLine}`);
log(`ONNX Runtime ${ortVersion}, ${threads} intra-op threads`);
if (torch) log(`PyTorch ${torch.version} (${torch.python}), ${torch.threads} threads, BLAS ${torch.blas}:\n  ${torch.config.join("\n  ")}`);
if (torchNote) log(`PyTorch reference: ${torchNote}`);

const storeLog = { warn: (o: object, m: string) => log(`store: ${m} ${JSON.stringify(o)}`), error: (o: object, m: string) => log(`store: ${m} ${JSON.stringify(o)}`) };
// The model store of the ORT cache's second tier: the embedded S3 store `npm start` runs, in this bench's dir.
const store = await startEmbeddedS3({ directory: path.join(dir, "store"), bucket: "bench", logger: storeLog });

const table: { family: Family; gflop: number; results: (Result | { engine: string; error: string })[] }[] = [];
for (const family of families) {
  log(`[${family}] writing random weights and inputs ...`);
  await prepare(dir, family);
  const f = files(dir, family);
  const results: (Result | { engine: string; error: string })[] = [];
  // The first start builds the graphs and caches what ORT optimised, on its disk and in the model store; a new
  // task reads them from the store onto its empty disk; a restart reads its own disk (batch 1 only for both).
  const ortCache = path.join(dir, `${family}.ort-cache`);
  const taskCache = path.join(dir, `${family}.ort-cache-new-task`);
  const shared = { GANSERVE_BENCH_STORE: store.endpoint };
  log(`[${family}] onnx, first start (builds the graphs) ...`);
  results.push({ engine: "onnx", ...(await worker("onnx", family, true, b1Runs, { GANSERVE_BENCH_ORT_CACHE: ortCache, ...shared })) } as Result);
  log(`[${family}] onnx, a new task: empty disk, graphs from the model store ...`);
  const fresh = (await worker("onnx", family, false, b1Runs, { GANSERVE_BENCH_ORT_CACHE: taskCache, ...shared }, "onnx-new-task")) as Result;
  log(`[${family}] onnx, a restart on the same disk ...`);
  const cached = (await worker("onnx", family, false, b1Runs, { GANSERVE_BENCH_ORT_CACHE: ortCache, ...shared }, "onnx-cached")) as Result;
  // Another engineer's edit between the starts changes the code fingerprint in the cache key: then a later start
  // built the graphs again (and copied them to the store), and its cold start is not a cached one.
  for (const r of [fresh, cached]) if (r.store_writes) r.error = `not a start from the cache: it built ${r.store_writes} graphs (sources changed between the starts?)`;
  if (!fresh.error && !fresh.ort_cache_writes) fresh.error = "not a start from the model store: it copied no graph onto its disk";
  results.push({ ...fresh, engine: "onnx-new-task" }, { ...cached, engine: "onnx-cached" });
  for (const d of [ortCache, taskCache]) fs.rmSync(d, { recursive: true, force: true });
  let torchResult: Result | undefined;
  if (torch) {
    log(`[${family}] torch ...`);
    const cfgPath = path.join(dir, `${family}.torch.json`);
    fs.writeFileSync(cfgPath, JSON.stringify({ ...JSON.parse(fs.readFileSync(f.config, "utf8")), _b1_runs: b1Runs }));
    const r = await runJson(torch.python, [path.join(here, "torch_ref.py"), family, cfgPath, f.weights, f.inputs, f.out("torch"), String(threads)], { OMP_NUM_THREADS: String(threads) });
    results.push({ engine: "torch", ...r } as Result);
    if (!("error" in r)) torchResult = r;
  }
  if (!flag("skip-tfjs")) {
    // The stock wasm backend is single-threaded in Node and 5-10x slower: one timed batch-1 run, and batch 8 only
    // where it fits the time budget (estimated from the batch-1 time).
    log(`[${family}] tfjs-wasm ...`);
    const probe = await worker("tfjs-wasm", family, false, 1);
    let r = probe;
    if (!("error" in probe) && probe.latency_ms * BATCH * 2 < 90_000) {
      // Batch 8 at 256² can exceed the wasm heap; keep the batch-1 numbers when it does.
      const full = await worker("tfjs-wasm", family, true, 1);
      r = "error" in full ? probe : full;
      if ("error" in full) log(`[${family}] tfjs-wasm batch ${BATCH} failed: ${full.error}`);
    }
    results.push({ engine: "tfjs-wasm", ...r } as Result);
  }
  if (torchResult) for (const r of results) if (!("error" in r) && r.engine !== "torch") r.max_diff_vs_torch = maxDiff(f.out(r.engine), f.out("torch"));
  table.push({ family, gflop: convFlops(family) / 1e9, results });
  // Each family's figures as soon as they exist: a long run that dies later still leaves them in the log.
  log(`[${family}] ${JSON.stringify(results.map((r) => {
    if ("error" in r && r.error) return r;
    const { engine, cold_ms, latency_ms, batch8_ms, peak_rss_mb } = r as Result;
    return { engine, cold_ms, latency_ms, batch8_ms, peak_rss_mb };
  }))}`);
  for (const e of ["onnx", "onnx-new-task", "onnx-cached", "tfjs-wasm", "torch"]) fs.rmSync(f.out(e), { force: true });
  fs.rmSync(f.weights, { force: true });
}
await store.close();
fs.rmSync(dir, { recursive: true, force: true });

const fmt = (v: number | null | undefined, d = 0) => (v == null || !Number.isFinite(v) ? "n/a" : v.toFixed(d));
const torchLabel = torch ? `torch ${torch.version} (BLAS ${torch.blas}${torch.anchor ? "" : ", NOT the anchor"}, ${torch.threads} threads)` : "no torch";
const lines = [
  `CPU ${cpuLine}`,
  `threads ${threads} · ONNX Runtime ${ortVersion} · ${torchLabel} · batch-1 latency is the best of ${b1Runs} warm runs (median in brackets; the machine is shared, and the minimum is the estimate least disturbed by other load); batch ${BATCH} is one warm run; cold start is weights read to first image (process start to first image in brackets)`,
  "| model | engine | conv GFLOP/img | cold start ms | latency b1 ms | img/s b1 | GFLOP/s b1 | b8 ms | img/s b8 | GFLOP/s b8 | peak RSS MB | max abs diff vs torch |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|",
];
const detail: Record<string, Record<string, unknown>> = {};
const ratios: Record<string, Record<"b1" | "b8" | "cold_start_first_build" | "cold_start_new_task" | "cold_start_restart" | "peak_rss", number | null>> = {};
const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b ? Math.round((a / b) * 1000) / 1000 : null);
for (const row of table) {
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
      `| ${row.family} | ${x.engine} | ${fmt(row.gflop, 1)} | ${fmt(x.cold_ms)} (${fmt(x.process_ms)}) | ${fmt(x.latency_ms)} (${fmt(x.latency_median_ms)}) | ${fmt(1000 / x.latency_ms, 2)} | ${fmt((row.gflop * 1000) / x.latency_ms, 1)} | ${fmt(b8)} | ${b8 ? fmt((BATCH * 1000) / b8, 2) : "n/a"} | ${b8 ? fmt((row.gflop * BATCH * 1000) / b8, 1) : "n/a"} | ${fmt(x.peak_rss_mb)} | ${x.max_diff_vs_torch === undefined ? "-" : `${x.max_diff_vs_torch.abs.toExponential(1)} (rel ${x.max_diff_vs_torch.rel.toExponential(1)})`} |`,
    );
  }
  const ok = (engine: string) => row.results.find((r) => r.engine === engine && !r.error) as Result | undefined;
  const [t, o, task, oc] = [ok("torch"), ok("onnx"), ok("onnx-new-task"), ok("onnx-cached")];
  ratios[row.family] = {
    b1: ratio(o?.latency_ms, t?.latency_ms),
    b8: ratio(o?.batch8_ms, t?.batch8_ms),
    cold_start_first_build: ratio(o?.cold_ms, t?.cold_ms),
    cold_start_new_task: ratio(task?.cold_ms, t?.cold_ms),
    cold_start_restart: ratio(oc?.cold_ms, t?.cold_ms),
    peak_rss: ratio(o?.peak_rss_mb, t?.peak_rss_mb),
  };
}
if (torchNote) lines.push(`PyTorch reference: ${torchNote}`);
lines.push(`total bench time ${((performance.now() - benchStart) / 1000).toFixed(0)} s`);
console.log(lines.join("\n"));
console.log(
  JSON.stringify({
    ratios,
    anchor: torch ? { torch: torch.version, blas: torch.blas, is_anchor: torch.anchor, threads: torch.threads } : null,
    onnxruntime: { version: ortVersion, threads },
    cpu,
    torch_note: torchNote,
    results: detail,
  }),
);
