/**
 * StyleGAN2 generator (stylegan2-ada-pytorch `Generator`): mapping + synthesis, assembled once against the op
 * interface. `StyleGAN2Generator` runs it on TF.js (training, the tfjs engine); `exportStyleGAN2Mapping` and
 * `exportStyleGAN2Synthesis` run the same networks against the ONNX graph builder.
 *
 * Public tensors are NHWC / TF.js native: z [N, z_dim], c [N, c_dim], ws [N, num_ws, w_dim], images
 * [N, H, W, img_channels], raw (unclamped) on upstream's scale, roughly [-1, 1].
 *
 * Every computation is float32. Upstream's `num_fp16_res` only switches the top blocks to float16 on CUDA
 * (its CPU path is float32 too), so such checkpoints load and agree with upstream's CPU output; they can differ
 * from a CUDA fp16 run by fp16 rounding.
 *
 * Forward passes are pure tfjs-core ops (no data reads), so `tf.variableGrads` / optimisers can drive
 * `trainableVariables()` directly.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { StateDict } from "../../checkpoints/tensor.ts";
import { loadStrict, ParamModule, ParamStore, type ParamSource } from "../common/param-store.ts";
import { setupFilter } from "../common/upfirdn2d.ts";
import { GraphOps } from "../ops/graph.ts";
import type { Ops } from "../ops/ops.ts";
import { derive, parseConfig, type Derived, type StyleGAN2Config, type StyleGAN2ConfigInput } from "./config.ts";
import { AFFINE, NOISE_STRENGTH, RESAMPLE_FILTER, type NoiseMode } from "./layers.ts";
import { MAPPING, mappingKeys, type MappingOptions, MappingNetwork, type TruncationOptions } from "./mapping.ts";
import { SYNTHESIS, synthesisKeys, type SynthesisOptions, SynthesisNetwork } from "./synthesis.ts";

export interface SynthesisRunOptions {
  /** Default "const" (what generate.py uses), so an image is a pure function of (z, c, psi). */
  noise_mode?: NoiseMode;
  /** Seed of the per-layer noise for noise_mode "random"; the same seed gives the same image. Random if omitted. */
  noiseSeed?: number;
}

export type GenerateOptions = TruncationOptions & SynthesisRunOptions;

function synthesisOptions(config: StyleGAN2Config, derived: Derived): SynthesisOptions {
  const sk = config.synthesis_kwargs;
  const f = sk.resample_filter;
  return {
    w_dim: config.w_dim,
    img_resolution: config.img_resolution,
    img_channels: config.img_channels,
    architecture: sk.architecture,
    channels: derived.channels,
    conv_clamp: sk.conv_clamp,
    use_noise: sk.use_noise,
    resampleFilterShape: [f.length, f.length],
    kernel_size: sk.kernel_size,
    activation: sk.activation,
  };
}

function mappingOptions(config: StyleGAN2Config): MappingOptions {
  const { z_dim, c_dim, w_dim } = config;
  const { num_layers, embed_features, layer_features, activation, lr_multiplier, w_avg_beta } = config.mapping_kwargs;
  return { z_dim, c_dim, w_dim, num_layers, embed_features, layer_features, activation, lr_multiplier, w_avg_beta };
}

/** Both networks on one backend, registered in upstream's state_dict order: synthesis first, then mapping. */
function build<T, P>(ops: Ops<T, P>, config: StyleGAN2Config) {
  const synthesis = new SynthesisNetwork(ops, SYNTHESIS, synthesisOptions(config, derive(config)));
  const mapping = new MappingNetwork(ops, MAPPING, mappingOptions(config));
  return { synthesis, mapping };
}

type Eager = ReturnType<typeof build<tf.Tensor4D, tf.Variable>>;

export class StyleGAN2Generator extends ParamModule {
  readonly config: StyleGAN2Config;
  readonly derived: Derived;
  readonly numWs: number;
  private readonly net: Eager;

  private constructor(config: StyleGAN2Config, store: ParamStore) {
    super(store);
    this.config = config;
    this.derived = derive(config);
    try {
      this.net = build(store, config);
    } catch (e) {
      store.dispose();
      throw e;
    }
    this.numWs = this.net.synthesis.numWs;
  }

  /** Load official weights (strict: missing, unexpected or mis-shaped keys throw, naming the key). */
  static fromStateDict(config: StyleGAN2ConfigInput | StyleGAN2Config | Record<string, unknown>, stateDict: StateDict, file = "state_dict"): StyleGAN2Generator {
    const cfg = parseConfig(config);
    return loadStrict(stateDict, file, (source) => new StyleGAN2Generator(cfg, new ParamStore(source)));
  }

