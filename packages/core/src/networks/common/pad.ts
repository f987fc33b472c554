/** Spatial padding of NHWC tensors with PyTorch semantics. */
import * as tf from "@tensorflow/tfjs-core";

/** nn.ReflectionPad2d(p): mirror without repeating the edge; PyTorch requires p < H and p < W, and so do we. */
export function reflectionPad2d(x: tf.Tensor4D, p: number): tf.Tensor4D {
  if (p === 0) return x;
  const [, h, w] = x.shape;
  if (p >= h || p >= w) throw new Error(`reflection padding ${p} needs a spatial size above ${p}, got ${h}x${w}`);
  return tf.mirrorPad(x, [[0, 0], [p, p], [p, p], [0, 0]], "reflect");
}
