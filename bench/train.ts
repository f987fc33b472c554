/**
 * `npm run bench:train`: seconds per training step of each family at its demo recipe (demo/recipes.ts: the
 * model config, batch size, learning rate and options `npm run train:demo` uses), ganserve's trainer against the
 * same model, loss and optimiser in PyTorch (bench/train_torch.py) on the official CPU wheel, with the thread
 * count given to both (default: the threads ganserve's backend runs on; a shared machine's oversubscribed
 * cores make multi-threaded PyTorch spin, so a quiet machine is needed for --threads 2). Prints, per family, ganserve's split of a step into phases and, last, one JSON line:
 *   {"ratios": {"cyclegan": …, "spade": …, "stylegan2": …}, "ganserve": {…}, "torch": {…}, "threads": …}
 * (ratio = ganserve seconds per step / PyTorch's; lower is better), and `cpu_ratios`: the same with each side's
 * process CPU time per step (all its threads), which moves less than wall time when other jobs share the cores;
 * on a quiet machine with one thread each the two agree.
 *
 * Phases (ganserve): forward = inside tf.variableGrads' function (the recorded forward pass and the losses),
 * backward = the rest of tf.variableGrads (the tape's gradients), optimizer = Adam.apply, data = everything
 * else in the step (batches, pools, EMA, reading losses). wasm kernels run synchronously, so wall time
 * around each call is that phase's compute.
 *
 * Options: --threads N, --families a,b, --steps N (measured steps; default per family, StyleGAN2
 * 16 = one lazy R1 step, as the recipe's r1_interval), --warmup N (default 2), --skip-torch.
 * PyTorch: GANSERVE_BENCH_PYTHON, else the venv `npm run bench` makes (node_modules/.cache/ganserve-bench-torch),
 * else one made here the same way (`python3 -m venv --system-site-packages`, `pip install --no-index torch==2.13.0`).
 * The machine is shared: compare ratios from one run, never seconds across runs.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DEMO_RECIPES, randomBaseWeights } from "../packages/core/src/demo/recipes.ts";
import { mulberry32 } from "../packages/core/src/demo/scenes.ts";
import { initBackend, tf } from "../packages/core/src/engine/backend.ts";
import type { ModelFamily as AnyFamily } from "../packages/core/src/families.ts";
import { Adam } from "../packages/core/src/training/common/adam.ts";
import { createTrainer, trainingImageSize } from "../packages/core/src/training/index.ts";
import type { TrainImage, TrainingData } from "../packages/core/src/training/types.ts";

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
/** Asked for with --threads; default: what ganserve's backend really runs on, given to PyTorch too. */
/** The benched families: DCGAN has no torch_ref.py trainer yet (issue #26 leaves it for later). */
type ModelFamily = Exclude<AnyFamily, "dcgan">;
const askedThreads = opt("threads", "");
let threads = 1;
const families = opt("families", "cyclegan,spade,stylegan2").split(",") as ModelFamily[];
const warmup = Number(opt("warmup", "2"));
const STEPS: Record<ModelFamily, number> = { cyclegan: 8, spade: 6, stylegan2: 16 };
const stepsOf = (f: ModelFamily) => Number(opt("steps", String(STEPS[f])));
const log = (s: string) => process.stderr.write(`${s}\n`);
const VENV = path.join(import.meta.dirname, "..", "node_modules", ".cache", "ganserve-bench-torch");
const TORCH_WHEEL = "torch==2.13.0";

/**
 * Random training images at the trainer's size; labels for SPADE, classes for a conditional StyleGAN2. As many
 * as a demo dataset holds (SPADE's 600 scenes): a batch is sliced out of the whole set, and a kernel whose cost
 * grows with the set (wasm's Slice copied all of it) must show here as it does in `npm run train:demo`.
 */
function syntheticData(family: ModelFamily, size: { width: number; height: number }, count = 600): TrainingData {
  const next = mulberry32(12345);
  const rand = () => Math.floor(next() * 256);
  const image = (): TrainImage => ({ width: size.width, height: size.height, data: Uint8Array.from({ length: size.width * size.height * 3 }, rand) });
  const images = Array.from({ length: count }, image);
  if (family === "cyclegan") return { family, A: images, B: Array.from({ length: count }, image) };
  if (family === "spade") {
    const nc = Number(DEMO_RECIPES.spade.config.label_nc);
    return { family, images, labels: images.map(() => Int32Array.from({ length: size.width * size.height }, () => rand() % nc)) };
  }
  const cDim = Number(DEMO_RECIPES.stylegan2.config.c_dim ?? 0);
  return { family, images, ...(cDim > 0 ? { labels: images.map((_, i) => i % cDim), classes: Array.from({ length: cDim }, (_, i) => String(i)) } : {}) };
}

