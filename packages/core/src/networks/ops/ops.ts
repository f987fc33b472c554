/**
 * The op interface every network is written against (see docs/design/networks.md).
 *
 * A layer class registers its parameters once, under their official names, through `param()`, and writes its
 * forward once with the primitive ops below. Two implementations run it:
 * - `ParamStore` (eager TF.js): parameters are tf.Variables, ops are TF.js kernels. Training and the tfjs engine.
 * - `GraphOps` (ONNX graph builder): parameters are constants read strictly from a state dict, ops append ONNX
 *   nodes. The ONNX export of a model is its ordinary forward run against a GraphOps.
 *
 * Tensors are NHWC in this interface whatever the implementation keeps inside (the graph is NCHW). Shapes are
 * logical [N, H, W, C] for feature maps, [N, C] for vectors; `null` marks a size only known at run time.
 */
import type { Activation } from "../common/bias_act.ts";

/** What a value is for; random initialisation and importers pick defaults from it. */
export type ParamRole = "conv.weight" | "conv.bias" | "norm.weight" | "norm.bias" | "norm.running_mean" | "norm.running_var";

/**
 * The official layout of a parameter, which tells an implementation how to store it: "OIHW" (Conv2d weight),
 * "IOHW" (ConvTranspose2d weight), "OI" (Linear weight), "CHW" (a learned [C, H, W] map), "plain" (vectors,
 * scalars, anything used as is; StyleGAN2's equalized-lr weights keep their official layout this way).
 */
export type ParamLayout = "OIHW" | "IOHW" | "OI" | "CHW" | "plain";

export interface ParamOptions {
  layout?: ParamLayout;
  /** False for buffers (running stats, spectral-norm vectors): never handed to an optimiser. */
  trainable?: boolean;
}

export type Shape = readonly (number | null)[];

export interface ConvOptions {
  stride: number;
  /** Zero padding on every side, PyTorch's integer `padding`. */
  padding: number;
}

export interface ConvTransposeOptions extends ConvOptions {
  outputPadding: number;
}

/** A spectral-normed weight (`torch.nn.utils.spectral_norm`, dim 0): weight_orig and its stored u, v. */
export interface SpectralParams<P> {
  orig: P;
  u: P;
  v: P;
}

/** StyleGAN2's `bias_act` activations, with their variance-preserving gains (networks/common/bias_act.ts). */
export type { Activation };

export interface BiasActOptions {
  act: Activation;
  /** Multiplies the activation's output (StyleGAN2: the activation's own gain times a layer gain). */
  gain: number;
  /** Symmetric clamp after the gain; null: none. */
  clamp: number | null;
}

/** StyleGAN2's `modulated_conv2d` (and `conv2d_resample`) options. */
export interface ModulatedConvOptions<P> {
  demodulate: boolean;
  /** 1, or 2: transposed conv then the FIR `filter` (gain up²), as conv2d_resample does. */
  up: number;
  padding: number;
  /** The 2-D resampling filter (a registered `resample_filter` buffer); required when up > 1. */
  filter?: P;
}

export interface BatchNormParams<P> {
  mean: P;
  variance: P;
  weight?: P;
  bias?: P;
  eps: number;
}

/**
 * A backend: a parameter registry plus the primitive ops. `T` is a tensor (or graph value), `P` a parameter
 * handle. Every op takes and returns NHWC feature maps unless it says otherwise.
 */
export interface Ops<T, P> {
  readonly mode: "eager" | "graph";
  /** Registers a parameter under its official name and shape (in the official layout); throws on duplicates. */
  param(name: string, officialShape: readonly number[], role: ParamRole, opts?: ParamOptions): P;
  /** Registers an int64 buffer the forward never reads (BatchNorm num_batches_tracked). */
  counter(name: string): void;
  shape(x: T): Shape;

