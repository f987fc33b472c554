import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { classScores } from "../src/eval/evaluate.ts";
import type { FashionClassifier } from "../src/eval/fashion-classifier.ts";
import { featureStats, frechetDistance, type FeatureStats } from "../src/eval/fid.ts";
import { matmul, sqrtmPsd, symmetricEigen, traceSqrtProduct } from "../src/eval/linalg.ts";
import { precisionRecall } from "../src/eval/precision-recall.ts";
import { gaussianKernel1d, l1, ssim, type FloatImage } from "../src/eval/ssim.ts";
import { mulberry32 } from "../src/demo/scenes.ts";

const rng = mulberry32(1234);
const normal = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());

function image(w: number, h: number, f: (x: number, y: number, c: number) => number): FloatImage {
  const data = new Float64Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) data[(y * w + x) * 3 + c] = f(x, y, c);
  return { data, width: w, height: h };
}

/** Direct 2-D windowed SSIM, no separability: an independent check of the fast path. */
function naiveSsim(a: FloatImage, b: FloatImage): number {
  const k1 = gaussianKernel1d();
  const s = k1.length;
  const { width: w, height: h } = a;
  let total = 0;
  for (let c = 0; c < 3; c++) {
    let sum = 0;
    let n = 0;
    for (let y = 0; y + s <= h; y++)
      for (let x = 0; x + s <= w; x++) {
        let mx = 0, my = 0, sxx = 0, syy = 0, sxy = 0;
        for (let i = 0; i < s; i++)
          for (let j = 0; j < s; j++) {
            const wt = k1[i] * k1[j];
            const p = a.data[((y + i) * w + x + j) * 3 + c];
            const q = b.data[((y + i) * w + x + j) * 3 + c];
            mx += wt * p; my += wt * q; sxx += wt * p * p; syy += wt * q * q; sxy += wt * p * q;
          }
        const C1 = 0.01 ** 2, C2 = 0.03 ** 2;
        sum += ((2 * mx * my + C1) * (2 * (sxy - mx * my) + C2)) / ((mx * mx + my * my + C1) * (sxx - mx * mx + syy - my * my + C2));
        n++;
      }
    total += sum / n;
  }
  return total / 3;
}

describe("SSIM and L1", () => {
  it("is 1 for identical images and L1 is 0", () => {
    const a = image(32, 24, () => rng());
    expect(ssim(a, a)).toBeCloseTo(1, 12);
    expect(l1(a, a)).toBe(0);
  });

  it("matches the closed form for constant images (only the luminance term remains)", () => {
    const a = image(16, 16, () => 0.2);
    const b = image(16, 16, () => 0.7);
    const C1 = 0.01 ** 2;
    expect(ssim(a, b)).toBeCloseTo((2 * 0.2 * 0.7 + C1) / (0.2 ** 2 + 0.7 ** 2 + C1), 10);
    expect(l1(a, b)).toBeCloseTo(0.5, 12);
  });

  it("equals a direct 2-D windowed computation on noise", () => {
    const a = image(20, 18, () => rng());
    const b = image(20, 18, (x, y, c) => Math.min(1, Math.max(0, a.data[(y * 20 + x) * 3 + c] * 0.6 + 0.3 * rng())));
    const fast = ssim(a, b);
    expect(fast).toBeCloseTo(naiveSsim(a, b), 12);
    expect(fast).toBeGreaterThan(0);
    expect(fast).toBeLessThan(1);
  });

  it("gives -1 for a perfectly anti-correlated zero-mean-free pattern and rejects size mismatches", () => {
    const a = image(16, 16, (x, y) => ((x + y) % 2 ? 0.9 : 0.1));
    const b = image(16, 16, (x, y) => ((x + y) % 2 ? 0.1 : 0.9));
    expect(ssim(a, b)).toBeLessThan(-0.9);
    expect(() => ssim(a, image(16, 15, () => 0))).toThrow(/differ/);
  });
});

function randomSpd(n: number): Float64Array {
  const b = Float64Array.from({ length: n * n }, normal);
  const bt = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) bt[j * n + i] = b[i * n + j];
  const a = matmul(b, bt, n);
  for (let i = 0; i < n; i++) a[i * n + i] += 0.1;
  return a;
}

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

describe("Jacobi eigen-decomposition and matrix square root", () => {
  it("reconstructs A = V Λ Vᵀ with orthonormal V", () => {
    const n = 24;
    const a = randomSpd(n);
    const { values, vectors } = symmetricEigen(a, n);
    for (let k = 1; k < n; k++) expect(values[k]).toBeGreaterThanOrEqual(values[k - 1]);
    const rec = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) rec[i * n + j] += vectors[i * n + k] * values[k] * vectors[j * n + k];
    expect(maxAbs(rec, a)).toBeLessThan(1e-10 * Math.max(...values));
    const vtv = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) vtv[i * n + j] += vectors[k * n + i] * vectors[k * n + j];
    expect(maxAbs(vtv, Float64Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 1 : 0)))).toBeLessThan(1e-12);
  });

  it("sqrtm(A)² = A to 1e-10 relative, and matches a known 2×2 root", () => {
    const n = 30;
    const a = randomSpd(n);
    const s = sqrtmPsd(a, n);
    const scale = Math.max(...a.map(Math.abs));
    expect(maxAbs(matmul(s, s, n), a) / scale).toBeLessThan(1e-10);
    // [[5, 4], [4, 5]] = R², R = [[2, 1], [1, 2]]
    expect(maxAbs(sqrtmPsd([5, 4, 4, 5], 2), [2, 1, 1, 2])).toBeLessThan(1e-14);
  });

  it("clamps the rounding-negative eigenvalues of a singular PSD matrix", () => {
    const v = [1, 2, 3];
    const a = v.flatMap((x) => v.map((y) => x * y)); // rank 1, eigenvalue 14
    const s = sqrtmPsd(a, 3);
    expect(maxAbs(matmul(s, s, 3), a)).toBeLessThan(1e-12);
    expect(traceSqrtProduct(a, a, 3)).toBeCloseTo(14, 10);
  });
});

