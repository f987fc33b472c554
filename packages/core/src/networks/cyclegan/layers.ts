/** Pieces shared by both CycleGAN generator types. */
import type * as tf from "@tensorflow/tfjs-core";
import { BatchNorm2d, InstanceNorm2d, NoNorm, RUNNING_STAT_LEAVES, type NormLayer } from "../common/norm.ts";
import type { Ops } from "../ops/ops.ts";
import type { CycleGANConfig } from "./config.ts";

/**
 * Every pix2pix/CycleGAN network keeps its layers in an nn.Sequential attribute `model` (the U-Net nests one per
 * level), so each official parameter name is a path of `model` and Sequential indices.
 */
export const MODEL = "model";

/**
 * The norm upstream's `get_norm_layer` builds: BatchNorm2d(affine) with running stats, or InstanceNorm2d without
 * affine and without running stats, or Identity.
 */
export function makeNorm<T = tf.Tensor4D, P = tf.Variable>(ops: Ops<T, P>, name: string, channels: number, norm: CycleGANConfig["norm"], instanceNormNames: string[]): NormLayer<T> {
  switch (norm) {
    case "batch":
      return new BatchNorm2d(ops, name, channels, { affine: true });
    case "instance":
      instanceNormNames.push(name);
      return new InstanceNorm2d(ops, name, channels, { affine: false });
    case "none":
      return new NoNorm(name);
  }
}

/**
 * Checkpoints from the 2018 code built InstanceNorm with track_running_stats=True and so carry running stats for it;
 * current upstream deletes them on load and normalises per instance, and so do we (using them changes the output
 * completely).
 */
export function staleInstanceNormKey(instanceNormNames: readonly string[]): (key: string) => boolean {
  const stale = new Set(instanceNormNames.flatMap((n) => RUNNING_STAT_LEAVES.map((leaf) => `${n}.${leaf}`)));
  return (key) => stale.has(key);
}
