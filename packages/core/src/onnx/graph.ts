/**
 * A small ONNX graph builder on top of proto.ts, plus the weight bookkeeping every family exporter shares:
 * strict consumption of an official state dict (a wrong config shows up as missing or unexpected keys, as in
 * PyTorch's strict load) and host-side kernel algebra (BatchNorm folding, polyphase up-sampling kernels).
 */
import { CheckpointError, numel, toFloat32, type StateDict } from "../checkpoints/tensor.ts";
import { DataType, encodeModel, type AttrValue, type DataTypeId, type Dim, type TensorInit, type ValueInfo } from "./proto.ts";

/** opset 17: the last one where Reduce* take `axes` as an attribute and Split infers equal parts from outputs. */
export const OPSET = 17;
const IR_VERSION = 8;

export const A = {
  i: (v: number): AttrValue => ({ kind: "int", v }),
  f: (v: number): AttrValue => ({ kind: "float", v }),
  s: (v: string): AttrValue => ({ kind: "string", v }),
  ints: (v: readonly number[]): AttrValue => ({ kind: "ints", v }),
};

const bytesOf = (a: Float32Array | BigInt64Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** An initializer kept as typed data until `encode`, so graph passes can read and replace it. */
export interface Initializer {
  dims: readonly number[];
  data: Float32Array | BigInt64Array;
}

/** A mutable node; passes rewrite `inputs`/`outputs` in place. */
export interface Node {
  opType: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, AttrValue>;
}

export class GraphBuilder {
  /** In topological order (ONNX requires it); passes keep it so. */
  readonly nodes: Node[] = [];
  readonly inits = new Map<string, Initializer>();
  private readonly inputs: ValueInfo[] = [];
  private readonly outputs: ValueInfo[] = [];
  private serial = 0;
  private readonly i64Cache = new Map<string, string>();

  constructor(readonly name: string) {}

  fresh(hint: string): string {
    return `${hint}_${this.serial++}`;
  }

  input(name: string, shape: readonly Dim[], elemType: DataTypeId = DataType.FLOAT): string {
    this.inputs.push({ name, shape, elemType });
    return name;
  }

  /** Renames `value` to the graph output `name` through an Identity, so outputs have stable names. */
  output(name: string, value: string, shape: readonly Dim[]): void {
    this.nodes.push({ opType: "Identity", inputs: [value], outputs: [name] });
    this.outputs.push({ name, shape, elemType: DataType.FLOAT });
  }

  f32(hint: string, dims: readonly number[], data: Float32Array): string {
    if (numel(dims) !== data.length) throw new Error(`${hint}: ${data.length} values for dims [${dims}]`);
    const name = this.fresh(hint);
    this.inits.set(name, { dims, data });
    return name;
  }

  scalar(hint: string, v: number): string {
    return this.f32(hint, [], Float32Array.of(v));
  }

  /** int64 constants (shapes, pads, axes); identical values share one initializer. */
  i64(values: readonly number[], dims: readonly number[] = [values.length]): string {
    const key = `${dims.join(",")}:${values.join(",")}`;
    let name = this.i64Cache.get(key);
    if (!name) {
      name = this.fresh("i64");
      this.inits.set(name, { dims, data: BigInt64Array.from(values, (v) => BigInt(v)) });
      this.i64Cache.set(key, name);
    }
    return name;
  }

  op(opType: string, inputs: readonly string[], attrs?: Record<string, AttrValue>): string {
    return this.opN(opType, inputs, 1, attrs)[0];
  }

  opN(opType: string, inputs: readonly string[], nOut: number, attrs?: Record<string, AttrValue>): string[] {
    const outputs = Array.from({ length: nOut }, () => this.fresh(opType.toLowerCase()));
    this.nodes.push({ opType, inputs: [...inputs], outputs, attrs });
    return outputs;
  }

  /** The float data of a constant, or undefined when `value` is not a float initializer. */
  constant(value: string): Initializer | undefined {
    const t = this.inits.get(value);
    return t && t.data instanceof Float32Array ? t : undefined;
  }

  producer(value: string): Node | undefined {
    return this.nodes.find((n) => n.outputs.includes(value));
  }

  /** How many node inputs and graph outputs read `value`. */
  readers(value: string): number {
    let k = this.outputs.filter((o) => o.name === value).length;
    for (const n of this.nodes) for (const i of n.inputs) if (i === value) k++;
    return k;
  }

  /** Conv with optional bias; pads as [top, left, bottom, right]. */
  conv(x: string, w: KernelOIHW, bias: Float32Array | null, opts: { stride?: number; pads?: readonly number[]; group?: number } = {}): string {
    const [o, , kh, kw] = w.dims;
    const p = opts.pads ?? [0, 0, 0, 0];
    if (p.some((v) => v < 0)) throw new Error(`negative conv pads [${p}]`);
    const ins = [x, this.f32("W", w.dims, w.data)];
    if (bias) {
      if (bias.length !== o) throw new Error(`bias has ${bias.length} values for ${o} output channels`);
      ins.push(this.f32("B", [o], bias));
    }
    return this.op("Conv", ins, {
      kernel_shape: A.ints([kh, kw]),
      strides: A.ints([opts.stride ?? 1, opts.stride ?? 1]),
      pads: A.ints([p[0], p[1], p[2], p[3]]),
      group: A.i(opts.group ?? 1),
    });
  }

  /** NHWC → NCHW. */
  toNCHW(x: string): string {
    return this.op("Transpose", [x], { perm: A.ints([0, 3, 1, 2]) });
  }

  toNHWC(x: string): string {
    return this.op("Transpose", [x], { perm: A.ints([0, 2, 3, 1]) });
  }

  leakyRelu(x: string, alpha = 0.2): string {
    return this.op("LeakyRelu", [x], { alpha: A.f(alpha) });
  }

  encode(docString?: string): Uint8Array {
    // Only initializers some node still reads: passes leave the ones they replaced behind.
    const read = new Set(this.nodes.flatMap((n) => n.inputs));
    const initializers: TensorInit[] = [...this.inits]
      .filter(([name]) => read.has(name))
      .map(([name, t]) => ({ name, dims: t.dims, dataType: t.data instanceof Float32Array ? DataType.FLOAT : DataType.INT64, raw: bytesOf(t.data) }));
    return encodeModel({
      graphName: this.name,
      nodes: this.nodes,
      initializers,
      inputs: this.inputs,
      outputs: this.outputs,
      opset: OPSET,
      irVersion: IR_VERSION,
      producer: "ganserve",
      docString,
    });
  }
}

/** A conv kernel in PyTorch's Conv2d layout [out, in, kh, kw]. */
export interface KernelOIHW {
  dims: [number, number, number, number];
  data: Float32Array;
}

/**
 * Reads tensors from an official state dict by name, checking shapes, and remembers what it used so `finish()` can
 * reject leftovers. Returned arrays are the stored ones (or float copies of non-float tensors): never mutate them.
 */
export class WeightReader {
  private readonly used = new Set<string>();

  constructor(
    private readonly sd: StateDict,
    private readonly file = "state_dict",
  ) {}

  has(name: string): boolean {
    return this.sd.has(name);
  }

  get(name: string, shape: readonly number[]): Float32Array {
    const t = this.sd.get(name);
    if (!t) throw new CheckpointError(this.file, `missing key ${name}`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
      throw new CheckpointError(this.file, `${name}: shape [${t.shape}] does not match the config, which needs [${shape}]`);
    if (t.data.length !== numel(shape)) throw new CheckpointError(this.file, `${name}: ${t.data.length} values for shape [${t.shape}]`);
    this.used.add(name);
    return toFloat32(t);
  }

  /** Marks a key as consumed without reading it (buffers the exported graph does not need). */
  skip(name: string): void {
    if (this.sd.has(name)) this.used.add(name);
  }

  finish(ignore: (name: string) => boolean = () => false): void {
    const unexpected = [...this.sd.keys()].filter((k) => !this.used.has(k) && !ignore(k));
    if (unexpected.length)
      throw new CheckpointError(
        this.file,
        `unexpected key(s) for this config: ${unexpected.slice(0, 5).join(", ")}${unexpected.length > 5 ? ` (+${unexpected.length - 5} more)` : ""}`,
      );
  }
}

/** Per-output-channel scale (and shift) of an eval-mode BatchNorm: y = x * scale + shift. */
export function batchNormAffine(mean: Float32Array, variance: Float32Array, weight: Float32Array | null, bias: Float32Array | null, eps = 1e-5) {
  const c = mean.length;
  const scale = new Float32Array(c);
  const shift = new Float32Array(c);
  for (let i = 0; i < c; i++) {
    const s = (weight ? weight[i] : 1) / Math.sqrt(variance[i] + eps);
    scale[i] = s;
    shift[i] = (bias ? bias[i] : 0) - mean[i] * s;
  }
  return { scale, shift };
}

/**
 * Up-sampling by `up` as ONE ordinary conv at the input resolution followed by DepthToSpace(DCR).
 *
 * `K[o][i]` is the composite kernel of "zero-insert by up, then correlate": Y[y, x] = sum_{i,j} X[i, j]
 * K[y + Py - up*i, x + Px - up*j] for an output of exactly up*H x up*W. A transposed conv is such a K (its own
 * weight, P = padding); a conv followed by a FIR filter is K = w (*) filter. Output phase (y mod up) only sees every
 * up-th tap of K, so the phases become up² groups of output channels of one stride-1 conv, which ONNX Runtime
 * runs on its fast (prepacked, blocked) conv path rather than the gemm + col2im of ConvTranspose.
 * Returns the conv kernel [up²·O, I, sy, sx] (channel (py·up+px)·O + o, as DepthToSpace DCR reads it) and pads.
 */
export function polyphaseKernel(K: Float32Array | Float64Array, O: number, I: number, Kh: number, Kw: number, up: number, Py: number, Px: number) {
  const axis = (P: number, Ksz: number) => {
    let dmin = Infinity;
    let dmax = -Infinity;
    for (let p = 0; p < up; p++) {
      dmin = Math.min(dmin, Math.ceil((p + P - (Ksz - 1)) / up));
      dmax = Math.max(dmax, Math.floor((p + P) / up));
    }
    return { dmin, dmax, size: dmax - dmin + 1, tap: (p: number, d: number) => p + P - up * (d + dmin) };
  };
  const ry = axis(Py, Kh);
  const rx = axis(Px, Kw);
  if (ry.dmin > 0 || rx.dmin > 0 || ry.dmax < 0 || rx.dmax < 0) throw new Error("polyphase kernel would need a crop; not supported");
  const out = new Float32Array(up * up * O * I * ry.size * rx.size);
  // Each phase's taps as (offset in the output block, offset in K's [Kh, Kw] block), found once per phase rather
  // than per channel pair: the inner loop is then a gather (this ran seconds of a large model's export).
  const block = ry.size * rx.size;
  for (let py = 0; py < up; py++)
    for (let px = 0; px < up; px++) {
      const to: number[] = [];
      const from: number[] = [];
      for (let dy = 0; dy < ry.size; dy++)
        for (let dx = 0; dx < rx.size; dx++) {
          const ty = ry.tap(py, dy);
          const tx = rx.tap(px, dx);
          if (ty < 0 || ty >= Kh || tx < 0 || tx >= Kw) continue;
          to.push(dy * rx.size + dx);
          from.push(ty * Kw + tx);
        }
      const phase = (py * up + px) * O * I;
      for (let oi = 0; oi < O * I; oi++) {
        const dst = (phase + oi) * block;
        const src = oi * Kh * Kw;
        for (let t = 0; t < to.length; t++) out[dst + to[t]] = K[src + from[t]];
      }
    }
  return {
    kernel: { dims: [up * up * O, I, ry.size, rx.size] as [number, number, number, number], data: out },
    pads: [0 - ry.dmin, 0 - rx.dmin, ry.dmax, rx.dmax],
  };
}

/** Composite kernel of a PyTorch ConvTranspose2d weight [I, O, k, k]: K[o][i] = w[i][o]. */
export function convTransposeComposite(w: Float32Array, I: number, O: number, k: number): Float32Array {
  const K = new Float32Array(O * I * k * k);
  for (let i = 0; i < I; i++) for (let o = 0; o < O; o++) K.set(w.subarray((i * O + o) * k * k, (i * O + o + 1) * k * k), (o * I + i) * k * k);
  return K;
}

/** Emits an up-by-`up` transposed conv through `polyphaseKernel` (+ DepthToSpace); bias after the interleave. */
export function polyphaseUp(g: GraphBuilder, x: string, K: Float32Array | Float64Array, O: number, I: number, Kh: number, Kw: number, up: number, Py: number, Px: number, bias: Float32Array | null): string {
  const { kernel, pads } = polyphaseKernel(K, O, I, Kh, Kw, up, Py, Px);
  let phaseBias: Float32Array | null = null;
  if (bias) {
    phaseBias = new Float32Array(up * up * O);
    for (let p = 0; p < up * up; p++) phaseBias.set(bias, p * O);
  }
  const y = g.conv(x, kernel, phaseBias, { pads });
  return g.op("DepthToSpace", [y], { blocksize: A.i(up), mode: A.s("DCR") });
}
