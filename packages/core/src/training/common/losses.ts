/** Reconstruction and feature-matching terms of the CycleGAN and SPADE trainers (the GAN losses are in ../losses.ts). */
import * as tf from "@tensorflow/tfjs-core";

export function l1Loss(a: tf.Tensor, b: tf.Tensor): tf.Scalar {
  return tf.mean(tf.abs(tf.sub(a, b))) as tf.Scalar;
}

/**
 * pix2pixHD/SPADE feature matching: L1 between D's intermediate features on fake and (detached) real, summed over
 * layers (the final prediction excluded) and averaged over scales, times lambda. Upstream detaches the real
 * features; here the caller differentiates only w.r.t. G's variables, and nothing of G reaches the real branch.
 */
export function featureMatchingLoss(fake: tf.Tensor[][], real: tf.Tensor[][], lambda: number): tf.Scalar {
  const terms: tf.Scalar[] = [];
  for (let i = 0; i < fake.length; i++)
    for (let j = 0; j < fake[i].length - 1; j++) terms.push(l1Loss(fake[i][j], real[i][j]));
  if (terms.length === 0) return tf.scalar(0);
  return tf.mul(tf.addN(terms), lambda / fake.length) as tf.Scalar;
}
