/**
 * FIR resampling in the style of StyleGAN2's `upfirdn2d`: zero-insertion upsampling, pad (or crop, for negative
 * pads), a 2-D FIR filter, then decimation. NHWC throughout; built from tfjs-core ops only so it runs (and
 * differentiates) on every backend.
 *
 * Conventions follow the official reference implementation so that padding arithmetic copied from a paper's
 * description lines up: the filter is applied as a true convolution (flipped) unless `flipFilter` is set, and
 * `gain` scales a 2-D filter once (a separable 1-D filter would take gain^(1/2) per axis; we expand it to 2-D).
 */
import * as tf from "@tensorflow/tfjs-core";
import { upsamplePolyphase } from "./polyphase.ts";

/** [x0, x1, y0, y1] (left, right, top, bottom), as upstream orders them. */
export type Padding4 = [number, number, number, number];

export function parsePadding(p: number | [number, number] | Padding4): Padding4 {
  if (typeof p === "number") return [p, p, p, p];
  if (p.length === 2) return [p[0], p[0], p[1], p[1]];
  return p;
}

/**
 * The normalised 2-D filter for a list of taps (outer product of a 1-D kernel, sum 1), in the shape the
 * official `resample_filter` buffers are stored.
 */
export function setupFilter(taps: readonly number[] | readonly (readonly number[])[]): tf.Tensor2D {
  return tf.tidy(() => {
    let f: tf.Tensor2D;
    if (typeof taps[0] === "number") {
      const v = tf.tensor1d(taps as number[], "float32");
      f = tf.outerProduct(v, v);
    } else f = tf.tensor2d(taps as number[][], undefined, "float32");
    return tf.div(f, tf.sum(f)) as tf.Tensor2D;
  });
}

/** Zero-insertion upsampling by (uy, ux). Only rank-4 pads, which every backend supports. */
function insertZeros(x: tf.Tensor4D, uy: number, ux: number): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  let y: tf.Tensor = x;
  if (ux > 1) y = tf.reshape(tf.pad(tf.reshape(y, [n * h, w, 1, c]), [[0, 0], [0, 0], [0, ux - 1], [0, 0]]), [n, h, w * ux, c]);
  if (uy > 1) y = tf.reshape(tf.pad(tf.reshape(y, [n, h, 1, w * ux * c]), [[0, 0], [0, 0], [0, uy - 1], [0, 0]]), [n, h * uy, w * ux, c]);
  return y as tf.Tensor4D;
}

export interface UpFirDnOptions {
  up?: number | [number, number];
  down?: number | [number, number];
  padding?: number | [number, number] | Padding4;
  flipFilter?: boolean;
  gain?: number;
}

const scaling = (s: number | [number, number] | undefined): [number, number] =>
  s === undefined ? [1, 1] : typeof s === "number" ? [s, s] : s; // [sx, sy]

/** x: [N,H,W,C]; f: the 2-D filter [fh, fw] (null means identity). */
export function upfirdn2d(x: tf.Tensor4D, f: tf.Tensor2D | null, opts: UpFirDnOptions = {}): tf.Tensor4D {
  const [ux, uy] = scaling(opts.up);
  const [dx, dy] = scaling(opts.down);
  const [px0, px1, py0, py1] = parsePadding(opts.padding ?? 0);
  const gain = opts.gain ?? 1;
  return tf.tidy(() => {
    if (f && ux === uy && ux > 1 && dx === 1 && dy === 1) {
      let g: tf.Tensor2D = gain !== 1 ? tf.mul(f, gain) : f;
      // The polyphase form takes the filter as a true-convolution kernel, as upfirdn2d does unless flipFilter.
      if (opts.flipFilter) g = tf.reverse(g, [0, 1]);
      const y = upsamplePolyphase(x, g, ux, [px0, px1, py0, py1]);
      if (y) return y;
    }
    let y = insertZeros(x, uy, ux);
    if (Math.max(px0, 0) + Math.max(px1, 0) + Math.max(py0, 0) + Math.max(py1, 0) > 0)
      y = tf.pad(y, [[0, 0], [Math.max(py0, 0), Math.max(py1, 0)], [Math.max(px0, 0), Math.max(px1, 0)], [0, 0]]);
    if (px0 < 0 || px1 < 0 || py0 < 0 || py1 < 0) {
      const [, h, w] = y.shape;
      const top = Math.max(-py0, 0);
      const left = Math.max(-px0, 0);
      y = tf.slice(y, [0, top, left, 0], [-1, h - top - Math.max(-py1, 0), w - left - Math.max(-px1, 0), -1]);
    }
    // Pure pad/crop: nothing to filter.
    if (!f && gain === 1 && dx === 1 && dy === 1) return y.clone();
    const c = y.shape[3];
    let k: tf.Tensor = f ?? tf.ones([1, 1]);
    if (gain !== 1) k = tf.mul(k, gain);
    if (!opts.flipFilter) k = tf.reverse(k, [0, 1]);
    const [fh, fw] = k.shape;
    const kernel = tf.tile(tf.reshape(k, [fh, fw, 1, 1]), [1, 1, c, 1]) as tf.Tensor4D;
    // Decimating in the conv (stride) is exactly upstream's x[:, :, ::dy, ::dx] of the full-rate output.
    return tf.depthwiseConv2d(y, kernel, [dy, dx], "valid");
  });
}

/** 2x (or `up`x) upsampling with the padding that keeps the output exactly up*H x up*W. */
export function upsample2d(x: tf.Tensor4D, f: tf.Tensor2D, up = 2, padding: number | Padding4 = 0, gain = 1): tf.Tensor4D {
  const [px0, px1, py0, py1] = parsePadding(padding);
  const [fh, fw] = f.shape;
  return upfirdn2d(x, f, {
    up,
    padding: [px0 + Math.floor((fw + up - 1) / 2), px1 + Math.floor((fw - up) / 2), py0 + Math.floor((fh + up - 1) / 2), py1 + Math.floor((fh - up) / 2)],
    gain: gain * up * up,
  });
}

/** 2x (or `down`x) anti-aliased downsampling to exactly H/down x W/down. */
export function downsample2d(x: tf.Tensor4D, f: tf.Tensor2D, down = 2, padding: number | Padding4 = 0, gain = 1): tf.Tensor4D {
  const [px0, px1, py0, py1] = parsePadding(padding);
  const [fh, fw] = f.shape;
  return upfirdn2d(x, f, {
    down,
    padding: [px0 + Math.floor((fw - down + 1) / 2), px1 + Math.floor((fw - down) / 2), py0 + Math.floor((fh - down + 1) / 2), py1 + Math.floor((fh - down) / 2)],
    gain,
  });
}
