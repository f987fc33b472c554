/**
 * Normalisation layers with PyTorch semantics (biased variance inside the normalisation, eps added to the
 * variance before the square root), written once against the op interface. Parameters use the official names
 * under `prefix`.
 */
import type * as tf from "@tensorflow/tfjs-core";
import { assertShape, type Ops } from "../ops/ops.ts";
import { join } from "./conv.ts";

/** Keys a BatchNorm-style layer owns besides weight/bias; checkpoints from older code also put them on InstanceNorm. */
export const RUNNING_STAT_LEAVES = ["running_mean", "running_var", "num_batches_tracked"] as const;
export const [RUNNING_MEAN, RUNNING_VAR, NUM_BATCHES_TRACKED] = RUNNING_STAT_LEAVES;

export interface NormLayer<T = tf.Tensor4D> {
  readonly name: string;
  apply(x: T, training: boolean): T;
}

/**
 * nn.InstanceNorm2d with track_running_stats=False: always per-sample, per-channel statistics over H and W,
 * in eval as in training. Optional affine weight/bias.
 */
export class InstanceNorm2d<T = tf.Tensor4D, P = tf.Variable> implements NormLayer<T> {
  readonly weight?: P;
  readonly bias?: P;
  readonly eps: number;

  constructor(
    private readonly ops: Ops<T, P>,
    readonly name: string,
    readonly channels: number,
    opts: { eps?: number; affine?: boolean } = {},
  ) {
    this.eps = opts.eps ?? 1e-5;
    if (opts.affine) {
      this.weight = ops.param(join(name, "weight"), [channels], "norm.weight");
      this.bias = ops.param(join(name, "bias"), [channels], "norm.bias");
    }
  }

  apply(x: T): T {
    assertShape(this.ops, x, [null, null, null, this.channels], this.name);
    return this.ops.instanceNorm(x, this.eps, this.weight, this.bias);
  }
}

/**
 * nn.BatchNorm2d. Eval uses the running statistics. Training normalises with the batch statistics (over N, H, W)
 * and leaves the running buffers alone, so the forward pass stays a pure function of its inputs (PyTorch's
 * momentum update of the buffers is not reproduced).
 */
export class BatchNorm2d<T = tf.Tensor4D, P = tf.Variable> implements NormLayer<T> {
  readonly weight?: P;
  readonly bias?: P;
  readonly runningMean: P;
  readonly runningVar: P;
  readonly eps: number;

  constructor(
    private readonly ops: Ops<T, P>,
    readonly name: string,
    readonly channels: number,
    opts: { eps?: number; affine?: boolean } = {},
  ) {
    this.eps = opts.eps ?? 1e-5;
    if (opts.affine ?? true) {
      this.weight = ops.param(join(name, "weight"), [channels], "norm.weight");
      this.bias = ops.param(join(name, "bias"), [channels], "norm.bias");
    }
    this.runningMean = ops.param(join(name, RUNNING_MEAN), [channels], "norm.running_mean", { trainable: false });
    this.runningVar = ops.param(join(name, RUNNING_VAR), [channels], "norm.running_var", { trainable: false });
    ops.counter(join(name, NUM_BATCHES_TRACKED));
  }

  apply(x: T, training: boolean): T {
    assertShape(this.ops, x, [null, null, null, this.channels], this.name);
    const p = { mean: this.runningMean, variance: this.runningVar, weight: this.weight, bias: this.bias, eps: this.eps };
    return this.ops.batchNorm(x, p, training);
  }
}

/** nn.Identity standing in for a norm (pix2pix `norm='none'`). */
export class NoNorm<T = tf.Tensor4D> implements NormLayer<T> {
  constructor(readonly name: string) {}
  apply(x: T): T {
    return x;
  }
}
