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
import { A, GraphBuilder, WeightReader } from "../../onnx/graph.ts";
import { optimize } from "../../onnx/passes.ts";
import { legacyNearestIndices } from "../common/nearest-resize.ts";
import { spectralSigma } from "../common/spectral-norm.ts";
import type { BatchNormParams, ConvOptions, ConvTransposeOptions, Ops, ParamOptions, ParamRole, Shape, SpectralParams } from "./ops.ts";

/** A value in the graph with its logical (NHWC) shape; null where the size is dynamic. */
export interface GValue {
  readonly id: string;
  readonly shape: Shape;
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

  /**
   * Rejects state-dict keys nothing consumed (`ignore` excepted), names the outputs, runs the graph passes
   * (default: all of `optimize`; tests run one at a time) and returns the model bytes.
   */
  finish(outputs: Record<string, GValue>, docString: string, opts: { ignore?: (key: string) => boolean; passes?: (g: GraphBuilder) => void } = {}): Uint8Array {
    this.reader.finish(opts.ignore);
    for (const [name, v] of Object.entries(outputs)) this.g.output(name, this.g.toNHWC(v.id), v.shape.map((d, i) => d ?? "NHWC"[i]));
    (opts.passes ?? optimize)(this.g);
    return this.g.encode(docString);
  }

  private value(id: string, shape: Shape): GValue {
    return { id, shape };
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
    return this.conv2d(x, { name: w.orig.name, dims: w.orig.dims, data: w.orig.data.map((a) => a / sigma) }, b, o);
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
    return this.value(this.g.op("Relu", [x.id]), x.shape);
  }

  sigmoid(x: GValue): GValue {
    return this.value(this.g.op("Sigmoid", [x.id]), x.shape);
  }

  leakyRelu(x: GValue, alpha: number): GValue {
    return this.value(this.g.leakyRelu(x.id, alpha), x.shape);
  }

  tanh(x: GValue): GValue {
    return this.value(this.g.op("Tanh", [x.id]), x.shape);
  }

  plus(a: GValue, b: GValue): GValue {
    return this.value(this.g.op("Add", [a.id, b.id]), a.shape);
  }

  mul(a: GValue, b: GValue): GValue {
    return this.value(this.g.op("Mul", [a.id, b.id]), a.shape);
  }

  addScalar(x: GValue, c: number): GValue {
    return this.value(this.g.op("Add", [x.id, this.g.scalar("c", c)]), x.shape);
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
    return this.value(this.g.op("Concat", xs.map((x) => x.id), { axis: A.i(1) }), [xs[0].shape[0], xs[0].shape[1], xs[0].shape[2], c]);
  }

  dropout(x: GValue, _rate: number, training: boolean): GValue {
    if (training) throw new Error("an ONNX graph is eval-only: dropout in training mode has no graph form");
    return x;
  }
}
