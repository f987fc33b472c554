/**
 * Serving engines backed by ONNX Runtime (onnxruntime-node, CPU provider). The networks are exported to ONNX from
 * the same configs and native state dicts as the TF.js engine (packages/core/src/onnx), so both engines load the
 * same `weights.safetensors` (layout: see tfjs.ts) and agree with the official outputs within the fixture
 * tolerances.
 *
 * ONNX Runtime's `run()` is asynchronous, so the compute methods here return promises; everything else matches
 * the Engine interfaces of engine.ts (NHWC typed arrays in and out). One session per graph, created at load (the
 * StyleGAN2 "none"/"random" noise variants on first use); shapes are dynamic in the batch (and, for CycleGAN, in
 * height and width), so no per-shape sessions are needed.
 */
import { createHash } from "node:crypto";
import os from "node:os";
import { openSafetensors } from "../../checkpoints/safetensors.ts";
import { toFloat32, type StateDict } from "../../checkpoints/tensor.ts";
import { ApiError } from "../../errors.ts";
import type { ModelJson } from "../../models/model-json.ts";
import { parseCycleGANConfig, servingBytesPerPixel, sizeConstraints } from "../../networks/cyclegan/config.ts";
import { buildSemantics, LabelMapError, parseSpadeConfig } from "../../networks/spade/index.ts";
import { exportCycleGAN } from "../../networks/cyclegan/generator.ts";
import { parseDcganConfig } from "../../networks/dcgan/config.ts";
import { exportDcgan } from "../../networks/dcgan/generator.ts";
import { exportSpade } from "../../networks/spade/generator.ts";
import { exportStyleGAN2Mapping, exportStyleGAN2Synthesis, synthesisLayout, type SynthesisNoise } from "../../networks/stylegan2/generator.ts";
import { mappingKeys } from "../../networks/stylegan2/mapping.ts";
import { RandomState } from "../../random/index.ts";
import type { CycleGANEngine, DcganEngine, SpadeEngine, StyleGAN2Engine } from "../engine.ts";
import { OrtModelCache, type SharedTier } from "./ort-cache.ts";
import { createOrtSession, startOrtThread, type Feed, type OrtSession } from "./ort-thread.ts";

export interface OnnxEngineOptions {
  /** intra-op threads per session; default: the cores available to this process. */
  threads?: number;
  /**
   * ONNX Runtime's CPU memory arena (default on): activations are reused across runs, which is faster, but the
   * arena keeps its high-water mark (large at batch 8 and 256²). Off: freed after each run, lower resident memory.
   */
  memArena?: boolean;
  /**
   * A directory of ONNX Runtime-optimised models (ort-cache.ts): the second start of a model loads its graphs
   * from there instead of exporting and optimising them again. Off when unset.
   */
  cacheDir?: string;
  /** The model store as the cache's second tier (ort-cache.ts): entries built by one container serve the next. */
  shared?: SharedTier;
  /** per-op profiles of every session, to files named <profile>-<graph>_<date>.json (bench/profile.ts) */
  profile?: string;
}

/** Where a model's graphs may come from besides the exporter, and how its sessions are profiled. */
export interface GraphSource {
  cache?: OrtModelCache;
  /** sha256 of the weights file: part of the cache key */
  weightsSha256?: string;
  /** the model version: where the model store keeps its compiled graphs */
  model?: { name: string; version: string };
  profile?: string;
}

/** The Engine interfaces with their compute methods made asynchronous (ONNX Runtime's run() is). */
type Async<T> = { [K in keyof T]: T[K] extends (...args: infer P) => Float32Array ? (...args: P) => Promise<Float32Array> : T[K] };
export type OnnxStyleGAN2Engine = Async<StyleGAN2Engine>;
export type OnnxCycleGANEngine = Async<CycleGANEngine>;
export type OnnxSpadeEngine = Async<SpadeEngine>;
export type OnnxDcganEngine = Async<DcganEngine>;
export type OnnxEngine = OnnxStyleGAN2Engine | OnnxCycleGANEngine | OnnxSpadeEngine | OnnxDcganEngine;

export interface OnnxEngineFactory {
  name: string;
  /** the optimised-model cache, when one is configured (flush() before a process exits on purpose) */
  cache?: OrtModelCache;
  load(record: ModelJson, weights: Uint8Array): Promise<OnnxEngine>;
}

/** Keys under `prefix`, with the prefix removed (the same as tfjs.ts's, kept here so this engine never loads TF.js). */
function subDict(sd: StateDict, prefix: string): StateDict {
  const out: StateDict = new Map();
  for (const [k, v] of sd) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), v);
  return out;
}