const stats = (mean: number[], cov: number[][]): FeatureStats => ({ dim: mean.length, count: 0, mean: Float64Array.from(mean), cov: Float64Array.from(cov.flat()) });

describe("Fréchet distance", () => {
  it("is ~0 for identical feature sets", () => {
    const n = 500, d = 16;
    const f = Float64Array.from({ length: n * d }, normal);
    const s = featureStats(f, n, d);
    expect(frechetDistance(s, s)).toBeLessThan(1e-9);
  });

  it("equals the analytic value for Gaussians: ‖Δμ‖² + Σ(σ₁ − σ₂)² for diagonal covariances, rotation-invariant", () => {
    const a = stats([0, 0, 0], [[1, 0, 0], [0, 4, 0], [0, 0, 9]]);
    const b = stats([1, 2, 2], [[4, 0, 0], [0, 4, 0], [0, 0, 1]]);
    const expected = 9 + (1 - 2) ** 2 + 0 + (3 - 1) ** 2;
    expect(frechetDistance(a, b)).toBeCloseTo(expected, 10);
    // the same pair expressed in a rotated basis
    const c = Math.cos(0.7), s = Math.sin(0.7);
    const r = [c, -s, 0, s, c, 0, 0, 0, 1];
    const rt = [c, s, 0, -s, c, 0, 0, 0, 1];
    const rot = (m: Float64Array) => matmul(matmul(r, m, 3), rt, 3);
    const ra = { ...a, cov: rot(a.cov) };
    const rb = { ...b, cov: rot(b.cov) };
    expect(frechetDistance(ra, rb)).toBeCloseTo(expected, 9);
  });

  it("estimates the analytic value from samples of shifted Gaussians", () => {
    const n = 20000, d = 4;
    const shift = [1, -0.5, 0.25, 2];
    const x = Float64Array.from({ length: n * d }, normal);
    const y = Float64Array.from({ length: n * d }, (_, i) => normal() + shift[i % d]);
    const fid = frechetDistance(featureStats(x, n, d), featureStats(y, n, d));
    const analytic = shift.reduce((s, v) => s + v * v, 0);
    expect(Math.abs(fid - analytic)).toBeLessThan(0.05 * analytic);
  });
});

describe("k-NN precision and recall", () => {
  it("is 1/1 for the same set and 0/0 for far-apart sets", () => {
    const n = 60, d = 3;
    const x = Float64Array.from({ length: n * d }, normal);
    expect(precisionRecall(x, n, x, n, d)).toEqual({ precision: 1, recall: 1 });
    const far = x.map((v) => v + 100);
    expect(precisionRecall(x, n, far, n, d)).toEqual({ precision: 0, recall: 0 });
  });

  it("separates mode collapse (high precision, low recall) from the reverse", () => {
    const n = 300, d = 2;
    const real = Float64Array.from({ length: n * d }, normal);
    const collapsed = Float64Array.from({ length: n * d }, () => normal() * 0.05);
    const pr = precisionRecall(real, n, collapsed, n, d);
    expect(pr.precision).toBeGreaterThan(0.9);
    expect(pr.recall).toBeLessThan(0.3);
  });
});

describe("class scores of a conditional generator", () => {
  // A stand-in classifier that reads the class off the first pixel's gray level (class · 20).
  const classifier = {
    logits: (x: tf.Tensor4D) =>
      tf.tidy(() => tf.oneHot(tf.cast(tf.round(tf.div(tf.mul(tf.reshape(tf.slice(x, [0, 0, 0, 0], [-1, 1, 1, 1]), [-1]), 255), 20)), "int32") as tf.Tensor1D, 10)),
  } as unknown as FashionClassifier;
  const image = (level: number) => ({ width: 32, height: 32, data: new Uint8Array(32 * 32 * 3).fill(level) });

  it("counts samples the classifier puts in their class, per class, and finds two classes that draw alike", () => {
    // 20 samples, classes round-robin; the first is drawn as class 5, and class 9 draws what class 8 does.
    const images = Array.from({ length: 20 }, (_, i) => image(i === 0 ? 100 : (i % 10 === 9 ? 8 : i % 10) * 20));
    const s = classScores(classifier, images, (i) => i % 10, 10);
    expect(s.accuracy).toBeCloseTo(17 / 20, 12);
    expect(s.per_class_accuracy).toEqual([0.5, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
    expect(s.closest_classes).toEqual([8, 9]);
    expect(s.mean_image_min_distance).toBe(0);
    // Classes 20 levels apart: the closest pair of class means is 20/255 apart.
    const apart = classScores(classifier, Array.from({ length: 10 }, (_, i) => image(i * 20)), (i) => i, 10);
    expect(apart.accuracy).toBe(1);
    expect(apart.mean_image_min_distance).toBeCloseTo(20 / 255, 12);
  });
});
