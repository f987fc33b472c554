/**
 * DCGAN as a family: imports are recognised as DCGAN from their names and shapes alone (and CycleGAN's all-conv
 * `model.N` still as CycleGAN), the request's sampler picks torch's or numpy's z, the registered trainer resumes
 * from saveState exactly as the Trainer contract asks, and its sample grid is G on torch seeds 0-7.
 */
import "@tensorflow/tfjs-backend-cpu";
import { beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import path from "node:path";
import { loadCheckpoint } from "../src/checkpoints/index.ts";
import { initBackend } from "../src/engine/backend.ts";
import { dcganLatents } from "../src/inference/dcgan-latents.ts";
import { GenerateRequest } from "../src/api/inference.ts";
import { mainLayoutConfig } from "../src/networks/dcgan/config.ts";
import { DcganGenerator } from "../src/networks/dcgan/generator.ts";
import { detectFamily, inferModelConfig } from "../src/networks/infer.ts";
import { seedToZ, torchSeedToZ } from "../src/random/index.ts";
import { createTrainer, trainingImageSize } from "../src/training/index.ts";
import type { TrainImage } from "../src/training/types.ts";
import { official } from "../../../test/fixtures/index.ts";
import { DCGAN_FORMATS, DCGAN_MLP_HINTS, DCGAN_MODELS, dcganManifest, loadDcgan } from "./helpers/dcgan-fixtures.ts";

beforeAll(async () => {
  await initBackend("cpu");
});

describe("DCGAN family detection", () => {
  for (const model of DCGAN_MODELS)
    it(`${model}: every saved format is a dcgan, inferred to the layers torch built`, async () => {
      const m = dcganManifest(model);
      for (const format of DCGAN_FORMATS) {
        if (typeof m.weights[format] !== "string") continue;
        const sd = await loadDcgan(model, format);
        expect(detectFamily(sd), `${model} [${format}]`).toBe("dcgan");
        const got = inferModelConfig(sd, DCGAN_MLP_HINTS[model] ?? {});
        expect(got.family).toBe("dcgan");
        expect(got.config.layers).toEqual(m.config.layers);
      }
    });

  it("CycleGAN's model.N (convolutions only) stays a cyclegan", async () => {
    const dir = official("cyclegan/resnet_9blocks_instance_ngf8");
    const { stateDict } = await loadCheckpoint(new Uint8Array(readFileSync(path.join(dir, "weights.safetensors"))), "weights.safetensors");
    expect(detectFamily(stateDict)).toBe("cyclegan");
  });
});

describe("DCGAN request latents", () => {
  const engine = { zDim: 8, zShape: [8, 1, 1], seedRng: "torch" as const };
  const parse = (body: Record<string, unknown>) => GenerateRequest.parse({ model: "m", ...body });

  it("draws seeds with the model's sampler unless the request names one", () => {
    expect(dcganLatents(engine, parse({ seeds: [3, 4] })).z).toEqual(Float32Array.of(...torchSeedToZ(3, 8), ...torchSeedToZ(4, 8)));
    expect(dcganLatents(engine, parse({ seeds: [3], seed_rng: "numpy" })).z).toEqual(seedToZ(3, 8));
    expect(dcganLatents(engine, parse({ seeds: "0-2" })).seeds).toEqual([0, 1, 2]);
  });

  it("takes z as given and refuses a wrong length, naming the model's shape", () => {
    const z = Array.from({ length: 8 }, (_, i) => i / 8);
    expect(dcganLatents(engine, parse({ z: [z] })).z).toEqual(Float32Array.from(z));
    expect(() => dcganLatents(engine, parse({ z: [z.slice(1)] }))).toThrow(/has 7 values, expected 8; this model takes shape \[8, 1, 1\]/);
    expect(() => dcganLatents(engine, parse({ seeds: [1], z: [z] }))).toThrow(/exactly one of seeds and z/);
  });
});

describe("the registered DCGAN trainer", () => {
  const config = mainLayoutConfig(16, 4, 1, 16);
  const images: TrainImage[] = Array.from({ length: 6 }, (_, i) => ({ width: 16, height: 16, data: new Uint8Array(16 * 16 * 3).map((_, j) => (j * (i + 3)) % 256) }));
  // A fresh base, as the demo recipe's randomBaseWeights makes one (pytorch/examples' init).
  const base = () => {
    const g = DcganGenerator.randomInit(config, 1);
    const sd = g.stateDict();
    g.dispose();
    return sd;
  };
  const init = () => ({
    config,
    weights: base(),
    data: { family: "dcgan" as const, images },
    options: { steps: 4, batch_size: 3, learning_rate: 2e-4, seed: 5, options: { ndf: 4 } },
  });

  it("builds pytorch/examples' netG for a size", () => {
    expect(config.layers.filter((l) => l.op === "conv_transpose2d").map((l) => [l.in, l.out, l.stride])).toEqual([
      [16, 8, 1],
      [8, 4, 2],
      [4, 1, 2],
    ]);
    expect(trainingImageSize("dcgan", { config, options: init().options })).toEqual({ width: 16, height: 16 });
  });

  it("resumes from saveState exactly where it left off", async () => {
    const a = createTrainer("dcgan", init());
    await a.trainStep();
    await a.trainStep();
    const state = a.saveState();
    const next = await a.trainStep();
    const b = createTrainer("dcgan", init());
    b.loadState(state);
    expect(b.step).toBe(2);
    const resumed = await b.trainStep();
    expect(resumed).toEqual(next);
    expect([...b.exportGenerator().weights.get("main.0.weight")!.data]).toEqual([...a.exportGenerator().weights.get("main.0.weight")!.data]);
    const grid = await b.sampleGrid();
    expect([grid.width > 16 * 8 - 1, grid.height >= 16, grid.data.length]).toEqual([true, true, grid.width * grid.height * 3]);
    a.dispose();
    b.dispose();
  });
});
