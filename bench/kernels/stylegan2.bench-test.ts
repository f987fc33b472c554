/**
 * Timing of a full-size generator (`npm run bench:kernels`, never in `npm test`): stylegan2-ada's `paper256` shape (z/w 512,
 * channel_base 16384, channel_max 512, conv_clamp 256), random weights, batch 1, noise_mode const.
 * GANSERVE_BENCH_BACKENDS picks backends (default wasm); GANSERVE_BENCH_RES the resolution (default 256).
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import { describe, expect, it } from "vitest";
import { StyleGAN2Generator } from "../../packages/core/src/networks/stylegan2/generator.ts";

const backends = (process.env.GANSERVE_BENCH_BACKENDS ?? "wasm").split(",");
const res = Number(process.env.GANSERVE_BENCH_RES ?? 256);

describe("stylegan2 forward timing", () => {
  for (const backend of backends)
    it(`paper256-shaped generator at ${res}² on ${backend}`, async () => {
      await tf.setBackend(backend);
      await tf.ready();
      const g = StyleGAN2Generator.randomInit(
        {
          z_dim: 512, w_dim: 512, img_resolution: res,
          mapping_kwargs: { num_layers: 8 },
          synthesis_kwargs: { channel_base: 16384, channel_max: 512, conv_clamp: 256, num_fp16_res: 4 },
        },
        1,
      );
      try {
        const z = tf.randomNormal([1, 512], 0, 1, "float32", 1) as tf.Tensor2D;
        const run = async () => {
          const t0 = performance.now();
          const img = g.generate(z, null, { truncation_psi: 0.7 });
          await img.data();
          img.dispose();
          return performance.now() - t0;
        };
        await run();
        const times = [await run(), await run(), await run()];
        const best = Math.min(...times);
        console.log(`[stylegan2-bench] ${backend} ${res}² batch 1: best ${best.toFixed(0)} ms (runs ${times.map((t) => t.toFixed(0)).join(", ")})`);
        if (process.env.GANSERVE_BENCH_PROFILE) {
          const prof = await tf.profile(async () => {
            const img = g.generate(z, null, { truncation_psi: 0.7 });
            await img.data();
            img.dispose();
          });
          const byKernel = new Map<string, number>();
          for (const k of prof.kernels) byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + (typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0));
          const top = [...byKernel].sort((a, b) => b[1] - a[1]).slice(0, 12);
          console.log(`[stylegan2-bench] kernel ms: ${top.map(([n, t]) => `${n} ${t.toFixed(0)}`).join(", ")}`);
        }
        z.dispose();
        expect(best).toBeGreaterThan(0);
      } finally {
        g.dispose();
      }
    }, 30 * 60_000);
});
