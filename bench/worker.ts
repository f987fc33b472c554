/**
 * One engine × one model, in its own process so cold start and peak RSS are its own. Prints one JSON line.
 * usage: worker.ts <onnx|tfjs-wasm> <family> <dir> <threads> <b1Runs> <batch8:0|1> [label: names the output, default the engine]
 * env (onnx): GANSERVE_BENCH_ORT_CACHE=<dir> (ORT optimised-model cache), GANSERVE_BENCH_STORE=<endpoint> (the
 * cache's model-store tier: the embedded S3 store run.ts starts, bucket "bench"), GANSERVE_BENCH_ORT_PROFILE=<prefix>
 */
import fs from "node:fs";
import { readSafetensors } from "../packages/core/src/checkpoints/safetensors.ts";
import { toFloat32 } from "../packages/core/src/checkpoints/tensor.ts";
import type { ModelJson } from "../packages/core/src/models/model-json.ts";
import { EMBEDDED_CREDENTIALS } from "../packages/core/src/storage/embedded.ts";
import { modelKeys } from "../packages/core/src/storage/keys.ts";
import { Storage } from "../packages/core/src/storage/storage.ts";
import { BATCH, DCGAN, files, SIZE, type Family } from "./families.ts";

const [engineName, family, dir, threadsArg, runsArg, b8Arg, labelArg] = process.argv.slice(2) as [string, Family, string, string, string, string, string?];
const label = labelArg ?? engineName;
const threads = Number(threadsArg);
const f = files(dir, family);
const record = { schema_version: 1, name: `bench-${family}`, version: "v1", family, config: JSON.parse(fs.readFileSync(f.config, "utf8")) } as unknown as ModelJson;
const inputs = readSafetensors(new Uint8Array(fs.readFileSync(f.inputs))).tensors;

type AnyEngine = { family: string; dispose(): void } & Record<string, unknown>;
// The engine's modules are loaded before the clock starts, as torch_ref.py starts its clock after `import torch`
// and its class definitions: a cold start is a model load, and a server imports its code once, at boot.
// process_ms (process start to first image) still counts both runtimes' imports.
const engines = engineName === "onnx" ? await import("../packages/core/src/inference/engines/onnx.ts") : null;
const tfjs = engineName === "onnx" ? null : await import("../packages/core/src/inference/engines/tfjs.ts");
const store = process.env.GANSERVE_BENCH_STORE
  ? new Storage({ bucket: "bench", region: "us-east-1", endpoint: process.env.GANSERVE_BENCH_STORE, credentials: EMBEDDED_CREDENTIALS })
  : undefined;
const onnxFactory = engines?.onnxEngines({
  threads,
  // bench/run.ts's later ONNX starts read the optimised models the first one cached; bench/profile.ts profiles.
  cacheDir: process.env.GANSERVE_BENCH_ORT_CACHE || undefined,
  shared: store && { store, onError: (err, what) => console.error(`ORT cache: ${what}: ${err}`) },
  profile: process.env.GANSERVE_BENCH_ORT_PROFILE || undefined,
});
/**
 * Loads the engine the way the service does (inference/service.ts): the weights file's bytes are read as one
 * Buffer (a Uint8Array already: wrapping it in a new Uint8Array copied 373 MB for SPADE) and are garbage once
 * the engine is built, instead of living in this module's scope through the batch-8 pass whose peak RSS we
 * report.
 */
async function load(): Promise<AnyEngine> {
  const weights = fs.readFileSync(f.weights);
  if (onnxFactory) return (await onnxFactory.load(record, weights)) as unknown as AnyEngine;
  return (await tfjs!.tfjsEngines("wasm").load(record, weights)) as unknown as AnyEngine;
}
// Which cache entries a start found and which it built: a start that built graphs did not start from a cache (a
// source file edited between two starts changes the cache key; ort-cache.ts), and run.ts says so. Entries that
// appear in the directory were built or copied from the store; a build is what the store gains (ort-cache.ts
// copies every build there).
const cacheDir = process.env.GANSERVE_BENCH_ORT_CACHE;
const entries = () => (cacheDir && fs.existsSync(cacheDir) ? fs.readdirSync(cacheDir).filter((e) => e.endsWith(".onnx")) : []);
const stored = async () => (store ? (await store.list(modelKeys.version(record.name, record.version))).length : 0);
const before = new Set(entries());
// Outside the clock, and first: a server has used its store client (model record, weights) before it loads a model.
const storedBefore = await stored();
const start = performance.now();
const engine = await load();
const cacheWrites = entries().filter((e) => !before.has(e)).length;

// One call = one batch of images through the engine's public API, inputs sliced from the shared batch.
async function call(n: number): Promise<Float32Array> {
  if (family === "cyclegan") {
    const x = toFloat32(inputs.get("x")!).subarray(0, n * SIZE * SIZE * 3);
    return (await (engine.forward as (d: string, x: Float32Array, n: number, h: number, w: number) => Float32Array | Promise<Float32Array>)("AtoB", x, n, SIZE, SIZE));
  }
  if (family === "stylegan2") {
    const z = toFloat32(inputs.get("z")!).subarray(0, n * 512);
    const mapping = engine.mapping as (z: Float32Array, c: null, n: number, o: object) => Float32Array | Promise<Float32Array>;
    const synthesis = engine.synthesis as (ws: Float32Array, n: number, o: object) => Float32Array | Promise<Float32Array>;
    return synthesis(await mapping(z, null, n, { truncation_psi: 1 }), n, { noise_mode: "const" });
  }
  if (family === "dcgan") {
    const z = toFloat32(inputs.get("z")!).subarray(0, n * DCGAN.nz);
    return (engine.forward as (z: Float32Array, n: number) => Float32Array | Promise<Float32Array>)(z, n);
  }
  const label = (inputs.get("label")!.data as Int32Array).subarray(0, n * SIZE * SIZE);
  return (engine.forward as (l: Int32Array, i: Int32Array, n: number, o: object) => Float32Array | Promise<Float32Array>)(label, label, n, { seed: 0 });
}

const first = await call(1);
const coldMs = performance.now() - start;
// performance.now() counts from the process's time origin: the whole start, Node and module loading included.
const processMs = performance.now();
fs.writeFileSync(f.out(label), Buffer.from(first.buffer, first.byteOffset, first.byteLength));
const lat: number[] = [];
for (let i = 0; i < Number(runsArg); i++) {
  const t = performance.now();
  await call(1);
  lat.push(performance.now() - t);
}
let b8: number | null = null;
if (b8Arg === "1") {
  await call(BATCH); // first run at a new batch size plans memory; time the second
  const t = performance.now();
  await call(BATCH);
  b8 = performance.now() - t;
}
engine.dispose();
// The copies to the store run beside the passes (as in a server); the process waits for them before it reports.
await onnxFactory?.cache?.flush();
const storeWrites = (await stored()) - storedBefore;
lat.sort((a, b) => a - b);
console.log(JSON.stringify({ engine: label, cold_ms: coldMs, process_ms: processMs, latency_ms: lat[0], latency_median_ms: lat[Math.floor(lat.length / 2)], latency_runs: lat, batch8_ms: b8, peak_rss_mb: process.resourceUsage().maxRSS / 1024, ...(cacheDir ? { ort_cache_writes: cacheWrites } : {}), ...(store ? { store_writes: storeWrites } : {}) }));
