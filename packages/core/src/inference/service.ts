/**
 * The inference use case: resolve a model version, get it from the cache, run the request through the
 * per-model batcher, and return the encoded images. The HTTP layer only parses requests and renders what this
 * returns. What happens to inputs before batching (latents, translate preprocessing) and to outputs after it
 * (encoding, storage) lives in its own modules; this one owns the cache, the batchers and their metrics.
 */
import { randomUUID } from "node:crypto";
import { resolveParams } from "../api/describe.ts";
import type { GenerateResponse, TranslateResponse } from "../api/inference.ts";
import type { Settings } from "../config.ts";
import { ApiError } from "../errors.ts";
import { floatToUint8, resizeRgb, uint8ToFloat } from "../images/codec.ts";
import { latentOutput } from "../latents/codec.ts";
import { Directions } from "./directions.ts";
import type { ModelJson } from "../models/model-json.ts";
import type { ModelRegistry } from "../models/registry.ts";
import type { Storage } from "../storage/storage.ts";
import { DEFAULT_PASS_BYTES, type PassBudget } from "./admission.ts";
import { Batcher } from "./batcher.ts";
import { dcganLatents } from "./dcgan-latents.ts";
import type { CycleGANEngine, DcganEngine, Engine, EngineFactory, SpadeEngine, StyleGAN2Engine } from "./engine.ts";
import type { Metrics } from "./metrics.ts";
import { ModelCache } from "./model-cache.ts";
import { OutputImages } from "./output-images.ts";
import type { GenerateParams, InterpolateParams, TranslateInputs, TranslateParams } from "./params.ts";
import { checkCutoff, interpolateWs, mapAll, requestLatents, styleGanInputs, type SynthesisItem } from "./stylegan-latents.ts";
import { cycleGanInput, spadeInput } from "./translate-inputs.ts";
import { warmUp } from "./warm-up.ts";

export interface InferenceOptions {
  maxBatch: number;
  maxBatchDelayMs: number;
  maxQueue: number;
  requestTimeoutMs: number;
  maxPixels: number;
  /** estimated memory one forward pass may use (admission.ts); default DEFAULT_PASS_BYTES */
  passBytes?: number;
  cacheBytes: number;
  /** lifetime of presigned output URLs */
  urlExpirySeconds?: number;
}

/** The options a serving process (API or prediction worker) takes from its settings. */
export function inferenceOptions(settings: Settings): InferenceOptions {
  return {
    maxBatch: settings.GANSERVE_MAX_BATCH,
    maxBatchDelayMs: settings.GANSERVE_MAX_BATCH_DELAY_MS,
    maxQueue: settings.GANSERVE_MAX_QUEUE,
    requestTimeoutMs: settings.GANSERVE_REQUEST_TIMEOUT_MS,
    maxPixels: settings.GANSERVE_MAX_PIXELS,
    passBytes: settings.GANSERVE_MAX_PASS_BYTES,
    cacheBytes: settings.GANSERVE_MODEL_CACHE_BYTES,
  };
}

/** /metrics is public: tenant-owned model names stay out of its labels. */
const metricLabel = (r: ModelJson) => (r.tenant ? "tenant-model" : r.name);

const round2 = (x: number) => Math.round(x * 100) / 100;
const ms = (t0: number) => round2(performance.now() - t0);
/** A response's timings: batcher queue and compute as measured, encoding since `tEnc`, all since `t0`. */
const timings = (queueMs: number, computeMs: number, tEnc: number, t0: number) => ({
  queue_ms: round2(queueMs),
  compute_ms: round2(computeMs),
  encode_ms: ms(tEnc),
  total_ms: ms(t0),
});

/**
 * A response of images from a generator. The params echo names the seeds drawn and leaves out the latents given
 * (`latents`): they can be megabytes, and the caller has them.
 */
function generatedResponse(
  record: ModelJson,
  p: object,
  echo: { seeds?: number[]; latents?: readonly (keyof GenerateParams)[] },
  images: GenerateResponse["images"],
  run: { queueMs: number; computeMs: number; tEnc: number; t0: number },
): GenerateResponse {
  const omitted = Object.fromEntries((echo.latents ?? []).map((k) => [k, undefined]));
  return {
    model: record.name,
    version: record.version,
    params: { ...p, ...(echo.seeds ? { seeds: echo.seeds } : {}), ...omitted, version: record.version },
    images,
    timings: timings(run.queueMs, run.computeMs, run.tEnc, run.t0),
  };
}

export class InferenceService {
  readonly cache: ModelCache<Engine>;
  /** latent directions stored with StyleGAN2 versions (SeFa and uploaded), used by generate's edits */
  readonly directions: Directions;
  /** encoding and delivery of results (inline or presigned URL); the latent-space use cases deliver through it too */
  readonly outputs: OutputImages;
  private readonly batchers = new Map<string, Batcher<unknown, Float32Array>>();

