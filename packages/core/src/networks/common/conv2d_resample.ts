/**
 * 2-D convolution combined with FIR up/downsampling (StyleGAN2's `conv2d_resample`), NHWC input and HWIO
 * weight. The branch structure matters, not just the maths: upstream picks a different op order for each
 * case (e.g. transposed conv then FIR for up=2), and reproducing the same order and padding is what makes
 * outputs match a PyTorch checkpoint to float rounding instead of to a shifted-by-half-a-pixel image.
 */
import * as tf from "@tensorflow/tfjs-core";
import { upConvPolyphase } from "./polyphase.ts";
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