export const defaultThreads = () => Math.max(1, typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length);

/** A session on the ONNX Runtime thread (see ort-thread.ts). `model` is moved there: unusable afterwards. */
export function createSession(model: Uint8Array, threads = defaultThreads(), memArena = true): Promise<OrtSession> {
  return createOrtSession(model, { threads, memArena });
}

/**
 * One graph's session: from the optimised-model cache when it holds this graph (on this disk or in the model
 * store), else exported by `build` (and, with a cache, the optimised model saved there for the next start).
 */
async function graphSession(src: GraphSource, config: unknown, graph: string, build: () => Uint8Array, threads = defaultThreads(), memArena = true): Promise<OrtSession> {
  const opts = { threads, memArena, profile: src.profile && `${src.profile}-${graph}${memArena ? "" : "-no-arena"}` };
  const cache = src.cache;
  const entry = cache && src.weightsSha256 ? cache.entry({ weightsSha256: src.weightsSha256, graph, config }, src.model) : null;
  if (!cache || !entry) return createOrtSession(build(), opts);
  if (await cache.fetch(entry)) {
    try {
      return await createOrtSession({ path: entry.file }, opts);
    } catch {
      // An entry this ORT cannot open (a truncated disk, a foreign file): build the graph and write it anew.
    }
  }
  // A cache that cannot be written (a read-only or full disk) costs the next start its speed, never this load.
  let tmp: string;
  try {
    tmp = cache.pending(entry.file);
  } catch {
    return createOrtSession(build(), opts);
  }
  let session: OrtSession;
  try {
    session = await createOrtSession(build(), { ...opts, saveOptimizedTo: tmp });
  } catch (e) {
    cache.discard(tmp);
    throw e;
  }
  try {
    cache.commit(tmp, entry.file);
    cache.share(entry);
  } catch {
    cache.discard(tmp);
  }
  return session;
}

/**
 * Truncation and broadcasting of mapping outputs, on the host: w [n, wDim] → ws [n, numWs, wDim], with torch.lerp's
 * float32 formula (two-sided, so psi near 1 keeps w's precision) on the first `cutoff` entries.
 */
export function truncateWs(w: Float32Array, n: number, numWs: number, wAvg: Float32Array | null, psi: number, cutoff: number | null | undefined): Float32Array {
  const wDim = w.length / n;
  const ws = new Float32Array(n * numWs * wDim);
  const cut = Math.max(0, Math.min(cutoff ?? numWs, numWs));
  if (psi !== 1 && !wAvg) throw new Error(`mapping: truncation needs ${mappingKeys.wAvg}, but this network has none (w_avg_beta = null)`);
  const f = Math.fround;
  for (let b = 0; b < n; b++)
    for (let l = 0; l < numWs; l++)
      for (let j = 0; j < wDim; j++) {
        const v = w[b * wDim + j];
        let out = v;
        if (psi !== 1 && l < cut) {
          const a = wAvg![j];
          const diff = f(v - a);
          out = psi < 0.5 ? f(a + f(psi * diff)) : f(v - f(diff * f(1 - psi)));
        }
        ws[(b * numWs + l) * wDim + j] = out;
      }
  return ws;
}

/** Unit normals for the random-noise inputs, from numpy's RandomState so a seed gives the same noise everywhere. */
export function noiseFor(seed: number, layer: number, n: number, res: number): Float32Array {
  const rs = new RandomState((Math.abs(Math.trunc(seed)) * 1009 + layer) % 2 ** 32);
  return Float32Array.from(rs.randn(n * res * res));
}