  constructor(
    private readonly registry: ModelRegistry,
    storage: Storage,
    engines: EngineFactory,
    private readonly metrics: Metrics,
    private readonly opts: InferenceOptions,
  ) {
    this.outputs = new OutputImages(storage, opts.urlExpirySeconds);
    this.directions = new Directions(storage, registry);
    this.cache = new ModelCache<Engine>({
      budgetBytes: opts.cacheBytes,
      load: async (record) => {
        const weights = await registry.weights(record);
        return { model: await engines.load(record, weights), bytes: weights.byteLength * (record.weights.dtype === "float16" ? 2 : 1) };
      },
      warmUp: async (engine) => warmUp(engine),
      dispose: (engine) => engine.dispose(),
      onLoad: (record, seconds) => metrics.modelLoadSeconds.observe({ model: metricLabel(record) }, seconds),
      onChange: (bytes) => metrics.modelBytes.set(bytes),
    });
  }

  /** The memory budget of one forward pass and how many batch slots share it (admission.ts). */
  get budget(): PassBudget {
    return { passBytes: this.opts.passBytes ?? DEFAULT_PASS_BYTES, maxBatch: this.opts.maxBatch };
  }

  private async engineFor<F extends Engine["family"]>(
    name: string,
    version: string,
    tenant: string | undefined,
    families: readonly F[],
    route: string,
  ): Promise<{ record: ModelJson; engine: Extract<Engine, { family: F }> }> {
    const record = await this.registry.resolve(name, version, tenant);
    if (!(families as readonly string[]).includes(record.family))
      throw new ApiError("wrong_model_family", `model '${name}' is a ${record.family} model; ${route} takes ${families.join(" or ")}`, {
        family: record.family,
      });
    const loaded = await this.cache.get(record);
    return { record, engine: loaded.model as Extract<Engine, { family: F }> };
  }

  /** One batcher per (model version, batch-compatible shape); items of different shapes never share a pass. */
  private batcher<I>(key: string, modelName: string, run: (items: I[]) => Promise<Float32Array[]>): Batcher<I, Float32Array> {
    let b = this.batchers.get(key) as Batcher<I, Float32Array> | undefined;
    if (!b) {
      b = new Batcher<I, Float32Array>(run, {
        maxBatch: this.opts.maxBatch,
        maxDelayMs: this.opts.maxBatchDelayMs,
        maxQueue: this.opts.maxQueue,
        onBatch: (size, computeMs) => {
          this.metrics.batchSize.observe({ model: modelName }, size);
          this.metrics.forwardPasses.inc({ model: modelName });
          this.metrics.forwardSeconds.observe({ model: modelName }, computeMs / 1000);
        },
      });
      this.batchers.set(key, b as Batcher<unknown, Float32Array>);
    }
    return b;
  }

  private async submit<I>(batcher: Batcher<I, Float32Array>, item: I, size: number, model: string) {
    this.metrics.queueDepth.set({ model }, batcher.depth + size);
    try {
      return await batcher.submit(item, { size, timeoutMs: this.opts.requestTimeoutMs });
    } finally {
      this.metrics.queueDepth.set({ model }, batcher.depth);
    }
  }

  /**
   * Mapping and synthesis through the batcher: one pass maps every item's latents (one mapping run per distinct
   * truncation) and synthesizes all images. Random noise runs alone so its output never depends on batch mates.
   */
  private async synthesize(record: ModelJson, engine: StyleGAN2Engine, item: SynthesisItem, noise_mode: "const" | "random" | "none", noiseSeed: number) {
    const key = `${record.name}/${record.version}/${noise_mode === "random" ? `random:${randomUUID()}` : noise_mode}`;
    const batcher = this.batcher<SynthesisItem>(key, metricLabel(record), async (items) => {
      const ws = await mapAll(engine, items);
      const total = items.reduce((a, it) => a + it.n, 0);
      const all = new Float32Array(total * engine.numWs * engine.wDim);
      let off = 0;
      for (const w of ws) {
        all.set(w, off);
        off += w.length;
      }
      const img = await engine.synthesis(all, total, { noise_mode, noiseSeed });
      const per = engine.resolution * engine.resolution * 3;
      let start = 0;
      return items.map((it) => {
        const part = img.subarray(start * per, (start + it.n) * per);
        start += it.n;
        return part;
      });
    });
    const result = await this.submit(batcher, item, item.n, metricLabel(record));
    if (noise_mode === "random") this.batchers.delete(key);
    return result;
  }

