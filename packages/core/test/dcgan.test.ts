/**
 * DCGAN generators against torch: each fixture (scripts/dcgan-fixture.py) is imported from its state_dict alone
 * (layout inferred), z is drawn by our torch.randn reproduction from the seed, and the one network definition
 * runs eagerly (TF.js) and as its ONNX export (ONNX Runtime). Every pixel must satisfy the fixture's
 * |out - expected| <= atol + rtol·|expected| (atol ≈ 1e-4, set by the script from float64 reruns).
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inferDCGAN } from "../src/networks/dcgan/infer.ts";
import { toFloat32 } from "../src/checkpoints/tensor.ts";
import { initBackend } from "../src/engine/backend.ts";
import { createSession } from "../src/inference/engines/onnx.ts";
import { DcganGenerator, exportDcgan } from "../src/networks/dcgan/generator.ts";
import { torchSeedToZ } from "../src/random/torch-randn.ts";
import { DCGAN_MLP_HINTS, DCGAN_MODELS, dcganIO, dcganManifest, loadDcgan } from "./helpers/dcgan-fixtures.ts";

/** NHWC output → NCHW as torch wrote it. */
function toNCHW(y: Float32Array, [n, h, w, c]: number[]): Float32Array {
  const out = new Float32Array(y.length);
  for (let b = 0; b < n; b++)
    for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) for (let k = 0; k < c; k++) out[((b * c + k) * h + i) * w + j] = y[((b * h + i) * w + j) * c + k];
  return out;
}

/** Elements outside atol + rtol·|expected|, and the largest difference. */
function compare(got: Float32Array, want: Float32Array, atol: number, rtol: number): { bad: number; maxDiff: number } {
  let bad = 0;
  let maxDiff = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    maxDiff = Math.max(maxDiff, d);
    if (!(d <= atol + rtol * Math.abs(want[i]))) bad++;
  }
  return { bad, maxDiff };
}

const report: string[] = [];

beforeAll(async () => {
  await initBackend("cpu");
});
afterAll(() => console.log(report.join("\n")));

describe("DCGAN generators against torch", () => {
  for (const model of DCGAN_MODELS) {
    it(`${model}: seeds through torch.randn, eager and ONNX`, async () => {
      const m = dcganManifest(model);
      const sd = await loadDcgan(model);
      const { config } = inferDCGAN(sd, DCGAN_MLP_HINTS[model] ?? {}, model);
      const io = dcganIO(model);
      const nz = (config.z_shape as number[])[0];
      const g = DcganGenerator.fromStateDict(config, sd, model);
      const session = await createSession(exportDcgan(config, sd, model), 1);
      try {
        for (const c of m.cases) {
          const z = torchSeedToZ(c.call.seed, nz);
          // The sampler is bit-exact, so the network sees exactly torch's z.
          expect(Buffer.from(z.buffer).equals(Buffer.from(toFloat32(io.get(c.inputs[0])!).buffer)), `${model} z of seed ${c.call.seed}`).toBe(true);
          const want = toFloat32(io.get(c.expected)!);
          const y = g.forward(tf.tensor2d(z, [1, nz]));
          const eager = compare(toNCHW((await y.data()) as Float32Array, y.shape), want, c.atol, c.rtol);
          const onnxOut = await session.run({ z: { data: z, dims: [1, 1, 1, nz] } });
          const onnx = compare(toNCHW(onnxOut, y.shape), want, c.atol, c.rtol);
          y.dispose();
          report.push(`${model} ${c.name}: eager max |diff| ${eager.maxDiff.toExponential(2)}, onnx ${onnx.maxDiff.toExponential(2)} (atol ${c.atol.toExponential(2)})`);
          expect(eager.bad, `${model} ${c.name} eager, max diff ${eager.maxDiff}`).toBe(0);
          expect(onnx.bad, `${model} ${c.name} onnx, max diff ${onnx.maxDiff}`).toBe(0);
        }
      } finally {
        g.dispose();
        await session.release();
      }
    });
  }

  it("round-trips its own state_dict in the official names and order", async () => {
    const sd = await loadDcgan("fc_deconv_nz100_rgb64");
    const g = DcganGenerator.fromStateDict(inferDCGAN(sd, {}).config, sd);
    expect([...g.stateDict().keys()]).toEqual([...sd.keys()]);
    g.dispose();
  });

  it("refuses a z of the wrong length", async () => {
    const sd = await loadDcgan("main_nz100_gray32");
    const g = DcganGenerator.fromStateDict(inferDCGAN(sd, {}).config, sd);
    expect(() => g.forward(tf.zeros([1, 64]) as tf.Tensor2D)).toThrow(/expected z of shape \[N, 100\]/);
    g.dispose();
  });
});
