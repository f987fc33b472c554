/**
 * PyTorch's train-mode BatchNorm buffer update, which the op interface's batchNorm leaves out (its forward stays a
 * pure function): running = (1 - momentum)·running + momentum·batch, with the unbiased batch variance, as
 * nn.BatchNorm2d does on every training forward. Trainers call it on the forwards torch would update on, so the
 * exported generator behaves in eval mode as torch's would.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BatchNorm2d } from "../../networks/common/norm.ts";

export function updateRunningStats(bn: BatchNorm2d, x: tf.Tensor4D, momentum: number): void {
  tf.tidy(() => {
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    const n = x.shape[0] * x.shape[1] * x.shape[2];
    const unbiased = n > 1 ? tf.mul(variance, n / (n - 1)) : variance;
    bn.runningMean.assign(tf.add(tf.mul(bn.runningMean, 1 - momentum), tf.mul(mean, momentum)));
    bn.runningVar.assign(tf.add(tf.mul(bn.runningVar, 1 - momentum), tf.mul(unbiased, momentum)));
  });
}