  /** A StyleGAN2 version and its engine, for the latent-space use cases (predictions/tasks/: videos, projection). */
  styleGan(name: string, version: string, tenant: string | undefined, route: string) {
    return this.engineFor(name, version, tenant, ["stylegan2"], route);
  }

  /**
   * ws [n, numWs, wDim] → raw images, through the model's batcher in passes of at most maxBatch images, so a
   * long render shares the model with other requests instead of holding it; `onPass` hears the images done.
   */
  async render(
    record: ModelJson,
    engine: StyleGAN2Engine,
    ws: Float32Array,
    noise: { noise_mode: "const" | "random" | "none"; noiseSeed: number },
    onPass?: (done: number) => Promise<void> | void,
  ): Promise<Float32Array> {
    const row = engine.numWs * engine.wDim;
    const per = engine.resolution * engine.resolution * 3;
    const n = ws.length / row;
    const out = new Float32Array(n * per);
    for (let i = 0; i < n; i += this.opts.maxBatch) {
      const m = Math.min(this.opts.maxBatch, n - i);
      const { output } = await this.synthesize(record, engine, { n: m, ws: ws.subarray(i * row, (i + m) * row) }, noise.noise_mode, noise.noiseSeed);
      out.set(output, i * per);
      await onPass?.(i + m);
    }
    return out;
  }

  async generate(p: GenerateParams, tenant?: string): Promise<GenerateResponse> {
    const t0 = performance.now();
    const { record, engine } = await this.engineFor(p.model, p.version, tenant, ["stylegan2", "dcgan"], "generate");
    p = resolveParams(record, p);
    if (engine.family === "dcgan") return this.generateDcgan(record, engine, p, tenant, t0);
    const { n, seeds, item } = await requestLatents(engine, p);
    item.edits = await this.directions.resolve(record, tenant, engine.numWs, p.edits);
    let ws: Float32Array | undefined;
    if (p.return_latents) item.onWs = (w) => (ws = w);
    const { output, queueMs, computeMs } = await this.synthesize(record, engine, item, p.noise_mode, seeds?.[0] ?? 0);
    const tEnc = performance.now();
    const want = p.return_latents === "ws" ? "ws" : "w";
    const shape = { numWs: engine.numWs, wDim: engine.wDim };
    const images = await this.outputs.encodeMany(output, n, engine.resolution, engine.resolution, "stylegan2", p, tenant, (i) => ({
      ...(seeds ? { seed: seeds[i] } : { frame: i }),
      ...(ws ? latentOutput(ws, i, shape, want, p.latent_format) : {}),
    }));
    return generatedResponse(record, p, { seeds, latents: ["w", "ws", "projected_w"] }, images, { queueMs, computeMs, tEnc, t0 });
  }

  /** z → image through the model's batcher (one pass for every item of a batch); grayscale models give grayscale images. */
  private async generateDcgan(record: ModelJson, engine: DcganEngine, p: GenerateParams, tenant: string | undefined, t0: number): Promise<GenerateResponse> {
    const { n, z, seeds } = dcganLatents(engine, p);
    const per = engine.resolution * engine.resolution * engine.channels;
    const batcher = this.batcher<{ n: number; z: Float32Array }>(`${record.name}/${record.version}/dcgan`, metricLabel(record), async (items) => {
      const total = items.reduce((a, it) => a + it.n, 0);
      const all = new Float32Array(total * engine.zDim);
      let at = 0;
      for (const it of items) {
        all.set(it.z, at * engine.zDim);
        at += it.n;
      }
      const img = await engine.forward(all, total);
      let start = 0;
      return items.map((it) => {
        const part = img.subarray(start * per, (start + it.n) * per);
        start += it.n;
        return part;
      });
    });
    const { output, queueMs, computeMs } = await this.submit(batcher, { n, z }, n, metricLabel(record));
    const tEnc = performance.now();
    const label = (i: number) => (seeds ? { seed: seeds[i] } : { frame: i });
    const images = await this.outputs.encodeMany(output, n, engine.resolution, engine.resolution, "torchvision", p, tenant, label, engine.channels);
    return generatedResponse(record, p, { seeds, latents: ["z"] }, images, { queueMs, computeMs, tEnc, t0 });
  }

  async interpolate(p: InterpolateParams, tenant?: string): Promise<GenerateResponse> {
    const t0 = performance.now();
    const { record, engine } = await this.engineFor(p.model, p.version, tenant, ["stylegan2"], "generate/interpolate");
    p = resolveParams(record, p);
    checkCutoff(engine, p.truncation_cutoff);
    const ends = styleGanInputs(engine, [p.seed_a, p.seed_b], p.class_idx);
    const wsEnds = await engine.mapping(ends.z, ends.c, 2, { truncation_psi: p.truncation_psi, truncation_cutoff: p.truncation_cutoff });
    const ws = interpolateWs(engine, wsEnds, p.frames);
    const { output, queueMs, computeMs } = await this.synthesize(record, engine, { n: p.frames, ws }, p.noise_mode, p.seed_a);
    const tEnc = performance.now();
    const images = await this.outputs.encodeMany(output, p.frames, engine.resolution, engine.resolution, "stylegan2", p, tenant, (i) => ({ frame: i }));
    return generatedResponse(record, p, {}, images, { queueMs, computeMs, tEnc, t0 });
  }

