import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enableTraining } from "../src/engine/gradients.ts";
import { downsampleAvg3x3, MultiscaleDiscriminator } from "../src/networks/spade/discriminator.ts";
import { SpadeGenerator } from "../src/networks/spade/index.ts";
import { createSpadeTrainer, type SpadeTrainer } from "../src/training/spade/index.ts";
import { syntheticScene } from "../src/training/spade/synthetic.ts";
import { CONFIG, flat, makeInit, timedSteps } from "./helpers/spade-training.ts";


const timings: string[] = [];

beforeAll(async () => {
  await tf.setBackend("wasm");
  enableTraining();
});

afterAll(() => console.log(timings.join("\n")));

describe("MultiscaleDiscriminator", () => {
  it("has upstream names and returns every layer's features at each scale", () => {
    const d = MultiscaleDiscriminator.randomInit({ inputNc: 8, ndf: 4, numD: 2, nLayers: 4 }, 1);
    const keys = [...d.stateDict().keys()];
    expect(keys.slice(0, 6)).toEqual([
      "discriminator_0.model0.0.weight",
      "discriminator_0.model0.0.bias",
      "discriminator_0.model1.0.0.weight_orig",
      "discriminator_0.model1.0.0.weight_u",
      "discriminator_0.model1.0.0.weight_v",
      "discriminator_0.model2.0.0.weight_orig",
    ]);
    expect(keys).toContain("discriminator_1.model4.0.bias");
    expect(keys.some((k) => k.includes("model1.0.0.bias"))).toBe(false);
    expect(d.stateDict().get("discriminator_0.model3.0.0.weight_orig")!.shape).toEqual([32, 16, 4, 4]);
    const x = tf.randomNormal([2, 64, 64, 8], 0, 1, "float32", 3) as tf.Tensor4D;
    const out = d.forward(x);
    // k4 p2: stride 2 gives floor(n/2)+1, stride 1 gives n+1.
    const sizes = (n: number) => {
      const s = [Math.floor(n / 2) + 1];
      s.push(Math.floor(s[0] / 2) + 1, Math.floor(Math.floor(s[0] / 2 + 1) / 2) + 1);
      s.push(s[2] + 1, s[2] + 2);
      return s;
    };
    expect(out.map((scale) => scale.map((t) => t.shape))).toEqual(
      [64, 32].map((n) => sizes(n).map((s, j) => [2, s, s, [4, 8, 16, 32, 1][j]])),
    );
    tf.dispose([x, ...out.flat()]);
    d.dispose();
  });

  it("downsamples with a 3x3/2 average pool that ignores the padding (count_include_pad=False)", () => {
    const h = 5;
    const vals = Array.from({ length: h * h }, (_, i) => (i * 7) % 11);
    const x = tf.tensor4d(vals, [1, h, h, 1]);
    const y = downsampleAvg3x3(x);
    const expected: number[] = [];
    for (let oy = 0; oy < 3; oy++)
      for (let ox = 0; ox < 3; ox++) {
        let [s, n] = [0, 0];
        for (let dy = -1; dy <= 1; dy++)
          for (let dx = -1; dx <= 1; dx++) {
            const [yy, xx] = [2 * oy + dy, 2 * ox + dx];
            if (yy >= 0 && yy < h && xx >= 0 && xx < h) [s, n] = [s + vals[yy * h + xx], n + 1];
          }
        expected.push(s / n);
      }
    expect(y.shape).toEqual([1, 3, 3, 1]);
    for (const [i, v] of Array.from(y.dataSync()).entries()) expect(v).toBeCloseTo(expected[i], 5);
    tf.dispose([x, y]);
  });
});

