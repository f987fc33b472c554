/**
 * StyleGAN2 residual discriminator (stylegan2-ada-pytorch `Discriminator`, architecture "resnet") for
 * fine-tuning. State_dict names and order follow upstream: `b{res}.resample_filter`, `b{res}.fromrgb.*` (top
 * block only), `b{res}.conv0.*`, `b{res}.conv1.*`, `b{res}.skip.*`, then `mapping.*` when class-conditional, then
 * the epilogue `b4.conv.*`, `b4.fc.*`, `b4.out.*`.
 *
 * Why its own conv layer instead of the generator's `Conv2dLayer`: R1 regularisation differentiates D's input
 * gradient once more, and the generator path's FIR filtering runs through depthwise convolutions whose backprop
 * kernels have no gradient in TF.js. Here the separable [1,3,3,1] FIR is a sum of shifted slices (pad/slice/mul/add
 * all differentiate any number of times), and the convolutions are plain conv2d whose first-order gradients have
 * gradients themselves. The result equals upstream's `conv2d_resample` (tested against the generator's layer).
 *
 * Layout as in the generator: NHWC activations, HWIO conv weights (official OIHW permuted once), FC [out, in].
 */
import * as tf from "@tensorflow/tfjs-core";
import type { StateDict } from "../../checkpoints/tensor.ts";
import { ACTIVATIONS, biasAct, type Activation } from "../common/bias_act.ts";
import { loadStrict, ParamModule, ParamStore, type ParamSource } from "../common/param-store.ts";
import { setupFilter } from "../common/upfirdn2d.ts";
import { FullyConnectedLayer, RESAMPLE_FILTER } from "./layers.ts";
import { MAPPING, mappingKeys, MappingNetwork } from "./mapping.ts";

/** OIHW → HWIO. */
const OIHW_TO_HWIO = [2, 3, 1, 0];
type EagerFC = FullyConnectedLayer<tf.Tensor4D, tf.Variable>;

/** The shared (op-interface) FC layer on [N, C] tensors. */
function fc2d(l: EagerFC, x: tf.Tensor2D): tf.Tensor2D {
  const n = x.shape[0];
  return tf.reshape(l.apply(tf.reshape(x, [n, 1, 1, -1])), [n, -1]);
}

export interface DiscriminatorConfig {
  c_dim: number;
  img_resolution: number;
  img_channels: number;
  channel_base: number;
  channel_max: number;
  conv_clamp: number | null;
  /** Projection width for conditioning; null = channels at 4x4 (upstream's default). */
  cmap_dim: number | null;
  /** 1-D taps of the separable down-sampling filter. */
  resample_filter: number[];
  /** D's conditioning mapping network (upstream default: 8 layers, lr multiplier 0.01). */
  mapping_kwargs: { num_layers: number; lr_multiplier: number };
  epilogue_kwargs: { mbstd_group_size: number | null; mbstd_num_channels: number };
}

export const DEFAULT_DISCRIMINATOR_CONFIG: Omit<DiscriminatorConfig, "c_dim" | "img_resolution" | "img_channels"> = {
  channel_base: 32768,
  channel_max: 512,
  conv_clamp: null,
  cmap_dim: null,
  resample_filter: [1, 3, 3, 1],
  mapping_kwargs: { num_layers: 8, lr_multiplier: 0.01 },
  epilogue_kwargs: { mbstd_group_size: 4, mbstd_num_channels: 1 },
};

/**
 * One separable FIR pass along `axis` (1 = H, 2 = W): zero-pad by (pad0, pad1), convolve with `taps`, keep every
 * `down`-th output. Decimation splits the axis into `down` phases with a reshape, so every tap is a contiguous
 * slice (no strided slice, which has no gradient in TF.js and is slow on wasm).
 */
