/**
 * Small dense linear algebra in Float64 for FID: the symmetric eigen-decomposition (cyclic Jacobi) and the
 * PSD matrix square root built on it. Jacobi is slow (O(n³) per sweep) but unconditionally stable and exact
 * to rounding on symmetric input, which is what FID's covariance matrices are; n is at most a few hundred.
 * Matrices are row-major Float64Array of n×n.
 */

export interface SymmetricEigen {
  /** ascending */
  values: Float64Array;
  /** column j is the eigenvector of values[j] (row-major n×n) */
  vectors: Float64Array;
}

export function symmetricEigen(matrix: ArrayLike<number>, n: number, opts: { maxSweeps?: number; tol?: number } = {}): SymmetricEigen {
  if (matrix.length !== n * n) throw new Error(`expected ${n}×${n} values, got ${matrix.length}`);
  const a = Float64Array.from(matrix);
  // Symmetrise: covariance estimates carry asymmetric rounding that Jacobi would otherwise never rotate away.
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++) {
      const m = (a[i * n + j] + a[j * n + i]) / 2;
      a[i * n + j] = m;
      a[j * n + i] = m;
    }
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  const maxSweeps = opts.maxSweeps ?? 100;
  const tol = opts.tol ?? 1e-15;
  let scale = 0;
  for (let i = 0; i < n * n; i++) scale += a[i] * a[i];
  scale = Math.sqrt(scale) || 1;
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) off += a[i * n + j] * a[i * n + j];
    if (Math.sqrt(off) <= tol * scale) break;
    for (let p = 0; p < n; p++)
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (Math.abs(apq) < 1e-300) continue;
        const app = a[p * n + p];
        const aqq = a[q * n + q];
        // Rutishauser's formulation: the smaller root of t² + 2θt − 1 = 0 keeps the rotation angle ≤ π/4.
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p];
          const akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k];
          const aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => a[x * n + x] - a[y * n + y]);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    values[dst] = a[src * n + src];
    for (let k = 0; k < n; k++) vectors[k * n + dst] = v[k * n + src];
  });
  return { values, vectors };
}

export function matmul(a: ArrayLike<number>, b: ArrayLike<number>, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k];
      if (aik === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j] += aik * b[k * n + j];
    }
  return out;
}

/**
 * Square root of a symmetric positive semi-definite matrix: V diag(√λ) Vᵀ. Eigenvalues that rounding pushed
 * slightly below zero are clamped to zero (a covariance from fewer samples than dimensions is singular).
 */
export function sqrtmPsd(matrix: ArrayLike<number>, n: number): Float64Array {
  const { values, vectors } = symmetricEigen(matrix, n);
  const out = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    const s = Math.sqrt(Math.max(0, values[k]));
    if (s === 0) continue;
    for (let i = 0; i < n; i++) {
      const vik = vectors[i * n + k] * s;
      if (vik === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j] += vik * vectors[j * n + k];
    }
  }
  return out;
}

/**
 * Tr √(Σ₁Σ₂) without the non-symmetric product: Σ₁Σ₂ is similar to √Σ₁ Σ₂ √Σ₁, which is symmetric PSD, so the
 * trace of its square root is the sum of the square roots of that matrix's eigenvalues.
 */
export function traceSqrtProduct(s1: ArrayLike<number>, s2: ArrayLike<number>, n: number): number {
  const r = sqrtmPsd(s1, n);
  const m = matmul(matmul(r, s2, n), r, n);
  const { values } = symmetricEigen(m, n);
  // Eigenvalues within rounding of zero would add √ε-sized noise (√1e-16 = 1e-8 each); they are zero.
  const floor = Math.max(0, ...values) * n * 1e-14;
  let t = 0;
  for (const v of values) if (v > floor) t += Math.sqrt(v);
  return t;
}
