/**
 * Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017):
 * ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2√(Σ₁Σ₂)). Which features go in decides what the number means: with our
 * Fashion-MNIST classifier it is a domain FID, comparable only with other numbers from the same classifier.
 */
import { traceSqrtProduct } from "./linalg.ts";

export interface FeatureStats {
  dim: number;
  count: number;
  mean: Float64Array;
  /** unbiased (n − 1) covariance, row-major dim×dim, as numpy.cov */
  cov: Float64Array;
}

/** features: count rows of dim values, row-major. */
export function featureStats(features: ArrayLike<number>, count: number, dim: number): FeatureStats {
  if (features.length !== count * dim) throw new Error(`expected ${count}×${dim} features, got ${features.length}`);
  if (count < 2) throw new Error("need at least two feature vectors for a covariance");
  const mean = new Float64Array(dim);
  for (let r = 0; r < count; r++) for (let j = 0; j < dim; j++) mean[j] += features[r * dim + j];
  for (let j = 0; j < dim; j++) mean[j] /= count;
  const cov = new Float64Array(dim * dim);
  const row = new Float64Array(dim);
  for (let r = 0; r < count; r++) {
    for (let j = 0; j < dim; j++) row[j] = features[r * dim + j] - mean[j];
    for (let i = 0; i < dim; i++) {
      const ri = row[i];
      if (ri === 0) continue;
      for (let j = i; j < dim; j++) cov[i * dim + j] += ri * row[j];
    }
  }
  for (let i = 0; i < dim; i++)
    for (let j = i; j < dim; j++) {
      const v = cov[i * dim + j] / (count - 1);
      cov[i * dim + j] = v;
      cov[j * dim + i] = v;
    }
  return { dim, count, mean, cov };
}

export function frechetDistance(a: FeatureStats, b: FeatureStats): number {
  if (a.dim !== b.dim) throw new Error(`feature sizes differ: ${a.dim} vs ${b.dim}`);
  const n = a.dim;
  let d2 = 0;
  for (let j = 0; j < n; j++) d2 += (a.mean[j] - b.mean[j]) ** 2;
  let tr = 0;
  for (let j = 0; j < n; j++) tr += a.cov[j * n + j] + b.cov[j * n + j];
  // Rounding can leave a tiny negative for identical sets; a distance is never below zero.
  return Math.max(0, d2 + tr - 2 * traceSqrtProduct(a.cov, b.cov, n));
}
