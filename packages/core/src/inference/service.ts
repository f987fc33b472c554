/**
 * The inference domain: resolve a model version, get it from the cache, turn request parameters into
 * network inputs, run them through the per-model batcher, and encode the images. The HTTP layer only
 * parses requests and renders what this returns.
 */
import { randomUUID } from "node:crypto";
import { z } from "zod";
import type {
  GenerateRequest,
  GenerateResponse,
  ImageResult,
  InterpolateRequest,
  TranslateRequest,
  TranslateResponse,
} from "../api/inference.ts";
import { MAX_SEEDS } from "../api/inference.ts";
import { ApiError } from "../errors.ts";
import { CONTENT_TYPES, decodeRgb, encodeRgb, floatToUint8, resizeRgb, uint8ToFloat, type ImageKind, type RgbImage } from "../images/codec.ts";
import { decodeLabelPng, type LabelMap } from "../images/label-png.ts";
import type { ModelJson } from "../models/model-json.ts";
import type { ModelRegistry } from "../models/registry.ts";
import { seedToZ } from "../random/randomstate.ts";
import type { Storage } from "../storage/storage.ts";
import { Batcher } from "./batcher.ts";
import type { CycleGANEngine, Engine, EngineFactory, SpadeEngine, StyleGAN2Engine } from "./engine.ts";
import type { Metrics } from "./metrics.ts";
import { ModelCache } from "./model-cache.ts";

export interface InferenceOptions {
  maxBatch: number;
  maxBatchDelayMs: number;
  maxQueue: number;
  requestTimeoutMs: number;
  maxPixels: number;
  cacheBytes: number;
  /** lifetime of presigned output URLs */
  urlExpirySeconds?: number;
}

type Parsed<T extends z.ZodType> = z.output<T>;
export type GenerateParams = Parsed<typeof import("../api/inference.ts").GenerateRequest>;
export type InterpolateParams = Parsed<typeof import("../api/inference.ts").InterpolateRequest>;
export type TranslateParams = Parsed<typeof import("../api/inference.ts").TranslateRequest>;

/** The bytes of a translate request, whether they came as multipart files or base64 JSON. */
export interface TranslateInputs {
  image?: Uint8Array;
  label_map?: Uint8Array;
  instance_map?: Uint8Array;
  style_image?: Uint8Array;
}

export function expandSeeds(seeds: number[] | string, field = "seeds"): number[] {
  if (Array.isArray(seeds)) return seeds;
  const [a, b] = seeds.split("-").map(Number);
  if (!(b >= a)) throw new ApiError("validation_failed", `${field}: range "${seeds}" must be "a-b" with a <= b`);
  if (b - a + 1 > MAX_SEEDS) throw new ApiError("validation_failed", `${field}: range "${seeds}" has ${b - a + 1} seeds; at most ${MAX_SEEDS}`);
  if (b > 4294967295) throw new ApiError("validation_failed", `${field}: seeds must be < 2^32`);
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
}

const expandLayers = (layers: number[] | string): number[] => {
  if (Array.isArray(layers)) return layers;
  const [a, b] = layers.split("-").map(Number);
  if (!(b >= a)) throw new ApiError("validation_failed", `style_mix.layers: range "${layers}" must be "a-b" with a <= b`);
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
};

/** /metrics is public: tenant-owned model names stay out of its labels. */
const metricLabel = (r: ModelJson) => (r.tenant ? "tenant-model" : r.name);

const ms = (t0: number) => Math.round((performance.now() - t0) * 100) / 100;

/** What a generate request asks of the mapping network: mapped inside the batch, all items of a pass at once. */
interface Latents {
  z: Float32Array;
  c: Float32Array | null;
  truncation: { truncation_psi: number; truncation_cutoff?: number };
  /** style mixing: the ws of these latents replace `layers` */
  mix?: { z: Float32Array; c: Float32Array | null; layers: number[] };
}

/** n images, from ws already computed (interpolation) or from latents to map. */
type SynthesisItem = { n: number } & ({ ws: Float32Array } | { latents: Latents });

