/**
 * StyleGAN2 trainer on a tiny generator (16x16, 8-32 channels) and a synthetic dataset of coloured squares:
 * D parity with the generator's conv layers, D shapes with conditioning, finite losses and moving weights, exact
 * resume, FreezeD, deterministic augmentation, and seconds per step on wasm and cpu (printed).
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StateDict } from "../src/checkpoints/tensor.ts";
import { enableTraining } from "../src/engine/gradients.ts";
import { ParamStore } from "../src/networks/common/param-store.ts";
import { setupFilter } from "../src/networks/common/upfirdn2d.ts";
import { DEFAULT_DISCRIMINATOR_CONFIG, DiscriminatorConv2dLayer, StyleGAN2Discriminator } from "../src/networks/stylegan2/discriminator.ts";
import { StyleGAN2Generator } from "../src/networks/stylegan2/generator.ts";
import { Conv2dLayer } from "../src/networks/stylegan2/layers.ts";
import { applyDiffAugment, sampleDiffAugment } from "../src/training/common/diffaugment.ts";
import { stepRng } from "../src/training/common/step-rng.ts";
import { createStyleGAN2Trainer, parseStyleGAN2Options } from "../src/training/stylegan2/index.ts";
import { GAN_LOSSES } from "../src/training/losses.ts";
import type { TrainImage, TrainerInit } from "../src/training/types.ts";

const RES = 16;
const config = {
  z_dim: 16,
  w_dim: 16,
  c_dim: 0,
  img_resolution: RES,
  img_channels: 3,
  mapping_kwargs: { num_layers: 2 },
  synthesis_kwargs: { channel_base: 128, channel_max: 32 },
};

/** Coloured squares on a dark background, 24x24 so the trainer has to resize. */
function squares(n: number): TrainImage[] {
  const s = 24;
  return Array.from({ length: n }, (_, i) => {
    const data = new Uint8Array(s * s * 3).fill(20);
    const colour = [(i * 97) % 256, (i * 57 + 80) % 256, (i * 31 + 160) % 256];
    const size = 6 + (i % 4) * 3;
    const ox = (i * 5) % (s - size);
    const oy = (i * 7) % (s - size);
    for (let y = oy; y < oy + size; y++) for (let x = ox; x < ox + size; x++) data.set(colour, (y * s + x) * 3);
    return { data, width: s, height: s };
  });
}

const timings: string[] = [];
let baseWeights: StateDict;
let condWeights: StateDict;

function init(options: Record<string, unknown> = {}, extra: Partial<TrainerInit> = {}): TrainerInit {
  return {
    config,
    weights: baseWeights,
    data: { family: "stylegan2", images: squares(12) },
    options: { steps: 10, batch_size: 4, learning_rate: 0.002, seed: 7, options },
    ...extra,
  };
}

function expectSameState(a: StateDict, b: StateDict, prefix: string): void {
  const keys = [...a.keys()].filter((k) => k.startsWith(prefix));
  expect(keys.length).toBeGreaterThan(0);
  for (const k of keys) {
    const x = a.get(k)!.data;
    const y = b.get(k)!.data;
    expect(y.length, k).toBe(x.length);
    let same = true;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) same = false;
    expect(same, `${k} differs`).toBe(true);
  }
}

function maxDiff(a: StateDict, b: StateDict, key: string): number {
  const x = a.get(key)!.data as Float32Array;
  const y = b.get(key)!.data as Float32Array;
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}

async function use(backend: string): Promise<void> {
  await tf.setBackend(backend);
  await tf.ready();
}

beforeAll(async () => {
  await use("wasm");
  enableTraining();
  const g = StyleGAN2Generator.randomInit(config, 1);
  baseWeights = g.stateDict();
  g.dispose();
  const gc = StyleGAN2Generator.randomInit({ ...config, c_dim: 3 }, 2);
  condWeights = gc.stateDict();
  gc.dispose();
});

afterAll(() => console.log(timings.join("\n")));

