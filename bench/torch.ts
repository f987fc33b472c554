/**
 * The PyTorch the benches compare with: the official wheel people install (torch 2.13.0+cpu: MKL, oneDNN), in a
 * venv under node_modules/.cache made once from pip's configured wheel store, or the interpreter that
 * GANSERVE_BENCH_PYTHON names. A generic-BLAS build (Debian's python3-torch 1.13, whose ConvTranspose runs at a
 * few GFLOP/s) is used only when nothing else is there, and is then labelled as not the anchor.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

export const TORCH_WHEEL = "torch==2.13.0";
const VENV = path.join(import.meta.dirname, "..", "node_modules", ".cache", "ganserve-bench-torch");

export interface TorchBuild {
  python: string;
  version: string;
  /** the first lines of torch.__config__.show() */
  config: string[];
  threads: number;
  blas: string;
  /** MKL or oneDNN-backed official build: the comparison people would make */
  anchor: boolean;
}

function probeTorch(python: string, threads: number): TorchBuild | null {
  const code = [
    "import json, re, torch, numpy",
    `torch.set_num_threads(${threads})`,
    "cfg = torch.__config__.show()",
    "m = re.search(r'BLAS_INFO=(\\w+)', cfg)",
    "blas = m.group(1) if m else 'unknown'",
    "print(json.dumps({'version': torch.__version__, 'config': [l.strip() for l in cfg.splitlines() if l.strip()][:8], 'threads': torch.get_num_threads(), 'blas': blas, 'mkldnn': torch.backends.mkldnn.is_available()}))",
  ].join("\n");
  const r = spawnSync(python, ["-c", code], { encoding: "utf8" });
  if (r.status !== 0) return null;
  const j = JSON.parse(r.stdout.trim().split("\n").pop()!) as Omit<TorchBuild, "python" | "anchor"> & { mkldnn: boolean };
  return { python, version: j.version, config: j.config, threads: j.threads, blas: j.blas, anchor: j.blas !== "generic" && j.mkldnn && !j.version.startsWith("1.") };
}

/** The venv with the official wheel: made once, reused by later runs. */
function ensureVenv(threads: number, install: boolean, log: (s: string) => void): string | null {
  const py = path.join(VENV, "bin", "python");
  if (fs.existsSync(py) && probeTorch(py, threads)?.version.startsWith("2.13.0")) return py;
  if (!install) return null;
  log(`making ${path.relative(process.cwd(), VENV)} with ${TORCH_WHEEL} (once) ...`);
  // --system-site-packages: numpy and torch's pure-Python dependencies come from the interpreter when it has them.
  if (spawnSync("python3", ["-m", "venv", "--system-site-packages", VENV], { stdio: "inherit" }).status !== 0) return null;
  const pip = (extra: string[]) => spawnSync(py, ["-m", "pip", "install", "--quiet", ...extra, TORCH_WHEEL, "numpy"], { stdio: "inherit", timeout: 900_000 }).status === 0;
  // Local wheels first; pip's configured indexes only for dependencies the wheel store lacks.
  if (!pip(["--no-index"]) && !pip([])) return null;
  return py;
}

/** The torch to compare with, or why there is none. */
export function findTorch(threads: number, opts: { install: boolean; log: (s: string) => void }): TorchBuild | string {
  const tried: string[] = [];
  const candidates = process.env.GANSERVE_BENCH_PYTHON ? [process.env.GANSERVE_BENCH_PYTHON] : [ensureVenv(threads, opts.install, opts.log), "python3"].filter((p): p is string => !!p);
  for (const p of candidates) {
    const b = probeTorch(p, threads);
    if (b) return b;
    tried.push(p);
  }
  return `no interpreter with torch and numpy (tried ${tried.join(", ")}); ${TORCH_WHEEL} could not be installed into a venv`;
}