function fir1d(x: tf.Tensor4D, axis: 1 | 2, taps: readonly number[], pad0: number, pad1: number, down: number): tf.Tensor4D {
  const K = taps.length;
  const len = x.shape[axis] + pad0 + pad1;
  const outLen = Math.floor((len - K) / down) + 1;
  const perPhase = outLen + Math.ceil(K / down) - 1;
  const total = perPhase * down;
  const pads: [number, number][] = [[0, 0], [0, 0], [0, 0], [0, 0]];
  pads[axis] = [pad0, pad1 + Math.max(0, total - len)];
  let xp: tf.Tensor4D = tf.pad(x, pads);
  if (total < len) {
    const size = [-1, -1, -1, -1];
    size[axis] = total;
    xp = tf.slice(xp, [0, 0, 0, 0], size);
  }
  const [n, h, w, c] = xp.shape;
  const phaseOf = (p: number): tf.Tensor4D => {
    if (down === 1) return xp;
    // Rank 4 around the phase axis (the axes before and after it merged): wasm's Slice is fast only up to rank 4.
    const shape4 = axis === 1 ? [n, perPhase, down, w * c] : [n * h, perPhase, down, c];
    const phase: tf.Tensor = tf.slice(tf.reshape(xp as tf.Tensor, shape4), [0, 0, p, 0], [-1, -1, 1, -1]);
    return tf.reshape(phase, axis === 1 ? [n, perPhase, w, c] : [n, h, perPhase, c]) as tf.Tensor4D;
  };
  const phases = new Map<number, tf.Tensor4D>();
  let y: tf.Tensor4D | null = null;
  for (let t = 0; t < K; t++) {
    // Convolution (not correlation): the tap that meets input offset t is taps[K - 1 - t].
    const coef = taps[K - 1 - t];
    if (coef === 0) continue;
    const p = t % down;
    if (!phases.has(p)) phases.set(p, phaseOf(p));
    const begin = [0, 0, 0, 0];
    const size = [-1, -1, -1, -1];
    begin[axis] = Math.floor(t / down);
    size[axis] = outLen;
    const term = tf.mul(tf.slice(phases.get(p)!, begin, size), coef) as tf.Tensor4D;
    y = y ? (tf.add(y, term) as tf.Tensor4D) : term;
  }
  return y!;
}

/** Separable 2-D FIR with padding [left, right, top, bottom] and decimation, as upstream's `upfirdn2d` (up = 1). */
export function firDown2d(x: tf.Tensor4D, taps1d: readonly number[], padding: [number, number, number, number], down: number): tf.Tensor4D {
  return tf.tidy(() => {
    const sum = taps1d.reduce((a, b) => a + b, 0);
    const taps = taps1d.map((t) => t / sum);
    const [px0, px1, py0, py1] = padding;
    return fir1d(fir1d(x, 1, taps, py0, py1, down), 2, taps, px0, px1, down);
  });
}

/** Equalized-lr conv with optional 2x FIR downsampling, differentiable twice (see the module comment). */
export class DiscriminatorConv2dLayer {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable | null;
  readonly resampleFilter: tf.Variable;
  private readonly weightGain: number;
  private readonly activation: Activation;

  constructor(
    store: ParamStore,
    readonly prefix: string,
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    readonly opts: { bias?: boolean; activation?: Activation; down?: number; taps: readonly number[]; convClamp?: number | null },
  ) {
    const k = kernelSize;
    this.weight = store.add(`${prefix}.weight`, [outChannels, inChannels, k, k], "conv.weight", { perm: OIHW_TO_HWIO });
    this.bias = (opts.bias ?? true) ? store.add(`${prefix}.bias`, [outChannels], "conv.bias") : null;
    this.resampleFilter = store.add(`${prefix}.${RESAMPLE_FILTER}`, [opts.taps.length, opts.taps.length], "norm.running_mean", { trainable: false });
    this.weightGain = 1 / Math.sqrt(inChannels * k * k);
    this.activation = opts.activation ?? "linear";
  }