export async function styleGan2(record: Pick<ModelJson, "config">, sd: StateDict, threads?: number, memArena = true, src: GraphSource = {}): Promise<OnnxStyleGAN2Engine> {
  const { cfg, derived, noiseLayers } = synthesisLayout(record.config);
  const mapping = await graphSession(src, record.config, "mapping", () => exportStyleGAN2Mapping(cfg, sd), threads, memArena);
  const synth = new Map<SynthesisNoise, Promise<OrtSession>>();
  const synthesis = (mode: SynthesisNoise) => {
    let s = synth.get(mode);
    if (!s) {
      s = graphSession(src, record.config, `synthesis-${mode}`, () => exportStyleGAN2Synthesis(cfg, sd, mode), threads, memArena);
      synth.set(mode, s);
    }
    return s;
  };
  await synthesis("const");
  const avg = sd.get(mappingKeys.wAvg);
  const wAvg = avg ? Float32Array.from(toFloat32(avg)) : null;
  const { z_dim, c_dim, w_dim, img_resolution, img_channels } = cfg;
  const numWs = derived.numWs;
  return {
    family: "stylegan2",
    zDim: z_dim,
    cDim: c_dim,
    wDim: w_dim,
    numWs,
    resolution: img_resolution,
    async mapping(z, c, n, opts) {
      const feeds: Record<string, Feed> = {};
      if (z_dim > 0) feeds.z = { data: z, dims: [n, z_dim] };
      if (c_dim > 0) {
        if (!c) throw new Error(`mapping: this generator is class-conditional (c_dim ${c_dim}); pass c`);
        feeds.c = { data: c, dims: [n, c_dim] };
      }
      const w = await mapping.run(feeds);
      return truncateWs(w, n, numWs, wAvg, opts.truncation_psi, opts.truncation_cutoff);
    },
    async synthesis(ws, n, noise) {
      const mode = noise.noise_mode;
      const feeds: Record<string, Feed> = { ws: { data: ws, dims: [n, numWs, w_dim] } };
      if (mode === "random") {
        const seed = noise.noiseSeed ?? Math.floor(Math.random() * 2 ** 31);
        for (const [i, l] of noiseLayers.entries()) feeds[`noise_${i}`] = { data: noiseFor(seed, i, n, l.resolution), dims: [n, 1, l.resolution, l.resolution] };
      }
      const img = await (await synthesis(mode)).run(feeds);
      if (img.length !== n * img_resolution * img_resolution * img_channels) throw new Error("synthesis: unexpected output size");
      return img;
    },
    dispose() {
      void mapping.release();
      for (const s of synth.values()) void s.then((x) => x.release());
    },
  };
}

/**
 * Passes estimated above this (servingBytesPerPixel × pixels × batch) run on a second session per direction
 * without ONNX Runtime's memory arena: the arena keeps the high-water mark of the largest pass it ever ran
 * (a 1536² pass of emoji-cyclegan left the process 510 MB above its baseline for good), while without it the
 * activations are freed when the pass ends. Images no larger than the network's own size keep the arena and
 * its speed at any batch (admission's pass budget bounds what the arena can keep): an ngf-64 model at 256² is
 * 102 MB a pass at batch 1, and without the arena it ran 1.3× slower at batch 1 and 1.2× at batch 8; a pass
 * without it is about 1.5× slower at 1024², more on larger inputs (docs/performance.md).
 */
export const ARENA_PASS_BYTES = 64 * 1024 * 1024;

export async function cycleGan(record: Pick<ModelJson, "config">, sd: StateDict, threads?: number, memArena = true, src: GraphSource = {}): Promise<OnnxCycleGANEngine> {
  const cfg = parseCycleGANConfig(record.config);
  const has = (prefix: string) => [...sd.keys()].some((k) => k.startsWith(prefix));
  // Builders rather than bytes: a graph is handed to (and owned by) the ORT thread, and the arena-less
  // session for large passes gets it from the cache or builds it again on its first use.
  const graphs = new Map<"AtoB" | "BtoA", () => Uint8Array>();
  if (has("netG_A.")) {
    graphs.set("AtoB", () => exportCycleGAN(cfg, subDict(sd, "netG_A.")));
    if (has("netG_B.")) graphs.set("BtoA", () => exportCycleGAN(cfg, subDict(sd, "netG_B."), { channels: { in: cfg.output_nc, out: cfg.input_nc } }));
  } else graphs.set("AtoB", () => exportCycleGAN(cfg, sd));
  const session = (d: "AtoB" | "BtoA", arena: boolean) => graphSession(src, record.config, d, graphs.get(d)!, threads, arena);
  const sessions = new Map<"AtoB" | "BtoA", OrtSession>();
  for (const d of graphs.keys()) sessions.set(d, await session(d, memArena));
  /** arena-less sessions for large passes, created on first use */
  const large = new Map<"AtoB" | "BtoA", Promise<OrtSession>>();
  const bytesPerPixel = servingBytesPerPixel(cfg);
  const { sizeMultiple, minSize } = sizeConstraints(cfg.netG);
  const c = record.config;
  const trainSize = typeof c.crop_size === "number" ? c.crop_size : typeof c.load_size === "number" ? c.load_size : 256;
  const trainPixels = Math.max(minSize, trainSize) ** 2;
  return {
    family: "cyclegan",
    sizeMultiple,
    trainSize: Math.max(minSize, trainSize),
    async forward(direction, x, n, h, w) {
      let s = sessions.get(direction);
      if (!s) throw new ApiError("validation_failed", `direction: this model has no ${direction} generator`, { directions: [...sessions.keys()] });
      if (h % sizeMultiple !== 0 || w % sizeMultiple !== 0 || h < minSize || w < minSize)
        throw new Error(`${cfg.netG}: height ${h} and width ${w} must be multiples of ${sizeMultiple} and at least ${minSize}`);
      if (memArena && n * h * w * bytesPerPixel > ARENA_PASS_BYTES && h * w > trainPixels) {
        let p = large.get(direction);
        if (!p) {
          p = session(direction, false);
          large.set(direction, p);
          p.catch(() => large.delete(direction));
        }
        s = await p;
      }
      const inC = direction === "AtoB" ? cfg.input_nc : cfg.output_nc;
      return s.run({ x: { data: x, dims: [n, h, w, inC] } });
    },
    dispose() {
      for (const s of sessions.values()) void s.release();
      for (const s of large.values()) void s.then((x) => x.release());
    },
  };
}

