/**
 * The graph side of the op interface: running a network's forward against a `GraphOps` appends ONNX nodes to a
 * GraphBuilder instead of computing. Parameters are read strictly from an official state dict (a wrong config
 * shows up as a missing, unexpected or misshapen key, as in PyTorch's strict load). Values are NCHW inside the
 * graph; `shape()` reports them NHWC like the eager side. Eval only: `training` must be false.
 *
 * The ops emit the plain ONNX form of each layer (Conv, ConvTranspose, BatchNormalization, ...); inference-time
 * rewrites are graph passes (onnx/passes.ts) that `finish()` runs afterwards.
 */
import type { StateDict } from "../../checkpoints/tensor.ts";
import { A, GraphBuilder, polyphaseKernel, polyphaseUp, WeightReader } from "../../onnx/graph.ts";
import { foldAll } from "../../onnx/fold.ts";
import { optimize } from "../../onnx/passes.ts";
import type { Activation } from "../common/bias_act.ts";
import { legacyNearestIndices } from "../common/nearest-resize.ts";
import { spectralSigma } from "../common/spectral-norm.ts";
import type {
  BatchNormParams,
  BiasActOptions,
  ConvOptions,
  ConvTransposeOptions,
  ModulatedConvOptions,
  Ops,
  ParamOptions,
  ParamRole,
  Shape,
  SpectralParams,
} from "./ops.ts";

const f32 = Math.fround;

/** Every graph pass: the constant and gain folds (onnx/fold.ts), then `optimize` (onnx/passes.ts). */
export function allPasses(g: GraphBuilder): void {
  foldAll(g);
  optimize(g);
}

/** A value in the graph with its logical (NHWC) shape; null where the size is dynamic. */
export interface GValue {
  readonly id: string;
  readonly shape: Shape;
  /**
   * A vector [N, 1, 1, C] held as a 2-D [N, C] value (graph vector inputs, FullyConnected outputs): MatMul
   * chains then need no reshapes. Elementwise ops keep the flag; ops that meet a feature map expand it.
   */
  readonly flat?: boolean;
}

/** A parameter: its data in the official layout. */
export interface GConst {
  readonly name: string;
  readonly dims: readonly number[];
  readonly data: Float32Array;
}

export class GraphOps implements Ops<GValue, GConst> {
  readonly mode = "graph";
  readonly g: GraphBuilder;
  private readonly reader: WeightReader;
  private readonly names = new Set<string>();
  /** Graph inputs made by `noise()`, in call order. */
  private noiseInputs = 0;

  constructor(graphName: string, sd: StateDict, file?: string) {
    this.g = new GraphBuilder(graphName);
    this.reader = new WeightReader(sd, file);
  }

  param(name: string, officialShape: readonly number[], _role: ParamRole, _opts?: ParamOptions): GConst {
    if (this.names.has(name)) throw new Error(`duplicate parameter ${name}`);
    this.names.add(name);
    return { name, dims: [...officialShape], data: this.reader.get(name, officialShape) };
  }

  counter(name: string): void {
    this.reader.skip(name);
  }

  /** Marks a stored key as known but unused (e.g. a buffer the graph has no use for). */
  skip(name: string): void {
    this.reader.skip(name);
  }

  shape(x: GValue): Shape {
    return x.shape;
  }

  /** A graph input, NHWC [N, H, W, C] outside (null dims dynamic); the value returned is the NCHW one. */
  input(name: string, shape: Shape): GValue {
    const dims = shape.map((d, i) => d ?? "NHWC"[i]);
    const x = this.g.input(name, dims);
    return { id: this.g.toNCHW(x), shape };
  }

  /** A graph input [N, ...dims] (row-major), seen as one vector [N, 1, 1, prod(dims)]: the same memory, no copy. */
  inputVector(name: string, dims: readonly number[]): GValue {
    const c = dims.reduce((a, b) => a * b, 1);
    const x = this.g.input(name, ["N", ...dims]);
    return { id: dims.length === 1 ? x : this.g.op("Reshape", [x, this.g.i64([0, c])]), shape: [null, 1, 1, c], flat: true };
  }