  apply(x: tf.Tensor4D, gain = 1): tf.Tensor4D {
    return tf.tidy(() => {
      const w = tf.mul(this.weight, this.weightGain) as tf.Tensor4D;
      const k = this.kernelSize;
      const down = this.opts.down ?? 1;
      const f = this.opts.taps.length;
      const p = Math.floor(k / 2);
      let y: tf.Tensor4D;
      if (down > 1 && k === 1) {
        // Filter-and-decimate first, then a 1x1 conv at the low resolution (upstream's cheap order).
        const a = Math.floor((f - down + 1) / 2);
        const b = Math.floor((f - down) / 2);
        y = tf.conv2d(firDown2d(x, this.opts.taps, [a, b, a, b], down), w, 1, "valid");
      } else if (down > 1) {
        // Full-rate FIR (with the conv's padding folded in), then the strided conv decimates.
        const a = p + Math.floor((f - down + 1) / 2);
        const b = p + Math.floor((f - down) / 2);
        y = tf.conv2d(firDown2d(x, this.opts.taps, [a, b, a, b], 1), w, down, "valid");
      } else {
        y = tf.conv2d(x, w, 1, k === 1 ? "valid" : "same");
      }
      const clamp = this.opts.convClamp != null ? this.opts.convClamp * gain : null;
      return biasAct(y, this.bias, { act: this.activation, gain: ACTIVATIONS[this.activation].gain * gain, clamp });
    });
  }

  variableNames(): string[] {
    return [`${this.prefix}.weight`, ...(this.bias ? [`${this.prefix}.bias`] : [])];
  }
}

export class DiscriminatorBlock {
  readonly resampleFilter: tf.Variable;
  readonly fromrgb: DiscriminatorConv2dLayer | null;
  readonly conv0: DiscriminatorConv2dLayer;
  readonly conv1: DiscriminatorConv2dLayer;
  readonly skip: DiscriminatorConv2dLayer;

  constructor(
    store: ParamStore,
    readonly prefix: string,
    readonly inChannels: number,
    tmpChannels: number,
    outChannels: number,
    readonly resolution: number,
    imgChannels: number,
    cfg: DiscriminatorConfig,
  ) {
    const taps = cfg.resample_filter;
    const common = { taps, convClamp: cfg.conv_clamp };
    this.resampleFilter = store.add(`${prefix}.${RESAMPLE_FILTER}`, [taps.length, taps.length], "norm.running_mean", { trainable: false });
    this.fromrgb = inChannels === 0 ? new DiscriminatorConv2dLayer(store, `${prefix}.fromrgb`, imgChannels, tmpChannels, 1, { ...common, activation: "lrelu" }) : null;
    this.conv0 = new DiscriminatorConv2dLayer(store, `${prefix}.conv0`, tmpChannels, tmpChannels, 3, { ...common, activation: "lrelu" });
    this.conv1 = new DiscriminatorConv2dLayer(store, `${prefix}.conv1`, tmpChannels, outChannels, 3, { ...common, activation: "lrelu", down: 2 });
    this.skip = new DiscriminatorConv2dLayer(store, `${prefix}.skip`, tmpChannels, outChannels, 1, { ...common, bias: false, down: 2 });
  }

  /** x: features from the block above (null for the top block, which reads img). */
  apply(x: tf.Tensor4D | null, img: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const h = this.fromrgb ? this.fromrgb.apply(img) : x!;
      // sqrt(0.5) on both branches keeps the residual sum at unit variance.
      const y = this.skip.apply(h, Math.SQRT1_2);
      const z = this.conv1.apply(this.conv0.apply(h), Math.SQRT1_2);
      return tf.add(y, z) as tf.Tensor4D;
    });
  }

  variableNames(): string[] {
    return [this.fromrgb, this.conv0, this.conv1, this.skip].flatMap((l) => (l ? l.variableNames() : []));
  }
}

/**
 * Minibatch standard deviation (Karras et al. 2018): appends, per group of G samples, the average over features
 * and pixels of the per-feature std across the group, so D can see a lack of variety. Sample i belongs to group
 * i mod (N/G), as upstream's reshape(G, -1, ...) makes it.
 */
