/**
 * SeFa (Shen & Zhou, "Closed-Form Factorization of Latent Semantics in GANs", CVPR 2021): the directions in w
 * that the style affines amplify most are the top eigenvectors of AᵀA, where A stacks the affine weights
 * (each row an output channel's weight over w, normalised to unit length as the paper's code does). They come
 * from the weights alone, so every StyleGAN2 version gets them without data or training.
 *
 * Layers: every modulated layer's affine (each block's conv0, conv1 and toRGB), the paper's `layer_idx=all`.
 * The affine's weight gain is a scalar, so it drops out with the row normalisation. Computed in float64 (eigen.ts);
 * scripts/sefa_fixture.py does the same in numpy for the parity test.
 */
import { toFloat32, type StateDict } from "../checkpoints/tensor.ts";
import { symmetricEigenQL } from "./eigen.ts";

export interface SefaResult {
  /** the affine weights used, in block (resolution) order */
  layers: string[];
  /** eigenvalues of AᵀA, largest first */
  values: Float64Array;
  /** unit eigenvectors [wDim, wDim] row-major, row k belongs to values[k]; sign: largest-magnitude entry positive */
  vectors: Float64Array;
  wDim: number;
}

/**
 * `layers`: the keys of the style affine weights in `sd`, in forward order. The network defines which they are
 * (networks/stylegan2 `synthesisKeys.styleAffineWeights`); this module only does the algebra.
 */
export function sefa(sd: StateDict, layers: readonly string[]): SefaResult {
  if (layers.length === 0) throw new Error("no style affine weights in this state dict");
  for (const key of layers) if (!sd.has(key)) throw new Error(`${key}: not in this state dict`);
  const wDim = sd.get(layers[0])!.shape[1];
  // A normalised row by row and stored transposed (one contiguous column of A per w dimension), so each entry
  // of AᵀA is one contiguous dot product; computed for the upper triangle and mirrored.
  let rows = 0;
  for (const key of layers) {
    const t = sd.get(key)!;
    if (t.shape.length !== 2 || t.shape[1] !== wDim) throw new Error(`${key}: shape [${t.shape.join(", ")}], expected [*, ${wDim}]`);
    rows += t.shape[0];
  }
  const at = new Float64Array(wDim * rows);
  let r0 = 0;
  for (const key of layers) {
    const t = sd.get(key)!;
    const w = toFloat32(t);
    for (let r = 0; r < t.shape[0]; r++, r0++) {
      let norm = 0;
      for (let j = 0; j < wDim; j++) norm += w[r * wDim + j] * w[r * wDim + j];
      const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
      for (let j = 0; j < wDim; j++) at[j * rows + r0] = w[r * wDim + j] * inv;
    }
  }
  const ata = new Float64Array(wDim * wDim);
  for (let i = 0; i < wDim; i++)
    for (let j = i; j < wDim; j++) {
      let sum = 0;
      const oi = i * rows;
      const oj = j * rows;
      for (let r = 0; r < rows; r++) sum += at[oi + r] * at[oj + r];
      ata[i * wDim + j] = sum;
      ata[j * wDim + i] = sum;
    }
  const { values: asc, vectors: cols } = symmetricEigenQL(ata, wDim);
  const values = new Float64Array(wDim);
  const vectors = new Float64Array(wDim * wDim);
  for (let k = 0; k < wDim; k++) {
    const src = wDim - 1 - k;
    values[k] = asc[src];
    let big = 0;
    for (let j = 0; j < wDim; j++) if (Math.abs(cols[j * wDim + src]) > Math.abs(big)) big = cols[j * wDim + src];
    const sign = big < 0 ? -1 : 1;
    for (let j = 0; j < wDim; j++) vectors[k * wDim + j] = sign * cols[j * wDim + src];
  }
  return { layers: [...layers], values, vectors, wDim };
}
