/**
 * StyleGAN2 generator (stylegan2-ada-pytorch `Generator`) on TF.js: mapping + synthesis, one definition for
 * inference and training.
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
import { ParamModule, ParamStore, stateDictSource, type ParamSource } from "../common/param-store.ts";
import { setupFilter } from "../common/upfirdn2d.ts";
import { derive, parseConfig, type Derived, type StyleGAN2Config, type StyleGAN2ConfigInput } from "./config.ts";
import type { NoiseMode } from "./layers.ts";
import { MappingNetwork, type TruncationOptions } from "./mapping.ts";
import { SynthesisNetwork } from "./synthesis.ts";

export interface SynthesisRunOptions {
  /** Default "const" (what generate.py uses), so an image is a pure function of (z, c, psi). */
  noise_mode?: NoiseMode;
  /** Seed of the per-layer noise for noise_mode "random"; the same seed gives the same image. Random if omitted. */
  noiseSeed?: number;
}

export type GenerateOptions = TruncationOptions & SynthesisRunOptions;

export class StyleGAN2Generator extends ParamModule {
  readonly config: StyleGAN2Config;
  readonly derived: Derived;
  readonly numWs: number;
  readonly mappingNetwork: MappingNetwork;
  readonly synthesisNetwork: SynthesisNetwork;

  private constructor(
    config: StyleGAN2Config,
    store: ParamStore,
  ) {
    super(store);
    this.config = config;
    this.derived = derive(config);
    const sk = config.synthesis_kwargs;
    const f = sk.resample_filter;
    // Insertion order = upstream state_dict order: synthesis first, then mapping.
    this.synthesisNetwork = new SynthesisNetwork(store, "synthesis", {
      w_dim: config.w_dim,
      img_resolution: config.img_resolution,
      img_channels: config.img_channels,
      architecture: sk.architecture,
      channels: this.derived.channels,
      conv_clamp: sk.conv_clamp,
      use_noise: sk.use_noise,
      resampleFilterShape: [f.length, f.length],
      kernel_size: sk.kernel_size,
      activation: sk.activation,
    });
    this.numWs = this.synthesisNetwork.numWs;
    const mk = config.mapping_kwargs;
    this.mappingNetwork = new MappingNetwork(store, "mapping", {
      z_dim: config.z_dim,
      c_dim: config.c_dim,
      w_dim: config.w_dim,
      num_ws: this.numWs,
      num_layers: mk.num_layers,
      embed_features: mk.embed_features,
      layer_features: mk.layer_features,
      activation: mk.activation,
      lr_multiplier: mk.lr_multiplier,
      w_avg_beta: mk.w_avg_beta,
    });
  }

  /** Load official weights (strict: missing, unexpected or mis-shaped keys throw, naming the key). */
  static fromStateDict(config: StyleGAN2ConfigInput | StyleGAN2Config | Record<string, unknown>, stateDict: StateDict, file = "state_dict"): StyleGAN2Generator {
    const cfg = parseConfig(config);
    const src = stateDictSource(stateDict, file);
    const store = new ParamStore(src.source);
    try {
      const g = new StyleGAN2Generator(cfg, store);
      src.finish();
      return g;
    } catch (e) {
      store.dispose();
      throw e;
    }
  }

  /**
   * Fresh generator with upstream's initialisation: weights N(0,1) (mapping weights N(0,1)/lr_multiplier, as
   * equalized lr stores them), biases 0 except affine biases 1 (styles start at identity modulation),
   * noise_strength 0, w_avg 0, const and noise_const N(0,1). Deterministic for a seed.
   */
  static randomInit(config: StyleGAN2ConfigInput | StyleGAN2Config | Record<string, unknown>, seed: number): StyleGAN2Generator {
    const cfg = parseConfig(config);
    const store = new ParamStore(randomSource(cfg, seed));
    try {
      return new StyleGAN2Generator(cfg, store);
    } catch (e) {
      store.dispose();
      throw e;
    }
  }

  /** One-hot class labels [N, c_dim] for class indices (what generate.py's --class does). */
  classLabels(indices: readonly number[]): tf.Tensor2D {
    const cDim = this.config.c_dim;
    if (cDim === 0) throw new Error("this generator is unconditional (c_dim 0)");
    for (const i of indices) if (!Number.isInteger(i) || i < 0 || i >= cDim) throw new Error(`class ${i} out of range [0, ${cDim})`);
    return tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(indices as number[], "int32"), cDim), "float32") as tf.Tensor2D);
  }

  /** z [N, z_dim], c [N, c_dim] or null → ws [N, num_ws, w_dim]. */
  mapping(z: tf.Tensor2D | null, c: tf.Tensor2D | null = null, opts: TruncationOptions = {}): tf.Tensor3D {
    return this.mappingNetwork.apply(z, c, opts);
  }

  /** ws [N, num_ws, w_dim] (a different w per entry is allowed: style mixing) → img NHWC. */
  synthesis(ws: tf.Tensor3D, opts: SynthesisRunOptions = {}): tf.Tensor4D {
    const noiseMode = opts.noise_mode ?? "const";
    const noiseSeed = opts.noiseSeed ?? Math.floor(Math.random() * 2 ** 31);
    return this.synthesisNetwork.apply(ws, { noiseMode, noiseSeed });
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
    if (name.endsWith("resample_filter")) return setupFilter(cfg.synthesis_kwargs.resample_filter);
    if (name.endsWith("affine.bias")) return tf.ones(s);
    if (/^mapping\.fc\d+\.weight$/.test(name)) return tf.randomNormal(s, 0, 1 / lr, "float32", slotSeed);
    if (name.endsWith(".bias") || name.endsWith("noise_strength") || name.endsWith("w_avg")) return tf.zeros(s);
    return tf.randomNormal(s, 0, 1, "float32", slotSeed);
  };
}
