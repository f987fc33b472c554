/**
 * Improved precision and recall (Kynkäänniemi et al. 2019): each set's manifold is the union of balls around
 * its points with radius the distance to the k-th nearest neighbour (k = 3 in the paper). Precision is the
 * share of generated points inside the real manifold, recall the share of real points inside the generated
 * one. Exact pairwise distances in Float64; fine for the few thousand points the demo evaluation uses.
 */

function sqDistances(a: ArrayLike<number>, na: number, b: ArrayLike<number>, nb: number, dim: number): Float64Array {
  const out = new Float64Array(na * nb);
  for (let i = 0; i < na; i++)
    for (let j = 0; j < nb; j++) {
      let s = 0;
      for (let d = 0; d < dim; d++) {
        const t = a[i * dim + d] - b[j * dim + d];
        s += t * t;
      }
      out[i * nb + j] = s;
    }
  return out;
}

/** Squared radius of each point's k-NN ball within its own set (the point itself excluded). */
function kthRadii(x: ArrayLike<number>, n: number, dim: number, k: number): Float64Array {
  if (n <= k) throw new Error(`need more than k=${k} points for a k-NN manifold, got ${n}`);
  const d = sqDistances(x, n, x, n, dim);
  const radii = new Float64Array(n);
  const row = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    row.set(d.subarray(i * n, (i + 1) * n));
    row.sort();
    // row[0] is the point's zero distance to itself.
    radii[i] = row[k];
  }
  return radii;
}

function coverage(query: ArrayLike<number>, nq: number, ref: ArrayLike<number>, nr: number, refRadii: Float64Array, dim: number): number {
  const d = sqDistances(query, nq, ref, nr, dim);
  let inside = 0;
  for (let i = 0; i < nq; i++) {
    for (let j = 0; j < nr; j++)
      if (d[i * nr + j] <= refRadii[j]) {
        inside++;
        break;
      }
  }
  return inside / nq;
}

export function precisionRecall(
  real: ArrayLike<number>,
  nReal: number,
  fake: ArrayLike<number>,
  nFake: number,
  dim: number,
  k = 3,
): { precision: number; recall: number } {
  const realR = kthRadii(real, nReal, dim, k);
  const fakeR = kthRadii(fake, nFake, dim, k);
  return { precision: coverage(fake, nFake, real, nReal, realR, dim), recall: coverage(real, nReal, fake, nFake, fakeR, dim) };
}
