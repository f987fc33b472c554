/**
 * `npm run train:demo -- <stylegan2|cyclegan|spade|dcgan> [--steps N] [--lr X] [--option k=v] [--config k=v] [--base DIR] [--fashion-dir DIR] [--emoji-dir DIR] [--out DIR]`
 *
 * Trains a demo model exactly the way a user's fine-tune runs: the base model (fresh random init) is
 * published into a throwaway embedded store, the dataset zip goes through the same DatasetService upload +
 * finalize, and the same worker function (`runFineTune`) trains and publishes it. The result is exported to
 * models/<name>/ (model.json + weights.safetensors, float16 when it changes outputs by less than one 8-bit
 * level) with its provenance. The held-out evaluation zip and the untrained base model are left in a temp
 * folder for `ganserve eval`; their paths are printed.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { CreateFineTuneRequest } from "../packages/core/src/api/finetune.ts";
import { readSafetensors, writeSafetensors } from "../packages/core/src/checkpoints/safetensors.ts";
import { DatasetService, newId } from "../packages/core/src/datasets/service.ts";
import { buildEmojiDataset } from "../packages/core/src/demo/emoji.ts";
import { buildFashionDataset } from "../packages/core/src/demo/fashion.ts";
import { DEMO_RECIPES, EMOJI_TRAIN_SIZE, randomBaseWeights, type DemoFamily, type DemoRecipe } from "../packages/core/src/demo/recipes.ts";
import { buildScenesDataset } from "../packages/core/src/demo/scenes.ts";
import { findFashionMnist, type FashionMnistFiles } from "../packages/core/src/demo/sources.ts";
import { initBackend } from "../packages/core/src/engine/backend.ts";
import type { Engine } from "../packages/core/src/inference/engine.ts";
import { tfjsEngines } from "../packages/core/src/inference/engines/tfjs.ts";
import { newJobRecord, JobStore, type JobRecord } from "../packages/core/src/jobs/store.ts";
import { runFineTune } from "../packages/core/src/jobs/worker.ts";
import { createLogger } from "../packages/core/src/log.ts";
import { ModelJson } from "../packages/core/src/models/model-json.ts";
import { ModelRegistry, sha256 } from "../packages/core/src/models/registry.ts";
import { samplerZ, seedToZ } from "../packages/core/src/random/index.ts";
import { EMBEDDED_CREDENTIALS, startEmbeddedS3, Storage } from "../packages/core/src/storage/index.ts";
import { datasetKeys } from "../packages/core/src/storage/keys.ts";
import { ensureEmojiPackages, ensureFashionMnist } from "./demo-data.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const TENANT = "demo";
const FAMILIES = Object.keys(DEMO_RECIPES) as DemoFamily[];

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    steps: { type: "string" },
    "fashion-dir": { type: "string" },
    "emoji-dir": { type: "string" },
    out: { type: "string" },
    "per-class": { type: "string" },
    // trainer option overrides, e.g. --option lambda_identity=5 (values parsed as JSON when they can be)
    option: { type: "string", multiple: true },
    // architecture overrides for experiments, e.g. --config ngf=16 (same parsing as --option)
    config: { type: "string", multiple: true },
    // continue from a trained model folder (models/<name>/) instead of a fresh random init
    base: { type: "string" },
    lr: { type: "string" },
  },
});
const family = positionals[0] as DemoFamily;
if (!FAMILIES.includes(family)) {
  console.error(`usage: npm run train:demo -- <${FAMILIES.join("|")}> [--steps N] [--fashion-dir DIR] [--emoji-dir DIR] [--out DIR]`);
  process.exit(2);
}
const keyValues = (pairs: string[] = []) =>
  Object.fromEntries(
    pairs.map((kv) => {
      const [k, v] = [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)];
      try {
        return [k, JSON.parse(v)];
      } catch {
        return [k, v];
      }
    }),
  );
const overrides = keyValues(values.option);
const base = DEMO_RECIPES[family];
// --option applies to every stage this run trains; --steps and --lr to the first of them (see main).
const recipe: DemoRecipe = { ...base, config: { ...base.config, ...keyValues(values.config) } };
const outDir = path.resolve(values.out ?? path.join(ROOT, "models"));
const work = fs.mkdtempSync(path.join(os.tmpdir(), `ganserve-${recipe.name}-`));

/** Train and held-out zips for the family. */
async function datasets(): Promise<{ train: Uint8Array; evalZip: Uint8Array; trainCount: number; evalCount: number }> {
  if (family === "cyclegan") {
    const dir = values["emoji-dir"] ?? ensureEmojiPackages();
    const train = await buildEmojiDataset({ split: "train", packagesDir: dir, size: EMOJI_TRAIN_SIZE });
    const test = await buildEmojiDataset({ split: "test", packagesDir: dir, size: EMOJI_TRAIN_SIZE });
    return { train: train.zip, evalZip: test.zip, trainCount: train.count, evalCount: test.count };
  }
  if (family === "stylegan2" || family === "dcgan") {
    const files: FashionMnistFiles = values["fashion-dir"] ? findFashionMnist(values["fashion-dir"]) : ensureFashionMnist();
    const train = await buildFashionDataset({ split: "train", perClass: Number(values["per-class"] ?? 600), files });
    const test = await buildFashionDataset({ split: "test", perClass: 100, files });
    return { train: train.zip, evalZip: test.zip, trainCount: train.count, evalCount: test.count };
  }
  const train = await buildScenesDataset({ n: 600, seed: 1 });
  const test = await buildScenesDataset({ n: 100, seed: 2 });
  return { train: train.zip, evalZip: test.zip, trainCount: train.count, evalCount: test.count };
}

