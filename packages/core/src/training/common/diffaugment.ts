/**
 * Differentiable augmentation (DiffAugment, Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
 * Training"): the same random colour / translation / cutout transforms are applied to real and fake images before
 * D, and G's gradient flows through them, so D cannot overfit a small dataset without G learning the augmentations.
 *
 * The random parameters are drawn on the host from a `StepRng` (a pure function of seed, step and stream), then
 * applied with tensor ops that are differentiable to any order: translation as per-sample shift matrices (batched
 * matMul), cutout as a constant mask, colour as per-sample affine maps. R1 differentiates through them twice.
 *
 * Images are NHWC in [-1, 1]; magnitudes follow the paper's defaults (translation 1/8 of the size, cutout 1/2).
 */
import * as tf from "@tensorflow/tfjs-core";
import type { StepRng } from "./step-rng.ts";

export type AugmentOp = "color" | "translation" | "cutout";
export const AUGMENT_OPS: readonly AugmentOp[] = ["color", "translation", "cutout"];

export interface DiffAugmentParams {
  n: number;
  height: number;
  width: number;
  /** Per-sample colour factors (present with "color"): brightness shift, saturation and contrast scales. */
  color?: { brightness: Float32Array; saturation: Float32Array; contrast: Float32Array };
  /** Per-sample integer shifts: output pixel (y, x) reads input (y + ty, x + tx), zero outside. */
  translation?: { tx: Int32Array; ty: Int32Array };
  /** Per-sample [N, H, W, 1] 0/1 mask. */
  cutout?: Float32Array;
}

const randint = (rng: StepRng, lo: number, hiExclusive: number) => lo + rng.int(hiExclusive - lo);

/** Draws the parameters of `ops` for a batch. Each op reads its own values in a fixed order. */
export function sampleDiffAugment(rng: StepRng, n: number, height: number, width: number, ops: readonly AugmentOp[]): DiffAugmentParams {
  const p: DiffAugmentParams = { n, height, width };
  if (ops.includes("color")) {
    const brightness = new Float32Array(n);
    const saturation = new Float32Array(n);
    const contrast = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      brightness[i] = rng.next() - 0.5;
      saturation[i] = rng.next() * 2;
      contrast[i] = rng.next() + 0.5;
    }
    p.color = { brightness, saturation, contrast };
  }
  if (ops.includes("translation")) {
    const sx = Math.floor(width * 0.125 + 0.5);
    const sy = Math.floor(height * 0.125 + 0.5);
    const tx = new Int32Array(n);
    const ty = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      tx[i] = randint(rng, -sx, sx + 1);
      ty[i] = randint(rng, -sy, sy + 1);
    }
    p.translation = { tx, ty };
  }
  if (ops.includes("cutout")) {
    const ch = Math.floor(height * 0.5 + 0.5);
    const cw = Math.floor(width * 0.5 + 0.5);
    const mask = new Float32Array(n * height * width).fill(1);
    for (let i = 0; i < n; i++) {
      // Centre offsets as the reference implementation draws them (the square may hang over the border).
      const oy = randint(rng, 0, height + (1 - (ch % 2)));
      const ox = randint(rng, 0, width + (1 - (cw % 2)));
      for (let y = oy - Math.floor(ch / 2); y < oy - Math.floor(ch / 2) + ch; y++)
        for (let x = ox - Math.floor(cw / 2); x < ox - Math.floor(cw / 2) + cw; x++) {
          const yy = Math.min(Math.max(y, 0), height - 1);
          const xx = Math.min(Math.max(x, 0), width - 1);
          mask[(i * height + yy) * width + xx] = 0;
        }
    }
    p.cutout = mask;
  }
  return p;
}

/** [N, size, size] matrices S with S[i][j] = 1 where j = i + shift (a zero-filled shift along one axis). */
function shiftMatrices(shifts: Int32Array, size: number): tf.Tensor3D {
  const m = new Float32Array(shifts.length * size * size);
  shifts.forEach((s, n) => {
    for (let i = 0; i < size; i++) {
      const j = i + s;
      if (j >= 0 && j < size) m[(n * size + i) * size + j] = 1;
    }
  });
  return tf.tensor3d(m, [shifts.length, size, size]);
}

export function applyDiffAugment(x: tf.Tensor4D, p: DiffAugmentParams): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  if (n !== p.n || h !== p.height || w !== p.width) throw new Error(`diffaugment: parameters are for [${p.n}, ${p.height}, ${p.width}], images are [${x.shape}]`);
  return tf.tidy(() => {
    let y: tf.Tensor4D = x;
    if (p.color) {
      const per = (v: Float32Array) => tf.tensor4d(v, [n, 1, 1, 1]);
      y = tf.add(y, per(p.color.brightness));
      const chMean = tf.mean(y, 3, true);
      y = tf.add(tf.mul(tf.sub(y, chMean), per(p.color.saturation)), chMean);
      const allMean = tf.mean(y, [1, 2, 3], true);
      y = tf.add(tf.mul(tf.sub(y, allMean), per(p.color.contrast)), allMean);
    }
    if (p.translation) {
      const rows = tf.matMul(shiftMatrices(p.translation.ty, h), tf.reshape(y, [n, h, w * c]) as tf.Tensor3D);
      const t = tf.reshape(tf.transpose(tf.reshape(rows, [n, h, w, c]), [0, 1, 3, 2]), [n, h * c, w]) as tf.Tensor3D;
      const cols = tf.matMul(t, shiftMatrices(p.translation.tx, w), false, true);
      y = tf.transpose(tf.reshape(cols, [n, h, c, w]), [0, 1, 3, 2]) as tf.Tensor4D;
    }
    if (p.cutout) y = tf.mul(y, tf.tensor4d(p.cutout, [n, h, w, 1]));
    return y;
  });
}
