/**
 * nn.Linear written once against the op interface. Vectors travel as [N, 1, 1, features] maps, so a Linear
 * composes with the conv layers (and BatchNorm1d is BatchNorm2d on a 1x1 map: same parameters, same axes).
 */
import type * as tf from "@tensorflow/tfjs-core";
import { assertShape, type Ops } from "../ops/ops.ts";
import { join } from "./conv.ts";

export class Linear<T = tf.Tensor4D, P = tf.Variable> {
  readonly weight: P;
  readonly bias?: P;

  constructor(
    private readonly ops: Ops<T, P>,
    readonly name: string,
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: { bias?: boolean } = {},
  ) {
    this.weight = ops.param(join(name, "weight"), [outFeatures, inFeatures], "conv.weight", { layout: "OI" });
    if (opts.bias ?? true) this.bias = ops.param(join(name, "bias"), [outFeatures], "conv.bias");
  }

  /** [N, 1, 1, in] → [N, 1, 1, out]. */
  apply(x: T): T {
    assertShape(this.ops, x, [null, 1, 1, this.inFeatures], this.name);
    return this.ops.linear(x, this.weight, this.bias);
  }
}
