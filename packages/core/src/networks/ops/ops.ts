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

/** What a value is for; random initialisation and importers pick defaults from it. */
export type ParamRole = "conv.weight" | "conv.bias" | "norm.weight" | "norm.bias" | "norm.running_mean" | "norm.running_var";

/**
 * The official layout of a parameter, which tells an implementation how to store it: "OIHW" (Conv2d weight),
 * "IOHW" (ConvTranspose2d weight), "OI" (Linear weight), "plain" (vectors, scalars, anything used as is).
 */
export type ParamLayout = "OIHW" | "IOHW" | "OI" | "plain";

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
  /** conv2d with the eval weight weight_orig / sigma, sigma = u · (W.reshape(out, -1) @ v) from the stored u, v. */
  spectralConv2d(x: T, weight: SpectralParams<P>, bias: P | undefined, o: ConvOptions): T;
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
