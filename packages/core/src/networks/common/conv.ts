/**
 * PyTorch-compatible convolutions on NHWC tensors. Weights are loaded from the official layouts (Conv2d OIHW,
 * ConvTranspose2d IOHW) under the official names `<prefix>.weight` / `<prefix>.bias`, and kept in TF.js layout.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { ParamStore } from "./param-store.ts";

const join = (prefix: string, leaf: string) => (prefix ? `${prefix}.${leaf}` : leaf);

export interface Conv2dOptions {
  stride?: number;
  /** Zero padding on every side, as PyTorch's integer `padding`. */
  padding?: number;
  bias?: boolean;
}

export class Conv2d {
  readonly weight: tf.Variable;
  readonly bias?: tf.Variable;
  readonly stride: number;
  readonly padding: number;

  constructor(
    store: ParamStore,
    readonly name: string,
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    opts: Conv2dOptions = {},
  ) {
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    const k = kernelSize;
    // OIHW → HWIO
    this.weight = store.add(join(name, "weight"), [outChannels, inChannels, k, k], "conv.weight", { perm: [2, 3, 1, 0] });
    if (opts.bias ?? true) this.bias = store.add(join(name, "bias"), [outChannels], "conv.bias");
  }

  apply(x: tf.Tensor4D): tf.Tensor4D {
    const p = this.padding;
    // Explicit symmetric padding: TF's 'same' would pad asymmetrically for even kernels with stride 2.
    const pad: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [p, p], [p, p], [0, 0]];
    const y = tf.conv2d(x, this.weight as tf.Tensor4D, this.stride, p === 0 ? "valid" : pad);
    return this.bias ? tf.add(y, this.bias) : y;
  }
}

export interface ConvTranspose2dOptions {
  stride?: number;
  padding?: number;
  outputPadding?: number;
  bias?: boolean;
}

/**
 * nn.ConvTranspose2d: output size (H-1)*stride - 2*padding + kernel + output_padding. Both paths below compute
 * the full transposed convolution ((H-1)*stride + kernel, no padding); PyTorch's `padding` then crops that many
 * rows and columns from each side, and `output_padding` gives back rows at the bottom/right only. Rows past the
 * full extent receive no input, so they are zero before the bias.
 */
export class ConvTranspose2d {
  readonly weight: tf.Variable;
  readonly bias?: tf.Variable;
  readonly stride: number;
  readonly padding: number;
  readonly outputPadding: number;

  constructor(
    store: ParamStore,
    readonly name: string,
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    opts: ConvTranspose2dOptions = {},
  ) {
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    this.outputPadding = opts.outputPadding ?? 0;
    if (this.outputPadding >= Math.max(this.stride, 1)) throw new Error(`${name}: output_padding must be smaller than stride`);
    const k = kernelSize;
    // IOHW → HW(out)(in), the filter layout tf.conv2dTranspose expects.
    this.weight = store.add(join(name, "weight"), [inChannels, outChannels, k, k], "conv.weight", { perm: [2, 3, 1, 0] });
    if (opts.bias ?? true) this.bias = store.add(join(name, "bias"), [outChannels], "conv.bias");
    store.own({ dispose: () => this.cached?.filter.dispose() });
  }

  outputSize(inSize: number): number {
    return (inSize - 1) * this.stride - 2 * this.padding + this.kernelSize + this.outputPadding;
  }

  apply(x: tf.Tensor4D, method: ConvTransposeMethod = convTransposeMethod): tf.Tensor4D {
    const [n, h, w] = x.shape;
    const k = this.kernelSize;
    const s = this.stride;
    const fullH = (h - 1) * s + k;
    const fullW = (w - 1) * s + k;
    let y = method === "subpixel" && s > 1 ? this.subpixel(x) : tf.conv2dTranspose(x, this.weight as tf.Tensor4D, [n, fullH, fullW, this.outChannels], s, "valid");
    const outH = this.outputSize(h);
    const outW = this.outputSize(w);
    const p = this.padding;
    const extraH = Math.max(0, p + outH - y.shape[1]);
    const extraW = Math.max(0, p + outW - y.shape[2]);
    if (extraH || extraW) y = tf.pad(y, [[0, 0], [0, extraH], [0, extraW], [0, 0]]);
    if (p || outH !== y.shape[1] || outW !== y.shape[2]) y = tf.slice(y, [0, p, p, 0], [n, outH, outW, this.outChannels]);
    return this.bias ? tf.add(y, this.bias) : y;
  }

