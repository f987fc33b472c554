/**
 * Exponential moving average of generator weights (Karras et al.; stylegan2-ada's `G_ema`). The decay is given as
 * a half-life in images, so it means the same thing at any batch size: beta = 0.5^(batch / half_life_images).
 */
import * as tf from "@tensorflow/tfjs-core";

/**
 * `rampup` (ada's `ema_rampup`, e.g. 0.05) caps the half-life at that fraction of the images seen so far, so a run
 * from scratch is not anchored to its random start; null disables it (what fine-tuning from a good model wants).
 */
export function emaBeta(batchSize: number, halfLifeImages: number, imagesSeen: number, rampup: number | null): number {
  const nimg = rampup == null ? halfLifeImages : Math.min(halfLifeImages, imagesSeen * rampup);
  return 0.5 ** (batchSize / Math.max(nimg, 1e-8));
}

/** ema ← p + beta (ema − p) for each pair, the same expression as torch's `p.lerp(p_ema, beta)`. */
export function emaUpdate(pairs: Iterable<[ema: tf.Variable, source: tf.Variable]>, beta: number): void {
  tf.tidy(() => {
    for (const [ema, p] of pairs) {
      if (beta === 0) ema.assign(p);
      else ema.assign(tf.add(p, tf.mul(tf.sub(ema, p), beta)));
    }
  });
}

/** Buffers are copied, not averaged (upstream copies G's buffers into G_ema). */
export function copyInto(pairs: Iterable<[target: tf.Variable, source: tf.Variable]>): void {
  tf.tidy(() => {
    for (const [t, s] of pairs) t.assign(tf.clone(s));
  });
}
