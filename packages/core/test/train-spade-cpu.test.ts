import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StateDict } from "../src/checkpoints/tensor.ts";
import { enableTraining } from "../src/engine/gradients.ts";
import { SpadeGenerator } from "../src/networks/spade/index.ts";
import { createSpadeTrainer } from "../src/training/spade/index.ts";
import { syntheticScene } from "../src/training/spade/synthetic.ts";
import type { TrainerInit } from "../src/training/types.ts";

// A full SPADE step on tfjs-cpu takes tens of seconds here, so it has a file of its own.
const CONFIG = { label_nc: 4, ngf: 2, crop_size: 64, spade_nhidden: 16 };

function makeInit(opts: Record<string, unknown> = {}, over: Partial<TrainerInit["options"]> = {}): TrainerInit {
  const g = SpadeGenerator.randomInit(CONFIG, 5);
  const weights = g.stateDict();
  g.dispose();
  const scenes = [0, 1, 2].map((i) => syntheticScene(i));
  return {
    config: CONFIG,
    weights,
    data: { family: "spade", images: scenes.map((s) => s.image), labels: scenes.map((s) => s.labels) },
    options: { steps: 8, batch_size: 1, learning_rate: 2e-4, seed: 7, options: { ndf: 8, ...opts }, ...over },
  };
}

const flat = (sd: StateDict) => new Map([...sd].map(([k, v]) => [k, Array.from(v.data as Float32Array, Number)]));
const timings: string[] = [];

async function timedSteps(t: { trainStep(): Promise<{ losses: Record<string, number> }> }, n: number) {
  const losses: Record<string, number>[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) losses.push((await t.trainStep()).losses);
  return { losses, secondsPerStep: (performance.now() - t0) / 1000 / n };
}

beforeAll(async () => {
  await tf.setBackend("wasm");
  enableTraining();
});

afterAll(() => console.log(timings.join("\n")));

describe("SPADE trainer (cpu)", () => {
  it("a full cpu step matches the wasm step (losses and first Adam update)", async () => {
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      const t = createSpadeTrainer(makeInit({}, { learning_rate: 1e-3 }));
      const before = flat(t.exportGenerator().weights);
      const { losses, secondsPerStep } = await timedSteps(t, 1);
      const after = flat(t.exportGenerator().weights);
      t.dispose();
      return { losses: losses[0], secondsPerStep, delta: (k: string) => after.get(k)!.map((v, i) => v - before.get(k)![i]) };
    };
    try {
      const cpu = await run("cpu");
      timings.push(`spade ngf2 nhidden16 ndf8 64x64 label_nc4 batch1 cpu: ${cpu.secondsPerStep.toFixed(3)} s/step`);
      const wasm = await run("wasm");
      for (const [k, v] of Object.entries(cpu.losses)) expect(v, k).toBeCloseTo(wasm.losses[k], 3);
      // Adam's first step is ~lr * sign(grad): a wrong gradient shows up as flipped signs.
      for (const k of ["fc.weight", "head_0.norm_0.mlp_shared.0.weight", "up_0.conv_0.weight_orig"]) {
        const [a, b] = [cpu.delta(k), wasm.delta(k)];
        const agree = a.filter((v, i) => Math.abs(v - b[i]) < 2e-4).length / a.length;
        expect(agree, k).toBeGreaterThan(0.95);
      }
    } finally {
      await tf.setBackend("wasm");
    }
  });
});
