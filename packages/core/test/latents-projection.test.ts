/**
 * Projection (#27) on the demo model: an image the model generated (its w is known) is projected back from
 * w_avg with projector.py's schedule and the documented MS-SSIM + L1 distance.
 */
import fs from "node:fs";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { readSafetensors } from "../src/checkpoints/safetensors.ts";
import { initBackend } from "../src/engine/backend.ts";
import { floatToUint8 } from "../src/images/codec.ts";
import { msSsim, projectWs, psnr } from "../src/predictions/tasks/projection.ts";
import { StyleGAN2Generator } from "../src/networks/stylegan2/index.ts";
import { seedToZ } from "../src/random/randomstate.ts";

const demo = path.resolve(import.meta.dirname, "../../../models/fashion-stylegan2");
const STEPS = 100;

function load() {
  const record = JSON.parse(fs.readFileSync(path.join(demo, "model.json"), "utf8"));
  const { tensors } = readSafetensors(new Uint8Array(fs.readFileSync(path.join(demo, "weights.safetensors"))));
  return StyleGAN2Generator.fromStateDict(record.config, tensors);
}

describe("projection", () => {
  it("MS-SSIM is 1 for equal images and falls as they differ", async () => {
    await initBackend();
    const [same, near, far] = tf.tidy(() => {
      const a = tf.randomUniform([1, 32, 32, 3], 0, 1, "float32", 1) as tf.Tensor4D;
      const b = tf.clipByValue(tf.add(a, tf.randomNormal([1, 32, 32, 3], 0, 0.05, "float32", 2)), 0, 1) as tf.Tensor4D;
      const c = tf.randomUniform([1, 32, 32, 3], 0, 1, "float32", 3) as tf.Tensor4D;
      return [msSsim(a, a), msSsim(a, b), msSsim(a, c)].map((t) => t.dataSync()[0]);
    });
    expect(same).toBeCloseTo(1, 5);
    expect(near).toBeLessThan(1);
    expect(far).toBeLessThan(near);
  });

  it(`recovers a generated image to PSNR >= 25 dB in ${STEPS} steps`, async () => {
    await initBackend();
    const g = load();
    try {
      const target = tf.tidy(() => {
        const z = tf.tensor2d(seedToZ(7, g.config.z_dim), [1, g.config.z_dim]);
        const img = g.generate(z, g.classLabels([0]), { truncation_psi: 0.7, noise_mode: "const" });
        return floatToUint8(img.dataSync() as Float32Array, "stylegan2");
      });
      // Where the optimisation starts (w_avg, the model's noise) is far from the target: the steps do the work.
      const start = tf.tidy(() => {
        const wAvg = g.variable("mapping.w_avg");
        const ws = tf.tile(tf.reshape(wAvg, [1, 1, g.config.w_dim]), [1, g.numWs, 1]) as tf.Tensor3D;
        return floatToUint8(g.synthesis(ws, { noise_mode: "const" }).dataSync() as Float32Array, "stylegan2");
      });
      expect(psnr(start, target)).toBeLessThan(20);
      const t0 = performance.now();
      const r = await projectWs(g, { steps: STEPS, learning_rate: 0.1, optimize_noise: true, w_avg_samples: 2000, seed: 0, class_idx: 0 }, target);
      const got = psnr(floatToUint8(r.image, "stylegan2"), target);
      console.log(`projection: ${STEPS} steps in ${Math.round(performance.now() - t0)} ms, PSNR ${got.toFixed(2)} dB, loss ${r.losses[0]} → ${r.losses.at(-1)}`);
      expect(r.losses).toHaveLength(STEPS);
      expect(r.losses.at(-1)!).toBeLessThan(r.losses[0]);
      expect(got).toBeGreaterThanOrEqual(25);
    } finally {
      g.dispose();
    }
  });
});
