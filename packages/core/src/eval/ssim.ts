/**
 * Pixel metrics on [0, 1] RGB: mean absolute error and SSIM (Wang et al. 2004) with the reference settings
 * (11×11 Gaussian window, σ = 1.5, K1 = 0.01, K2 = 0.03, L = 1), computed per channel over the "valid" region
 * (no padding, as the reference MATLAB code does) and averaged over channels. Plain Float64 JS: the images are
 * tiny and a reproducible number matters more than speed.
 */

export interface FloatImage {
  /** HWC, 3 channels, values in [0, 1] */
  data: Float32Array | Float64Array;
  width: number;
  height: number;
}

const K1 = 0.01;
const K2 = 0.03;
export const SSIM_WINDOW = 11;
export const SSIM_SIGMA = 1.5;

export function gaussianKernel1d(size = SSIM_WINDOW, sigma = SSIM_SIGMA): Float64Array {
  const k = new Float64Array(size);
  const c = (size - 1) / 2;
  let sum = 0;
  for (let i = 0; i < size; i++) sum += k[i] = Math.exp(-((i - c) ** 2) / (2 * sigma * sigma));
  for (let i = 0; i < size; i++) k[i] /= sum;
  return k;
}

/** Separable valid-mode filtering of one channel plane: out is (h-size+1)×(w-size+1). */
function filterValid(plane: Float64Array, w: number, h: number, k: Float64Array): Float64Array {
  const s = k.length;
  const ow = w - s + 1;
  const oh = h - s + 1;
  const tmp = new Float64Array(h * ow);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < ow; x++) {
      let acc = 0;
      for (let i = 0; i < s; i++) acc += k[i] * plane[y * w + x + i];
      tmp[y * ow + x] = acc;
    }
  const out = new Float64Array(oh * ow);
  for (let y = 0; y < oh; y++)
    for (let x = 0; x < ow; x++) {
      let acc = 0;
      for (let i = 0; i < s; i++) acc += k[i] * tmp[(y + i) * ow + x];
      out[y * ow + x] = acc;
    }
  return out;
}

function sameShape(a: FloatImage, b: FloatImage) {
  if (a.width !== b.width || a.height !== b.height || a.data.length !== b.data.length || a.data.length !== a.width * a.height * 3)
    throw new Error(`images differ in size: ${a.width}×${a.height} vs ${b.width}×${b.height}`);
}

/** SSIM of two RGB images in [0, 1], averaged over the three channels. */
export function ssim(a: FloatImage, b: FloatImage): number {
  sameShape(a, b);
  const { width: w, height: h } = a;
  if (w < SSIM_WINDOW || h < SSIM_WINDOW) throw new Error(`SSIM needs images of at least ${SSIM_WINDOW}×${SSIM_WINDOW}`);
  const k = gaussianKernel1d();
  const c1 = K1 ** 2;
  const c2 = K2 ** 2;
  const n = w * h;
  let total = 0;
  for (let ch = 0; ch < 3; ch++) {
    const x = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      x[i] = a.data[i * 3 + ch];
      y[i] = b.data[i * 3 + ch];
    }
    const xx = x.map((v) => v * v);
    const yy = y.map((v) => v * v);
    const xy = x.map((v, i) => v * y[i]);
    const mx = filterValid(x, w, h, k);
    const my = filterValid(y, w, h, k);
    const sxx = filterValid(xx, w, h, k);
    const syy = filterValid(yy, w, h, k);
    const sxy = filterValid(xy, w, h, k);
    let sum = 0;
    for (let i = 0; i < mx.length; i++) {
      const vx = sxx[i] - mx[i] * mx[i];
      const vy = syy[i] - my[i] * my[i];
      const cov = sxy[i] - mx[i] * my[i];
      sum += ((2 * mx[i] * my[i] + c1) * (2 * cov + c2)) / ((mx[i] * mx[i] + my[i] * my[i] + c1) * (vx + vy + c2));
    }
    total += sum / mx.length;
  }
  return total / 3;
}

/** Mean absolute difference over all pixels and channels, on the [0, 1] scale. */
export function l1(a: FloatImage, b: FloatImage): number {
  sameShape(a, b);
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += Math.abs(a.data[i] - b.data[i]);
  return s / a.data.length;
}

export function fromUint8(img: { data: Uint8Array; width: number; height: number }): FloatImage {
  const out = new Float64Array(img.data.length);
  for (let i = 0; i < out.length; i++) out[i] = img.data[i] / 255;
  return { data: out, width: img.width, height: img.height };
}