  /**
   * Fresh generator with upstream's initialisation: weights N(0,1) (mapping weights N(0,1)/lr_multiplier, as
   * equalized lr stores them), biases 0 except affine biases 1 (styles start at identity modulation),
   * noise_strength 0, w_avg 0, const and noise_const N(0,1). Deterministic for a seed.
   */
  static randomInit(config: StyleGAN2ConfigInput | StyleGAN2Config | Record<string, unknown>, seed: number): StyleGAN2Generator {
    const cfg = parseConfig(config);
    return new StyleGAN2Generator(cfg, new ParamStore(randomSource(cfg, seed)));
  }

  /** One-hot class labels [N, c_dim] for class indices (what generate.py's --class does). */
  classLabels(indices: readonly number[]): tf.Tensor2D {
    const cDim = this.config.c_dim;
    if (cDim === 0) throw new Error("this generator is unconditional (c_dim 0)");
    for (const i of indices) if (!Number.isInteger(i) || i < 0 || i >= cDim) throw new Error(`class ${i} out of range [0, ${cDim})`);
    return tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(indices as number[], "int32"), cDim), "float32") as tf.Tensor2D);
  }

  /** z [N, z_dim], c [N, c_dim] or null → ws [N, num_ws, w_dim], truncated towards w_avg by psi. */
  mapping(z: tf.Tensor2D | null, c: tf.Tensor2D | null = null, trunc: TruncationOptions = {}): tf.Tensor3D {
    const { z_dim, c_dim, w_dim } = this.config;
    const num_ws = this.numWs;
    if (z && z.shape[1] !== z_dim) throw new Error(`mapping: z has ${z.shape[1]} features, z_dim is ${z_dim}`);
    if (c && c_dim > 0 && c.shape[1] !== c_dim) throw new Error(`mapping: c has ${c.shape[1]} features, c_dim is ${c_dim}`);
    return tf.tidy(() => {
      const vec = (t: tf.Tensor2D | null, dim: number) => (t && dim > 0 ? tf.reshape(tf.cast(t, "float32"), [t.shape[0], 1, 1, dim]) as tf.Tensor4D : null);
      const w = this.net.mapping.apply(vec(z, z_dim), vec(c, c_dim)) as tf.Tensor4D;
      const n = w.shape[0];
      const ws = tf.tile(tf.reshape(w, [n, 1, w_dim]), [1, num_ws, 1]) as tf.Tensor3D;

      const psi = trunc.truncation_psi ?? 1;
      if (psi === 1) return ws;
      const wAvg = this.net.mapping.wAvg;
      if (!wAvg) throw new Error(`mapping: truncation needs ${mappingKeys.wAvg}, but this network has none (w_avg_beta = null)`);
      const cutoff = Math.max(0, Math.min(trunc.truncation_cutoff ?? num_ws, num_ws));
      const avg = tf.reshape(wAvg, [1, 1, w_dim]);
      const lerp = (v: tf.Tensor3D) =>
        // Same two-sided formula as torch.lerp, so psi near 1 keeps w's precision rather than w_avg's.
        psi < 0.5 ? tf.add(avg, tf.mul(tf.sub(v, avg), psi)) : tf.sub(v, tf.mul(tf.sub(v, avg), 1 - psi));
      if (cutoff === num_ws) return lerp(ws) as tf.Tensor3D;
      if (cutoff === 0) return ws;
      const head = tf.slice(ws, [0, 0, 0], [-1, cutoff, -1]) as tf.Tensor3D;
      const tail = tf.slice(ws, [0, cutoff, 0], [-1, -1, -1]);
      return tf.concat([lerp(head), tail], 1) as tf.Tensor3D;
    });
  }

  /** ws [N, num_ws, w_dim] (a different w per entry is allowed: style mixing) → img NHWC. */
  synthesis(ws: tf.Tensor3D, opts: SynthesisRunOptions = {}): tf.Tensor4D {
    const { w_dim } = this.config;
    if (ws.shape[1] !== this.numWs) throw new Error(`synthesis: ws has ${ws.shape[1]} entries, this network needs num_ws = ${this.numWs}`);
    if (ws.shape[2] !== w_dim) throw new Error(`synthesis: ws has width ${ws.shape[2]}, w_dim is ${w_dim}`);
    const noiseMode = opts.noise_mode ?? "const";
    const noiseSeed = opts.noiseSeed ?? Math.floor(Math.random() * 2 ** 31);
    return tf.tidy(() => {
      const flat = tf.reshape(tf.cast(ws, "float32"), [ws.shape[0], 1, 1, this.numWs * w_dim]) as tf.Tensor4D;
      return this.net.synthesis.apply(flat, { noiseMode, noiseSeed });
    });
  }

  generate(z: tf.Tensor2D | null, c: tf.Tensor2D | null = null, opts: GenerateOptions = {}): tf.Tensor4D {
    return tf.tidy(() => this.synthesis(this.mapping(z, c, opts), opts));
  }

  /** Style mixing: ws[:, cutoff:] taken from wsMix (upstream style_mixing.py's column rule). */
  static mixStyles(ws: tf.Tensor3D, wsMix: tf.Tensor3D, cutoff: number): tf.Tensor3D {
    const num = ws.shape[1];
    const k = Math.max(0, Math.min(cutoff, num));
    if (k === num) return tf.clone(ws);
    if (k === 0) return tf.clone(wsMix);
    return tf.tidy(() => tf.concat([tf.slice(ws, [0, 0, 0], [-1, k, -1]), tf.slice(wsMix, [0, k, 0], [-1, -1, -1])], 1) as tf.Tensor3D);
  }
}