describe("SPADE trainer (wasm)", () => {
  it("ngf 2, crop 64, label_nc 4: finite hinge + feature-matching losses; weights, u/v and BN stats move", async () => {
    const t = createSpadeTrainer(makeInit()) as SpadeTrainer;
    const before = flat(t.exportGenerator().weights);
    const { losses, secondsPerStep } = await timedSteps(t, 2);
    timings.push(`spade ngf2 nhidden16 ndf8 64x64 label_nc4 batch1 wasm: ${secondsPerStep.toFixed(3)} s/step`);
    for (const l of losses) {
      expect(Object.keys(l).sort()).toEqual(["D_Fake", "D_real", "GAN_Feat", "G_GAN"]);
      for (const v of Object.values(l)) expect(Number.isFinite(v)).toBe(true);
      expect(l.GAN_Feat).toBeGreaterThan(0);
    }
    const after = flat(t.exportGenerator().weights);
    expect([...after.keys()]).toEqual([...before.keys()]);
    const changed = (k: string) => after.get(k)!.some((x, i) => x !== before.get(k)![i]);
    for (const k of ["fc.weight", "head_0.conv_0.weight_orig", "head_0.conv_0.weight_u", "up_3.conv_1.weight_v", "up_3.norm_0.mlp_gamma.weight", "conv_img.bias"])
      expect(changed(k), k).toBe(true);
    expect(changed("up_3.norm_0.param_free_norm.running_mean")).toBe(true);
    expect(changed("up_3.norm_0.param_free_norm.running_var")).toBe(true);
    // Every trainable generator parameter moved.
    for (const name of t.generator().trainableVariables().keys()) expect(changed(name), name).toBe(true);
    // D: 2 scales x (3 + 1) outputs on concat(semantics, image) = 5 + 3 channels.
    const feats = t.discriminator().forward(tf.zeros([1, 64, 64, 8]));
    expect(feats.map((s) => s.length)).toEqual([4, 4]);
    expect(feats.map((s) => s[3].shape)).toEqual([[1, 19, 19, 1], [1, 11, 11, 1]]);
    tf.dispose(feats.flat());

    const exported = t.exportGenerator();
    const g = SpadeGenerator.fromStateDict(exported.config, exported.weights);
    g.dispose();
    const grid = await t.sampleGrid();
    expect([grid.width, grid.height]).toEqual([3 * 64, 3 * 64]);
    t.dispose();
  });

  it("resumes bit-identically: 4 straight steps == 2 + saveState/loadState into a fresh trainer + 2", async () => {
    const opts = { decay_start: 2 };
    const straight = createSpadeTrainer(makeInit(opts, { steps: 4 }));
    for (let i = 0; i < 4; i++) await straight.trainStep();
    const first = createSpadeTrainer(makeInit(opts, { steps: 4 }));
    await first.trainStep();
    await first.trainStep();
    const state = first.saveState();
    expect(state.has("G.head_0.conv_0.weight_u") && state.has("D.discriminator_1.model0.0.weight") && state.has("step")).toBe(true);
    first.dispose();
    const resumed = createSpadeTrainer(makeInit(opts, { steps: 4 }));
    resumed.loadState(state);
    expect(resumed.step).toBe(2);
    await resumed.trainStep();
    await resumed.trainStep();
    const sa = flat(straight.saveState());
    const sb = flat(resumed.saveState());
    expect([...sb.keys()]).toEqual([...sa.keys()]);
    for (const [k, v] of sa) expect(sb.get(k), k).toEqual(v);
    straight.dispose();
    resumed.dispose();
  });

  it("lambda_l1 adds pix2pix's L1 to the paired image as G_L1, scaled by λ; off by default", async () => {
    const first = async (opts: Record<string, unknown>) => {
      const t = createSpadeTrainer(makeInit(opts));
      const { losses } = await t.trainStep();
      t.dispose();
      return losses;
    };
    const [one, hundred] = [await first({ lambda_l1: 1 }), await first({ lambda_l1: 100 })];
    // Same init and batch: the first step's term is λ · mean|G(sem) − real| of the same images, in (0, 2].
    expect(one.G_L1).toBeGreaterThan(0);
    expect(one.G_L1).toBeLessThanOrEqual(2);
    expect(hundred.G_L1 / one.G_L1).toBeCloseTo(100, 3);
    expect(Object.keys(await first({}))).not.toContain("G_L1");
    expect(() => createSpadeTrainer(makeInit({ lambda_l1: -1 }))).toThrow(/lambda_l1/);
  });

  it("rejects use_vae models and a resolution the generator cannot produce", () => {
    expect(() => createSpadeTrainer(makeInit({ resolution: 128 }))).toThrow(/resolution/);
    expect(() => createSpadeTrainer({ ...makeInit(), config: { ...CONFIG, use_vae: true } })).toThrow(/use_vae/);
  });
});

describe("SPADE generator training forward (cpu vs wasm)", () => {
  it("batch-2 generator gradients agree across backends (tfjs-cpu's nearest-resize gradient is wrong for N > 1)", async () => {
    const grads = async (backend: string) => {
      await tf.setBackend(backend);
      const g = SpadeGenerator.randomInit(CONFIG, 9);
      const s = [syntheticScene(1, 64), syntheticScene(2, 64)];
      const labels = new Int32Array(2 * 64 * 64);
      for (const [i, x] of s.entries()) labels.set(x.labels, i * 64 * 64);
      const { buildSemantics } = await import("../src/networks/spade/index.ts");
      const sem = buildSemantics(g.config, { data: labels, shape: [2, 64, 64] }, { data: labels, shape: [2, 64, 64] });
      const semT = tf.tensor4d(sem.data, sem.shape);
      const target = tf.randomNormal([2, 64, 64, 3], 0, 1, "float32", 4);
      const vars = g.trainableVariables();
      // Not a bias right before a batch-statistics BatchNorm: its true gradient is 0 and both backends give noise.
      const names = ["fc.weight", "head_0.conv_0.weight_orig", "up_0.norm_0.mlp_beta.weight", "up_3.conv_1.bias"];
      const { grads: gr } = tf.variableGrads(() => tf.mean(tf.mul(g.forward(semT, { training: true }), target)) as tf.Scalar, names.map((n) => vars.get(n)!));
      const out = names.map((n) => Array.from(gr[vars.get(n)!.name].dataSync()));
      tf.dispose([semT, target, ...Object.values(gr)]);
      g.dispose();
      return out;
    };
    try {
      const cpu = await grads("cpu");
      const wasm = await grads("wasm");
      cpu.forEach((a, j) => {
        const b = wasm[j];
        const scale = Math.max(...b.map(Math.abs));
        const err = Math.max(...a.map((v, i) => Math.abs(v - b[i])));
        expect(err / scale, `param ${j}`).toBeLessThan(1e-3);
      });
    } finally {
      await tf.setBackend("wasm");
    }
  });
});
