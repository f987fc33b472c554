/**
 * The StyleGAN2 losses (Karras et al. 2020; stylegan2-ada `StyleGAN2Loss`): non-saturating logistic loss for G and
 * D, and the R1 gradient penalty of Mescheder et al. 2018 on real images.
 */
import * as tf from "@tensorflow/tfjs-core";

/** G: mean softplus(−D(G(z))), i.e. −log sigmoid of the fake logits. */
export function nonSaturatingGeneratorLoss(fakeLogits: tf.Tensor): tf.Scalar {
  return tf.mean(tf.softplus(tf.neg(fakeLogits))) as tf.Scalar;
}

/** D: softplus(D(fake)) + softplus(−D(real)), each averaged over its batch. */
export function logisticDiscriminatorLoss(realLogits: tf.Tensor, fakeLogits: tf.Tensor): { real: tf.Scalar; fake: tf.Scalar; total: tf.Scalar } {
  const fake = tf.mean(tf.softplus(fakeLogits)) as tf.Scalar;
  const real = tf.mean(tf.softplus(tf.neg(realLogits))) as tf.Scalar;
  return { real, fake, total: tf.add(real, fake) as tf.Scalar };
}

/**
 * Per-sample squared norm of ∇ₓ Σ D(x) at the real images: [N]. Built with tf.grad, so when called inside
 * tf.variableGrads the parameters receive the second-order gradient the penalty needs (D must be twice
 * differentiable in TF.js; see networks/stylegan2/discriminator.ts).
 */
export function r1Penalty(d: (x: tf.Tensor4D) => tf.Tensor, real: tf.Tensor4D): tf.Tensor1D {
  const g = tf.grad((x: tf.Tensor) => tf.sum(d(x as tf.Tensor4D)))(real);
  return tf.sum(tf.square(g), [1, 2, 3]) as tf.Tensor1D;
}
