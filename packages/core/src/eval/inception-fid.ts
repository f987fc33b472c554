/**
 * Fréchet distance for wide features (Inception's 2048-d pool3), the same quantity as fid.ts's
 * frechetDistance — ‖μ₁ − μ₂‖² + Tr Σ₁ + Tr Σ₂ − 2 Tr √(Σ₁Σ₂), unbiased covariances — computed from factors
 * instead of the dim×dim matrix square root, whose cyclic Jacobi takes tens of minutes at 2048-d.
 *
 * Each covariance is written Σ = RᵀR: R = the centred features / √(n − 1) (n × dim) when n ≤ dim, else the
 * transposed Cholesky factor of Σ (dim × dim). The nonzero eigenvalues of Σ₁Σ₂ = R₁ᵀR₁R₂ᵀR₂ are those of
 * GᵀG with G = R₂R₁ᵀ, so Tr √(Σ₁Σ₂) is the sum of G's singular values: √ of the eigenvalues of the smaller
 * Gram matrix of G, found by Householder tridiagonalisation and implicit-shift QL (O(k³), no eigenvectors).
 * For 1000 + 1000 Inception features that is a few seconds rather than a 2048-d eigendecomposition.
 *
 * evaluateInceptionFID: the FID of a StyleGAN2 engine's samples (the same seeds and classes as the domain FID,
 * at the generator's own resolution) against a real image set, on pytorch-fid's Inception features.
 */
import type { StyleGAN2Engine } from "../inference/engine.ts";
import { generateStyleGAN2 } from "./evaluate.ts";
import { featureStats } from "./fid.ts";
import { INCEPTION_FEATURE_DIM, inceptionFeatures, type InceptionV3 } from "./inception.ts";
import { decodeImage, readZipImages } from "./zip-images.ts";

interface Factor {
  rows: number;
  /** rows × dim, row-major, Σ = RᵀR */
  r: Float64Array;
  mean: Float64Array;
}

function factor(features: ArrayLike<number>, count: number, dim: number): Factor {
  if (features.length !== count * dim) throw new Error(`expected ${count}×${dim} features, got ${features.length}`);
  if (count < 2) throw new Error("need at least two feature vectors for a covariance");
  if (count > dim) {
    const { mean, cov } = featureStats(features, count, dim);
    return { rows: dim, r: transposedCholesky(cov, dim), mean };
  }
  const mean = new Float64Array(dim);
  for (let i = 0; i < count; i++) for (let j = 0; j < dim; j++) mean[j] += features[i * dim + j];
  for (let j = 0; j < dim; j++) mean[j] /= count;
  const s = 1 / Math.sqrt(count - 1);
  const r = new Float64Array(count * dim);
  for (let i = 0; i < count; i++) for (let j = 0; j < dim; j++) r[i * dim + j] = (features[i * dim + j] - mean[j]) * s;
  return { rows: count, r, mean };
}

/**
 * Σ = LLᵀ for a symmetric positive semi-definite Σ, returned as U = Lᵀ (so Σ = UᵀU). A pivot that rounding
 * leaves at or below 1e-12 × the largest diagonal entry belongs to a direction with no variance (a feature
 * that is constant, or a combination of others): its column is left zero, which is exact for a PSD matrix.
 */
export function transposedCholesky(cov: ArrayLike<number>, n: number): Float64Array {
  const l = new Float64Array(n * n);
  let maxDiag = 0;
  for (let i = 0; i < n; i++) maxDiag = Math.max(maxDiag, cov[i * n + i]);
  const tol = maxDiag * 1e-12;
  for (let j = 0; j < n; j++) {
    const lj = j * n;
    let d = cov[lj + j];
    for (let k = 0; k < j; k++) d -= l[lj + k] * l[lj + k];
    if (d <= tol) continue;
    const ljj = Math.sqrt(d);
    l[lj + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      const li = i * n;
      let s = cov[li + j];
      for (let k = 0; k < j; k++) s -= l[li + k] * l[lj + k];
      l[li + j] = s / ljj;
    }
  }
  const u = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) u[j * n + i] = l[i * n + j];
  return u;
}

