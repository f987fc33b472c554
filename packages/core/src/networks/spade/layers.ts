/**
 * SPADE building blocks on NHWC tensors. Each class owns the parameters under its official state_dict prefix
 * (`<block>.norm_0.mlp_shared.0.weight`, `<block>.conv_0.weight_orig`, ...).
 */
import * as tf from "@tensorflow/tfjs-core";
import { Conv2d } from "../common/conv.ts";
import { resizeNearestLegacy } from "../common/nearest-resize.ts";
import { BatchNorm2d, InstanceNorm2d, type NormLayer } from "../common/norm.ts";
import type { ParamStore } from "../common/param-store.ts";
import { SpectralConv2d } from "../common/spectral-norm.ts";
import type { SpadeConfig } from "./config.ts";


export const lrelu = (x: tf.Tensor4D) => tf.leakyRelu(x, 0.2);

/** Receives a param-free BatchNorm and its input batch during a training forward. */
export type BatchNormHook = (norm: BatchNorm2d, x: tf.Tensor4D) => void;

/** Per-forward context: the full-resolution segmap and its resized copies (every SPADE layer of a size shares one). */
export class SegContext {
  private readonly cache = new Map<string, tf.Tensor4D>();
  constructor(
    readonly segmap: tf.Tensor4D,
    readonly training: boolean,
    readonly onBatchNorm?: BatchNormHook,
  ) {}
  /** The first request happens inside some layer's tidy, so the copy is kept until `dispose()`. */
  at(h: number, w: number): tf.Tensor4D {
    const key = `${h}x${w}`;
    let s = this.cache.get(key);
    if (!s) {
      s = resizeNearestLegacy(this.segmap, h, w);
      if (s !== this.segmap) tf.keep(s);
      this.cache.set(key, s);
    }
    return s;
  }
  dispose(): void {
    for (const s of this.cache.values()) if (s !== this.segmap) s.dispose();
    this.cache.clear();
  }
}

export type AnyConv = Conv2d | SpectralConv2d;

/** nn.Linear; the weight variable is [in, out] (official [out, in]) so the forward is a plain matMul. */
export class Linear {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;
  constructor(
    store: ParamStore,
    readonly name: string,
    readonly inFeatures: number,
    readonly outFeatures: number,
  ) {
    // ParamRole has no linear roles; a linear layer initialises and loads like a 1x1 conv.
    this.weight = store.add(`${name}.weight`, [outFeatures, inFeatures], "conv.weight", { perm: [1, 0] });
    this.bias = store.add(`${name}.bias`, [outFeatures], "conv.bias");
  }
  apply(x: tf.Tensor2D): tf.Tensor2D {
    return tf.add(tf.matMul(x, this.weight as tf.Tensor2D), this.bias);
  }
}

/**
 * SPADE: parameter-free norm of x (BatchNorm with running stats, or InstanceNorm), then a per-pixel affine
 * predicted from the segmap resized (legacy nearest) to x's size: x_norm * (1 + gamma) + beta.
 */
export class SpadeNorm {
  readonly param_free_norm: NormLayer;
  readonly mlp_shared: Conv2d;
  readonly mlp_gamma: Conv2d;
  readonly mlp_beta: Conv2d;

  constructor(store: ParamStore, readonly name: string, channels: number, config: SpadeConfig) {
    const { paramFree, kernel } = config.spade;
    const pad = Math.floor(kernel / 2);
    this.param_free_norm =
      paramFree === "instance"
        ? new InstanceNorm2d(store, `${name}.param_free_norm`, channels, { affine: false })
        : new BatchNorm2d(store, `${name}.param_free_norm`, channels, { affine: false });
    // mlp_shared is nn.Sequential(conv, ReLU): the conv is its element 0.
    this.mlp_shared = new Conv2d(store, `${name}.mlp_shared.0`, config.semantic_nc, config.spade_nhidden, kernel, { padding: pad });
    this.mlp_gamma = new Conv2d(store, `${name}.mlp_gamma`, config.spade_nhidden, channels, kernel, { padding: pad });
    this.mlp_beta = new Conv2d(store, `${name}.mlp_beta`, config.spade_nhidden, channels, kernel, { padding: pad });
  }

  apply(x: tf.Tensor4D, seg: SegContext): tf.Tensor4D {
    return tf.tidy(() => {
      const [, h, w] = x.shape;
      if (seg.training && seg.onBatchNorm && this.param_free_norm instanceof BatchNorm2d) seg.onBatchNorm(this.param_free_norm, x);
      const normalized = this.param_free_norm.apply(x, seg.training);
      const actv = tf.relu(this.mlp_shared.apply(seg.at(h, w)));
      const gamma = this.mlp_gamma.apply(actv);
      const beta = this.mlp_beta.apply(actv);
      return tf.add(tf.mul(normalized, tf.add(gamma, 1)), beta);
    });
  }
}

/**
 * SPADEResnetBlock: out = shortcut(x) + conv_1(lrelu(norm_1(conv_0(lrelu(norm_0(x)))))), where the shortcut is
 * conv_s(norm_s(x)) (1x1, no bias) when fin != fout and the identity otherwise. The middle width is min(fin, fout).
 */
export class SpadeResnetBlock {
  readonly learnedShortcut: boolean;
  readonly conv_0: AnyConv;
  readonly conv_1: AnyConv;
  readonly conv_s?: AnyConv;
  readonly norm_0: SpadeNorm;
  readonly norm_1: SpadeNorm;
  readonly norm_s?: SpadeNorm;

  constructor(store: ParamStore, readonly name: string, fin: number, fout: number, config: SpadeConfig) {
    this.learnedShortcut = fin !== fout;
    const fmiddle = Math.min(fin, fout);
    const conv = (leaf: string, cin: number, cout: number, k: number, bias: boolean): AnyConv =>
      config.spade.spectral
        ? new SpectralConv2d(store, `${name}.${leaf}`, cin, cout, k, { padding: Math.floor(k / 2), bias })
        : new Conv2d(store, `${name}.${leaf}`, cin, cout, k, { padding: Math.floor(k / 2), bias });
    // Upstream builds the convs before the norms; keeping that order keeps stateDict() in state_dict order.
    this.conv_0 = conv("conv_0", fin, fmiddle, 3, true);
    this.conv_1 = conv("conv_1", fmiddle, fout, 3, true);
    if (this.learnedShortcut) this.conv_s = conv("conv_s", fin, fout, 1, false);
    this.norm_0 = new SpadeNorm(store, `${name}.norm_0`, fin, config);
    this.norm_1 = new SpadeNorm(store, `${name}.norm_1`, fmiddle, config);
    if (this.learnedShortcut) this.norm_s = new SpadeNorm(store, `${name}.norm_s`, fin, config);
  }

  spectralConvs(): SpectralConv2d[] {
    return [this.conv_0, this.conv_1, this.conv_s].filter((c): c is SpectralConv2d => c instanceof SpectralConv2d);
  }

  apply(x: tf.Tensor4D, seg: SegContext): tf.Tensor4D {
    return tf.tidy(() => {
      const xs = this.conv_s && this.norm_s ? this.conv_s.apply(this.norm_s.apply(x, seg)) : x;
      const dx = this.conv_0.apply(lrelu(this.norm_0.apply(x, seg)));
      const dy = this.conv_1.apply(lrelu(this.norm_1.apply(dx, seg)));
      return tf.add(xs, dy);
    });
  }
}