export function minibatchStd(x: tf.Tensor4D, groupSize: number | null, numChannels: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    let g = groupSize == null ? n : Math.min(groupSize, n);
    // Upstream requires N % G == 0; pick the largest group size that divides N instead of failing.
    while (n % g !== 0) g--;
    const F = numChannels;
    const groups = n / g;
    const y5 = tf.reshape(x, [g, groups, h * w, F, c / F]);
    const centered = tf.sub(y5, tf.mean(y5, 0, true));
    const std = tf.sqrt(tf.add(tf.mean(tf.square(centered), 0), 1e-8)); // [groups, h*w, F, c/F]
    const s = tf.mean(std, [1, 3]); // [groups, F]
    const tiled = tf.tile(tf.reshape(s, [1, groups, 1, F]), [g, 1, h * w, 1]);
    return tf.concat([x, tf.reshape(tiled, [n, h, w, F])], 3) as tf.Tensor4D;
  });
}

export class DiscriminatorEpilogue {
  readonly conv: DiscriminatorConv2dLayer;
  readonly fc: EagerFC;
  readonly out: EagerFC;

  constructor(
    store: ParamStore,
    readonly prefix: string,
    readonly inChannels: number,
    readonly cmapDim: number,
    readonly resolution: number,
    readonly cfg: DiscriminatorConfig,
  ) {
    const mb = cfg.epilogue_kwargs.mbstd_num_channels;
    this.conv = new DiscriminatorConv2dLayer(store, `${prefix}.conv`, inChannels + mb, inChannels, 3, {
      taps: cfg.resample_filter,
      activation: "lrelu",
      convClamp: cfg.conv_clamp,
    });
    this.fc = new FullyConnectedLayer(store, `${prefix}.fc`, inChannels * resolution * resolution, inChannels, { activation: "lrelu" });
    this.out = new FullyConnectedLayer(store, `${prefix}.out`, inChannels, cmapDim === 0 ? 1 : cmapDim);
  }

  apply(x: tf.Tensor4D, cmap: tf.Tensor2D | null): tf.Tensor2D {
    return tf.tidy(() => {
      const { mbstd_group_size, mbstd_num_channels } = this.cfg.epilogue_kwargs;
      let h = mbstd_num_channels > 0 ? minibatchStd(x, mbstd_group_size, mbstd_num_channels) : x;
      h = this.conv.apply(h);
      // fc's weight indexes inputs in NCHW flatten order (the official layout), so flatten channels-first.
      const n = h.shape[0];
      const flat = tf.reshape(tf.transpose(h, [0, 3, 1, 2]), [n, -1]) as tf.Tensor2D;
      let y = fc2d(this.out, fc2d(this.fc, flat));
      if (cmap) y = tf.mul(tf.sum(tf.mul(y, cmap), 1, true), 1 / Math.sqrt(this.cmapDim)) as tf.Tensor2D;
      return y;
    });
  }

  variableNames(): string[] {
    const fcNames = (l: EagerFC) => [`${l.prefix}.weight`, ...(l.bias ? [`${l.prefix}.bias`] : [])];
    return [...this.conv.variableNames(), ...fcNames(this.fc), ...fcNames(this.out)];
  }
}

export class StyleGAN2Discriminator extends ParamModule {
  readonly config: DiscriminatorConfig;
  /** Blocks from the top resolution down (b{img_resolution} first), excluding the b4 epilogue. */
  readonly blocks: DiscriminatorBlock[] = [];
  readonly mapping: MappingNetwork<tf.Tensor4D, tf.Variable> | null;
  readonly epilogue: DiscriminatorEpilogue;
  readonly channels: Record<number, number>;
  readonly cmapDim: number;