  async translate(p: TranslateParams, inputs: TranslateInputs, tenant?: string): Promise<TranslateResponse> {
    const t0 = performance.now();
    const { record, engine } = await this.engineFor(p.model, p.version, tenant, ["cyclegan", "spade"], "translate");
    p = resolveParams(record, p);
    const { rgb, queueMs, computeMs, params } =
      engine.family === "cyclegan" ? await this.translateCycleGAN(record, engine, p, inputs) : await this.translateSpade(record, engine, p, inputs);
    const tEnc = performance.now();
    const image = await this.outputs.encodeOne(rgb, p, tenant);
    return {
      model: record.name,
      version: record.version,
      params: { ...params, version: record.version },
      image,
      timings: timings(queueMs, computeMs, tEnc, t0),
    };
  }

  private async translateCycleGAN(record: ModelJson, engine: CycleGANEngine, p: TranslateParams, inputs: TranslateInputs) {
    const { original, net, size, slots } = await cycleGanInput(engine, record.config, p, inputs, this.opts.maxPixels, this.budget);
    const key = `${record.name}/${record.version}/${p.direction}/${size.w}x${size.h}`;
    const batcher = this.batcher<Float32Array>(key, metricLabel(record), async (items) => {
      const all = new Float32Array(items.length * items[0].length);
      for (const [i, x] of items.entries()) all.set(x, i * x.length);
      const out = await engine.forward(p.direction, all, items.length, size.h, size.w);
      const per = items[0].length;
      return items.map((_, i) => out.subarray(i * per, (i + 1) * per));
    });
    const { output, queueMs, computeMs } = await this.submit(batcher, uint8ToFloat(net.data), slots, metricLabel(record));
    // The official test.py writes the network-sized image; users get their own size back.
    const out = await resizeRgb({ data: floatToUint8(output, "tanh"), width: size.w, height: size.h }, original.width, original.height);
    return { rgb: out, queueMs, computeMs, params: { ...p, image: undefined, width: original.width, height: original.height, net_size: [size.h, size.w] } };
  }

  private async translateSpade(record: ModelJson, engine: SpadeEngine, p: TranslateParams, inputs: TranslateInputs) {
    const { label, sized, instance: inst, style } = await spadeInput(engine, inputs, this.opts.maxPixels);
    const key = `${record.name}/${record.version}/spade:${p.seed}:${style ? randomUUID() : "nostyle"}`;
    const batcher = this.batcher<{ label: Int32Array; instance: Int32Array | null }>(key, metricLabel(record), async (items) => {
      const per = engine.width * engine.height;
      const labels = new Int32Array(items.length * per);
      const insts = engine.useInstance ? new Int32Array(items.length * per) : null;
      items.forEach((it, i) => {
        labels.set(it.label, i * per);
        if (insts && it.instance) insts.set(it.instance, i * per);
      });
      const out = await engine.forward(labels, insts, items.length, { seed: p.seed ?? 0, style });
      return items.map((_, i) => out.subarray(i * per * 3, (i + 1) * per * 3));
    });
    const { output, queueMs, computeMs } = await this.submit(batcher, { label: sized, instance: inst }, 1, metricLabel(record));
    if (style) this.batchers.delete(key);
    const rgb = await resizeRgb({ data: floatToUint8(output, "tanh"), width: engine.width, height: engine.height }, label.width, label.height);
    return { rgb, queueMs, computeMs, params: { ...p, label_map: undefined, instance_map: undefined, style_image: undefined, width: label.width, height: label.height } };
  }

  /**
   * Loads and warms the shared models (newest version of each) so the first request after a start does not
   * pay for it; stops at the cache budget. Failures are logged by the caller, not fatal.
   */
  async preload(onError?: (name: string, e: unknown) => void): Promise<string[]> {
    const warmed: string[] = [];
    for (const m of await this.registry.list()) {
      if (m.record.tenant !== undefined) continue;
      if (this.cache.totalBytes + m.record.weights.bytes > this.opts.cacheBytes) break;
      try {
        await this.cache.get(m.record);
        warmed.push(m.name);
      } catch (e) {
        onError?.(m.name, e);
      }
    }
    return warmed;
  }

  queueDepths() {
    return [...this.batchers.entries()].map(([key, b]) => ({ key, depth: b.depth }));
  }
}
