import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { latentsDir } from "../../../test/fixtures/index.ts";
import { readSafetensors } from "../src/checkpoints/safetensors.ts";
import { sha256 } from "../src/models/registry.ts";
import { symmetricEigen } from "../src/eval/linalg.ts";
import { symmetricEigenQL } from "../src/latents/eigen.ts";
import { sefa } from "../src/latents/sefa.ts";
import { synthesisKeys } from "../src/networks/stylegan2/synthesis.ts";
import { RandomState } from "../src/random/index.ts";

const repo = path.resolve(import.meta.dirname, "../../..");

describe("SeFa directions match numpy on the same weights (scripts/sefa_fixture.py)", () => {
  for (const name of ["fixture", "fashion"]) {
    it(`${name}: top-5 eigenvalues and eigenvectors (up to sign) within 1e-4`, () => {
      const ref = JSON.parse(fs.readFileSync(path.join(latentsDir, `sefa-${name}.json`), "utf8"));
      const bytes = new Uint8Array(fs.readFileSync(path.join(repo, ref.weights)));
      expect(sha256(bytes)).toBe(ref.sha256);
      const { tensors } = readSafetensors(bytes);
      const ours = sefa(tensors, synthesisKeys.styleAffineWeights(tensors.keys()));
      expect(ours.layers).toEqual(ref.layers);
      expect(ours.wDim).toBe(ref.w_dim);
      for (let k = 0; k < 5; k++) {
        expect(Math.abs(ours.values[k] - ref.values[k])).toBeLessThan(1e-4);
        const v = ours.vectors.subarray(k * ours.wDim, (k + 1) * ours.wDim);
        const dot = ref.vectors[k].reduce((a: number, x: number, j: number) => a + x * v[j], 0);
        const sign = Math.sign(dot);
        const err = Math.max(...ref.vectors[k].map((x: number, j: number) => Math.abs(sign * v[j] - x)));
        expect(err).toBeLessThan(1e-4);
      }
    });
  }
});

describe("symmetric eigensolver (Householder + QL)", () => {
  it("agrees with the Jacobi solver and satisfies A v = λ v with orthonormal vectors", () => {
    const n = 60;
    const b = new RandomState(7).randn(n * n);
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) a[i * n + j] += b[i * n + k] * b[j * n + k];
    const ql = symmetricEigenQL(a, n);
    const jacobi = symmetricEigen(a, n);
    for (let k = 0; k < n; k++) expect(Math.abs(ql.values[k] - jacobi.values[k])).toBeLessThan(1e-9 * Math.max(1, Math.abs(jacobi.values[n - 1])));
    let residual = 0;
    let ortho = 0;
    for (let c = 0; c < n; c++) {
      for (let i = 0; i < n; i++) {
        let av = 0;
        for (let k = 0; k < n; k++) av += a[i * n + k] * ql.vectors[k * n + c];
        residual = Math.max(residual, Math.abs(av - ql.values[c] * ql.vectors[i * n + c]));
      }
      for (let c2 = 0; c2 < n; c2++) {
        let dot = 0;
        for (let k = 0; k < n; k++) dot += ql.vectors[k * n + c] * ql.vectors[k * n + c2];
        ortho = Math.max(ortho, Math.abs(dot - (c === c2 ? 1 : 0)));
      }
    }
    expect(residual).toBeLessThan(1e-10);
    expect(ortho).toBeLessThan(1e-12);
  });
});
