/**
 * The training set as StyleGAN2 sees it: every image centre-cropped to a square, resized once to the generator's
 * resolution and stored as uint8 (what ada's dataset_tool writes), so memory is one byte per value and a batch is
 * decoded to [-1, 1] only when drawn.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { TrainImage } from "../types.ts";

export class StyleGAN2Dataset {
  readonly images: Uint8Array[];

  constructor(
    src: readonly TrainImage[],
    readonly resolution: number,
    readonly channels: number,
  ) {
    if (src.length === 0) throw new Error("stylegan2 trainer: the dataset has no images");
    this.images = src.map((img, i) => resizeImage(img, resolution, channels, i));
  }

  get size(): number {
    return this.images.length;
  }

  /** NHWC float32 in [-1, 1]; `flip[i]` mirrors image i horizontally. */
  batch(indices: readonly number[], flip?: readonly boolean[]): tf.Tensor4D {
    const r = this.resolution;
    const c = this.channels;
    const per = r * r * c;
    const out = new Float32Array(indices.length * per);
    indices.forEach((idx, n) => {
      const img = this.images[idx];
      const base = n * per;
      for (let y = 0; y < r; y++)
        for (let x = 0; x < r; x++) {
          const sx = flip?.[n] ? r - 1 - x : x;
          for (let ch = 0; ch < c; ch++) out[base + (y * r + x) * c + ch] = img[(y * r + sx) * c + ch] / 127.5 - 1;
        }
    });
    return tf.tensor4d(out, [indices.length, r, r, c]);
  }
}

function resizeImage(img: TrainImage, res: number, channels: number, index: number): Uint8Array {
  const srcC = img.data.length / (img.width * img.height);
  if (![1, 3, 4].includes(srcC)) throw new Error(`training image ${index}: ${img.data.length} bytes is not a ${img.width}x${img.height} gray/RGB/RGBA image`);
  return tf.tidy(() => {
    let x: tf.Tensor4D = tf.tensor4d(Float32Array.from(img.data), [1, img.height, img.width, srcC]);
    if (srcC === 4) x = tf.slice(x, [0, 0, 0, 0], [-1, -1, -1, 3]);
    const c0 = Math.min(srcC, 3);
    if (channels === 3 && c0 === 1) x = tf.tile(x, [1, 1, 1, 3]);
    else if (channels === 1 && c0 === 3) x = tf.mean(x, 3, true);
    else if (channels !== c0) throw new Error(`training image ${index}: cannot convert ${c0} channels to the generator's ${channels}`);
    // Centre crop to a square, as dataset_tool's center-crop transform does.
    const side = Math.min(img.width, img.height);
    x = tf.slice(x, [0, Math.floor((img.height - side) / 2), Math.floor((img.width - side) / 2), 0], [1, side, side, -1]);
    // Box-filter halvings first: bilinear alone aliases badly when shrinking by more than 2x.
    while (x.shape[1] >= 2 * res) {
      const s = x.shape[1] - (x.shape[1] % 2);
      x = tf.avgPool(tf.slice(x, [0, 0, 0, 0], [1, s, s, -1]), 2, 2, "valid");
    }
    if (x.shape[1] !== res) x = tf.image.resizeBilinear(x, [res, res], false, true);
    return Uint8Array.from(tf.clipByValue(tf.round(x), 0, 255).dataSync());
  });
}

/** StyleGAN's float → uint8 conversion: x · 127.5 + 128, clamped, truncated. */
export function stylegan2ToUint8(data: Float32Array): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = Math.max(0, Math.min(255, Math.trunc(data[i] * 127.5 + 128)));
  return out;
}