function randomSource(cfg: StyleGAN2Config, seed: number): ParamSource {
  let k = 0;
  const lr = cfg.mapping_kwargs.lr_multiplier;
  return (name, shape) => {
    const s = [...shape];
    // Per-slot seeds keep values independent of backend and of how many tensors were allocated before.
    const slotSeed = seed * 1_000_003 + 7919 * k++;
    if (name.endsWith(`.${RESAMPLE_FILTER}`)) return setupFilter(cfg.synthesis_kwargs.resample_filter);
    if (name.endsWith(`.${AFFINE}.bias`)) return tf.ones(s);
    if (mappingKeys.fcIndex(name) !== undefined) return tf.randomNormal(s, 0, 1 / lr, "float32", slotSeed);
    if (name.endsWith(".bias") || name.endsWith(`.${NOISE_STRENGTH}`) || mappingKeys.isWAvg(name)) return tf.zeros(s);
    return tf.randomNormal(s, 0, 1, "float32", slotSeed);
  };
}

export type SynthesisNoise = NoiseMode;

/** Layers of the synthesis network that take noise, in forward order (the random-noise graph inputs' order). */
export interface NoiseLayer {
  name: string;
  resolution: number;
}

/** What a caller of the synthesis graphs needs to know: the config, derived sizes, and the noise inputs. */
export function synthesisLayout(config: unknown) {
  const cfg = parseConfig(config);
  const derived = derive(cfg);
  const noiseLayers: NoiseLayer[] = [];
  if (cfg.synthesis_kwargs.use_noise)
    for (const res of derived.blockResolutions) for (const name of synthesisKeys.noiseLayers(res)) noiseLayers.push({ name, resolution: res });
  return { cfg, derived, noiseLayers };
}

/** Mapping graph: "z" [N, z_dim] (and "c" [N, c_dim] when conditional) → "w" [N, w_dim]; synthesis.* keys ignored. */
export function exportStyleGAN2Mapping(config: unknown, sd: StateDict, file?: string): Uint8Array {
  const cfg = parseConfig(config);
  const ops = new GraphOps("stylegan2_mapping", sd, file);
  const mapping = new MappingNetwork(ops, MAPPING, mappingOptions(cfg));
  const z = cfg.z_dim > 0 ? ops.inputVector("z", [cfg.z_dim]) : null;
  const c = cfg.c_dim > 0 ? ops.inputVector("c", [cfg.c_dim]) : null;
  const w = mapping.apply(z, c);
  const doc = JSON.stringify({ family: "stylegan2", graph: "mapping" });
  return ops.finish({ w }, doc, { ignore: synthesisKeys.owns, vectors: ["w"] });
}

/**
 * Synthesis graph for one noise mode: "ws" [N, num_ws, w_dim] (+ "noise_<i>" [N, 1, r, r] per noisy layer, in
 * `synthesisLayout`'s order, for "random") → "img" NHWC; mapping.* keys ignored. "const" bakes
 * noise_const · noise_strength in, "none" has no noise.
 */
export function exportStyleGAN2Synthesis(config: unknown, sd: StateDict, noise: SynthesisNoise, file?: string): Uint8Array {
  const cfg = parseConfig(config);
  const ops = new GraphOps(`stylegan2_synthesis_${noise}`, sd, file);
  const net = new SynthesisNetwork(ops, SYNTHESIS, synthesisOptions(cfg, derive(cfg)));
  const img = net.apply(ops.inputVector("ws", [net.numWs, cfg.w_dim]), { noiseMode: noise, noiseSeed: 0 });
  return ops.finish({ img }, JSON.stringify({ family: "stylegan2", graph: "synthesis", noise }), { ignore: mappingKeys.owns });
}
