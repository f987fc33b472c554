/** GAN loss terms as the CycleGAN (`GANLoss`, lsgan) and SPADE (`GANLoss`, hinge) repos define them. */
import * as tf from "@tensorflow/tfjs-core";

/** LSGAN: MSE between the prediction and a constant target (1 real, 0 fake). */
export function lsganLoss(pred: tf.Tensor, targetIsReal: boolean): tf.Scalar {
  return tf.mean(tf.square(tf.sub(pred, targetIsReal ? 1 : 0))) as tf.Scalar;
}

export function l1Loss(a: tf.Tensor, b: tf.Tensor): tf.Scalar {
  return tf.mean(tf.abs(tf.sub(a, b))) as tf.Scalar;
}

/**
 * Hinge loss of one prediction map. For D: real → -mean(min(pred - 1, 0)), fake → -mean(min(-pred - 1, 0)).
 * For G: -mean(pred) (only the "real" target makes sense there).
 */
export function hingeLoss(pred: tf.Tensor, targetIsReal: boolean, forDiscriminator: boolean): tf.Scalar {
  if (!forDiscriminator) {
    if (!targetIsReal) throw new Error("the generator's hinge loss must target real");
    return tf.neg(tf.mean(pred)) as tf.Scalar;
  }
  const shifted = targetIsReal ? tf.sub(pred, 1) : tf.sub(tf.neg(pred), 1);
  return tf.neg(tf.mean(tf.minimum(shifted, 0))) as tf.Scalar;
}

/** Upstream's multiscale GANLoss: the loss of each scale's final output, averaged over scales. */
export function multiscaleHinge(preds: tf.Tensor[][], targetIsReal: boolean, forDiscriminator: boolean): tf.Scalar {
  const per = preds.map((feats) => hingeLoss(feats[feats.length - 1], targetIsReal, forDiscriminator));
  return tf.div(tf.addN(per), per.length) as tf.Scalar;
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