/** Each item's ws: given ones as they are; latents mapped in one run per distinct truncation. */
async function mapAll(engine: StyleGAN2Engine, items: SynthesisItem[]): Promise<Float32Array[]> {
  const out = items.map((it) => ("ws" in it ? it.ws : null));
  const groups = new Map<string, { i: number; l: Latents; n: number }[]>();
  items.forEach((it, i) => {
    if (!("latents" in it)) return;
    const k = JSON.stringify(it.latents.truncation);
    groups.set(k, [...(groups.get(k) ?? []), { i, l: it.latents, n: it.n }]);
  });
  const row = engine.numWs * engine.wDim;
  for (const members of groups.values()) {
    // Rows: every member's own latents, then every member's style-mix latents.
    const rows = [...members.map((m) => ({ z: m.l.z, c: m.l.c, n: m.n })), ...members.flatMap((m) => (m.l.mix ? [{ z: m.l.mix.z, c: m.l.mix.c, n: m.n }] : []))];
    const count = rows.reduce((a, r) => a + r.n, 0);
    const z = new Float32Array(count * engine.zDim);
    const c = engine.cDim > 0 ? new Float32Array(count * engine.cDim) : null;
    let at = 0;
    for (const r of rows) {
      z.set(r.z, at * engine.zDim);
      if (c && r.c) c.set(r.c, at * engine.cDim);
      at += r.n;
    }
    const ws = await engine.mapping(z, c, count, members[0].l.truncation);
    let own = 0;
    let mixed = members.reduce((a, m) => a + m.n, 0);
    for (const { i, l, n } of members) {
      const w = ws.slice(own * row, (own + n) * row);
      own += n;
      if (l.mix) {
        for (let k = 0; k < n; k++)
          for (const layer of l.mix.layers) {
            const src = (mixed + k) * row + layer * engine.wDim;
            w.set(ws.subarray(src, src + engine.wDim), k * row + layer * engine.wDim);
          }
        mixed += n;
      }
      out[i] = w;
    }
  }
  return out as Float32Array[];
}

export class InferenceService {
  readonly cache: ModelCache<Engine>;
  private readonly batchers = new Map<string, Batcher<unknown, Float32Array>>();

