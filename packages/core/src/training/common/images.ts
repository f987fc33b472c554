/** Host/tensor conversions for training data and sample grids (HWC uint8 RGB ↔ NHWC float in [-1, 1]). */
import * as tf from "@tensorflow/tfjs-core";
import type { TrainImage } from "../types.ts";

/** uint8 HWC → [1, h, w, 3] float in [-1, 1], resized bilinearly (half-pixel centres, as PIL/torch sample). */
export function imageTensor(img: TrainImage, height: number, width: number): tf.Tensor4D {
  const channels = img.data.length / (img.width * img.height);
  if (channels !== 3) throw new Error(`training images must be RGB HWC uint8: ${img.data.length} bytes for ${img.width}x${img.height}`);
  return tf.tidy(() => {
    const x = tf.sub(tf.div(tf.tensor4d(Float32Array.from(img.data), [1, img.height, img.width, 3]), 127.5), 1) as tf.Tensor4D;
    return img.height === height && img.width === width ? x : tf.image.resizeBilinear(x, [height, width], false, true);
  });
}

/** pix2pix `tensor2im`: (x + 1) / 2 * 255, truncated to uint8 (clamped first, where numpy would wrap). */
export function toUint8(data: Float32Array | Int32Array | Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = Math.max(0, Math.min(255, Math.trunc(((data[i] + 1) / 2) * 255)));
  return out;
}

/** Tiles equally sized HWC uint8 images into rows (each inner array is one row). */
export function tileRows(rows: TrainImage[][]): TrainImage {
  const h = rows[0][0].height;
  const w = rows[0][0].width;
  const cols = Math.max(...rows.map((r) => r.length));
  const out = new Uint8Array(rows.length * h * cols * w * 3);
  const stride = cols * w * 3;
  for (const [r, row] of rows.entries())
    for (const [c, img] of row.entries()) {
      if (img.width !== w || img.height !== h) throw new Error("tileRows: images differ in size");
      for (let y = 0; y < h; y++) out.set(img.data.subarray(y * w * 3, (y + 1) * w * 3), (r * h + y) * stride + c * w * 3);
    }
  return { data: out, width: cols * w, height: rows.length * h };
}

/** Splits an NHWC float tensor in [-1, 1] into HWC uint8 images. */
export function tensorImages(t: tf.Tensor4D): TrainImage[] {
  const [n, h, w, c] = t.shape;
  if (c !== 3) throw new Error(`expected 3 channels, got [${t.shape}]`);
  const all = toUint8(t.dataSync() as Float32Array);
  return Array.from({ length: n }, (_, i) => ({ data: all.slice(i * h * w * 3, (i + 1) * h * w * 3), width: w, height: h }));
}
