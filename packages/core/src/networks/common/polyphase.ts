/**
 * Polyphase form of "zero-insert by `up`, then filter": every up-sampling op of StyleGAN2 (transposed conv + FIR,
 * 1x1 conv + FIR, plain FIR upsampling of the RGB skip image) becomes one ordinary conv at the input resolution
 * plus a pixel interleave. Ordinary convs are the fastest kernel on every TF.js backend, and unlike
 * depthwise/transposed convs they can be differentiated twice (path-length regularisation needs that).
 */
import * as tf from "@tensorflow/tfjs-core";

/** Zero-pads (positive) or crops (negative) the two spatial axes. */
function padOrCrop(x: tf.Tensor4D, top: number, bottom: number, left: number, right: number): tf.Tensor4D {
  let y = x;
  if (top > 0 || bottom > 0 || left > 0 || right > 0)
    y = tf.pad(y, [[0, 0], [Math.max(top, 0), Math.max(bottom, 0)], [Math.max(left, 0), Math.max(right, 0)], [0, 0]]);
  if (top < 0 || bottom < 0 || left < 0 || right < 0) {
    const [, h, w] = y.shape;
    const t = Math.max(-top, 0);
    const l = Math.max(-left, 0);
    y = tf.slice(y, [0, t, l, 0], [-1, h - t - Math.max(-bottom, 0), w - l - Math.max(-right, 0), -1]);
  }
  return y;
}

/**
 * For one axis: the taps of the polyphase decomposition of "zero-insert by `up`, then correlate with the
 * composite kernel". Output y = up*m + p reads x[m + d] through composite tap t = p + P - up*d.
 */
function phases(P: number, K: number, up: number) {
  let dmin = Infinity;
  let dmax = -Infinity;
  for (let p = 0; p < up; p++) {
    dmin = Math.min(dmin, Math.ceil((p + P - (K - 1)) / up));
    dmax = Math.max(dmax, Math.floor((p + P) / up));
  }
  const tap = (p: number, dd: number) => {
    const t = p + P - up * (dd + dmin);
    return t >= 0 && t < K ? t : -1;
  };
  return { dmin, dmax, size: dmax - dmin + 1, tap };
}

/**
 * Upsampling conv as ONE ordinary conv at the input resolution plus a pixel interleave.
 *
 * Upstream computes conv_transpose(x, w) then a FIR (or conv then zero-insert + FIR for 1x1). Both are linear
 * and shift-invariant, so together they equal zero-insertion followed by one composite kernel K = w (*) g
 * (full 2-D convolution, (kh+fh-1) x (kw+fw-1)); zero-insertion means each output phase (y mod up) only sees
 * every up-th tap of K. We build those per-phase kernels (a small matmul on the weights) and run them as a
 * single conv with up*up*O output channels. On wasm this replaces a transposed conv and a depthwise FIR, both
 * without fast kernels (~6x slower than a plain conv), and it differentiates with the ops plain convs need.
 *
 * Y[y, x] = sum_{i,j} X[i, j] K[y + Py - up*i, x + Px - up*j], for y < hOut, x < wOut.
 */
export function upConvPolyphase(
  x: tf.Tensor4D,
  w: tf.Tensor4D,
  g: tf.Tensor2D,
  up: number,
  Py: number,
  Px: number,
  hOut: number,
  wOut: number,
): tf.Tensor4D {
  const [kh, kw, inC, outC] = w.shape;
  const [fh, fw] = g.shape;
  const Kh = kh + fh - 1;
  const Kw = kw + fw - 1;
  const ry = phases(Py, Kh, up);
  const rx = phases(Px, Kw, up);
  // Gather matrix: row (dy, dx, py, px), column (a, b) → g[ty - a, tx - b], or the appended zero.
  const zero = fh * fw;
  const idx: number[] = [];
  for (let dy = 0; dy < ry.size; dy++)
    for (let dx = 0; dx < rx.size; dx++)
      for (let py = 0; py < up; py++)
        for (let px = 0; px < up; px++) {
          const ty = ry.tap(py, dy);
          const tx = rx.tap(px, dx);
          for (let a = 0; a < kh; a++)
            for (let b = 0; b < kw; b++) {
              const u = ty - a;
              const v = tx - b;
              idx.push(ty < 0 || tx < 0 || u < 0 || u >= fh || v < 0 || v >= fw ? zero : u * fw + v);
            }
        }
  const rows = ry.size * rx.size * up * up;
  const gExt = tf.concat([tf.reshape(g, [-1]), tf.zeros([1])]);
  const G = tf.reshape(tf.gather(gExt, tf.tensor1d(idx, "int32")), [rows, kh * kw]) as tf.Tensor2D;
  let k: tf.Tensor = tf.matMul(G, tf.reshape(w, [kh * kw, inC * outC]) as tf.Tensor2D);
  k = tf.transpose(tf.reshape(k, [ry.size * rx.size, up * up, inC, outC]), [0, 2, 1, 3]);
  const kernel = tf.reshape(k, [ry.size, rx.size, inC, up * up * outC]) as tf.Tensor4D;

  const [n, h, wid] = x.shape;
  const hm = hOut / up;
  const wm = wOut / up;
  const xp = padOrCrop(x, -ry.dmin, hm + ry.dmax - h, -rx.dmin, wm + rx.dmax - wid);
  const y = tf.conv2d(xp, kernel, 1, "valid"); // [N, hm, wm, (py, px, o)]
  const inter = tf.transpose(tf.reshape(y, [n * hm, wm, up, up * outC]), [0, 2, 1, 3]);
  return tf.reshape(inter, [n, hOut, wOut, outC]);
}

/**
 * upfirdn2d with up > 1 and no decimation, as a polyphase conv: each channel is filtered on its own (the weight
 * is the identity over channels). `p0`/`p1` are upfirdn2d's [before, after] pads per axis; g already carries the
 * gain and the flip upfirdn2d would apply. Returns null when the output size is not a multiple of `up`.
 */
export function upsamplePolyphase(x: tf.Tensor4D, g: tf.Tensor2D, up: number, pad: [number, number, number, number]): tf.Tensor4D | null {
  const [, h, w, c] = x.shape;
  const [fh, fw] = g.shape;
  const [px0, px1, py0, py1] = pad;
  const hOut = h * up + py0 + py1 - fh + 1;
  const wOut = w * up + px0 + px1 - fw + 1;
  if (hOut <= 0 || wOut <= 0 || hOut % up || wOut % up) return null;
  return tf.tidy(() => {
    const eye = tf.reshape(tf.eye(c), [1, 1, c, c]) as tf.Tensor4D;
    return upConvPolyphase(x, eye, g, up, fh - 1 - py0, fw - 1 - px0, hOut, wOut);
  });
}
