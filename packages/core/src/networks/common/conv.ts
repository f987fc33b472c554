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
 * nn.ConvTranspose2d: output size (H-1)*stride - 2*padding + kernel + output_padding. TF.js computes the full
 * transposed convolution ((H-1)*stride + kernel, no padding); PyTorch's `padding` then crops that many rows and
 * columns from each side, and `output_padding` gives back rows at the bottom/right only. Rows past the full
 * extent receive no input, so they are zero before the bias.
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
  }

  outputSize(inSize: number): number {
    return (inSize - 1) * this.stride - 2 * this.padding + this.kernelSize + this.outputPadding;
  }

  apply(x: tf.Tensor4D): tf.Tensor4D {
    const [n, h, w] = x.shape;
    const k = this.kernelSize;
    const s = this.stride;
    const fullH = (h - 1) * s + k;
    const fullW = (w - 1) * s + k;
    let y = tf.conv2dTranspose(x, this.weight as tf.Tensor4D, [n, fullH, fullW, this.outChannels], s, "valid");
    const outH = this.outputSize(h);
    const outW = this.outputSize(w);
    const p = this.padding;
    const extraH = Math.max(0, p + outH - fullH);
    const extraW = Math.max(0, p + outW - fullW);
    if (extraH || extraW) y = tf.pad(y, [[0, 0], [0, extraH], [0, extraW], [0, 0]]);
    if (p || outH !== fullH || outW !== fullW) y = tf.slice(y, [0, p, p, 0], [n, outH, outW, this.outChannels]);
    return this.bias ? tf.add(y, this.bias) : y;
  }
}