describe("StyleGAN2 discriminator", () => {
  it("its conv layers equal the generator's Conv2dLayer (upstream conv2d_resample) for 3x3/down2, 1x1/down2, 3x3", () => {
    for (const [k, down] of [[3, 2], [1, 2], [3, 1]] as const) {
      let i = 0;
      const src = (name: string, shape: readonly number[]) =>
        name.endsWith("resample_filter") ? setupFilter([1, 3, 3, 1]) : tf.randomNormal([...shape], 0, 1, "float32", 11 + i++);
      const a = new Conv2dLayer(new ParamStore(src), "c", 5, 6, k, { down, activation: "lrelu", resampleFilterShape: [4, 4] });
      i = 0;
      const b = new DiscriminatorConv2dLayer(new ParamStore(src), "c", 5, 6, k, { down, activation: "lrelu", taps: [1, 3, 3, 1] });
      const x = tf.randomNormal([2, 8, 8, 5], 0, 1, "float32", 3) as tf.Tensor4D;
      const ya = a.apply(x, Math.SQRT1_2);
      const yb = b.apply(x, Math.SQRT1_2);
      expect(yb.shape).toEqual(ya.shape);
      expect(tf.max(tf.abs(tf.sub(ya, yb))).dataSync()[0]).toBeLessThan(1e-5);
    }
  });

  it("has upstream's names and shapes, and projects with c_dim > 0", () => {
    const cfg = { ...DEFAULT_DISCRIMINATOR_CONFIG, c_dim: 3, img_resolution: RES, img_channels: 3, channel_base: 128, channel_max: 32 };
    const d = StyleGAN2Discriminator.randomInit(cfg, 3);
    const sd = d.stateDict();
    expect([...sd.keys()].slice(0, 5)).toEqual(["b16.resample_filter", "b16.fromrgb.weight", "b16.fromrgb.bias", "b16.fromrgb.resample_filter", "b16.conv0.weight"]);
    expect(sd.get("b16.fromrgb.weight")!.shape).toEqual([8, 3, 1, 1]);
    expect(sd.get("b16.conv1.weight")!.shape).toEqual([16, 8, 3, 3]);
    expect(sd.get("b8.skip.weight")!.shape).toEqual([32, 16, 1, 1]);
    expect(sd.get("mapping.embed.weight")!.shape).toEqual([32, 3]);
    expect(sd.has("mapping.fc7.weight")).toBe(true);
    expect(sd.get("b4.conv.weight")!.shape).toEqual([32, 33, 3, 3]); // + 1 minibatch-std channel
    expect(sd.get("b4.fc.weight")!.shape).toEqual([32, 32 * 16]);
    expect(sd.get("b4.out.weight")!.shape).toEqual([32, 32]); // cmap_dim = channels at 4x4
    const img = tf.randomNormal([6, RES, RES, 3]) as tf.Tensor4D; // 6: the mbstd group shrinks to 3
    const c = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2], "int32"), 3).toFloat() as tf.Tensor2D;
    expect(d.apply(img, c).shape).toEqual([6, 1]);
    expect(() => d.apply(img)).toThrow(/c_dim/);
    const round = StyleGAN2Discriminator.fromStateDict(cfg, sd);
    expect(maxDiff(round.stateDict(), sd, "b4.fc.weight")).toBe(0);
    d.dispose();
    round.dispose();
  });
});

