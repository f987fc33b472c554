/**
 * DCGAN training: every loss the family allows runs with finite terms and moves G; the refused ones say why;
 * a fixture generator (torch-made) fine-tunes and exports under its official names.
 */
import "@tensorflow/tfjs-backend-cpu";
import { beforeAll, describe, expect, it } from "vitest";
import { inferDCGAN } from "../src/networks/dcgan/infer.ts";
import { initBackend } from "../src/engine/backend.ts";
import { discriminatorStages } from "../src/networks/dcgan/discriminator.ts";
import { TrainerOptionError } from "../src/training/common/options.ts";
import { DcganTrainer } from "../src/training/dcgan/trainer.ts";
import type { GanLoss } from "../src/training/losses.ts";
import type { TrainImage } from "../src/training/types.ts";
import { loadDcgan } from "./helpers/dcgan-fixtures.ts";

const NZ = 16;
/** A 16×16 grayscale `main` generator: 1×1 → 4 → 8 → 16. */
const config = {
  layout: "main",
  z_shape: [NZ, 1, 1],
  nc: 1,
  img_size: 16,
  layers: [
    { op: "conv_transpose2d", key: "main.0", in: NZ, out: 32, kernel: 4, stride: 1, padding: 0, bias: false },
    { op: "batch_norm", key: "main.1", features: 32 },
    { op: "relu" },
    { op: "conv_transpose2d", key: "main.3", in: 32, out: 16, kernel: 4, stride: 2, padding: 1, bias: false },
    { op: "batch_norm", key: "main.4", features: 16 },
    { op: "relu" },
    { op: "conv_transpose2d", key: "main.6", in: 16, out: 1, kernel: 4, stride: 2, padding: 1, bias: false },
    { op: "tanh" },
  ],
};

/** Bright squares on dark ground, RGB. */
function squares(n: number, s: number): TrainImage[] {
  return Array.from({ length: n }, (_, i) => {
    const data = new Uint8Array(s * s * 3).fill(10);
    const size = 4 + (i % 3) * 2;
    const o = (i * 3) % (s - size);
    for (let y = o; y < o + size; y++) for (let x = o; x < o + size; x++) data.fill(240, (y * s + x) * 3, (y * s + x) * 3 + 3);
    return { data, width: s, height: s };
  });
}

const options = (o: Record<string, unknown>) => ({ steps: 3, batch_size: 4, learning_rate: 2e-4, seed: 3, options: { ndf: 8, ...o } });

beforeAll(async () => {
  await initBackend("cpu");
});

describe("DCGAN training", () => {
  it("sizes the discriminator to the image", () => {
    expect(discriminatorStages(64)).toEqual({ stages: 4, lastKernel: 4 });
    expect(discriminatorStages(28)).toEqual({ stages: 2, lastKernel: 7 });
    expect(() => discriminatorStages(5)).toThrow(/even image size/);
  });

  for (const loss of ["bce", "nonsaturating", "lsgan", "hinge"] as GanLoss[]) {
    it(`trains from scratch with ${loss}: finite terms, G moves`, async () => {
      const t = new DcganTrainer({ config, images: squares(12, 20), options: options({ loss }) });
      const before = t.G.stateDict().get("main.6.weight")!.data as Float32Array;
      for (let i = 0; i < 3; i++) {
        const { losses } = await t.trainStep();
        expect(Object.keys(losses)).toEqual(["D_real", "D_fake", "G"]);
        for (const [k, v] of Object.entries(losses)) expect(Number.isFinite(v), `${loss} ${k} = ${v}`).toBe(true);
      }
      const sd = t.G.stateDict();
      const after = sd.get("main.6.weight")!.data as Float32Array;
      expect(after.some((x, i) => x !== before[i])).toBe(true);
      // G's BatchNorm buffers follow the training batches (from their 0 / 1 start), so eval mode works.
      expect((sd.get("main.1.running_mean")!.data as Float32Array).some((x) => x !== 0)).toBe(true);
      expect((sd.get("main.4.running_var")!.data as Float32Array).some((x) => x !== 1)).toBe(true);
      t.dispose();
    });
  }

  it("refuses wgan-gp and R1 with the reason", () => {
    for (const o of [{ loss: "wgan-gp" }, { loss: "wgan-gp", d_norm: "none" }, { r1_gamma: 1 }])
      expect(() => new DcganTrainer({ config, images: squares(2, 16), options: options(o) })).toThrow(TrainerOptionError);
    expect(() => new DcganTrainer({ config, images: squares(2, 16), options: options({ loss: "wgan-gp" }) })).toThrow(/second derivative/);
  });

  it("fine-tunes a torch-made generator and exports it under the official names", async () => {
    const sd = await loadDcgan("main_nz100_gray32");
    const { config: base } = inferDCGAN(sd, {});
    const t = new DcganTrainer({ config: base, weights: sd, images: squares(8, 32), options: { ...options({}), batch_size: 2 } });
    const { losses } = await t.trainStep();
    for (const v of Object.values(losses)) expect(Number.isFinite(v)).toBe(true);
    const out = t.exportGenerator();
    expect([...out.weights.keys()]).toEqual([...sd.keys()]);
    t.dispose();
  });
});
