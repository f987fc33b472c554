import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enableTraining } from "../src/engine/gradients.ts";
import { createSpadeTrainer } from "../src/training/spade/index.ts";
import { flat, makeInit, timedSteps } from "./helpers/spade-training.ts";

// A full SPADE step on tfjs-cpu takes tens of seconds here, so it has a file of its own.
const timings: string[] = [];

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