/** Largest output difference between two engines on fixed inputs, in [-1, 1] units. */
async function outputDrift(a: Engine, b: Engine): Promise<number> {
  const diff = (x: Float32Array, y: Float32Array) => x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);
  if (a.family === "stylegan2" && b.family === "stylegan2") {
    const n = 8;
    const z = new Float32Array(n * a.zDim);
    for (let i = 0; i < n; i++) z.set(seedToZ(i, a.zDim), i * a.zDim);
    const c = a.cDim ? Float32Array.from({ length: n * a.cDim }, (_, j) => (j % a.cDim === Math.floor(j / a.cDim) % a.cDim ? 1 : 0)) : null;
    const run = async (e: typeof a) => e.synthesis(await e.mapping(z, c, n, { truncation_psi: 1 }), n, { noise_mode: "const" });
    return diff(await run(a), await run(b));
  }
  if (a.family === "cyclegan" && b.family === "cyclegan") {
    const s = a.trainSize;
    const x = Float32Array.from({ length: 2 * s * s * 3 }, (_, i) => Math.sin(i * 0.37));
    return diff(await a.forward("AtoB", x, 2, s, s), await b.forward("AtoB", x, 2, s, s));
  }
  if (a.family === "dcgan" && b.family === "dcgan") {
    const z = new Float32Array(8 * a.zDim);
    for (let i = 0; i < 8; i++) z.set(samplerZ(a.seedRng, i, a.zDim), i * a.zDim);
    return diff(await a.forward(z, 8), await b.forward(z, 8));
  }
  if (a.family === "spade" && b.family === "spade") {
    const lab = Int32Array.from({ length: 2 * a.height * a.width }, (_, i) => Math.floor(i / 97) % a.labelNc);
    return diff(await a.forward(lab, null, 2, { seed: 0 }), await b.forward(lab, null, 2, { seed: 0 }));
  }
  throw new Error("engines of different families");
}

/** One fine-tune stage as model.json's `training` records it. */
interface StageRecord {
  seconds: number;
  backend: string;
  steps: number;
  batch_size: number;
  learning_rate: number;
  options: Record<string, unknown> | undefined;
  train_items: number;
  loss_history_tail: unknown[];
}

/** The stages a model folder's `training` records: the first, then its `then` list. */
function stagesOf(json: { training?: StageRecord & { then?: StageRecord[] } }): StageRecord[] {
  if (!json.training) throw new Error("--base: the model folder's model.json has no training record");
  const { then = [], ...first } = json.training;
  return [first, ...then];
}

function writeFolder(dir: string, record: ModelJson, weights: Uint8Array, extra: Record<string, unknown> = {}) {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "weights.safetensors"), weights);
  fs.writeFileSync(path.join(dir, "model.json"), `${JSON.stringify({ ...record, ...extra }, null, 2)}\n`);
}