  /**
   * Rejects state-dict keys nothing consumed (`ignore` excepted), names the outputs, runs the graph passes
   * (default: `allPasses`; tests run one at a time) and returns the model bytes. Outputs named in
   * `vectors` leave as [N, C] (they must be [N, 1, 1, C] vectors), the others as NHWC maps.
   */
  finish(
    outputs: Record<string, GValue>,
    docString: string,
    opts: { ignore?: (key: string) => boolean; passes?: (g: GraphBuilder) => void; vectors?: readonly string[] } = {},
  ): Uint8Array {
    this.reader.finish(opts.ignore);
    for (const [name, v] of Object.entries(outputs)) {
      if (opts.vectors?.includes(name)) this.g.output(name, v.flat ? v.id : this.g.op("Reshape", [v.id, this.g.i64([0, -1])]), ["N", v.shape[3] ?? "C"]);
      else this.g.output(name, this.g.toNHWC(this.expand(v)), v.shape.map((d, i) => d ?? "NHWC"[i]));
    }
    (opts.passes ?? allPasses)(this.g);
    return this.g.encode(docString);
  }

  private value(id: string, shape: Shape): GValue {
    return { id, shape };
  }

  /** A value of x's shape and form (elementwise ops). */
  private same(x: GValue, id: string): GValue {
    return { id, shape: x.shape, flat: x.flat };
  }

  private f32(p: GConst | undefined): string[] {
    return p ? [this.g.f32(p.name, p.dims, p.data)] : [];
  }

  conv2d(x: GValue, w: GConst, b: GConst | undefined, o: ConvOptions): GValue {
    const [cout, , kh, kw] = w.dims;
    const p = o.padding;
    const y = this.g.op("Conv", [x.id, ...this.f32(w), ...this.f32(b)], {
      kernel_shape: A.ints([kh, kw]),
      strides: A.ints([o.stride, o.stride]),
      pads: A.ints([p, p, p, p]),
      group: A.i(1),
    });
    const size = (v: number | null) => (v === null ? null : Math.floor((v + 2 * p - kh) / o.stride) + 1);
    const [n, h, wd] = x.shape;
    return this.value(y, [n, size(h), size(wd), cout]);
  }

  /** The eval weight is folded on the host: sigma from the stored u and v, rounded to float32 as torch holds it. */
  spectralConv2d(x: GValue, w: SpectralParams<GConst>, b: GConst | undefined, o: ConvOptions): GValue {
    const t = (c: GConst) => ({ dtype: "F32" as const, shape: [...c.dims], data: c.data });
    const sigma = Math.fround(spectralSigma(t(w.orig), t(w.u), t(w.v)));
    // A plain loop, not TypedArray.map with a callback: SPADE's 93 M weights went through here in ~1.8 s.
    const orig = w.orig.data;
    const data = new Float32Array(orig.length);
    for (let i = 0; i < orig.length; i++) data[i] = orig[i] / sigma;
    return this.conv2d(x, { name: w.orig.name, dims: w.orig.dims, data }, b, o);
  }

  convTranspose2d(x: GValue, w: GConst, b: GConst | undefined, o: ConvTransposeOptions): GValue {
    const [, cout, k] = w.dims;
    const p = o.padding;
    const y = this.g.op("ConvTranspose", [x.id, ...this.f32(w), ...this.f32(b)], {
      kernel_shape: A.ints([k, k]),
      strides: A.ints([o.stride, o.stride]),
      pads: A.ints([p, p, p, p]),
      output_padding: A.ints([o.outputPadding, o.outputPadding]),
    });
    const size = (v: number | null) => (v === null ? null : (v - 1) * o.stride - 2 * p + k + o.outputPadding);
    const [n, h, wd] = x.shape;
    return this.value(y, [n, size(h), size(wd), cout]);
  }

  private channels(x: GValue): number {
    const c = x.shape[3];
    if (c === null || c === undefined) throw new Error("graph value without a static channel count");
    return c;
  }

  instanceNorm(x: GValue, eps: number, weight?: GConst, bias?: GConst): GValue {
    const c = this.channels(x);
    const scale = weight ? this.f32(weight)[0] : this.g.f32("in_scale", [c], new Float32Array(c).fill(1));
    const shift = bias ? this.f32(bias)[0] : this.g.f32("in_bias", [c], new Float32Array(c));
    return this.value(this.g.op("InstanceNormalization", [x.id, scale, shift], { epsilon: A.f(eps) }), x.shape);
  }

