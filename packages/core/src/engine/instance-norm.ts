/**
 * Instance normalisation (x - mean) / sqrt(var + eps) over H and W of an NHWC tensor, as one tape node when a
 * gradient is being recorded. Built from moments, sub, add, rsqrt and mul, the tape holds ten nodes per norm,
 * each with its saved tensors cloned and its own chain of broadcast-reducing gradient ops: about fifty kernel
 * dispatches per norm, which on wasm cost more than the arithmetic at the sizes CycleGAN trains at (a
 * CycleGAN demo step runs ~110 norms; `npm run bench:train -- --profile`). The hand-written gradient is the
 * textbook one, seven kernels:
 *   dx = r · (dy − mean(dy) − y · mean(dy · y)),  y = (x − mean) · r,  r = 1 / sqrt(var + eps).
 * The forward runs the same arithmetic either way, so outputs are bit-identical to the moments-based form.
 * The gradient is first-order only: it reads the saved y and r as constants, so differentiating it again (a
 * gradient penalty through a normalised D) would be wrong. No trainer does that: training/losses.ts refuses R1
 * and wgan-gp for every family whose discriminator normalises this way.
 */
import * as tf from "@tensorflow/tfjs-core";

/**
 * tf.moments' kernels (mean, x − mean, its square, their mean) without its cast and reshape, and with x − mean
 * computed once rather than again for the output: the same operations on the same values, so the same bits.
 */
function normalize(x: tf.Tensor4D, eps: number): { y: tf.Tensor4D; r: tf.Tensor4D } {
  const centred = tf.sub(x, tf.mean(x, [1, 2], true));
  const variance = tf.mean(tf.square(centred), [1, 2], true);
  const r = tf.rsqrt(tf.add(variance, eps)) as tf.Tensor4D;
  return { y: tf.mul(centred, r) as tf.Tensor4D, r };
}

const fused = new Map<number, (x: tf.Tensor4D) => tf.Tensor4D>();

function fusedFor(eps: number): (x: tf.Tensor4D) => tf.Tensor4D {
  let f = fused.get(eps);
  if (!f) {
    f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const [x, save] = args as [tf.Tensor4D, tf.GradSaveFunc];
      const { y, r } = normalize(x, eps);
      save([y, r]);
      return {
        value: y,
        gradFunc: (dy: tf.Tensor, [ys, rs]: tf.Tensor[]) => {
          const centred = tf.sub(dy, tf.mean(dy, [1, 2], true));
          return tf.mul(tf.sub(centred, tf.mul(ys, tf.mean(tf.mul(dy, ys), [1, 2], true))), rs);
        },
      };
    }) as (x: tf.Tensor4D) => tf.Tensor4D;
    fused.set(eps, f);
  }
  return f;
}

/** Normalised x (no affine); one tape node with its own gradient while a tape records, plain kernels otherwise. */
export function instanceNormalize(x: tf.Tensor4D, eps: number): tf.Tensor4D {
  if (tf.engine().isTapeOn()) return fusedFor(eps)(x);
  return tf.tidy(() => normalize(x, eps).y);
}