/** Wall time per phase, collected by wrapping the engine's gradients and Adam.apply for the bench's process. */
const phases = { forward: 0, backward: 0, optimizer: 0 };
function instrument() {
  const engine = tf.engine() as unknown as { gradients: (f: () => tf.Tensor, ...rest: unknown[]) => unknown };
  const gradients = engine.gradients.bind(engine);
  // Only the outermost call counts: a gradient taken inside a loss (StyleGAN2's R1) is part of that forward.
  let depth = 0;
  engine.gradients = (f, ...rest) => {
    if (depth > 0) return gradients(f, ...rest);
    depth++;
    const t0 = performance.now();
    let inside = 0;
    try {
      return gradients(() => {
        const f0 = performance.now();
        try {
          return f();
        } finally {
          inside += performance.now() - f0;
        }
      }, ...rest);
    } finally {
      depth--;
      phases.forward += inside;
      phases.backward += performance.now() - t0 - inside;
    }
  };
  const apply = Adam.prototype.apply;
  Adam.prototype.apply = function (this: Adam, ...args: Parameters<Adam["apply"]>) {
    const t0 = performance.now();
    try {
      return apply.apply(this, args);
    } finally {
      phases.optimizer += performance.now() - t0;
    }
  };
}

interface GanserveResult {
  seconds_per_step: number;
  cpu_seconds_per_step: number;
  phases: { forward: number; backward: number; optimizer: number; data: number };
  steps: number;
}

async function benchGanserve(family: ModelFamily): Promise<GanserveResult> {
  const recipe = DEMO_RECIPES[family];
  const options = { steps: recipe.train.steps ?? 500, batch_size: recipe.train.batch_size ?? 4, learning_rate: recipe.train.learning_rate ?? 0.002, seed: 1, options: recipe.train.options ?? {} };
  const size = trainingImageSize(family, { config: recipe.config, options })!;
  const trainer = createTrainer(family, { config: recipe.config, weights: randomBaseWeights(recipe, 1), data: syntheticData(family, size), options });
  for (let i = 0; i < warmup; i++) await trainer.trainStep();
  Object.assign(phases, { forward: 0, backward: 0, optimizer: 0 });
  // StyleGAN2's lazy R1 runs at steps divisible by r1_interval (16): any 16 consecutive steps hold one, as PyTorch's do.
  const n = stepsOf(family);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await trainer.trainStep();
  const total = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  const per = (ms: number) => ms / 1000 / n;
  const spent = phases.forward + phases.backward + phases.optimizer;
  const result = {
    seconds_per_step: total / n,
    cpu_seconds_per_step: (cpu.user + cpu.system) / 1e6 / n,
    phases: { forward: per(phases.forward), backward: per(phases.backward), optimizer: per(phases.optimizer), data: Math.max(0, total / n - per(spent)) },
    steps: n,
  };
  if (argv.includes("--profile")) await profileStep(family, async () => void (await trainer.trainStep()));
  trainer.dispose();
  return result;
}

/**
 * --profile: one more step under tf.profile, its kernels summed by name (a kernel built from other kernels,
 * like the backprop ones in engine/wasm-gradients.ts, counts its own time and its parts' again).
 */
async function profileStep(family: ModelFamily, step: () => Promise<void>) {
  tf.env().set("CHECK_COMPUTATION_FOR_ERRORS", false);
  const info = await tf.profile(step);
  const byName = new Map<string, { ms: number; calls: number }>();
  for (const k of info.kernels) {
    const e = byName.get(k.name) ?? { ms: 0, calls: 0 };
    e.ms += typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0;
    e.calls++;
    byName.set(k.name, e);
  }
  const top = [...byName].sort((a, b) => b[1].ms - a[1].ms).slice(0, 12);
  log(`${family} kernels of one step (ms, calls): ${top.map(([n, e]) => `${n} ${e.ms.toFixed(0)} (${e.calls})`).join(", ")}`);
}