  batchNorm(x: GValue, p: BatchNormParams<GConst>, training: boolean): GValue {
    if (training) throw new Error("an ONNX graph is eval-only: BatchNorm in training mode has no graph form");
    const c = this.channels(x);
    const scale = p.weight ? this.f32(p.weight)[0] : this.g.f32("bn_scale", [c], new Float32Array(c).fill(1));
    const shift = p.bias ? this.f32(p.bias)[0] : this.g.f32("bn_bias", [c], new Float32Array(c));
    const y = this.g.op("BatchNormalization", [x.id, scale, shift, ...this.f32(p.mean), ...this.f32(p.variance)], { epsilon: A.f(p.eps) });
    return this.value(y, x.shape);
  }

  reflectPad(x: GValue, pad: number): GValue {
    const y = this.g.op("Pad", [x.id, this.g.i64([0, 0, pad, pad, 0, 0, pad, pad])], { mode: A.s("reflect") });
    const grow = (v: number | null) => (v === null ? null : v + 2 * pad);
    return this.value(y, [x.shape[0], grow(x.shape[1]), grow(x.shape[2]), x.shape[3]]);
  }

  linear(x: GValue, w: GConst, b: GConst | undefined): GValue {
    const flat = this.g.op("Flatten", [x.id], { axis: A.i(1) });
    const y = this.g.op("Gemm", [flat, ...this.f32(w), ...this.f32(b)], { transB: A.i(1) });
    const out = w.dims[0];
    return this.value(this.g.op("Reshape", [y, this.g.i64([0, out, 1, 1])]), [x.shape[0], 1, 1, out]);
  }

  /** Graph values are NCHW already, so PyTorch's view is a plain Reshape. */
  unflatten(x: GValue, c: number, h: number, w: number): GValue {
    return this.value(this.g.op("Reshape", [x.id, this.g.i64([0, c, h, w])]), [x.shape[0], h, w, c]);
  }

  relu(x: GValue): GValue {
    return this.same(x, this.g.op("Relu", [x.id]));
  }

  sigmoid(x: GValue): GValue {
    return this.same(x, this.g.op("Sigmoid", [x.id]));
  }

  leakyRelu(x: GValue, alpha: number): GValue {
    return this.same(x, this.g.leakyRelu(x.id, alpha));
  }

  tanh(x: GValue): GValue {
    return this.same(x, this.g.op("Tanh", [x.id]));
  }

  plus(a: GValue, b: GValue): GValue {
    return this.binary("Add", a, b);
  }

  mul(a: GValue, b: GValue): GValue {
    return this.binary("Mul", a, b);
  }

  /** Broadcasting elementwise op; a flat vector meeting a feature map is expanded first. */
  private binary(op: string, a: GValue, b: GValue): GValue {
    if (a.flat === b.flat) return this.same(a, this.g.op(op, [a.id, b.id]));
    return this.value(this.g.op(op, [this.expand(a), this.expand(b)]), a.flat ? b.shape : a.shape);
  }

  addScalar(x: GValue, c: number): GValue {
    return this.same(x, this.g.op("Add", [x.id, this.g.scalar("c", c)]));
  }

  private static readonly NEAREST = { mode: A.s("nearest"), coordinate_transformation_mode: A.s("asymmetric"), nearest_mode: A.s("floor") };

  /**
   * Resize (asymmetric, floor) where the ratio is a power of two and therefore exact in float, else a Gather of
   * the host-computed legacy indices. Needs the input's static size.
   */
  resizeNearest(x: GValue, h: number, w: number): GValue {
    const [n, ih, iw, c] = x.shape;
    if (ih === null || iw === null) throw new Error("resizeNearest needs a static input size in the graph");
    if (ih === h && iw === w) return x;
    const pow2 = (v: number) => Number.isInteger(Math.log2(v));
    let y = x.id;
    if (pow2(ih / h) && pow2(iw / w)) y = this.g.op("Resize", [y, "", this.g.f32("scales", [4], Float32Array.of(1, 1, h / ih, w / iw))], GraphOps.NEAREST);
    else {
      if (h !== ih) y = this.g.op("Gather", [y, this.g.i64([...legacyNearestIndices(ih, h)])], { axis: A.i(2) });
      if (w !== iw) y = this.g.op("Gather", [y, this.g.i64([...legacyNearestIndices(iw, w)])], { axis: A.i(3) });
    }
    return this.value(y, [n, h, w, c]);
  }

