/**
 * Forward times at real model sizes (ngf 64, 256x256) on the TF.js backends. A benchmark, not a test: it runs
 * with `npm run bench:kernels` [GANSERVE_BENCH_BACKENDS=wasm,cpu] [GANSERVE_BENCH_ITERS=3], never in `npm test`.
 */
import { describe, expect, it } from "vitest";
import "@tensorflow/tfjs-backend-cpu";
import { initBackend, tf } from "../../packages/core/src/engine/backend.ts";
import { setConvTransposeMethod, type ConvTransposeMethod } from "../../packages/core/src/networks/common/conv.ts";
import { CycleGANModel } from "../../packages/core/src/networks/cyclegan/index.ts";

const backends = (process.env.GANSERVE_BENCH_BACKENDS ?? "wasm,cpu").split(",");
const iterations = Number(process.env.GANSERVE_BENCH_ITERS ?? 3);
const tconv = process.env.GANSERVE_BENCH_TCONV as ConvTransposeMethod | undefined;

describe("cyclegan forward benchmark", () => {
  for (const backend of backends)
    for (const [netG, norm] of [["resnet_9blocks", "instance"], ["unet_256", "batch"]] as const) {
      it(`${backend} ${netG} ngf64 1x256x256x3`, async () => {
        await initBackend("wasm");
        expect(await tf.setBackend(backend)).toBe(true);
        setConvTransposeMethod(tconv);
        const m = CycleGANModel.randomInit({ ngf: 64, netG, norm }, 1);
        const x = tf.randomUniform([1, 256, 256, 3], -1, 1, "float32", 1) as tf.Tensor4D;
        const times: number[] = [];
        for (let i = 0; i < iterations; i++) {
          const t0 = performance.now();
          const y = m.translate(x);
          await y.data();
          times.push(performance.now() - t0);
          y.dispose();
        }
        console.log(`${backend} ${netG} (convT ${tconv ?? "default"}) ngf64 1x256x256x3: ${times.map((t) => t.toFixed(0)).join(", ")} ms (first includes warm-up)`);
        x.dispose();
        m.dispose();
      }, 600_000);
    }
});
