/**
 * PyTorch's legacy `F.interpolate(mode='nearest')` on NHWC tensors.
 *
 * PyTorch picks the source index as `min(floor(float32(dst) * float32(in / out)), in - 1)`, all in float32. We
 * compute the same indices on the host (so the result does not depend on how a backend rounds) and gather them;
 * a gather is exact and differentiable, so the same op serves training.
 */
import * as tf from "@tensorflow/tfjs-core";

/** Source index for each destination index along one axis, as PyTorch's legacy nearest computes it. */
export function legacyNearestIndices(inSize: number, outSize: number): Int32Array {
  const idx = new Int32Array(outSize);
  if (outSize === inSize) {
    for (let i = 0; i < outSize; i++) idx[i] = i;
    return idx;
  }
  // The scale is a float32 division and the product is rounded to float32 before the floor: in double precision a
  // product like 3 * fround(1/3) can land on the other side of an integer.
  const scale = Math.fround(inSize / outSize);
  for (let i = 0; i < outSize; i++) idx[i] = Math.min(Math.floor(Math.fround(i * scale)), inSize - 1);
  return idx;
}

/** Resize an NHWC tensor to (height, width) with legacy nearest indexing; a no-op when the size already matches. */
export function resizeNearestLegacy(x: tf.Tensor4D, height: number, width: number): tf.Tensor4D {
  const [, h, w] = x.shape;
  if (h === height && w === width) return x;
  return tf.tidy(() => {
    let y = x;
    if (h !== height) y = tf.gather(y, tf.tensor1d(legacyNearestIndices(h, height), "int32"), 1);
    if (w !== width) y = tf.gather(y, tf.tensor1d(legacyNearestIndices(w, width), "int32"), 2);
    return y;
  });
}

/**
 * `nn.Upsample(scale_factor=2)` (nearest): every pixel becomes a 2x2 block. Integer factors need no index
 * arithmetic, so TF's own kernel gives the same result on every backend.
 */
export function upsampleNearest2x(x: tf.Tensor4D): tf.Tensor4D {
  const [, h, w] = x.shape;
  return tf.image.resizeNearestNeighbor(x, [2 * h, 2 * w], false, false);
}

/** Nearest x2 as a broadcast of each pixel over a 2x2 block: differentiable on every backend. */
export function upsampleNearest2xBroadcast(x: tf.Tensor4D): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  return tf.reshape(tf.mul(tf.reshape(x, [n, h, 1, w, 1, c]), tf.ones([1, 1, 2, 1, 2, 1])), [n, 2 * h, 2 * w, c]);
}
