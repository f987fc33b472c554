/**
 * StyleGAN2 building blocks as described in Karras et al. 2020 ("Analyzing and Improving the Image Quality of
 * StyleGAN") and its ADA follow-up: equalized-learning-rate layers, weight (de)modulation, per-pixel noise.
 * Each class owns its parameters under the official state_dict names (via ParamStore) so a PyTorch checkpoint
 * loads by name and `stateDict()` writes back something the official code loads strictly.
 *
 * Layout: activations are NHWC; conv weights are kept HWIO (official OIHW, permuted once at load); FC weights
 * keep the official [out, in] layout (matMul with transposeB costs nothing extra).
 *
 * Equalized learning rate: weights are stored at unit scale and multiplied by their He gain at every use, so
 * optimisers see well-conditioned parameters; a trainer must keep doing the same.
 */
import * as tf from "@tensorflow/tfjs-core";
import { biasAct, ACTIVATIONS, type Activation } from "../common/bias_act.ts";
import { conv2dResample } from "../common/conv2d_resample.ts";
import type { ParamStore } from "../common/param-store.ts";

/** OIHW → HWIO. */
export const OIHW_TO_HWIO = [2, 3, 1, 0];
/** CHW → HWC (the b4 `const`). */
export const CHW_TO_HWC = [1, 2, 0];

export type NoiseMode = "const" | "random" | "none";

export interface LayerRunOptions {
  noiseMode: NoiseMode;
  /** Seed for noiseMode "random"; each layer offsets it by its own index, so a seed reproduces an image. */
  noiseSeed: number;
}

function normalize2ndMoment(x: tf.Tensor2D, eps = 1e-8): tf.Tensor2D {
  return tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), 1, true), eps)));
}
export { normalize2ndMoment };

export class FullyConnectedLayer {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable | null;
  private readonly weightGain: number;
  private readonly biasGain: number;

  constructor(
    store: ParamStore,
    readonly prefix: string,
    readonly inFeatures: number,
    readonly outFeatures: number,
    readonly opts: { bias?: boolean; activation?: Activation; lrMultiplier?: number } = {},
  ) {
    const lr = opts.lrMultiplier ?? 1;
    this.weight = store.add(`${prefix}.weight`, [outFeatures, inFeatures], "conv.weight");
    this.bias = (opts.bias ?? true) ? store.add(`${prefix}.bias`, [outFeatures], "conv.bias") : null;
    this.weightGain = lr / Math.sqrt(inFeatures);
    this.biasGain = lr;
  }

  apply(x: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const w = this.weightGain === 1 ? this.weight : tf.mul(this.weight, this.weightGain);
      const b = this.bias && (this.biasGain === 1 ? this.bias : tf.mul(this.bias, this.biasGain));
      const y = tf.matMul(x, w as tf.Tensor2D, false, true) as tf.Tensor2D;
      return biasAct(y, b, { act: this.opts.activation ?? "linear" });
    });
  }
}

export interface ModConvOptions {
  demodulate: boolean;
  up?: number;
  padding?: number;
  f?: tf.Tensor2D | null;
  flipWeight?: boolean;
  /** Added after demodulation, before bias: [1|N, H, W, 1]. */
  noise?: tf.Tensor4D | null;
}

/**
 * Modulated convolution, computed as scale-inputs → shared conv → scale-outputs. That equals modulating the
 * weight per sample (what upstream's fused grouped conv does) up to float rounding (~5e-6), keeps one conv for
 * the whole batch and needs no grouped conv, which TF.js lacks.
 *
 * x: [N,H,W,I]; weight: HWIO; styles: [N,I].
 */
export function modulatedConv2d(x: tf.Tensor4D, weight: tf.Tensor4D, styles: tf.Tensor2D, opts: ModConvOptions): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, inC] = styles.shape;
    const outC = weight.shape[3];
    let y = tf.mul(x, tf.reshape(styles, [n, 1, 1, inC])) as tf.Tensor4D;
    y = conv2dResample(y, weight, { f: opts.f, up: opts.up, padding: opts.padding, flipWeight: opts.flipWeight });
    if (opts.demodulate) {
      // sum over (i, kh, kw) of (W*s)^2 = s^2 · sum_{kh,kw} W^2, one small matmul instead of an N-fold weight.
      const wsq = tf.sum(tf.square(weight), [0, 1]) as tf.Tensor2D; // [I, O]
      const d = tf.rsqrt(tf.add(tf.matMul(tf.square(styles), wsq), 1e-8));
      y = tf.mul(y, tf.reshape(d, [n, 1, 1, outC]));
    }
    if (opts.noise) y = tf.add(y, opts.noise);
    return y;
  });
}

export class SynthesisLayer {
  readonly weight: tf.Variable;
  readonly noiseStrength: tf.Variable | null;
  readonly bias: tf.Variable;
  readonly resampleFilter: tf.Variable;
  readonly noiseConst: tf.Variable | null;
  readonly affine: FullyConnectedLayer;
  private readonly padding: number;
  private readonly activation: Activation;