  conv2d(x: T, weight: P, bias: P | undefined, o: ConvOptions): T;
  /**
   * conv2d with the eval weight weight_orig / sigma, sigma = u · (W.reshape(out, -1) @ v) from the stored u, v.
   * `training`: a training forward, where the eager side may compute sigma with its training kernels (equal to
   * float32 rounding; engine/spectral.ts); eval and export leave it out.
   */
  spectralConv2d(x: T, weight: SpectralParams<P>, bias: P | undefined, o: ConvOptions & { training?: boolean }): T;
  /** nn.ConvTranspose2d with PyTorch's output size (H-1)*stride - 2*padding + k + output_padding. */
  convTranspose2d(x: T, weight: P, bias: P | undefined, o: ConvTransposeOptions): T;
  /** Per-sample, per-channel normalisation over H and W (biased variance), optional affine. */
  instanceNorm(x: T, eps: number, weight?: P, bias?: P): T;
  /** Running statistics in eval; batch statistics (over N, H, W) when `training`. */
  batchNorm(x: T, p: BatchNormParams<P>, training: boolean): T;
  reflectPad(x: T, pad: number): T;
  /** nn.Linear on a vector held as an [N, 1, 1, in] map → [N, 1, 1, out]; the weight is "OI" ([out, in]). */
  linear(x: T, weight: P, bias: P | undefined): T;
  /** PyTorch's `.view(-1, c, h, w)` of an [N, 1, 1, c·h·w] vector (NCHW element order) → NHWC [N, h, w, c]. */
  unflatten(x: T, c: number, h: number, w: number): T;
  relu(x: T): T;
  leakyRelu(x: T, alpha: number): T;
  tanh(x: T): T;
  sigmoid(x: T): T;
  /** Elementwise sum. */
  plus(a: T, b: T): T;
  /** Elementwise product (broadcasting as NumPy). */
  mul(a: T, b: T): T;
  addScalar(x: T, c: number): T;
  /** PyTorch's legacy `F.interpolate(mode='nearest')` to (h, w): `min(floor(dst * float32(in/out)), in-1)`. */
  resizeNearest(x: T, h: number, w: number): T;
  /** `nn.Upsample(scale_factor=2)`, nearest; `training` picks a form with gradients on every backend. */
  upsampleNearest2x(x: T, training: boolean): T;
  /**
   * Runs `fn` in a memory scope: eager frees every intermediate tensor but the result (tf.tidy); `keep` marks a
   * value to outlive the scope it is made in (tf.keep). The graph side just runs `fn`.
   */
  scope<R extends T>(fn: () => R): R;
  keep(x: T): T;
  release(x: T): void;
  /** Concatenation along channels. */
  concat(xs: readonly T[]): T;
  /** Inverted dropout when `training`, identity otherwise. */
  dropout(x: T, rate: number, training: boolean): T;

  // StyleGAN2's primitives (stylegan2-ada-pytorch's torch_utils/ops), vectors held as [N, 1, 1, C] maps.
  /** `FullyConnectedLayer` without its activation: x @ (weight · weightGain)ᵀ + bias · biasGain; weight "plain" [out, in]. */
  fullyConnected(x: T, weight: P, bias: P | undefined, o: { weightGain: number; biasGain: number }): T;
  /** `bias_act`: + per-channel bias, activation, × gain, clamp. */
  biasAct(x: T, bias: P | undefined, o: BiasActOptions): T;
  /** `normalize_2nd_moment` of a vector: x · rsqrt(mean over channels of x² + eps). */
  normalize2ndMoment(x: T, eps: number): T;
  /** Channels split into `parts` equal chunks (a list of ws held as one [N, 1, 1, K·C] vector). */
  splitChannels(x: T, parts: number): T[];
  /** A parameter of official shape [C, H, W] ("CHW" layout), or [H, W] when c is 1, as an NHWC [1, H, W, C] map. */
  paramMap(p: P, c: number, h: number, w: number): T;
  /** x times a scalar parameter. */
  mulParam(x: T, p: P): T;
  mulScalar(x: T, c: number): T;
  /**
   * Unit normal noise [N, h, w, 1], N from `like`'s batch. Eager: drawn from `seed` (the same seed, the same
   * noise). Graph: the next graph input `noise_<k>` (NCHW [N, 1, h, w]), for the caller to draw from its seed.
   */
  noise(like: T, h: number, w: number, seed: number): T;
  /**
   * `modulated_conv2d` (weight "OIHW", styles [N, 1, 1, I]) in its per-sample form: scale the input by the
   * styles, one conv with the shared weight, scale the output by the demodulation coefficients. `filter` is a P.
   */
  modulatedConv2d(x: T, weight: P, styles: T, o: ModulatedConvOptions<P>): T;
  /** `conv2d_resample` of weight · weightGain (weight "OIHW"), up or down by the FIR `filter`; no bias. */
  resampleConv2d(x: T, weight: P, filter: P, o: { up: number; down: number; padding: number; weightGain: number }): T;
  /** `upfirdn2d.upsample2d`: 2x FIR up-sampling (gain 4), output exactly 2H × 2W. */
  upsample2d(x: T, filter: P): T;
}

/**
 * NVlabs' `misc.assert_shape` at a layer boundary: `expected` has one entry per axis, null where any size goes.
 * Fails with the layer's official name, so a wrong config is reported where it goes wrong, at build time when the
 * graph is exported and at the first forward in eager mode.
 */
export function assertShape<T>(ops: Pick<Ops<T, unknown>, "shape">, x: T, expected: readonly (number | null)[], layer: string): void {
  const got = ops.shape(x);
  const ok = got.length === expected.length && expected.every((e, i) => e === null || got[i] === null || got[i] === e);
  if (!ok) throw new Error(`${layer}: expected shape [${expected.map((e) => e ?? "*")}], got [${got.map((g) => g ?? "?")}]`);
}