  /**
   * The transposed conv as one ordinary stride-1 conv producing stride² phases, interleaved afterwards. Output
   * row q*s + r only sees kernel rows r, r+s, r+2s... applied to input rows q, q-1, q-2...; with c = ceil(k/s)
   * taps per phase that is a c x c correlation over the input padded by c-1 above. Wasm's Conv2D is several times
   * faster than its Conv2DBackpropInput, which pays for the zero taps this adds when s does not divide k. The
   * result covers s*(H+c) rows, at least the full extent, and the extra rows are zero.
   */
  private subpixel(x: tf.Tensor4D): tf.Tensor4D {
    const [n, h, w] = x.shape;
    const s = this.stride;
    const c = Math.ceil(this.kernelSize / s);
    const co = this.outChannels;
    const phases = tf.conv2d(x, this.subpixelFilter(), 1, [[0, 0], [c - 1, c], [c - 1, c], [0, 0]]);
    const rows = h + c;
    const cols = w + c;
    const interleaved = tf.transpose(tf.reshape(phases, [n, rows, cols, s, s, co]), [0, 1, 3, 2, 4, 5]);
    return tf.reshape(interleaved, [n, rows * s, cols * s, co]);
  }

  /** Last rearranged weight, reused until the variable is assigned (assign swaps its dataId). */
  private cached?: { dataId: object; filter: tf.Tensor4D };

  /**
   * Rearranging big weights costs more than the convolution itself on wasm, so eval reuses the result; under a
   * gradient tape it is rebuilt from the variable so gradients reach it.
   */
  private subpixelFilter(): tf.Tensor4D {
    if (tf.engine().isTapeOn()) return this.buildSubpixelFilter();
    if (this.cached?.dataId !== this.weight.dataId) {
      this.cached?.filter.dispose();
      this.cached = { dataId: this.weight.dataId, filter: tf.keep(tf.tidy(() => this.buildSubpixelFilter())) };
    }
    return this.cached.filter;
  }

  private buildSubpixelFilter(): tf.Tensor4D {
    const k = this.kernelSize;
    const s = this.stride;
    const c = Math.ceil(k / s);
    const phases: tf.Tensor4D[] = [];
    // Phase (ry, rx) uses kernel rows ry, ry+s, ... and columns likewise; taps run backwards in a correlation.
    // Per-phase rank-4 ops: wasm's rank-6 transpose is far slower on large weights.
    for (let ry = 0; ry < s; ry++)
      for (let rx = 0; rx < s; rx++) {
        let taps = tf.stridedSlice(this.weight, [ry, rx, 0, 0], [k, k, this.outChannels, this.inChannels], [s, s, 1, 1]) as tf.Tensor4D;
        const [th, tw] = taps.shape;
        if (th < c || tw < c) taps = tf.pad(taps, [[0, c - th], [0, c - tw], [0, 0], [0, 0]]);
        phases.push(tf.transpose(tf.reverse(taps, [0, 1]), [0, 1, 3, 2]));
      }
    return tf.concat(phases, 3);
  }
}

export type ConvTransposeMethod = "subpixel" | "native";

/** Which kernel strided transposed convs use; see ConvTranspose2d.subpixel. */
let convTransposeMethod: ConvTransposeMethod = "subpixel";

export function setConvTransposeMethod(m: ConvTransposeMethod): void {
  convTransposeMethod = m;
}