async function main() {
  const backend = await initBackend();
  console.log(`${recipe.name}: ${family} on ${backend}; work dir ${work}`);
  const t0 = performance.now();
  const data = await datasets();
  console.log(`datasets: ${data.trainCount} training items, ${data.evalCount} held out (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  const evalPath = path.join(work, `${recipe.name}-eval.zip`);
  fs.writeFileSync(evalPath, data.evalZip);

  const s3 = await startEmbeddedS3({ directory: path.join(work, "s3"), bucket: "ganserve" });
  const storage = new Storage({ bucket: "ganserve", region: "us-east-1", endpoint: s3.endpoint, credentials: EMBEDDED_CREDENTIALS });
  try {
    await storage.ensureBucket();
    const registry = new ModelRegistry(storage);
    const datasetService = new DatasetService(storage, { maxUploadBytes: 512 * 1024 * 1024 });
    const jobs = new JobStore(storage);

    const baseName = `${recipe.name}-base`;
    const baseJson = values.base ? JSON.parse(fs.readFileSync(path.join(values.base, "model.json"), "utf8")) : undefined;
    const from = baseJson ? ModelJson.parse(baseJson) : undefined;
    const baseWeights = from ? new Uint8Array(fs.readFileSync(path.join(values.base!, from.weights.file))) : writeSafetensors(randomBaseWeights(recipe, recipe.train.seed ?? 0));
    const base = await registry.publish({
      name: baseName,
      family,
      config: from?.config ?? recipe.config,
      weights: baseWeights,
      dtype: from?.weights.dtype ?? "float32",
      extra: from
        ? { description: `${from.name}/${from.version} (${from.weights.sha256.slice(0, 12)}) as the base`, ...recipe.extra, provenance: { source: `continued from ${from.name} ${from.weights.sha256}` } }
        : { description: `untrained ${recipe.name} base (random init)`, ...recipe.extra, provenance: { source: "random init (scripts/train-demo.ts)" } },
    });
    const baseDir = path.join(work, baseName);
    writeFolder(baseDir, base, baseWeights);

    const ds = await datasetService.create({ name: recipe.name, layout: family }, TENANT);
    // What a client's PUT to the presigned URL stores.
    await storage.put(datasetKeys.upload(ds.id), data.train, { contentType: "application/zip" });
    const ready = await datasetService.finalize(ds.id, TENANT);
    console.log(`dataset ${ready.id}: ${ready.stats?.images} images accepted, ${ready.rejected?.length ?? 0} rejected`);

    // Stage 1 is the recipe's fine-tune; each `then` stage fine-tunes the previous stage's result. A --base that
    // already has the recipe's first k stages runs the rest (one that has them all runs one more stage, whose
    // length --steps must give); --steps and --lr set the first stage run, --option every one.
    const earlier = baseJson ? stagesOf(baseJson) : [];
    const recipeStages = [recipe.train, ...(recipe.then ?? []).map((s) => ({ ...recipe.train, ...s }))];
    const differs = earlier.findIndex((st, i) => i < recipeStages.length && (st.steps !== recipeStages[i].steps || st.learning_rate !== recipeStages[i].learning_rate));
    if (differs >= 0) console.warn(`--base: its stage ${differs + 1} (${earlier[differs].steps} steps) is not the recipe's; the recipe's later stages run from it anyway`);
    const left = recipeStages.slice(earlier.length);
    if (left.length === 0 && !values.steps) throw new Error(`--base already has the recipe's ${recipeStages.length} stages; give --steps for one more`);
    const [first = recipe.train, ...rest] = left;
    const stages = [{ ...first, ...(values.steps ? { steps: Number(values.steps) } : {}), ...(values.lr ? { learning_rate: Number(values.lr) } : {}) }, ...rest].map((st) => ({
      ...st,
      options: { ...st.options, ...overrides },
    }));
    const log = createLogger(process.env.GANSERVE_LOG_LEVEL ?? "warn");
    const ran: StageRecord[] = [];
    let done: JobRecord | undefined;
    let baseRef = { name: baseName, version: base.version };
    for (const stage of stages) {
      const params = CreateFineTuneRequest.parse({ ...stage, base_model: baseRef.name, version: baseRef.version, dataset: ready.id, name: recipe.name, sample_every: Math.max(1, Math.floor((stage.steps ?? 500) / 4)) });
      const job = newJobRecord({ id: newId("ft"), tenant: TENANT, family, baseVersion: baseRef.version, params });
      await jobs.save(job);
      const tTrain = performance.now();
      let last = 0;
      const progress = setInterval(async () => {
        const j = await jobs.load(job.id).catch(() => undefined);
        if (j && j.step !== last) {
          last = j.step;
          console.log(`step ${j.step}/${j.total_steps} ${Object.entries(j.losses).map(([k, v]) => `${k}=${v.toFixed(3)}`).join(" ")} (${(j.seconds_per_step ?? 0).toFixed(2)} s/step)`);
        }
      }, 15000);
      const status = await runFineTune(job.id, { storage, jobs, datasets: datasetService, registry, log, progressIntervalMs: 5000 });
      clearInterval(progress);
      const seconds = (performance.now() - tTrain) / 1000;
      done = (await jobs.load(job.id))!;
      if (status !== "succeeded") throw new Error(`fine-tune ${status}: ${done.error?.message ?? "see the log"}`);
      console.log(`trained ${done.step} steps in ${seconds.toFixed(0)} s; final losses ${JSON.stringify(done.losses)}`);
      ran.push({ seconds: Math.round(seconds), backend, steps: done.step, batch_size: params.batch_size, learning_rate: params.learning_rate, options: params.options, train_items: data.trainCount, loss_history_tail: done.loss_history.slice(-5) });
      const result = await registry.resolve(recipe.name);
      baseRef = { name: result.name, version: result.version };
    }
    // A model continued with --base lists the stages of its base first, so the folder tells the whole recipe.
    const all = [...earlier, ...ran];
    const seconds = all.reduce((t, st) => t + st.seconds, 0);
    const totalSteps = all.reduce((t, st) => t + st.steps, 0);

    const trained = await registry.resolve(recipe.name);
    const f32 = await registry.weights(trained);
    const f16 = writeSafetensors(readSafetensors(f32).tensors, { float16: true });
    const engines = tfjsEngines(backend as never);
    const e32 = await engines.load(trained, f32);
    const e16 = await engines.load({ ...trained, weights: { ...trained.weights, dtype: "float16" } }, f16);
    const drift = await outputDrift(e32, e16);
    e32.dispose();
    e16.dispose();
    // One 8-bit level is 2/255 in [-1, 1] units: below that the served PNGs are (nearly) the same.
    const useF16 = drift < 2 / 255;
    console.log(`float16 drift ${drift.toExponential(2)} → shipping ${useF16 ? "float16" : "float32"}`);
    const weights = useF16 ? f16 : f32;
    const record = ModelJson.parse({
      schema_version: 1,
      name: recipe.name,
      version: "v1",
      family,
      config: trained.config,
      created_at: new Date().toISOString(),
      description: `${recipe.description}; ${totalSteps} steps in ${seconds.toFixed(0)} s on ${backend}`,
      provenance: {
        source: "ganserve demo recipe (scripts/train-demo.ts → runFineTune)",
        dataset: recipe.dataset,
        steps: totalSteps,
        losses: done!.losses,
        license: recipe.license,
      },
      weights: { file: "weights.safetensors", sha256: sha256(weights), bytes: weights.byteLength, dtype: useF16 ? "float16" : "float32" },
      ...recipe.extra,
    });
    const dir = path.join(outDir, recipe.name);
    // biome-ignore lint/suspicious/noThenProperty: model.json's name for the later training stages; an array, never called as a thenable.
    writeFolder(dir, record, weights, { training: { ...all[0], ...(all.length > 1 ? { then: all.slice(1) } : {}) } });
    console.log(`wrote ${path.relative(ROOT, dir)}/ (${(weights.byteLength / 1e6).toFixed(2)} MB)`);
    console.log(`held-out evaluation zip: ${evalPath}`);
    console.log(`untrained base model folder: ${baseDir}`);
    console.log(`evaluate: npx ganserve eval ${path.relative(process.cwd(), dir) || dir} --dataset ${evalPath}`);
  } finally {
    storage.destroy();
    await s3.close();
  }
}

main().catch((e) => {
  console.error(`train-demo: ${(e as Error).stack ?? e}`);
  process.exitCode = 1;
});
