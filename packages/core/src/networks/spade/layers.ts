/**
 * SPADE building blocks on NHWC tensors. Each class owns the parameters under its official state_dict prefix
 * (`<block>.norm_0.mlp_shared.0.weight`, `<block>.conv_0.weight_orig`, ...).
 */
import * as tf from "@tensorflow/tfjs-core";
import { Conv2d } from "../common/conv.ts";
import { BatchNorm2d, InstanceNorm2d, type NormLayer, RUNNING_MEAN } from "../common/norm.ts";
import type { ParamStore } from "../common/param-store.ts";
import { SpectralConv2d } from "../common/spectral-norm.ts";
import { assertShape, type Ops } from "../ops/ops.ts";
import type { SpadeConfig } from "./config.ts";

/**
 * Official child names of SPADE's norm and resnet block, spelled only here: the layers register under them and
 * config inference reads a checkpoint through `spadeNormKeys` / `resnetBlockKeys`.
 */
const PARAM_FREE_NORM = "param_free_norm";
const MLP_SHARED = "mlp_shared";
const MLP_GAMMA = "mlp_gamma";
const MLP_BETA = "mlp_beta";
const CONV = { c0: "conv_0", c1: "conv_1", s: "conv_s" } as const;
const NORM = { n0: "norm_0", n1: "norm_1", s: "norm_s" } as const;

export const spadeNormKeys = {
  /** mlp_shared is nn.Sequential(conv, ReLU): its conv is element 0, [nhidden, semantic_nc, k, k]. */
  sharedConvWeight: (norm: string) => `${norm}.${MLP_SHARED}.0.weight`,
  /** Present only when the param-free norm is a BatchNorm (norm_G "...syncbatch..."). */
  paramFreeRunningMean: (norm: string) => `${norm}.${PARAM_FREE_NORM}.${RUNNING_MEAN}`,
};

export const resnetBlockKeys = {
  /** The block's first conv (fin → min(fin, fout)) and the SPADE norm before it. */
  firstConv: (block: string) => `${block}.${CONV.c0}`,
  firstNorm: (block: string) => `${block}.${NORM.n0}`,
  /** The block's convs in registration order: conv_0, conv_1, and conv_s when fin != fout (learned shortcut). */
  convs: (block: string, fin: number, fout: number) => [CONV.c0, CONV.c1, ...(fin !== fout ? [CONV.s] : [])].map((c) => `${block}.${c}`),
};

/** Receives a param-free BatchNorm and its input batch during a training forward. */
export type BatchNormHook = (norm: BatchNorm2d, x: tf.Tensor4D) => void;

/** Per-forward context: the full-resolution segmap and its resized copies (every SPADE layer of a size shares one). */
export class SegContext<T = tf.Tensor4D> {
  private readonly cache = new Map<string, T>();
  constructor(
    private readonly ops: Ops<T, unknown>,
    readonly segmap: T,
    readonly training: boolean,
    readonly onBatchNorm?: BatchNormHook,
  ) {}
  /** The first request happens inside some layer's scope, so the copy is kept until `dispose()`. */
  at(h: number, w: number): T {
    const key = `${h}x${w}`;
    let s = this.cache.get(key);
    if (!s) {
      s = this.ops.resizeNearest(this.segmap, h, w);
      if (s !== this.segmap) this.ops.keep(s);
      this.cache.set(key, s);
    }
    return s;
  }
  dispose(): void {
    for (const s of this.cache.values()) if (s !== this.segmap) this.ops.release(s);
    this.cache.clear();
  }
}

export type AnyConv<T = tf.Tensor4D, P = tf.Variable> = Conv2d<T, P> | SpectralConv2d<T, P>;

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
export class SpadeNorm<T = tf.Tensor4D, P = tf.Variable> {
  readonly param_free_norm: NormLayer<T>;
  readonly mlp_shared: Conv2d<T, P>;
  readonly mlp_gamma: Conv2d<T, P>;
  readonly mlp_beta: Conv2d<T, P>;