  upsampleNearest2x(x: GValue, _training: boolean): GValue {
    const y = this.g.op("Resize", [x.id, "", this.g.f32("scales", [4], Float32Array.of(1, 1, 2, 2))], GraphOps.NEAREST);
    const twice = (v: number | null) => (v === null ? null : 2 * v);
    return this.value(y, [x.shape[0], twice(x.shape[1]), twice(x.shape[2]), x.shape[3]]);
  }

  scope<R extends GValue>(fn: () => R): R {
    return fn();
  }

  keep(x: GValue): GValue {
    return x;
  }

  release(_x: GValue): void {}

  concat(xs: readonly GValue[]): GValue {
    const c = xs.reduce<number | null>((s, x) => (s === null || x.shape[3] === null ? null : s + (x.shape[3] as number)), 0);
    const flat = xs.every((x) => x.flat);
    const ids = xs.map((x) => (flat || !x.flat ? x.id : this.expand(x)));
    return { id: this.g.op("Concat", ids, { axis: A.i(1) }), shape: [xs[0].shape[0], xs[0].shape[1], xs[0].shape[2], c], flat };
  }

  dropout(x: GValue, _rate: number, training: boolean): GValue {
    if (training) throw new Error("an ONNX graph is eval-only: dropout in training mode has no graph form");
    return x;
  }

  fullyConnected(x: GValue, w: GConst, b: GConst | undefined, o: { weightGain: number; biasGain: number }): GValue {
    const [out, inF] = w.dims;
    // Upstream multiplies in float32 (weight * weight_gain), so the folded product is the number it uses.
    const wt = new Float32Array(inF * out);
    for (let j = 0; j < out; j++) for (let i = 0; i < inF; i++) wt[i * out + j] = f32(w.data[j * inF + i] * o.weightGain);
    let y = this.g.op("MatMul", [this.flatten(x), this.g.f32(w.name, [inF, out], wt)]);
    if (b) y = this.g.op("Add", [y, this.g.f32(b.name, [out], b.data.map((v) => f32(v * o.biasGain)))]);
    return { id: y, shape: [x.shape[0], 1, 1, out], flat: true };
  }

  /** The [N, C] form of a vector. */
  private flatten(x: GValue): string {
    return x.flat ? x.id : this.g.op("Flatten", [x.id], { axis: A.i(1) });
  }

  /** The [N, C, 1, 1] form of a vector, to meet feature maps. */
  private expand(x: GValue): string {
    return x.flat ? this.g.op("Unsqueeze", [x.id, this.g.i64([2, 3])]) : x.id;
  }

  biasAct(x: GValue, b: GConst | undefined, o: BiasActOptions): GValue {
    let y = x.id;
    if (b) y = this.g.op("Add", [y, this.g.f32(b.name, x.flat ? [b.dims[0]] : [1, b.dims[0], 1, 1], b.data)]);
    y = this.activation(y, o.act);
    if (o.gain !== 1) y = this.g.op("Mul", [y, this.g.scalar("gain", o.gain)]);
    if (o.clamp !== null && o.clamp >= 0) y = this.g.op("Clip", [y, this.g.scalar("lo", -o.clamp), this.g.scalar("hi", o.clamp)]);
    return this.same(x, y);
  }

  private activation(x: string, act: Activation): string {
    switch (act) {
      case "linear":
        return x;
      case "relu":
        return this.g.op("Relu", [x]);
      case "lrelu":
        return this.g.leakyRelu(x, 0.2);
      case "tanh":
        return this.g.op("Tanh", [x]);
      case "sigmoid":
        return this.g.op("Sigmoid", [x]);
      default:
        throw new Error(`ONNX export: activation ${act} is not supported`);
    }
  }

  normalize2ndMoment(x: GValue, eps: number): GValue {
    const ms = this.g.op("ReduceMean", [this.g.op("Mul", [x.id, x.id])], { axes: A.ints([1]), keepdims: A.i(1) });
    const inv = this.g.op("Reciprocal", [this.g.op("Sqrt", [this.g.op("Add", [ms, this.g.scalar("eps", eps)])])]);
    return this.same(x, this.g.op("Mul", [x.id, inv]));
  }

