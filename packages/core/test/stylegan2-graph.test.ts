/**
 * The StyleGAN2 ONNX graphs (the generator's own layers run against the graph builder, with every graph pass)
 * against the same generator run eagerly on TF.js, for the architectures and options the official fixture
 * (skip, no clamp, unconditional) does not cover: resnet, orig, conv_clamp, class-conditional mapping, and the
 * three noise modes. Noise strengths are set non-zero so the noise path shows in the output.
 */
import { beforeAll, describe, expect, it } from "vitest";
import "@tensorflow/tfjs-backend-cpu";
import type { StateDict } from "../src/checkpoints/tensor.ts";
import { initBackend, tf } from "../src/engine/backend.ts";
import { createSession } from "../src/inference/engines/onnx.ts";
import { exportStyleGAN2Mapping, exportStyleGAN2Synthesis, StyleGAN2Generator, synthesisLayout } from "../src/networks/stylegan2/index.ts";

const CONFIGS = [
  {
    name: "resnet 16, conv_clamp 0.5",
    cfg: { z_dim: 8, w_dim: 8, img_resolution: 16, mapping_kwargs: { num_layers: 2 }, synthesis_kwargs: { architecture: "resnet", channel_base: 64, channel_max: 8, conv_clamp: 0.5 } },
  },
  {
    name: "orig 16, c_dim 3, embed 6",
    cfg: { z_dim: 8, w_dim: 8, c_dim: 3, img_resolution: 16, mapping_kwargs: { num_layers: 3, embed_features: 6 }, synthesis_kwargs: { architecture: "orig", channel_base: 64, channel_max: 8 } },
  },
  { name: "skip 8, 1 channel", cfg: { z_dim: 4, w_dim: 6, img_resolution: 8, img_channels: 1, synthesis_kwargs: { channel_base: 32, channel_max: 6 } } },
];

function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

describe("StyleGAN2 ONNX graphs against the eager generator", () => {
  beforeAll(async () => {
    await initBackend("cpu");
  });

  for (const { name, cfg } of CONFIGS)
    it(name, async () => {
      const init = StyleGAN2Generator.randomInit(cfg, 3);
      const sd: StateDict = init.stateDict();
      init.dispose();
      let k = 0;
      for (const [key, t] of sd) if (key.endsWith("noise_strength")) sd.set(key, { ...t, data: Float32Array.of(0.2 + 0.1 * k++) });
      const g = StyleGAN2Generator.fromStateDict(cfg, sd);
      const n = 2;
      const { z_dim, c_dim, w_dim, img_resolution: r, img_channels = 3 } = { img_channels: 3, c_dim: 0, ...cfg };
      const z = Float32Array.from({ length: n * z_dim }, (_, i) => Math.sin(1.3 * i));
      const c = Float32Array.from({ length: n * c_dim }, (_, i) => (i % (c_dim + 1) === 0 ? 1 : 0));
      const zt = tf.tensor2d(z, [n, z_dim]);
      const ct = c_dim ? tf.tensor2d(c, [n, c_dim]) : null;
      const ws = g.mapping(zt, ct);
      const wsData = ws.dataSync() as Float32Array;

      const mapping = await createSession(exportStyleGAN2Mapping(cfg, sd), 1);
      const w = await mapping.run({ z: { data: z, dims: [n, z_dim] }, ...(c_dim ? { c: { data: c, dims: [n, c_dim] } } : {}) });
      await mapping.release();
      const w0 = Float32Array.from({ length: n * w_dim }, (_, i) => wsData[Math.floor(i / w_dim) * g.numWs * w_dim + (i % w_dim)]);
      expect(maxDiff(w, w0)).toBeLessThan(1e-5);

      const { noiseLayers } = synthesisLayout(cfg);
      const images: Record<string, Float32Array> = {};
      for (const mode of ["const", "none"] as const) {
        const eager = g.synthesis(ws, { noise_mode: mode });
        const want = eager.dataSync() as Float32Array;
        eager.dispose();
        const s = await createSession(exportStyleGAN2Synthesis(cfg, sd, mode), 1);
        const got = await s.run({ ws: { data: wsData, dims: [n, g.numWs, w_dim] } });
        await s.release();
        const scale = Math.max(1, ...want.map(Math.abs));
        console.log(`[stylegan2-graph] ${name} ${mode}: max|diff| ${maxDiff(got, want).toExponential(2)} (|img| ${scale.toFixed(2)})`);
        expect(maxDiff(got, want)).toBeLessThan(2e-5 * scale);
        expect(got.length).toBe(n * r * r * img_channels);
        images[mode] = got;
      }
      // The noise made a difference, and "random" with all-zero noise inputs is "none".
      expect(maxDiff(images.const, images.none)).toBeGreaterThan(1e-3);
      const random = await createSession(exportStyleGAN2Synthesis(cfg, sd, "random"), 1);
      const feeds = Object.fromEntries(noiseLayers.map((l, i) => [`noise_${i}`, { data: new Float32Array(n * l.resolution ** 2), dims: [n, 1, l.resolution, l.resolution] }]));
      const zeroNoise = await random.run({ ws: { data: wsData, dims: [n, g.numWs, w_dim] }, ...feeds });
      await random.release();
      expect(maxDiff(zeroNoise, images.none)).toBeLessThan(1e-6);
      tf.dispose([zt, ws, ...(ct ? [ct] : [])]);
      g.dispose();
    });
});