  constructor(
    store: ParamStore,
    readonly prefix: string,
    readonly inChannels: number,
    readonly outChannels: number,
    wDim: number,
    readonly resolution: number,
    readonly opts: {
      kernelSize?: number;
      up?: number;
      useNoise?: boolean;
      activation?: Activation;
      resampleFilterShape: number[];
      convClamp?: number | null;
      /** Distinguishes this layer's random noise from its siblings' under one seed. */
      noiseIndex: number;
    },
  ) {
    const k = opts.kernelSize ?? 3;
    this.padding = Math.floor(k / 2);
    this.activation = opts.activation ?? "lrelu";
    // Insertion order mirrors PyTorch's state_dict order (own params, own buffers, then children).
    this.weight = store.add(`${prefix}.weight`, [outChannels, inChannels, k, k], "conv.weight", { perm: OIHW_TO_HWIO });
    this.noiseStrength = (opts.useNoise ?? true) ? store.add(`${prefix}.noise_strength`, [], "conv.bias") : null;
    this.bias = store.add(`${prefix}.bias`, [outChannels], "conv.bias");
    this.resampleFilter = store.add(`${prefix}.resample_filter`, opts.resampleFilterShape, "norm.running_mean", { trainable: false });
    this.noiseConst = (opts.useNoise ?? true)
      ? store.add(`${prefix}.noise_const`, [resolution, resolution], "norm.running_mean", { trainable: false })
      : null;
    this.affine = new FullyConnectedLayer(store, `${prefix}.affine`, wDim, inChannels, { bias: true });
  }

  apply(x: tf.Tensor4D, w: tf.Tensor2D, run: LayerRunOptions, gain = 1): tf.Tensor4D {
    return tf.tidy(() => {
      const n = x.shape[0];
      const styles = this.affine.apply(w);
      let noise: tf.Tensor4D | null = null;
      if (this.noiseStrength && this.noiseConst && run.noiseMode !== "none") {
        const r = this.resolution;
        const base =
          run.noiseMode === "const"
            ? tf.reshape(this.noiseConst, [1, r, r, 1])
            : tf.randomNormal([n, r, r, 1], 0, 1, "float32", run.noiseSeed * 1009 + this.opts.noiseIndex);
        noise = tf.mul(base, this.noiseStrength) as tf.Tensor4D;
      }
      const up = this.opts.up ?? 1;
      const y = modulatedConv2d(x, this.weight as tf.Tensor4D, styles, {
        demodulate: true,
        up,
        padding: this.padding,
        f: this.resampleFilter as tf.Tensor2D,
        flipWeight: up === 1,
        noise,
      });
      const clamp = this.opts.convClamp != null ? this.opts.convClamp * gain : null;
      return biasAct(y, this.bias, { act: this.activation, gain: ACTIVATIONS[this.activation].gain * gain, clamp });
    });
  }
}

export class ToRGBLayer {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;
  readonly affine: FullyConnectedLayer;
  private readonly weightGain: number;

  constructor(
    store: ParamStore,
    readonly prefix: string,
    inChannels: number,
    outChannels: number,
    wDim: number,
    readonly opts: { kernelSize?: number; convClamp?: number | null } = {},
  ) {
    const k = opts.kernelSize ?? 1;
    this.weight = store.add(`${prefix}.weight`, [outChannels, inChannels, k, k], "conv.weight", { perm: OIHW_TO_HWIO });
    this.bias = store.add(`${prefix}.bias`, [outChannels], "conv.bias");
    this.affine = new FullyConnectedLayer(store, `${prefix}.affine`, wDim, inChannels, { bias: true });
    // Without demodulation the He gain has to come from somewhere; upstream folds it into the style.
    this.weightGain = 1 / Math.sqrt(inChannels * k * k);
  }

  apply(x: tf.Tensor4D, w: tf.Tensor2D): tf.Tensor4D {
    return tf.tidy(() => {
      const styles = tf.mul(this.affine.apply(w), this.weightGain) as tf.Tensor2D;
      const y = modulatedConv2d(x, this.weight as tf.Tensor4D, styles, { demodulate: false });
      return biasAct(y, this.bias, { act: "linear", clamp: this.opts.convClamp ?? null });
    });
  }
}

/** Equalized-lr conv with optional FIR up/down sampling (the resnet skip path; the discriminator's layers). */
export class Conv2dLayer {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable | null;
  readonly resampleFilter: tf.Variable;
  private readonly weightGain: number;
  private readonly padding: number;

  constructor(
    store: ParamStore,
    readonly prefix: string,
    inChannels: number,
    outChannels: number,
    kernelSize: number,
    readonly opts: {
      bias?: boolean;
      activation?: Activation;
      up?: number;
      down?: number;
      resampleFilterShape: number[];
      convClamp?: number | null;
    },
  ) {
    this.weight = store.add(`${prefix}.weight`, [outChannels, inChannels, kernelSize, kernelSize], "conv.weight", { perm: OIHW_TO_HWIO });
    this.bias = (opts.bias ?? true) ? store.add(`${prefix}.bias`, [outChannels], "conv.bias") : null;
    this.resampleFilter = store.add(`${prefix}.resample_filter`, opts.resampleFilterShape, "norm.running_mean", { trainable: false });
    this.weightGain = 1 / Math.sqrt(inChannels * kernelSize * kernelSize);
    this.padding = Math.floor(kernelSize / 2);
  }

  apply(x: tf.Tensor4D, gain = 1): tf.Tensor4D {
    return tf.tidy(() => {
      const act = this.opts.activation ?? "linear";
      const up = this.opts.up ?? 1;
      const w = tf.mul(this.weight, this.weightGain) as tf.Tensor4D;
      const y = conv2dResample(x, w, {
        f: this.resampleFilter as tf.Tensor2D,
        up,
        down: this.opts.down ?? 1,
        padding: this.padding,
        flipWeight: up === 1,
      });
      const clamp = this.opts.convClamp != null ? this.opts.convClamp * gain : null;
      return biasAct(y, this.bias, { act, gain: ACTIVATIONS[act].gain * gain, clamp });
    });
  }
}