  splitChannels(x: GValue, parts: number): GValue[] {
    const c = this.channels(x) / parts;
    return this.g.opN("Split", [x.id], parts, { axis: A.i(1) }).map((id) => ({ id, shape: [x.shape[0], x.shape[1], x.shape[2], c], flat: x.flat }));
  }

  paramMap(p: GConst, c: number, h: number, w: number): GValue {
    return this.value(this.g.f32(p.name, [1, c, h, w], p.data), [1, h, w, c]);
  }

  mulParam(x: GValue, p: GConst): GValue {
    return this.same(x, this.g.op("Mul", [x.id, this.g.f32(p.name, [], p.data)]));
  }

  mulScalar(x: GValue, c: number): GValue {
    return this.same(x, this.g.op("Mul", [x.id, this.g.scalar("c", c)]));
  }

  noise(like: GValue, h: number, w: number, _seed: number): GValue {
    return this.value(this.g.input(`noise_${this.noiseInputs++}`, ["N", 1, h, w]), [like.shape[0], h, w, 1]);
  }

  /**
   * Every conv weight stays a constant (ONNX Runtime prepacks it): the styles scale the input, the demodulation
   * coefficients `1/sqrt(s² · Σ_k W² + eps)` (Σ_k W² folded on the host) scale the output. Up-sampling is the
   * composite polyphase conv (see `upConv`).
   */
  modulatedConv2d(x: GValue, w: GConst, styles: GValue, o: ModulatedConvOptions<GConst>): GValue {
    const [outC, inC, k] = w.dims;
    const xs = this.g.op("Mul", [x.id, this.expand(styles)]);
    let y: string;
    if (o.up === 1) y = this.g.conv(xs, { dims: [outC, inC, k, k], data: w.data }, null, { pads: [o.padding, o.padding, o.padding, o.padding] });
    else y = this.upConv(xs, w.data, outC, inC, k, o.padding, o.up, o.filter);
    if (o.demodulate) {
      const wsq = new Float32Array(inC * outC);
      for (let j = 0; j < outC; j++)
        for (let i = 0; i < inC; i++) {
          let s = 0;
          for (let t = 0; t < k * k; t++) s += w.data[(j * inC + i) * k * k + t] ** 2;
          wsq[i * outC + j] = s;
        }
      const s = this.flatten(styles);
      const ss = this.g.op("MatMul", [this.g.op("Mul", [s, s]), this.g.f32("wsq", [inC, outC], wsq)]);
      const d = this.g.op("Reciprocal", [this.g.op("Sqrt", [this.g.op("Add", [ss, this.g.scalar("eps", 1e-8)])])]);
      y = this.g.op("Mul", [y, this.g.op("Reshape", [d, this.g.i64([0, outC, 1, 1])])]);
    }
    const [n, h, wd] = x.shape;
    const up = (v: number | null) => (v === null ? null : v * o.up);
    // A [1, H, W, C] input (the learned const) broadcasts to the styles' batch.
    return this.value(y, [n === 1 ? styles.shape[0] : n, up(h), up(wd), outC]);
  }

  resampleConv2d(x: GValue, w: GConst, filter: GConst, o: { up: number; down: number; padding: number; weightGain: number }): GValue {
    if (o.down !== 1 || o.up === 1) throw new Error("ONNX export: conv2d_resample has a graph form for up-sampling only (the generator's)");
    const [outC, inC, k] = w.dims;
    const y = this.upConv(x.id, w.data.map((v) => f32(v * o.weightGain)), outC, inC, k, o.padding, o.up, filter);
    const up = (v: number | null) => (v === null ? null : v * o.up);
    return this.value(y, [x.shape[0], up(x.shape[1]), up(x.shape[2]), outC]);
  }

  /** The FIR up-sampling as a 1×1 conv with the identity over channels, through the same composite conv. */
  upsample2d(x: GValue, filter: GConst): GValue {
    const c = this.channels(x);
    const eye = Float32Array.from({ length: c * c }, (_, i) => (i % (c + 1) === 0 ? 1 : 0));
    const up = (v: number | null) => (v === null ? null : 2 * v);
    return this.value(this.upConv(x.id, eye, c, c, 1, 0, 2, filter), [x.shape[0], up(x.shape[1]), up(x.shape[2]), c]);
  }

