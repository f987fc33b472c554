/**
 * One domain of unaligned CycleGAN data, prepared like upstream's `resize_and_crop` + flip transform: every image
 * is resized once (bilinear) to load×load, and each step takes a random crop×crop window and a random horizontal
 * flip. All choices come from the step RNG, so a step's batch is a function of (seed, step) alone.
 */
import * as tf from "@tensorflow/tfjs-core";
import { imageTensor } from "../common/images.ts";
import type { StepRng } from "../common/step-rng.ts";
import type { TrainImage } from "../types.ts";

export class DomainData {
  /** [N, load, load, 3] in [-1, 1]. */
  private readonly loaded: tf.Tensor4D;
  /** Sample inputs for the grid: [k, crop, crop, 3], resized straight to crop size (no augmentation). */
  readonly samples: tf.Tensor4D;
  readonly count: number;

  constructor(
    readonly name: string,
    images: TrainImage[],
    readonly load: number,
    readonly crop: number,
    sampleCount: number,
    readonly flip: boolean,
  ) {
    if (images.length === 0) throw new Error(`cyclegan training needs at least one image in domain ${name}`);
    const k = Math.min(sampleCount, images.length);
    // Hold the sample images out of training only when that leaves most of the data; tiny sets reuse them.
    const holdOut = images.length > 2 * k;
    const train = holdOut ? images.slice(k) : images;
    this.count = train.length;
    this.loaded = tf.tidy(() => tf.concat(train.map((im) => imageTensor(im, load, load)), 0));
    this.samples = tf.tidy(() => tf.concat(images.slice(0, k).map((im) => imageTensor(im, crop, crop)), 0));
  }

  /** A batch [n, crop, crop, 3]: random image, random crop offset, random flip per sample. */
  batch(n: number, rng: StepRng): tf.Tensor4D {
    return tf.tidy(() => {
      const parts: tf.Tensor4D[] = [];
      for (let i = 0; i < n; i++) {
        const idx = rng.int(this.count);
        const oy = rng.int(this.load - this.crop + 1);
        const ox = rng.int(this.load - this.crop + 1);
        const flip = this.flip && rng.next() > 0.5;
        let x = tf.slice(this.loaded, [idx, oy, ox, 0], [1, this.crop, this.crop, 3]);
        if (flip) x = tf.reverse(x, 2);
        parts.push(x);
      }
      return parts.length === 1 ? parts[0] : tf.concat(parts, 0);
    });
  }

  dispose(): void {
    this.loaded.dispose();
    this.samples.dispose();
  }
}