function torchPython(): string | null {
  const ok = (py: string) => spawnSync(py, ["-c", "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)"]).status === 0;
  if (process.env.GANSERVE_BENCH_PYTHON) return process.env.GANSERVE_BENCH_PYTHON;
  const py = path.join(VENV, "bin", "python");
  if (fs.existsSync(py) && ok(py)) return py;
  log(`making ${path.relative(process.cwd(), VENV)} with ${TORCH_WHEEL} (once) ...`);
  if (spawnSync("python3", ["-m", "venv", "--system-site-packages", VENV], { stdio: "inherit" }).status !== 0) return null;
  if (spawnSync(py, ["-m", "pip", "install", "--quiet", "--no-index", TORCH_WHEEL], { stdio: "inherit", timeout: 900_000 }).status !== 0) return null;
  return ok(py) ? py : null;
}

interface TorchResult {
  seconds_per_step: number;
  cpu_seconds_per_step: number;
  version: string;
  threads: number;
}

function benchTorch(python: string, family: ModelFamily, dir: string): TorchResult {
  const recipe = DEMO_RECIPES[family];
  const spec = path.join(dir, `${family}.train.json`);
  fs.writeFileSync(spec, JSON.stringify({ config: recipe.config, batch_size: recipe.train.batch_size ?? 4, learning_rate: recipe.train.learning_rate ?? 0.002, options: recipe.train.options ?? {}, warmup: Math.max(1, warmup), steps: stepsOf(family) }));
  const r = spawnSync(python, [path.join(import.meta.dirname, "train_torch.py"), family, spec, String(threads)], { encoding: "utf8", env: { ...process.env, OMP_NUM_THREADS: String(threads) } });
  if (r.status !== 0) throw new Error(`train_torch.py ${family} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

async function main() {
  const backend = await initBackend(process.env.GANSERVE_BACKEND === undefined ? "wasm" : undefined);
  const wasm = backend === "wasm" ? await import("@tensorflow/tfjs-backend-wasm") : undefined;
  if (askedThreads) wasm?.setThreadsCount(Number(askedThreads));
  // tfjs-backend-wasm runs its single-threaded build in Node unless the threaded one can start its workers.
  const ganserveThreads = wasm?.getThreadsCount() ?? Number(askedThreads || os.availableParallelism());
  threads = Number(askedThreads || ganserveThreads);
  instrument();
  const python = argv.includes("--skip-torch") ? null : torchPython();
  if (!argv.includes("--skip-torch") && !python) log("no PyTorch 2.13.0 found or installed: ratios are left out (set GANSERVE_BENCH_PYTHON)");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ganserve-bench-train-"));
  log(`cpu: ${os.cpus()[0]?.model} × ${os.cpus().length}, load ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}; ganserve: tfjs ${backend}, ${ganserveThreads} thread(s); PyTorch: ${threads} thread(s)`);
  const ours: Record<string, GanserveResult> = {};
  const theirs: Record<string, TorchResult> = {};
  const ratios: Record<string, number> = {};
  const cpuRatios: Record<string, number> = {};
  for (const family of families) {
    ours[family] = await benchGanserve(family);
    if (python) theirs[family] = benchTorch(python, family, dir);
    const g = ours[family];
    const t = theirs[family];
    if (t) ratios[family] = g.seconds_per_step / t.seconds_per_step;
    if (t) cpuRatios[family] = g.cpu_seconds_per_step / t.cpu_seconds_per_step;
    const pct = (s: number) => `${((100 * s) / g.seconds_per_step).toFixed(0)}%`;
    log(
      `${family.padEnd(9)} batch ${DEMO_RECIPES[family].train.batch_size}: ganserve ${g.seconds_per_step.toFixed(3)} s/step` +
        (t ? `, PyTorch ${t.seconds_per_step.toFixed(3)} s/step, ratio ${ratios[family].toFixed(1)}×` : "") +
        (t ? ` (CPU time: ${g.cpu_seconds_per_step.toFixed(3)} vs ${t.cpu_seconds_per_step.toFixed(3)} s/step, ${cpuRatios[family].toFixed(1)}×)` : "") +
        `\n           ganserve phases: forward ${g.phases.forward.toFixed(3)} s (${pct(g.phases.forward)}), backward ${g.phases.backward.toFixed(3)} s (${pct(g.phases.backward)}), optimizer ${g.phases.optimizer.toFixed(3)} s (${pct(g.phases.optimizer)}), data ${g.phases.data.toFixed(3)} s (${pct(g.phases.data)})`,
    );
  }
  fs.rmSync(dir, { recursive: true, force: true });
  const torchVersion = Object.values(theirs)[0]?.version;
  console.log(JSON.stringify({ ratios, cpu_ratios: cpuRatios, ganserve: ours, torch: theirs, threads: { ganserve: ganserveThreads, torch: threads }, backend, torch_version: torchVersion }));
}

await main();
