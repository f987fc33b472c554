/**
 * The R1 gradient penalty of Mescheder et al. 2018 on real images (stylegan2-ada `StyleGAN2Loss`'s Dr1); the GAN
 * losses themselves are in ../losses.ts.
 */
import * as tf from "@tensorflow/tfjs-core";

/**
 * Per-sample squared norm of ∇ₓ Σ D(x) at the real images: [N]. Built with tf.grad, so when called inside
 * tf.variableGrads the parameters receive the second-order gradient the penalty needs (D must be twice
 * differentiable in TF.js; see networks/stylegan2/discriminator.ts).
 */
export function r1Penalty(d: (x: tf.Tensor4D) => tf.Tensor, real: tf.Tensor4D): tf.Tensor1D {
  const g = tf.grad((x: tf.Tensor) => tf.sum(d(x as tf.Tensor4D)))(real);
  return tf.sum(tf.square(g), [1, 2, 3]) as tf.Tensor1D;
}