  /**
   * conv2d_resample's up-sampling: upstream runs conv_transpose2d(x, w, stride up) (w not flipped) then
   * upfirdn2d(filter, gain up²). Both are linear and shift-invariant, so together they are zero-insertion and one
   * composite kernel K = w (*) up²·filter, emitted as one stride-1 conv + DepthToSpace (`polyphaseUp`).
   */
  private upConv(x: string, w: Float32Array, outC: number, inC: number, k: number, padding: number, up: number, filter: GConst | undefined): string {
    if (!filter) throw new Error("up-sampling needs a resample filter");
    const fs = filter.dims[0];
    const p0 = padding + Math.floor((fs + up - 1) / 2) - (k - 1);
    // A real conv (k > 1) runs as upstream does, transposed conv then filter: the composite kernel has
    // (k+fs-1)² taps against k² + a per-channel fs², 4x the weights and multiply-adds of a 3x3 at fs 4.
    if (k > 1) {
      const split = this.upConvThenFilter(x, w, outC, inC, k, up, filter, p0);
      if (split) return split;
    }
    const g = Float64Array.from(filter.data, (v) => f32(v * up * up));
    const Kh = k + fs - 1;
    const K = new Float64Array(outC * inC * Kh * Kh);
    // Index arithmetic hoisted out of the inner loops (seconds of a StyleGAN2 export); every K entry still
    // sums its terms in the same order, so the kernel is the same to the bit.
    for (let oi = 0; oi < outC * inC; oi++)
      for (let a = 0; a < k; a++)
        for (let b = 0; b < k; b++) {
          const wv = w[(oi * k + a) * k + b];
          if (wv === 0) continue;
          const at = (oi * Kh + a) * Kh + b;
          for (let u = 0; u < fs; u++) {
            const row = at + u * Kh;
            const gu = u * fs;
            for (let v = 0; v < fs; v++) K[row + v] += wv * g[gu + v];
          }
        }
    return polyphaseUp(this.g, x, K, outC, inC, Kh, Kh, up, fs - 1 - p0, fs - 1 - p0, null);
  }

  /**
   * The same up-sampling in two steps, the order upstream computes it: T = zero-insert(x) correlated with w (a
   * transposed conv, as a polyphase stride-1 conv + DepthToSpace), then Y[y] = Σ_v flip(g)[v] · T[y - p0 + v] (a
   * depthwise fs×fs conv). T is nonzero on rows [0, up·(H-1) + k - 1]; the polyphase conv computes rows
   * [0, up·(H+e)) (e extra zero input rows through its end pads), so that window holds all of T and the rows the
   * filter reads outside it are zeros, given to the filter's conv as pads. Null where that does not hold.
   */
  private upConvThenFilter(x: string, w: Float32Array, outC: number, inC: number, k: number, up: number, filter: GConst, p0: number): string | null {
    const fs = filter.dims[0];
    // T's support ends at row up·H + (k - 1 - up); e extra input rows make the window end at up·H + up·e - 1.
    const e = Math.max(0, Math.ceil((k - 1 - up + 1) / up));
    const beyond = fs - 1 - p0 - up * e; // rows past the window the filter reads (zero padding if ≥ 0)
    if (p0 < 0 || beyond < 0) return null;
    const { kernel, pads } = polyphaseKernel(w, outC, inC, k, k, up, 0, 0);
    const t = this.g.conv(x, kernel, null, { pads: [pads[0], pads[1], pads[2] + e, pads[3] + e] });
    const tUp = this.g.op("DepthToSpace", [t], { blocksize: A.i(up), mode: A.s("DCR") });
    const flipped = new Float32Array(outC * fs * fs);
    for (let c = 0; c < outC; c++)
      for (let u = 0; u < fs; u++)
        for (let v = 0; v < fs; v++) flipped[(c * fs + u) * fs + v] = f32(filter.data[(fs - 1 - u) * fs + (fs - 1 - v)] * up * up);
    return this.g.conv(tUp, { dims: [outC, 1, fs, fs], data: flipped }, null, { pads: [p0, p0, beyond, beyond], group: outC });
  }
}