  constructor(
    private readonly ops: Ops<T, P>,
    readonly name: string,
    readonly channels: number,
    config: SpadeConfig,
  ) {
    const { paramFree, kernel } = config.spade;
    const pad = Math.floor(kernel / 2);
    this.param_free_norm =
      paramFree === "instance"
        ? new InstanceNorm2d(ops, `${name}.${PARAM_FREE_NORM}`, channels, { affine: false })
        : new BatchNorm2d(ops, `${name}.${PARAM_FREE_NORM}`, channels, { affine: false });
    // mlp_shared is nn.Sequential(conv, ReLU): the conv is its element 0.
    this.mlp_shared = new Conv2d(ops, `${name}.${MLP_SHARED}.0`, config.semantic_nc, config.spade_nhidden, kernel, { padding: pad });
    this.mlp_gamma = new Conv2d(ops, `${name}.${MLP_GAMMA}`, config.spade_nhidden, channels, kernel, { padding: pad });
    this.mlp_beta = new Conv2d(ops, `${name}.${MLP_BETA}`, config.spade_nhidden, channels, kernel, { padding: pad });
  }

  apply(x: T, seg: SegContext<T>): T {
    const o = this.ops;
    assertShape(o, x, [null, null, null, this.channels], this.name);
    return o.scope(() => {
      const [, h, w] = o.shape(x) as number[];
      if (seg.training && seg.onBatchNorm && this.param_free_norm instanceof BatchNorm2d) seg.onBatchNorm(this.param_free_norm as BatchNorm2d, x as tf.Tensor4D);
      const normalized = this.param_free_norm.apply(x, seg.training);
      const actv = o.relu(this.mlp_shared.apply(seg.at(h, w)));
      const gamma = this.mlp_gamma.apply(actv);
      const beta = this.mlp_beta.apply(actv);
      return o.plus(o.mul(normalized, o.addScalar(gamma, 1)), beta);
    });
  }
}

/**
 * SPADEResnetBlock: out = shortcut(x) + conv_1(lrelu(norm_1(conv_0(lrelu(norm_0(x)))))), where the shortcut is
 * conv_s(norm_s(x)) (1x1, no bias) when fin != fout and the identity otherwise. The middle width is min(fin, fout).
 */
export class SpadeResnetBlock<T = tf.Tensor4D, P = tf.Variable> {
  readonly learnedShortcut: boolean;
  readonly outChannels: number;
  readonly conv_0: AnyConv<T, P>;
  readonly conv_1: AnyConv<T, P>;
  readonly conv_s?: AnyConv<T, P>;
  readonly norm_0: SpadeNorm<T, P>;
  readonly norm_1: SpadeNorm<T, P>;
  readonly norm_s?: SpadeNorm<T, P>;

  constructor(
    private readonly ops: Ops<T, P>,
    readonly name: string,
    fin: number,
    fout: number,
    config: SpadeConfig,
  ) {
    this.outChannels = fout;
    this.learnedShortcut = fin !== fout;
    const fmiddle = Math.min(fin, fout);
    const conv = (leaf: string, cin: number, cout: number, k: number, bias: boolean): AnyConv<T, P> =>
      config.spade.spectral
        ? new SpectralConv2d(ops, `${name}.${leaf}`, cin, cout, k, { padding: Math.floor(k / 2), bias })
        : new Conv2d(ops, `${name}.${leaf}`, cin, cout, k, { padding: Math.floor(k / 2), bias });
    // Upstream builds the convs before the norms; keeping that order keeps stateDict() in state_dict order.
    this.conv_0 = conv(CONV.c0, fin, fmiddle, 3, true);
    this.conv_1 = conv(CONV.c1, fmiddle, fout, 3, true);
    if (this.learnedShortcut) this.conv_s = conv(CONV.s, fin, fout, 1, false);
    this.norm_0 = new SpadeNorm(ops, `${name}.${NORM.n0}`, fin, config);
    this.norm_1 = new SpadeNorm(ops, `${name}.${NORM.n1}`, fmiddle, config);
    if (this.learnedShortcut) this.norm_s = new SpadeNorm(ops, `${name}.${NORM.s}`, fin, config);
  }

  spectralConvs(): SpectralConv2d<T, P>[] {
    return [this.conv_0, this.conv_1, this.conv_s].filter((c): c is SpectralConv2d<T, P> => c instanceof SpectralConv2d);
  }

  apply(x: T, seg: SegContext<T>): T {
    const o = this.ops;
    const conv = (c: AnyConv<T, P>, t: T) => (c instanceof SpectralConv2d ? c.apply(t, seg.training) : c.apply(t));
    return o.scope(() => {
      const xs = this.conv_s && this.norm_s ? conv(this.conv_s, this.norm_s.apply(x, seg)) : x;
      const dx = conv(this.conv_0, o.leakyRelu(this.norm_0.apply(x, seg), 0.2));
      const dy = conv(this.conv_1, o.leakyRelu(this.norm_1.apply(dx, seg), 0.2));
      return o.plus(xs, dy);
    });
  }
}