  private constructor(
    config: DiscriminatorConfig,
    store: ParamStore,
  ) {
    super(store);
    this.config = config;
    const res = config.img_resolution;
    const log2 = Math.round(Math.log2(res));
    if (2 ** log2 !== res || res < 4) throw new Error(`discriminator: img_resolution ${res} must be a power of two >= 4`);
    const blockResolutions = Array.from({ length: log2 - 2 }, (_, i) => 2 ** (log2 - i));
    this.channels = {};
    for (const r of [...blockResolutions, 4]) this.channels[r] = Math.min(Math.floor(config.channel_base / r), config.channel_max);
    this.cmapDim = config.c_dim === 0 ? 0 : (config.cmap_dim ?? this.channels[4]);
    for (const r of blockResolutions) {
      const inC = r < res ? this.channels[r] : 0;
      this.blocks.push(new DiscriminatorBlock(store, `b${r}`, inC, this.channels[r], this.channels[r / 2], r, config.img_channels, config));
    }
    this.mapping =
      config.c_dim > 0
        ? new MappingNetwork(store, MAPPING, {
            z_dim: 0,
            c_dim: config.c_dim,
            w_dim: this.cmapDim,
            num_layers: config.mapping_kwargs.num_layers,
            embed_features: null,
            layer_features: null,
            activation: "lrelu",
            lr_multiplier: config.mapping_kwargs.lr_multiplier,
            w_avg_beta: null,
          })
        : null;
    this.epilogue = new DiscriminatorEpilogue(store, "b4", this.channels[4], this.cmapDim, 4, config);
  }

  /** Upstream's initialisation: weights N(0,1) (mapping FC weights N(0,1)/lr_multiplier), biases 0. Deterministic per seed. */
  static randomInit(config: DiscriminatorConfig, seed: number): StyleGAN2Discriminator {
    const store = new ParamStore(randomSource(config, seed));
    try {
      return new StyleGAN2Discriminator(config, store);
    } catch (e) {
      store.dispose();
      throw e;
    }
  }

  static fromStateDict(config: DiscriminatorConfig, sd: StateDict, file = "D"): StyleGAN2Discriminator {
    return loadStrict(sd, file, (source) => {
      const store = new ParamStore(source);
      try {
        return new StyleGAN2Discriminator(config, store);
      } catch (e) {
        store.dispose();
        throw e;
      }
    });
  }

  /** img: [N, H, W, img_channels] in [-1, 1]; c: [N, c_dim] (one-hot) when conditional. Returns logits [N, 1]. */
  apply(img: tf.Tensor4D, c: tf.Tensor2D | null = null): tf.Tensor2D {
    const { img_resolution: r, img_channels, c_dim } = this.config;
    if (img.shape[1] !== r || img.shape[2] !== r || img.shape[3] !== img_channels)
      throw new Error(`discriminator: expected images [N, ${r}, ${r}, ${img_channels}], got [${img.shape}]`);
    if (c_dim > 0 && (!c || c.shape[1] !== c_dim)) throw new Error(`discriminator: class-conditional (c_dim ${c_dim}); pass c [N, ${c_dim}]`);
    return tf.tidy(() => {
      let x: tf.Tensor4D | null = null;
      for (const b of this.blocks) x = b.apply(x, img);
      const n = img.shape[0];
      const cmap = this.mapping ? (tf.reshape(this.mapping.apply(null, tf.reshape(tf.cast(c!, "float32"), [n, 1, 1, -1])), [n, this.cmapDim]) as tf.Tensor2D) : null;
      return this.epilogue.apply(x ?? img, cmap);
    });
  }
}

function randomSource(cfg: DiscriminatorConfig, seed: number): ParamSource {
  let k = 0;
  const lr = cfg.mapping_kwargs.lr_multiplier;
  return (name, shape) => {
    const s = [...shape];
    const slotSeed = seed * 1_000_003 + 7919 * k++;
    if (name.endsWith(`.${RESAMPLE_FILTER}`)) return setupFilter(cfg.resample_filter);
    if (mappingKeys.fcIndex(name) !== undefined) return tf.randomNormal(s, 0, 1 / lr, "float32", slotSeed);
    if (name.endsWith(".bias")) return tf.zeros(s);
    return tf.randomNormal(s, 0, 1, "float32", slotSeed);
  };
}
