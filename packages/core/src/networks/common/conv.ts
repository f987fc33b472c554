/**
 * PyTorch-compatible convolutions, written once against the op interface: Conv2d (official OIHW weight) and
 * ConvTranspose2d (official IOHW weight) under `<prefix>.weight` / `<prefix>.bias`. On the eager side the weights
 * live in the TF layout; on the graph side they are constants in the official layout.
 */
import type * as tf from "@tensorflow/tfjs-core";
import { assertShape, type Ops } from "../ops/ops.ts";

export { conv2dSymmetric, setConvTransposeMethod, type ConvTransposeMethod } from "../ops/eager.ts";

export const join = (prefix: string, leaf: string) => (prefix ? `${prefix}.${leaf}` : leaf);

export interface Conv2dOptions {
  stride?: number;
  /** Zero padding on every side, as PyTorch's integer `padding`. */
  padding?: number;
  bias?: boolean;
}

export class Conv2d<T = tf.Tensor4D, P = tf.Variable> {
  readonly weight: P;
  readonly bias?: P;
  readonly stride: number;
  readonly padding: number;

  constructor(
    private readonly ops: Ops<T, P>,
    readonly name: string,
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    opts: Conv2dOptions = {},
  ) {
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    const k = kernelSize;
    this.weight = ops.param(join(name, "weight"), [outChannels, inChannels, k, k], "conv.weight", { layout: "OIHW" });
    if (opts.bias ?? true) this.bias = ops.param(join(name, "bias"), [outChannels], "conv.bias");
  }

  apply(x: T): T {
    assertShape(this.ops, x, [null, null, null, this.inChannels], this.name);
    return this.ops.conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding });
  }
}

export interface ConvTranspose2dOptions {
  stride?: number;
  padding?: number;
  outputPadding?: number;
  bias?: boolean;
}

/** nn.ConvTranspose2d: output size (H-1)*stride - 2*padding + kernel + output_padding. */
export class ConvTranspose2d<T = tf.Tensor4D, P = tf.Variable> {
  readonly weight: P;
  readonly bias?: P;
  readonly stride: number;
  readonly padding: number;
  readonly outputPadding: number;

  constructor(
    private readonly ops: Ops<T, P>,
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
    this.weight = ops.param(join(name, "weight"), [inChannels, outChannels, k, k], "conv.weight", { layout: "IOHW" });
    if (opts.bias ?? true) this.bias = ops.param(join(name, "bias"), [outChannels], "conv.bias");
  }

  outputSize(inSize: number): number {
    return (inSize - 1) * this.stride - 2 * this.padding + this.kernelSize + this.outputPadding;
  }

  apply(x: T): T {
    assertShape(this.ops, x, [null, null, null, this.inChannels], this.name);
    return this.ops.convTranspose2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, outputPadding: this.outputPadding });
  }
}