/** a (ra × dim) times bᵀ (dim × rb), both row-major: rows dotted with rows. */
function mulTransposed(a: Float64Array, ra: number, b: Float64Array, rb: number, dim: number): Float64Array {
  const out = new Float64Array(ra * rb);
  for (let i = 0; i < ra; i++) {
    const ai = i * dim;
    for (let j = 0; j < rb; j++) {
      const bj = j * dim;
      let s = 0;
      for (let k = 0; k < dim; k++) s += a[ai + k] * b[bj + k];
      out[i * rb + j] = s;
    }
  }
  return out;
}

function transpose(a: Float64Array, rows: number, cols: number): Float64Array {
  const t = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
  return t;
}

/** Eigenvalues (ascending) of a symmetric n×n row-major matrix: Householder to tridiagonal, then implicit QL. */
export function symmetricEigenvalues(matrix: ArrayLike<number>, n: number): Float64Array {
  if (matrix.length !== n * n) throw new Error(`expected ${n}×${n} values, got ${matrix.length}`);
  const a = Float64Array.from(matrix);
  const d = new Float64Array(n);
  const e = new Float64Array(n); // e[i] couples i and i + 1
  const v = new Float64Array(n);
  const p = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    // Reflect x = A[k+1.., k] onto α·e₁ and apply H = I − 2vvᵀ to the trailing block from both sides.
    const m = k + 1;
    let norm = 0;
    for (let i = m; i < n; i++) norm += a[i * n + k] ** 2;
    norm = Math.sqrt(norm);
    d[k] = a[k * n + k];
    if (norm === 0) {
      e[k] = 0;
      continue;
    }
    const x0 = a[m * n + k];
    const alpha = x0 > 0 ? -norm : norm;
    let vnorm = 0;
    for (let i = m; i < n; i++) {
      v[i] = a[i * n + k] - (i === m ? alpha : 0);
      vnorm += v[i] * v[i];
    }
    e[k] = alpha;
    if (vnorm === 0) continue;
    const vs = 1 / Math.sqrt(vnorm);
    for (let i = m; i < n; i++) v[i] *= vs;
    let kk = 0;
    for (let i = m; i < n; i++) {
      let s = 0;
      const ai = i * n;
      for (let j = m; j < n; j++) s += a[ai + j] * v[j];
      p[i] = s;
      kk += v[i] * s;
    }
    for (let i = m; i < n; i++) p[i] -= kk * v[i];
    for (let i = m; i < n; i++) {
      const ai = i * n;
      const vi = 2 * v[i];
      const pi = 2 * p[i];
      for (let j = m; j < n; j++) a[ai + j] -= vi * p[j] + pi * v[j];
    }
  }
  if (n >= 2) {
    d[n - 2] = a[(n - 2) * n + n - 2];
    e[n - 2] = a[(n - 1) * n + n - 2];
  }
  if (n >= 1) d[n - 1] = a[(n - 1) * n + n - 1];
  e[n - 1] = 0;
  tridiagonalQL(d, e);
  return d.sort();
}

/** Implicit-shift QL on a symmetric tridiagonal matrix (diagonal d, off-diagonal e); d becomes the eigenvalues. */
function tridiagonalQL(d: Float64Array, e: Float64Array): void {
  const n = d.length;
  for (let l = 0; l < n; l++) {
    let iter = 0;
    for (;;) {
      let m = l;
      for (; m < n - 1; m++) {
        const dd = Math.abs(d[m]) + Math.abs(d[m + 1]);
        if (Math.abs(e[m]) <= Number.EPSILON * dd) break;
      }
      if (m === l) break;
      if (++iter > 60) throw new Error("eigenvalues did not converge");
      let g = (d[l + 1] - d[l]) / (2 * e[l]);
      let r = Math.hypot(g, 1);
      g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r));
      let s = 1;
      let c = 1;
      let p = 0;
      let i = m - 1;
      for (; i >= l; i--) {
        const f = s * e[i];
        const b = c * e[i];
        r = Math.hypot(f, g);
        e[i + 1] = r;
        if (r === 0) {
          d[i + 1] -= p;
          e[m] = 0;
          break;
        }
        s = f / r;
        c = g / r;
        g = d[i + 1] - p;
        r = (d[i] - g) * s + 2 * c * b;
        p = s * r;
        d[i + 1] = g + p;
        g = c * r - b;
      }
      if (r === 0 && i >= l) continue;
      d[l] -= p;
      e[l] = g;
      e[m] = 0;
    }
  }
}

