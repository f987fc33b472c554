/**
 * 2-D convolution combined with FIR up/downsampling (StyleGAN2's `conv2d_resample`), NHWC input and HWIO
 * weight. The branch structure matters, not just the maths: upstream picks a different op order for each
 * case (e.g. transposed conv then FIR for up=2), and reproducing the same order and padding is what makes
 * outputs match a PyTorch checkpoint to float rounding instead of to a shifted-by-half-a-pixel image.
 */
import * as tf from "@tensorflow/tfjs-core";
import { parsePadding, upfirdn2d, type Padding4 } from "./upfirdn2d.ts";

export interface Conv2dResampleOptions {
  /** The 2-D resampling filter (required when up or down > 1). */
  f?: tf.Tensor2D | null;
  up?: number;
  down?: number;
  padding?: number | [number, number] | Padding4;
  /** true = cross-correlation (PyTorch conv2d semantics); false = true convolution (kernel flipped). */
  flipWeight?: boolean;
  flipFilter?: boolean;
}

/** Plain or strided conv with optional kernel flip; symmetric explicit padding. */
function conv(x: tf.Tensor4D, w: tf.Tensor4D, stride: number, padY: number, padX: number, flipWeight: boolean): tf.Tensor4D {
  const k = flipWeight ? w : (tf.reverse(w, [0, 1]) as tf.Tensor4D);
  if (padY === padX) return tf.conv2d(x, k, stride, padY === 0 ? "valid" : padY);
  return tf.conv2d(tf.pad(x, [[0, 0], [padY, padY], [padX, padX], [0, 0]]), k, stride, "valid");
}

/** PyTorch conv_transpose2d semantics (weight used as the adjoint of a correlation), with output cropping. */
function convTranspose(x: tf.Tensor4D, wHWIO: tf.Tensor4D, stride: number, padY: number, padX: number, flipWeight: boolean): tf.Tensor4D {
  const k = flipWeight ? wHWIO : (tf.reverse(wHWIO, [0, 1]) as tf.Tensor4D);
  const [kh, kw, , outC] = k.shape;
  const [n, h, w] = x.shape;
  // TF's transposed-conv filter is [h, w, out, in] where `in` is x's channel count.
  const filter = tf.transpose(k, [0, 1, 3, 2]) as tf.Tensor4D;
  const fullH = (h - 1) * stride + kh;
  const fullW = (w - 1) * stride + kw;
  const y = tf.conv2dTranspose(x, filter, [n, fullH, fullW, outC], stride, "valid");
  if (padY === 0 && padX === 0) return y;
  return tf.slice(y, [0, padY, padX, 0], [-1, fullH - 2 * padY, fullW - 2 * padX, -1]);
}

/** Zero-pads (positive) or crops (negative) the two spatial axes. */
function padOrCrop(x: tf.Tensor4D, top: number, bottom: number, left: number, right: number): tf.Tensor4D {
  return upfirdn2d(x, null, { padding: [left, right, top, bottom] });
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
function upConvPolyphase(
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
 * x: [N,H,W,Cin]; w: [kh,kw,Cin,Cout] (already scaled by any weight gain). Returns [N,H',W',Cout].
 * `flipWeight` defaults to true, as upstream.
 */
export function conv2dResample(x: tf.Tensor4D, w: tf.Tensor4D, opts: Conv2dResampleOptions = {}): tf.Tensor4D {
  const up = opts.up ?? 1;
  const down = opts.down ?? 1;
  const flipWeight = opts.flipWeight ?? true;
  const flipFilter = opts.flipFilter ?? false;
  const f = opts.f ?? null;
  const [kh, kw] = w.shape;
  const [fh, fw] = f ? f.shape : [1, 1];
  let [px0, px1, py0, py1] = parsePadding(opts.padding ?? 0);
  if ((up > 1 || down > 1) && !f) throw new Error("conv2dResample: a resampling filter is required for up/down > 1");

  if (up > 1) {
    px0 += Math.floor((fw + up - 1) / 2);
    px1 += Math.floor((fw - up) / 2);
    py0 += Math.floor((fh + up - 1) / 2);
    py1 += Math.floor((fh - up) / 2);
  }
  if (down > 1) {
    px0 += Math.floor((fw - down + 1) / 2);
    px1 += Math.floor((fw - down) / 2);
    py0 += Math.floor((fh - down + 1) / 2);
    py1 += Math.floor((fh - down) / 2);
  }

  return tf.tidy(() => {
    if (kw === 1 && kh === 1 && down > 1 && up === 1) {
      const y = upfirdn2d(x, f, { down, padding: [px0, px1, py0, py1], flipFilter });
      return conv(y, w, 1, 0, 0, flipWeight);
    }
    const [, h, wid] = x.shape;
    const gainFilter = (): tf.Tensor2D => {
      const g = tf.mul(f!, up * up) as tf.Tensor2D;
      return flipFilter ? (tf.reverse(g, [0, 1]) as tf.Tensor2D) : g;
    };
    if (kw === 1 && kh === 1 && up > 1 && down === 1) {
      const hOut = h * up + py0 + py1 - fh + 1;
      const wOut = wid * up + px0 + px1 - fw + 1;
      if (hOut > 0 && wOut > 0 && hOut % up === 0 && wOut % up === 0)
        return upConvPolyphase(x, w, gainFilter(), up, fh - 1 - py0, fw - 1 - px0, hOut, wOut);
      const y = conv(x, w, 1, 0, 0, flipWeight);
      return upfirdn2d(y, f, { up, padding: [px0, px1, py0, py1], gain: up * up, flipFilter });
    }
    if (down > 1 && up === 1) {
      const y = upfirdn2d(x, f, { padding: [px0, px1, py0, py1], flipFilter });
      return conv(y, w, down, 0, 0, flipWeight);
    }
    if (up > 1) {
      px0 -= kw - 1;
      px1 -= kw - up;
      py0 -= kh - 1;
      py1 -= kh - up;
      const hOut = (h - 1) * up + kh + py0 + py1 - fh + 1;
      const wOut = (wid - 1) * up + kw + px0 + px1 - fw + 1;
      if (down === 1 && hOut > 0 && wOut > 0 && hOut % up === 0 && wOut % up === 0) {
        // The transposed conv uses w unflipped exactly when the caller asked for a true convolution.
        const wt = flipWeight ? (tf.reverse(w, [0, 1]) as tf.Tensor4D) : w;
        return upConvPolyphase(x, wt, gainFilter(), up, fh - 1 - py0, fw - 1 - px0, hOut, wOut);
      }
      const pxt = Math.max(Math.min(-px0, -px1), 0);
      const pyt = Math.max(Math.min(-py0, -py1), 0);
      let y = convTranspose(x, w, up, pyt, pxt, !flipWeight);
      y = upfirdn2d(y, f, { padding: [px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain: up * up, flipFilter });
      if (down > 1) y = upfirdn2d(y, f, { down, flipFilter });
      return y;
    }
    if (px0 === px1 && py0 === py1 && px0 >= 0 && py0 >= 0) return conv(x, w, 1, py0, px0, flipWeight);
    // Asymmetric or negative padding: pad/crop explicitly, then a valid conv.
    const y = upfirdn2d(x, null, { padding: [px0, px1, py0, py1] });
    return conv(y, w, 1, 0, 0, flipWeight);
  });
}
