/**
 * y + bias along the last axis, as one tape node while a gradient is recorded. As a broadcasting tf.add the
 * tape clones both inputs for the backward pass and the gradient reshapes dy for y and sums then reshapes it
 * for the bias: six kernel dispatches per conv bias, where two do (CycleGAN's demo step runs ~120 biased
 * convs; dispatches, not arithmetic, dominate its time on wasm). Same kernels for the values, so forward
 * outputs and gradients are bit-identical to tf.add's.
 */
import * as tf from "@tensorflow/tfjs-core";

const fused = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const [y, bias] = args as [tf.Tensor, tf.Tensor];
  const axes = y.shape.slice(0, -1).map((_, i) => i);
  return {
    value: tf.add(y, bias),
    // dy itself would do for y; a reshape gives the tape its own handle at no copy.
    gradFunc: (dy: tf.Tensor) => [tf.reshape(dy, y.shape), tf.sum(dy, axes)],
  };
});

/** tf.add(y, bias); a bias of any other shape than [last axis of y] takes tf.add's own broadcasting path. */
export function biasAdd<T extends tf.Tensor>(y: T, bias: tf.Tensor): T {
  const perChannel = bias.rank === 1 && bias.shape[0] === y.shape[y.rank - 1] && y.rank > 1;
  return (perChannel && tf.engine().isTapeOn() ? fused(y, bias) : tf.add(y, bias)) as T;
}