/** Fréchet distance between the Gaussians fitted to two feature sets (rows of dim values, row-major). */
export function frechetDistanceWide(a: ArrayLike<number>, countA: number, b: ArrayLike<number>, countB: number, dim: number): number {
  const fa = factor(a, countA, dim);
  const fb = factor(b, countB, dim);
  let d2 = 0;
  for (let j = 0; j < dim; j++) d2 += (fa.mean[j] - fb.mean[j]) ** 2;
  let tr = 0;
  for (const f of [fa, fb]) for (const x of f.r) tr += x * x;
  const g = mulTransposed(fb.r, fb.rows, fa.r, fa.rows, dim); // rows_b × rows_a
  // The smaller Gram matrix: GᵀG (rows_a²) or GGᵀ (rows_b²) have the same nonzero eigenvalues.
  const k = Math.min(fa.rows, fb.rows);
  let gram: Float64Array;
  if (fa.rows <= fb.rows) {
    const gt = transpose(g, fb.rows, fa.rows);
    gram = mulTransposed(gt, fa.rows, gt, fa.rows, fb.rows);
  } else gram = mulTransposed(g, fb.rows, g, fb.rows, fa.rows);
  const values = symmetricEigenvalues(gram, k);
  // Eigenvalues within rounding of zero would add √ε-sized noise each; they are zero (as in linalg.ts).
  const floor = Math.max(0, ...values) * k * 1e-14;
  let traceSqrt = 0;
  for (const v of values) if (v > floor) traceSqrt += Math.sqrt(v);
  return Math.max(0, d2 + tr - 2 * traceSqrt);
}

export interface InceptionFIDResult {
  inception_fid: number;
  generated: number;
  real: number;
}

export interface InceptionProgress {
  stage: "real" | "generated";
  done: number;
  total: number;
}

/**
 * Inception FID of `n` generated images (seeds seed..seed+n−1, classes round-robin, ψ = 1, constant noise —
 * exactly generateStyleGAN2's samples) against the real images of a stylegan2-layout zip (the first
 * `limitReal`). Images go in at their own size, as pytorch-fid reads files; the network resizes to 299.
 */
export async function evaluateInceptionFID(
  engine: StyleGAN2Engine,
  realZip: Uint8Array,
  opts: { seed: number; n: number; net: InceptionV3; limitReal?: number; batch?: number; onProgress?: (p: InceptionProgress) => void },
): Promise<InceptionFIDResult> {
  const entries = (await readZipImages(realZip, "stylegan2")).slice(0, opts.limitReal ?? Infinity);
  if (entries.length < 2) throw new Error(`the real set has ${entries.length} images; FID needs at least 2`);
  if (opts.n < 2) throw new Error(`FID needs at least 2 generated images, got --n ${opts.n}`);
  const real = [];
  for (const e of entries) real.push(await decodeImage(e));
  const fr = await inceptionFeatures(opts.net, real, { batch: opts.batch, onProgress: (p) => opts.onProgress?.({ stage: "real", ...p }) });
  const fake = await generateStyleGAN2(engine, { seed: opts.seed, n: opts.n, native: true });
  const ff = await inceptionFeatures(opts.net, fake, { batch: opts.batch, onProgress: (p) => opts.onProgress?.({ stage: "generated", ...p }) });
  return { inception_fid: frechetDistanceWide(fr, real.length, ff, fake.length, INCEPTION_FEATURE_DIM), generated: fake.length, real: real.length };
}