export async function spade(record: Pick<ModelJson, "config">, sd: StateDict, threads?: number, memArena = true, src: GraphSource = {}): Promise<OnnxSpadeEngine> {
  const config = parseSpadeConfig(record.config);
  const session = await graphSession(src, record.config, "generator", () => exportSpade(config, sd), threads, memArena);
  return spadeEngine(config, session);
}

/**
 * Outside `spade()` so that its methods do not close over the state dict: once ORT owns the weights, the JS
 * copy (373 MB for the bench's SPADE) can be collected.
 */
function spadeEngine(config: ReturnType<typeof parseSpadeConfig>, session: OrtSession): OnnxSpadeEngine {
  const [height, width] = config.output_hw;
  return {
    family: "spade",
    labelNc: config.label_nc,
    containDontcare: config.contain_dontcare_label,
    useInstance: !config.no_instance,
    useVae: false,
    height,
    width,
    async forward(label, instance, n) {
      let semantics: ReturnType<typeof buildSemantics>;
      try {
        semantics = buildSemantics(config, { data: label, shape: [n, height, width] }, instance ? { data: instance, shape: [n, height, width] } : undefined);
      } catch (e) {
        if (e instanceof LabelMapError) throw new ApiError("invalid_label_map", e.message, e.detail);
        throw e;
      }
      return session.run({ semantics: { data: semantics.data, dims: semantics.shape } });
    },
    dispose() {
      void session.release();
    },
  };
}

export async function dcgan(record: Pick<ModelJson, "config">, sd: StateDict, threads?: number, memArena = true, src: GraphSource = {}): Promise<OnnxDcganEngine> {
  const config = parseDcganConfig(record.config);
  const session = await graphSession(src, record.config, "generator", () => exportDcgan(config, sd), threads, memArena);
  const nz = config.z_shape[0];
  return {
    family: "dcgan",
    zDim: nz,
    zShape: [...config.z_shape],
    channels: config.nc,
    resolution: config.img_size,
    seedRng: config.seed_rng,
    forward: (z, n) => session.run({ z: { data: z, dims: [n, 1, 1, nz] } }),
    dispose() {
      void session.release();
    },
  };
}

export function onnxEngines(opts: OnnxEngineOptions = {}): OnnxEngineFactory {
  const threads = opts.threads ?? defaultThreads();
  const memArena = opts.memArena ?? true;
  const cache = opts.cacheDir ? new OrtModelCache(opts.cacheDir, opts.shared) : undefined;
  return {
    name: "onnx",
    cache,
    async load(record, weights) {
      // The runtime thread loads onnxruntime-node's binding while this thread reads the header and the key.
      startOrtThread();
      // Decoded on first read: a start from the cache reads no tensor or one (openSafetensors).
      const { tensors } = openSafetensors(weights, `${record.name}/${record.version}/weights.safetensors`);
      // The record's sha256 was checked against these bytes when they were read; a bare record is hashed here.
      const weightsSha256 = cache ? (record.weights?.sha256 ?? createHash("sha256").update(weights).digest("hex")) : undefined;
      const src: GraphSource = { cache, weightsSha256, model: { name: record.name, version: record.version }, profile: opts.profile };
      switch (record.family) {
        case "stylegan2":
          return styleGan2(record, tensors, threads, memArena, src);
        case "cyclegan":
          return cycleGan(record, tensors, threads, memArena, src);
        case "spade":
          return spade(record, tensors, threads, memArena, src);
        case "dcgan":
          return dcgan(record, tensors, threads, memArena, src);
      }
    },
  };
}