  constructor(
    private readonly registry: ModelRegistry,
    private readonly storage: Storage,
    private readonly engines: EngineFactory,
    private readonly metrics: Metrics,
    private readonly opts: InferenceOptions,
  ) {
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

  private styleGanInputs(engine: StyleGAN2Engine, seeds: number[], classIdx: number | undefined) {
    const n = seeds.length;
    const z = new Float32Array(n * engine.zDim);
    seeds.forEach((s, i) => z.set(seedToZ(s, engine.zDim), i * engine.zDim));
    let c: Float32Array | null = null;
    if (engine.cDim > 0) {
      if (classIdx === undefined) throw new ApiError("validation_failed", `class_idx: required, the model is conditional on ${engine.cDim} classes`);
      if (classIdx >= engine.cDim) throw new ApiError("validation_failed", `class_idx: ${classIdx} is out of range 0..${engine.cDim - 1}`);
      c = new Float32Array(n * engine.cDim);
      for (let i = 0; i < n; i++) c[i * engine.cDim + classIdx] = 1;
    } else if (classIdx !== undefined) {
      throw new ApiError("validation_failed", "class_idx: the model is not class-conditional");
    }
    return { z, c, n };
  }

  private checkCutoff(engine: StyleGAN2Engine, cutoff: number | undefined) {
    if (cutoff !== undefined && cutoff > engine.numWs)
      throw new ApiError("validation_failed", `truncation_cutoff: ${cutoff} exceeds num_ws ${engine.numWs}`);
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

  async generate(p: GenerateParams, tenant?: string): Promise<GenerateResponse> {
    const t0 = performance.now();
    const seeds = expandSeeds(p.seeds);
    const { record, engine } = await this.engineFor(p.model, p.version, tenant, ["stylegan2"], "generate");
    this.checkCutoff(engine, p.truncation_cutoff);
    const { z, c, n } = this.styleGanInputs(engine, seeds, p.class_idx);
    const truncation = { truncation_psi: p.truncation_psi, truncation_cutoff: p.truncation_cutoff };
    const latents: Latents = { z, c, truncation };
    if (p.style_mix) {
      const mixSeeds = expandSeeds(p.style_mix.seeds, "style_mix.seeds");
      if (mixSeeds.length !== 1 && mixSeeds.length !== n)
        throw new ApiError("validation_failed", `style_mix.seeds: give one seed or one per image (${n})`);
      const layers = expandLayers(p.style_mix.layers);
      const bad = layers.find((l) => l >= engine.numWs);
      if (bad !== undefined) throw new ApiError("validation_failed", `style_mix.layers: ${bad} is out of range 0..${engine.numWs - 1}`);
      const mix = this.styleGanInputs(engine, mixSeeds.length === 1 ? seeds.map(() => mixSeeds[0]) : mixSeeds, p.class_idx);
      latents.mix = { z: mix.z, c: mix.c, layers };
    }
    const { output, queueMs, computeMs } = await this.synthesize(record, engine, { n, latents }, p.noise_mode, seeds[0]);
    const tEnc = performance.now();
    const images = await this.encodeMany(output, n, engine.resolution, engine.resolution, "stylegan2", p, tenant, (i) => ({ seed: seeds[i] }));
    const params = { ...p, seeds, version: record.version };
    return {
      model: record.name,
      version: record.version,
      params,
      images,
      timings: { queue_ms: Math.round(queueMs * 100) / 100, compute_ms: Math.round(computeMs * 100) / 100, encode_ms: ms(tEnc), total_ms: ms(t0) },
    };
  }

  async interpolate(p: InterpolateParams, tenant?: string): Promise<GenerateResponse> {
    const t0 = performance.now();
    const { record, engine } = await this.engineFor(p.model, p.version, tenant, ["stylegan2"], "generate/interpolate");
    this.checkCutoff(engine, p.truncation_cutoff);
    const ends = this.styleGanInputs(engine, [p.seed_a, p.seed_b], p.class_idx);
    const wsEnds = await engine.mapping(ends.z, ends.c, 2, { truncation_psi: p.truncation_psi, truncation_cutoff: p.truncation_cutoff });
    const row = engine.numWs * engine.wDim;
    const ws = new Float32Array(p.frames * row);
    // Linear in w: the intermediate latent space is where StyleGAN's interpolations look smooth.
    for (let f = 0; f < p.frames; f++) {
      const t = f / (p.frames - 1);
      for (let k = 0; k < row; k++) ws[f * row + k] = wsEnds[k] + (wsEnds[row + k] - wsEnds[k]) * t;
    }
    const { output, queueMs, computeMs } = await this.synthesize(record, engine, { n: p.frames, ws }, p.noise_mode, p.seed_a);
    const tEnc = performance.now();
    const images = await this.encodeMany(output, p.frames, engine.resolution, engine.resolution, "stylegan2", p, tenant, (i) => ({ frame: i }));
    return {
      model: record.name,
      version: record.version,
      params: { ...p, version: record.version },
      images,
      timings: { queue_ms: Math.round(queueMs * 100) / 100, compute_ms: Math.round(computeMs * 100) / 100, encode_ms: ms(tEnc), total_ms: ms(t0) },
    };
  }

  async translate(p: TranslateParams, inputs: TranslateInputs, tenant?: string): Promise<TranslateResponse> {
    const t0 = performance.now();
    const { record, engine } = await this.engineFor(p.model, p.version, tenant, ["cyclegan", "spade"], "translate");
    const { rgb, queueMs, computeMs, params } =
      engine.family === "cyclegan" ? await this.translateCycleGAN(record, engine, p, inputs) : await this.translateSpade(record, engine, p, inputs);
    const tEnc = performance.now();
    const image = await this.encodeOne(rgb, p, tenant);
    return {
      model: record.name,
      version: record.version,
      params: { ...params, version: record.version },
      image,
      timings: { queue_ms: Math.round(queueMs * 100) / 100, compute_ms: Math.round(computeMs * 100) / 100, encode_ms: ms(tEnc), total_ms: ms(t0) },
    };
  }

  private async translateCycleGAN(record: ModelJson, engine: CycleGANEngine, p: TranslateParams, inputs: TranslateInputs) {
    if (!inputs.image) throw new ApiError("validation_failed", "image: required for a CycleGAN model");
    if (inputs.label_map) throw new ApiError("validation_failed", "label_map: only SPADE models take a label map");
    const original = await decodeRgb(inputs.image, { maxPixels: this.opts.maxPixels, field: "image" });
    const { net, size } = await this.cyclePreprocess(original, engine, p);
    const key = `${record.name}/${record.version}/${p.direction}/${size.w}x${size.h}`;
    const batcher = this.batcher<Float32Array>(key, metricLabel(record), async (items) => {
      const all = new Float32Array(items.length * items[0].length);
      items.forEach((x, i) => all.set(x, i * x.length));
      const out = await engine.forward(p.direction, all, items.length, size.h, size.w);
      const per = items[0].length;
      return items.map((_, i) => out.subarray(i * per, (i + 1) * per));
    });
    const { output, queueMs, computeMs } = await this.submit(batcher, uint8ToFloat(net.data), 1, metricLabel(record));
    // The official test.py writes the network-sized image; users get their own size back.
    const out = await resizeRgb({ data: floatToUint8(output, "tanh"), width: size.w, height: size.h }, original.width, original.height);
    return { rgb: out, queueMs, computeMs, params: { ...p, image: undefined, width: original.width, height: original.height, net_size: [size.h, size.w] } };
  }

  private async cyclePreprocess(img: RgbImage, engine: CycleGANEngine, p: TranslateParams) {
    const m = engine.sizeMultiple;
    const round = (v: number) => Math.max(m, Math.round(v / m) * m);
    let w = img.width;
    let h = img.height;
    if (p.preprocess !== "none") {
      // Scale the shorter side to load_size (default: the training size), keeping the aspect ratio.
      const target = p.load_size ?? engine.trainSize;
      if (p.preprocess === "crop") w = h = target;
      else {
        const s = target / Math.min(w, h);
        w *= s;
        h *= s;
      }
    }
    const size = { w: round(w), h: round(h) };
    if (size.w * size.h > this.opts.maxPixels)
      throw new ApiError("image_too_large", `the network input would be ${size.w}×${size.h}; use preprocess=resize`);
    let src = img;
    if (p.preprocess === "crop") {
      const side = Math.min(img.width, img.height);
      const sharp = (await import("sharp")).default;
      const { data, info } = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
        .extract({ left: Math.floor((img.width - side) / 2), top: Math.floor((img.height - side) / 2), width: side, height: side })
        .raw()
        .toBuffer({ resolveWithObject: true });
      src = { data: new Uint8Array(data), width: info.width, height: info.height };
    }
    return { net: await resizeRgb(src, size.w, size.h), size };
  }

  private async translateSpade(record: ModelJson, engine: SpadeEngine, p: TranslateParams, inputs: TranslateInputs) {
    if (!inputs.label_map) throw new ApiError("validation_failed", "label_map: required for a SPADE model");
    if (inputs.image) throw new ApiError("validation_failed", "image: a SPADE model takes label_map, not image");
    const label = decodeLabelPng(inputs.label_map, { maxPixels: this.opts.maxPixels, field: "label_map" });
    let instance: LabelMap | undefined;
    if (inputs.instance_map) {
      if (!engine.useInstance) throw new ApiError("validation_failed", "instance_map: this model does not use instance maps");
      instance = decodeLabelPng(inputs.instance_map, { maxPixels: this.opts.maxPixels, field: "instance_map" });
      if (instance.width !== label.width || instance.height !== label.height)
        throw new ApiError("validation_failed", `instance_map: ${instance.width}×${instance.height} differs from label_map ${label.width}×${label.height}`);
    }
    let style: Float32Array | undefined;
    if (inputs.style_image) {
      if (!engine.useVae) throw new ApiError("validation_failed", "style_image: this model has no style encoder (use_vae is off)");
      const img = await decodeRgb(inputs.style_image, { maxPixels: this.opts.maxPixels, field: "style_image" });
      style = uint8ToFloat((await resizeRgb(img, 256, 256)).data);
    }
    const maxId = engine.labelNc + (engine.containDontcare ? 0 : -1);
    for (const v of label.data)
      if (v > maxId)
        throw new ApiError("invalid_label_map", `label_map: class id ${v} is out of range 0..${maxId} for this model`, { value: v, max: maxId });
    const sized = nearest(label, engine.width, engine.height);
    // Without an instance map, each class region is its own instance (what the official test does with labels).
    const inst = engine.useInstance ? nearest(instance ?? label, engine.width, engine.height) : null;
    const key = `${record.name}/${record.version}/spade:${p.seed}:${style ? randomUUID() : "nostyle"}`;
    const batcher = this.batcher<{ label: Int32Array; instance: Int32Array | null }>(key, metricLabel(record), async (items) => {
      const per = engine.width * engine.height;
      const labels = new Int32Array(items.length * per);
      const insts = engine.useInstance ? new Int32Array(items.length * per) : null;
      items.forEach((it, i) => {
        labels.set(it.label, i * per);
        if (insts && it.instance) insts.set(it.instance, i * per);
      });
      const out = await engine.forward(labels, insts, items.length, { seed: p.seed, style });
      return items.map((_, i) => out.subarray(i * per * 3, (i + 1) * per * 3));
    });
    const { output, queueMs, computeMs } = await this.submit(batcher, { label: sized, instance: inst }, 1, metricLabel(record));
    if (style) this.batchers.delete(key);
    const rgb = await resizeRgb({ data: floatToUint8(output, "tanh"), width: engine.width, height: engine.height }, label.width, label.height);
    return { rgb, queueMs, computeMs, params: { ...p, label_map: undefined, instance_map: undefined, style_image: undefined, width: label.width, height: label.height } };
  }

  private async encodeMany(
    out: Float32Array,
    n: number,
    h: number,
    w: number,
    convention: "stylegan2" | "tanh",
    p: { format: ImageKind; quality?: number; output: "base64" | "url" },
    tenant: string | undefined,
    label: (i: number) => Partial<ImageResult>,
  ): Promise<ImageResult[]> {
    const per = h * w * 3;
    return Promise.all(
      Array.from({ length: n }, async (_, i) => ({
        ...label(i),
        ...(await this.encodeOne({ data: floatToUint8(out.subarray(i * per, (i + 1) * per), convention), width: w, height: h }, p, tenant)),
      })),
    );
  }

  private async encodeOne(img: RgbImage, p: { format: ImageKind; quality?: number; output: "base64" | "url" }, tenant: string | undefined): Promise<ImageResult> {
    const bytes = await encodeRgb(img, p.format, p.quality);
    const base = { content_type: CONTENT_TYPES[p.format], width: img.width, height: img.height };
    if (p.output === "base64") return { ...base, data: Buffer.from(bytes).toString("base64") };
    const day = new Date().toISOString().slice(0, 10);
    const key = `outputs/${tenant ?? "default"}/${day}/${randomUUID()}.${p.format === "jpeg" ? "jpg" : p.format}`;
    await this.storage.put(key, bytes, { contentType: base.content_type });
    const expires = this.opts.urlExpirySeconds ?? 3600;
    return { ...base, url: await this.storage.presignGet(key, expires), expires_at: new Date(Date.now() + expires * 1000).toISOString() };
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

/** Legacy nearest resize (floor indexing), as the official code resizes label maps. */
function nearest(map: LabelMap, w: number, h: number): Int32Array {
  if (map.width === w && map.height === h) return map.data;
  const out = new Int32Array(w * h);
  for (let y = 0; y < h; y++) {
    const sy = Math.min(map.height - 1, Math.floor((y * map.height) / h));
    for (let x = 0; x < w; x++) out[y * w + x] = map.data[sy * map.width + Math.min(map.width - 1, Math.floor((x * map.width) / w))];
  }
  return out;
}

/** One forward pass at the smallest legal size so kernels are compiled before the first real request. */
async function warmUp(engine: Engine): Promise<void> {
  switch (engine.family) {
    case "stylegan2": {
      const z = new Float32Array(engine.zDim);
      const c = engine.cDim > 0 ? new Float32Array(engine.cDim).fill(0).map((_, i) => (i === 0 ? 1 : 0)) : null;
      await engine.synthesis(await engine.mapping(z, c, 1, { truncation_psi: 1 }), 1, { noise_mode: "const" });
      return;
    }
    case "cyclegan": {
      const s = engine.sizeMultiple * Math.max(1, Math.round(64 / engine.sizeMultiple));
      await engine.forward("AtoB", new Float32Array(s * s * 3), 1, s, s);
      return;
    }
    case "spade":
      await engine.forward(new Int32Array(engine.width * engine.height), engine.useInstance ? new Int32Array(engine.width * engine.height) : null, 1, { seed: 0 });
      return;
  }
}
