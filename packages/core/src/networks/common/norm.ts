/**
 * Normalisation layers on NHWC tensors with PyTorch semantics (biased variance inside the normalisation,
 * eps added to the variance before the square root). Parameters use the official names under `prefix`.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { ParamStore } from "./param-store.ts";

const join = (prefix: string, leaf: string) => (prefix ? `${prefix}.${leaf}` : leaf);

/** Keys a BatchNorm-style layer owns besides weight/bias; checkpoints from older code also put them on InstanceNorm. */
export const RUNNING_STAT_LEAVES = ["running_mean", "running_var", "num_batches_tracked"] as const;

export interface NormLayer {
  readonly name: string;
  apply(x: tf.Tensor4D, training: boolean): tf.Tensor4D;
}

/**
 * nn.InstanceNorm2d with track_running_stats=False: always per-sample, per-channel statistics over H and W,
 * in eval as in training. Optional affine weight/bias.
 */
export class InstanceNorm2d implements NormLayer {
  readonly weight?: tf.Variable;
  readonly bias?: tf.Variable;
  readonly eps: number;

  constructor(
    store: ParamStore,
    readonly name: string,
    readonly channels: number,
    opts: { eps?: number; affine?: boolean } = {},
  ) {
    this.eps = opts.eps ?? 1e-5;
    if (opts.affine) {
      this.weight = store.add(join(name, "weight"), [channels], "norm.weight");
      this.bias = store.add(join(name, "bias"), [channels], "norm.bias");
    }
  }

  apply(x: tf.Tensor4D): tf.Tensor4D {
    const { mean, variance } = tf.moments(x, [1, 2], true);
    let y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, this.eps))) as tf.Tensor4D;
    if (this.weight && this.bias) y = tf.add(tf.mul(y, this.weight), this.bias);
    return y;
  }
}

/**
 * nn.BatchNorm2d. Eval uses the running statistics. Training normalises with the batch statistics (over N, H, W)
 * and leaves the running buffers alone, so the forward pass stays a pure function of its inputs (PyTorch's
 * momentum update of the buffers is not reproduced).
 */
export class BatchNorm2d implements NormLayer {
  readonly weight?: tf.Variable;
  readonly bias?: tf.Variable;
  readonly runningMean: tf.Variable;
  readonly runningVar: tf.Variable;
  readonly eps: number;

  constructor(
    store: ParamStore,
    readonly name: string,
    readonly channels: number,
    opts: { eps?: number; affine?: boolean } = {},
  ) {
    this.eps = opts.eps ?? 1e-5;
    if (opts.affine ?? true) {
      this.weight = store.add(join(name, "weight"), [channels], "norm.weight");
      this.bias = store.add(join(name, "bias"), [channels], "norm.bias");
    }
    this.runningMean = store.add(join(name, "running_mean"), [channels], "norm.running_mean", { trainable: false });
    this.runningVar = store.add(join(name, "running_var"), [channels], "norm.running_var", { trainable: false });
    store.addCounter(join(name, "num_batches_tracked"));
  }

  apply(x: tf.Tensor4D, training: boolean): tf.Tensor4D {
    let mean: tf.Tensor = this.runningMean;
    let variance: tf.Tensor = this.runningVar;
    if (training) ({ mean, variance } = tf.moments(x, [0, 1, 2]));
    let scale = tf.rsqrt(tf.add(variance, this.eps));
    if (this.weight) scale = tf.mul(scale, this.weight);
    const y = tf.mul(tf.sub(x, mean), scale) as tf.Tensor4D;
    return this.bias ? tf.add(y, this.bias) : y;
  }
}

/** nn.Identity standing in for a norm (pix2pix `norm='none'`). */
export class NoNorm implements NormLayer {
  constructor(readonly name: string) {}
  apply(x: tf.Tensor4D): tf.Tensor4D {
    return x;
  }
}