describe("StyleGAN2 trainer (wasm)", () => {
  it("trains: finite losses, G moves away from the base, export and sample grid", async () => {
    await use("wasm");
    const t = createStyleGAN2Trainer(init());
    const t0 = performance.now();
    const steps = 3;
    for (let i = 0; i < steps; i++) {
      const r = await t.trainStep();
      expect(r.step).toBe(i + 1);
      for (const [name, v] of Object.entries(r.losses)) expect(Number.isFinite(v), `${name}=${v}`).toBe(true);
      if (i === 0) expect(Object.keys(r.losses)).toContain("loss/r1_penalty");
    }
    timings.push(`wasm: ${((performance.now() - t0) / steps / 1000).toFixed(3)} s/step (16x16, batch 4, incl. one R1 step of ${steps})`);
    expect(t.step).toBe(steps);
    const state = t.saveState();
    expect(maxDiff(state, new Map([...baseWeights].map(([k, v]) => [`G.${k}`, v])), "G.synthesis.b16.conv1.weight")).toBeGreaterThan(0);
    expect(state.get("step")!.data[0]).toBe(3n);
    for (const k of ["optG.m.mapping.fc0.weight", "optD.v.b16.conv0.weight", "D.b4.out.weight", "G_ema.mapping.w_avg"]) expect(state.has(k), k).toBe(true);
    expect(state.get("optD.m.b16.conv0.weight")!.shape).toEqual([8, 8, 3, 3]); // official OIHW like the weight
    const exp = t.exportGenerator();
    expect(exp.config).toBe(config);
    expect([...exp.weights.keys()]).toEqual([...baseWeights.keys()]);
    const grid = await t.sampleGrid();
    expect([grid.width, grid.height, grid.data.length]).toEqual([4 * RES, 2 * RES, 4 * RES * 2 * RES * 3]);
    expect(await t.sampleGrid()).toEqual(grid);
    t.dispose();
  });

  it("rejects unknown options and derives ada's auto defaults", () => {
    expect(() => createStyleGAN2Trainer(init({ r1_gama: 1 }))).toThrow(/r1_gama/);
    const o = parseStyleGAN2Options({}, { resolution: 256, batchSize: 4, learningRate: 0.002, datasetSize: 50 });
    expect(o.r1Gamma).toBeCloseTo((0.0002 * 256 * 256) / 4);
    expect(o.emaNimg).toBeCloseTo(1250);
    expect(o.augment).toBe(true);
    expect(parseStyleGAN2Options({ ema_steps: 100 }, { resolution: 256, batchSize: 4, learningRate: 0.002, datasetSize: 5000 })).toMatchObject({ emaNimg: 400, augment: false });
  });

  it("trains with every loss of options.loss, finite, WGAN-GP reporting its penalty", async () => {
    await use("wasm");
    for (const loss of GAN_LOSSES) {
      const t = createStyleGAN2Trainer(init({ loss, lr_d: 0.004, lr_g: 0.001, r1_interval: 2 }));
      for (let i = 0; i < 2; i++) {
        const { losses } = await t.trainStep();
        for (const [name, v] of Object.entries(losses)) expect(Number.isFinite(v), `${loss} ${name} = ${v}`).toBe(true);
        expect("loss/gradient_penalty" in losses, loss).toBe(loss === "wgan-gp");
        // R1 runs on even steps unless WGAN-GP's own penalty replaces it.
        expect("loss/r1_penalty" in losses, loss).toBe(loss !== "wgan-gp" && i % 2 === 0);
      }
      t.dispose();
    }
  });

  it("resumes bit-identically: 4 steps straight = 2 steps, save, load into a fresh trainer, 2 steps", async () => {
    await use("wasm");
    // R1 every 2 steps and a short EMA half-life so both happen on each side of the save.
    const options = { r1_interval: 2, ema_steps: 2 };
    const straight = createStyleGAN2Trainer(init(options));
    for (let i = 0; i < 4; i++) await straight.trainStep();
    const a = straight.saveState();
    straight.dispose();

    const first = createStyleGAN2Trainer(init(options));
    for (let i = 0; i < 2; i++) await first.trainStep();
    const mid = first.saveState();
    first.dispose();
    const second = createStyleGAN2Trainer(init(options));
    second.loadState(mid);
    expect(second.step).toBe(2);
    for (let i = 0; i < 2; i++) await second.trainStep();
    const b = second.saveState();
    second.dispose();

    expectSameState(a, b, "G_ema.");
    expectSameState(a, b, "G.");
    expectSameState(a, b, "D.");
    expectSameState(a, b, "optD.");
    expect(maxDiff(a, mid, "G_ema.synthesis.b8.conv0.weight")).toBeGreaterThan(0);
  });

  it("freeze_d keeps the top D block fixed while the rest trains", async () => {
    await use("wasm");
    const t = createStyleGAN2Trainer(init({ freeze_d: 1 }));
    const before = t.saveState();
    await t.trainStep();
    await t.trainStep();
    const after = t.saveState();
    t.dispose();
    for (const k of ["D.b16.fromrgb.weight", "D.b16.conv0.weight", "D.b16.conv1.bias", "D.b16.skip.weight"]) expect(maxDiff(before, after, k), k).toBe(0);
    for (const k of ["D.b8.conv0.weight", "D.b4.fc.weight"]) expect(maxDiff(before, after, k), k).toBeGreaterThan(0);
    expect([...after.keys()].some((k) => k.startsWith("optD.m.b16."))).toBe(false);
  });

  it("augmentation is a pure function of (seed, step, stream) and differentiable", async () => {
    await use("wasm");
    const p1 = sampleDiffAugment(stepRng(7, 5, "Dmain.real.augment"), 4, RES, RES, ["color", "translation", "cutout"]);
    const p2 = sampleDiffAugment(stepRng(7, 5, "Dmain.real.augment"), 4, RES, RES, ["color", "translation", "cutout"]);
    const p3 = sampleDiffAugment(stepRng(7, 6, "Dmain.real.augment"), 4, RES, RES, ["color", "translation", "cutout"]);
    expect(p2).toEqual(p1);
    expect(p3).not.toEqual(p1);
    const x = tf.randomNormal([4, RES, RES, 3], 0, 0.5, "float32", 9) as tf.Tensor4D;
    const y1 = applyDiffAugment(x, p1).dataSync();
    const y2 = applyDiffAugment(x, p2).dataSync();
    expect(Array.from(y2)).toEqual(Array.from(y1));
    // A pure shift moves pixels: out(y, x) = in(y + ty, x + tx).
    const shift = { n: 1, height: 4, width: 4, translation: { tx: Int32Array.of(1), ty: Int32Array.of(-1) } };
    const img = tf.tensor4d(Float32Array.from({ length: 16 }, (_, i) => i + 1), [1, 4, 4, 1]);
    expect(Array.from(applyDiffAugment(img, shift).dataSync())).toEqual([0, 0, 0, 0, 2, 3, 4, 0, 6, 7, 8, 0, 10, 11, 12, 0]);
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.square(applyDiffAugment(t as tf.Tensor4D, p1))))(x);
    expect(tf.sum(tf.abs(g)).dataSync()[0]).toBeGreaterThan(0);
    // Two trainers with one seed draw the same parameters for a step.
    const t1 = createStyleGAN2Trainer(init());
    const t2 = createStyleGAN2Trainer(init());
    expect((t2 as unknown as { augmentParams(k: number, s: string): unknown }).augmentParams(3, "Gmain.fake")).toEqual(
      (t1 as unknown as { augmentParams(k: number, s: string): unknown }).augmentParams(3, "Gmain.fake"),
    );
    t1.dispose();
    t2.dispose();
  });

  it("trains a class-conditional generator (labels → one-hot c, D projection)", async () => {
    await use("wasm");
    const images = squares(6);
    const t = createStyleGAN2Trainer(
      init({}, { config: { ...config, c_dim: 3 }, weights: condWeights, data: { family: "stylegan2", images, labels: [0, 1, 2, 0, 1, 2] } }),
    );
    const r = await t.trainStep();
    for (const v of Object.values(r.losses)) expect(Number.isFinite(v)).toBe(true);
    expect(t.saveState().has("D.mapping.embed.weight")).toBe(true);
    expect((await t.sampleGrid()).width).toBe(4 * RES);
    t.dispose();
  });
});

describe("StyleGAN2 trainer (cpu)", () => {
  // The cpu backend is plain JS (~20x slower than wasm here), so it gets one step at 8x8, the R1 step included.
  it("trains on cpu with finite losses, R1 included", async () => {
    await use("cpu");
    const config8 = { ...config, img_resolution: 8, synthesis_kwargs: { channel_base: 64, channel_max: 16 } };
    const g = StyleGAN2Generator.randomInit(config8, 4);
    const t = createStyleGAN2Trainer(init({}, { config: config8, weights: g.stateDict() }));
    g.dispose();
    const t0 = performance.now();
    const r = await t.trainStep();
    timings.push(`cpu: ${((performance.now() - t0) / 1000).toFixed(3)} s for the first step (8x8, batch 4, with R1)`);
    expect(Object.keys(r.losses)).toContain("loss/r1_penalty");
    for (const v of Object.values(r.losses)) expect(Number.isFinite(v)).toBe(true);
    t.dispose();
    await use("wasm");
  });
});
