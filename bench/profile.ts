/**
 * `npm run bench:profile`: where ONNX Runtime's time goes, per op type, for each family at batch 1 and batch 8.
 * Runs bench/worker.ts (the serving engine, same sizes and threads as `npm run bench`) with ORT's profiler on,
 * then reads the traces: every session's warm batch-1 run and its second batch-8 run, op kernel times summed
 * by op type. Prints a markdown table per family (the heaviest ops) and one JSON line with all of them.
 *
 * Options: --threads N (default 2), --families a,b, --top N (rows per table, default 10), --nodes N (also the N
 * heaviest single nodes at batch 1, default 0: an op type's sum hides one slow node, e.g. a conv with few output
 * channels among many fast ones).
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { cpuSummary } from "../packages/core/src/inference/engines/cpu.ts";
import { FAMILIES, prepare, type Family } from "./families.ts";

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const threads = Number(opt("threads", "2"));
const top = Number(opt("top", "10"));
const topNodes = Number(opt("nodes", "0"));
const families = opt("families", FAMILIES.join(",")).split(",") as Family[];
const B1_RUNS = 2;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ganserve-profile-"));

interface TraceEvent {
  cat: string;
  name: string;
  ts: number;
  dur: number;
  args?: { op_name?: string };
}

/** ms per op type and per node ("<node> (<op>)") inside one model_run window, and the run's own wall time. */
function opTimes(events: TraceEvent[], run: TraceEvent): { total: number; ops: Map<string, number>; nodes: Map<string, number> } {
  const ops = new Map<string, number>();
  const nodes = new Map<string, number>();
  for (const e of events)
    if (e.cat === "Node" && e.name.endsWith("_kernel_time") && e.ts >= run.ts && e.ts <= run.ts + run.dur) {
      const op = e.args?.op_name ?? "?";
      ops.set(op, (ops.get(op) ?? 0) + e.dur / 1000);
      const node = `${e.name.slice(0, -"_kernel_time".length)} (${op})`;
      nodes.set(node, (nodes.get(node) ?? 0) + e.dur / 1000);
    }
  return { total: run.dur / 1000, ops, nodes };
}

type Summary = { total_ms: number; ops: Record<string, number> };
const summaries: Record<string, { b1: Summary; b8: Summary }> = {};
const lines: string[] = [`CPU ${cpuSummary()} · ${threads} threads · ONNX Runtime per-op kernel time (ms), summed by op type over every session of a pass`];
for (const family of families) {
  process.stderr.write(`[${family}] profiling ...\n`);
  await prepare(dir, family);
  const prefix = path.join(dir, `${family}-profile`);
  const r = spawnSync(process.execPath, ["--import", "tsx", path.join(import.meta.dirname, "worker.ts"), "onnx", family, dir, String(threads), String(B1_RUNS), "1"], {
    encoding: "utf8",
    env: { ...process.env, OMP_NUM_THREADS: String(threads), GANSERVE_BENCH_ORT_PROFILE: prefix },
  });
  if (r.status !== 0) throw new Error(`${family}: worker failed: ${r.stderr.trim().split("\n").slice(-3).join(" | ")}`);
  const traces = fs.readdirSync(dir).filter((f) => f.startsWith(path.basename(prefix)) && f.endsWith(".json"));
  if (!traces.length) throw new Error(`${family}: ORT wrote no profile`);
  const b1: Summary = { total_ms: 0, ops: {} };
  const b8: Summary = { total_ms: 0, ops: {} };
  /** batch-1 ms per node, keyed by trace file too (two sessions' nodes may share a name) */
  const b1Nodes = new Map<string, number>();
  for (const t of traces) {
    const events = JSON.parse(fs.readFileSync(path.join(dir, t), "utf8")) as TraceEvent[];
    // The worker's passes, in order: the cold batch-1 image, B1_RUNS warm ones, and two of batch 8.
    const runs = events.filter((e) => e.cat === "Session" && e.name === "model_run").sort((a, b) => a.ts - b.ts);
    if (runs.length !== B1_RUNS + 3) throw new Error(`${family}/${t}: ${runs.length} runs in the trace, expected ${B1_RUNS + 3}`);
    for (const [into, run] of [
      [b1, runs[B1_RUNS]],
      [b8, runs[B1_RUNS + 2]],
    ] as const) {
      const { total, ops, nodes } = opTimes(events, run);
      into.total_ms += total;
      for (const [op, ms] of ops) into.ops[op] = (into.ops[op] ?? 0) + ms;
      if (into === b1) for (const [node, ms] of nodes) b1Nodes.set(traces.length > 1 ? `${t}: ${node}` : node, ms);
    }
  }
  summaries[family] = { b1, b8 };
  const kernel = (s: Summary) => Object.values(s.ops).reduce((a, b) => a + b, 0);
  const rows = Object.keys({ ...b1.ops, ...b8.ops }).sort((a, b) => (b8.ops[b] ?? 0) - (b8.ops[a] ?? 0));
  lines.push(
    "",
    `${family}: pass ${b1.total_ms.toFixed(0)} ms at b1 (kernels ${kernel(b1).toFixed(0)}), ${b8.total_ms.toFixed(0)} ms at b8 (kernels ${kernel(b8).toFixed(0)})`,
    "| op | b1 ms | b1 % | b8 ms | b8 % | b8 / (8 × b1) |",
    "|---|---|---|---|---|---|",
  );
  for (const op of rows.slice(0, top)) {
    const x = b1.ops[op] ?? 0;
    const y = b8.ops[op] ?? 0;
    lines.push(`| ${op} | ${x.toFixed(1)} | ${((100 * x) / kernel(b1)).toFixed(1)} | ${y.toFixed(1)} | ${((100 * y) / kernel(b8)).toFixed(1)} | ${x > 0 ? (y / (8 * x)).toFixed(2) : "n/a"} |`);
  }
  if (topNodes > 0) {
    lines.push("", `${family}: the ${topNodes} heaviest nodes at b1`, "| node (op) | b1 ms | b1 % |", "|---|---|---|");
    for (const [node, ms] of [...b1Nodes].sort((a, b) => b[1] - a[1]).slice(0, topNodes)) lines.push(`| ${node} | ${ms.toFixed(1)} | ${((100 * ms) / kernel(b1)).toFixed(1)} |`);
  }
  for (const f of fs.readdirSync(dir)) if (f.startsWith(family)) fs.rmSync(path.join(dir, f), { force: true, recursive: true });
}
fs.rmSync(dir, { recursive: true, force: true });
console.log(lines.join("\n"));
console.log(JSON.stringify({ threads, profile: summaries }));
