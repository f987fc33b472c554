import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { latentsDir } from "../../../test/fixtures/index.ts";
import { readSafetensors } from "../src/checkpoints/safetensors.ts";
import { sha256 } from "../src/models/registry.ts";
import { sefa } from "../src/latents/sefa.ts";

const repo = path.resolve(import.meta.dirname, "../../..");

describe("SeFa directions match numpy on the same weights (scripts/sefa_fixture.py)", () => {
  for (const name of ["fixture", "fashion"]) {
    it(`${name}: top-5 eigenvalues and eigenvectors (up to sign) within 1e-4`, () => {
      const ref = JSON.parse(fs.readFileSync(path.join(latentsDir, `sefa-${name}.json`), "utf8"));
      const bytes = new Uint8Array(fs.readFileSync(path.join(repo, ref.weights)));
      expect(sha256(bytes)).toBe(ref.sha256);
      const ours = sefa(readSafetensors(bytes).tensors);
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
