import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StateDict } from "../src/checkpoints/tensor.ts";
import { enableTraining } from "../src/engine/gradients.ts";
import { CycleGANModel } from "../src/networks/cyclegan/index.ts";
import { NLayerDiscriminator } from "../src/networks/cyclegan/discriminator.ts";
import { ImagePool } from "../src/training/common/image-pool.ts";
import { stepRng } from "../src/training/common/step-rng.ts";
import { createCycleGANTrainer, type CycleGANTrainer } from "../src/training/cyclegan/index.ts";
import type { TrainerInit, TrainImage } from "../src/training/types.ts";

/** A filled shape on a background: A = warm discs on dark, B = cool squares on light. */
function shapeImage(domain: "A" | "B", i: number, size = 40): TrainImage {
  const data = new Uint8Array(size * size * 3);
  const cx = 10 + ((i * 7) % 20);
  const cy = 12 + ((i * 11) % 16);
  const r = 6 + (i % 5);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const inside = domain === "A" ? (x - cx) ** 2 + (y - cy) ** 2 <= r * r : Math.abs(x - cx) <= r && Math.abs(y - cy) <= r;
      const c = inside ? (domain === "A" ? [230, 60 + i * 20, 40] : [40, 90 + i * 15, 220]) : domain === "A" ? [20, 20, 30] : [225, 225, 210];
      data.set(c, (y * size + x) * 3);
    }
  return { data, width: size, height: size };
}

const combined = (d: { G_A: StateDict; G_B?: StateDict }, withB = true): StateDict => {
  const out: StateDict = new Map();
  for (const [k, v] of d.G_A) out.set(`netG_A.${k}`, v);
  if (withB && d.G_B) for (const [k, v] of d.G_B) out.set(`netG_B.${k}`, v);
  return out;
};

function makeInit(config: Record<string, unknown>, opts: Record<string, unknown> = {}, over: Partial<TrainerInit["options"]> = {}, withB = true): TrainerInit {
  const m = CycleGANModel.randomInit(config, 3);
  const weights = combined(m.stateDicts(), withB);
  m.dispose();
  return {
    config,
    weights,
    data: { family: "cyclegan", A: [0, 1, 2, 3].map((i) => shapeImage("A", i)), B: [0, 1, 2].map((i) => shapeImage("B", i, 36)) },
    options: { steps: 8, batch_size: 1, learning_rate: 2e-4, seed: 11, options: { ndf: 8, ...opts }, ...over },
  };
}

const RESNET = { netG: "resnet_6blocks", ngf: 4, crop_size: 32 };
const timings: string[] = [];

async function timedSteps(t: { trainStep(): Promise<{ losses: Record<string, number> }> }, n: number) {
  const losses: Record<string, number>[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) losses.push((await t.trainStep()).losses);
  return { losses, secondsPerStep: (performance.now() - t0) / 1000 / n };
}

const flat = (sd: StateDict) => new Map([...sd].map(([k, v]) => [k, Array.from(v.data as Float32Array)]));

beforeAll(async () => {
  await tf.setBackend("wasm");
  enableTraining();
});

afterAll(() => console.log(timings.join("\n")));

describe("PatchGAN (NLayerDiscriminator)", () => {
  it("uses the official names and the 70x70 receptive field", () => {
    const d = NLayerDiscriminator.randomInit({ inputNc: 3, ndf: 4, norm: "none" }, 1);
    const keys = [...d.stateDict().keys()];
    expect(keys).toEqual(["model.0.weight", "model.0.bias", "model.2.weight", "model.5.weight", "model.8.weight", "model.11.weight", "model.11.bias"]);
    const x = tf.randomNormal([1, 128, 128, 3], 0, 1, "float32", 2) as tf.Tensor4D;
    const out = d.forward(x);
    expect(out.shape).toEqual([1, d.outputSize(128), d.outputSize(128), 1]);
    expect(d.outputSize(256)).toBe(30);
    // Which input pixels one central output pixel depends on: the nonzero support of its gradient.
    const c = Math.floor(out.shape[1] / 2);
    const g = tf.grad((t: tf.Tensor) => tf.slice(d.forward(t as tf.Tensor4D), [0, c, c, 0], [1, 1, 1, 1]).sum())(x);
    const mag = tf.sum(tf.abs(g), [0, 3]).arraySync() as number[][];
    const rows = mag.map((r) => r.some((v) => v !== 0)).filter(Boolean).length;
    const cols = mag[0].map((_, j) => mag.some((r) => r[j] !== 0)).filter(Boolean).length;
    expect([rows, cols]).toEqual([70, 70]);
    tf.dispose([x, out, g]);
    d.dispose();
  });

  it("instance-norm D has biases on every conv (upstream use_bias) and loads its own state_dict", () => {
    const d = NLayerDiscriminator.randomInit({ inputNc: 3, ndf: 4 }, 1);
    const sd = d.stateDict();
    expect(sd.has("model.2.bias") && sd.has("model.8.bias")).toBe(true);
    const e = NLayerDiscriminator.fromStateDict({ inputNc: 3, ndf: 4 }, sd);
    const x = tf.randomNormal([2, 32, 32, 3], 0, 1, "float32", 4) as tf.Tensor4D;
    const [a, b] = [d.forward(x), e.forward(x)];
    expect(a.shape).toEqual([2, 2, 2, 1]);
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    tf.dispose([x, a, b]);
    d.dispose();
    e.dispose();
  });
});

describe("ImagePool", () => {
  it("fills, then swaps with probability 1/2, and round-trips through saveState", () => {
    const pool = new ImagePool(3, [1, 1, 2]);
    const img = (v: number) => Float32Array.of(v, v);
    for (let i = 0; i < 3; i++) expect(Array.from(pool.query(img(i), stepRng(1, i, "p")))).toEqual([i, i]);
    expect(pool.count).toBe(3);
    let swapped = 0;
    const seen = new Set<number>();
    for (let i = 3; i < 200; i++) {
      const out = pool.query(img(i), stepRng(1, i, "p"))[0];
      if (out !== i) {
        swapped++;
        expect(out).toBeLessThan(i);
        seen.add(out);
      }
    }
    expect(swapped).toBeGreaterThan(70);
    expect(swapped).toBeLessThan(130);
    const copy = new ImagePool(3, [1, 1, 2]);
    copy.loadState(pool.saveState("pool."), "pool.");
    for (let i = 200; i < 220; i++) expect(copy.query(img(i), stepRng(1, i, "p"))).toEqual(pool.query(img(i), stepRng(1, i, "p")));
    expect(new ImagePool(0, [1, 1, 2]).query(img(5), stepRng(1, 0, "p"))).toEqual(img(5));
  });
});

describe("CycleGAN trainer (wasm)", () => {
  it("resnet_6blocks ngf 4 at 32x32: finite losses, weights move, identity + cycle terms present", async () => {
    const init = makeInit(RESNET);
    const t = createCycleGANTrainer(init) as CycleGANTrainer;
    expect(t.step).toBe(0);
    const before = flat(t.exportGenerator().weights);
    const { losses, secondsPerStep } = await timedSteps(t, 3);
    timings.push(`cyclegan resnet_6blocks ngf4 ndf8 32x32 batch1 wasm: ${secondsPerStep.toFixed(3)} s/step`);
    for (const l of losses) {
      expect(Object.keys(l).sort()).toEqual(["D_A", "D_B", "G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B"]);
      for (const v of Object.values(l)) expect(Number.isFinite(v)).toBe(true);
    }
    expect(t.step).toBe(3);
    const after = flat(t.exportGenerator().weights);
    expect([...after.keys()]).toEqual([...before.keys()]);
    expect([...after.keys()].some((k) => k.startsWith("netG_B."))).toBe(true);
    let moved = 0;
    for (const [k, v] of after) if (v.some((x, i) => x !== before.get(k)![i])) moved++;
    expect(moved).toBe(after.size);
    // Every D parameter moved too, and the pools have filled from the 3 steps' fakes.
    expect(t.poolA.count).toBe(3);
    const { D_A } = t.discriminators();
    expect(D_A.forward(tf.zeros([1, 32, 32, 3])).shape).toEqual([1, 2, 2, 1]);

    const grid = await t.sampleGrid();
    // Rows: max(4 A samples, 3 B samples); a missing B cell is left black.
    expect([grid.width, grid.height]).toEqual([4 * 32, 4 * 32]);
    expect(grid.data.length).toBe(grid.width * grid.height * 3);
    // The exported weights load as a serving model.
    const served = CycleGANModel.fromStateDicts(init.config, t.exportGenerator().weights);
    expect(served.directions()).toEqual(["AtoB", "BtoA"]);
    served.dispose();
    t.dispose();
  });

  it("resumes bit-identically: 4 straight steps == 2 + saveState/loadState into a fresh trainer + 2", async () => {
    // pool_size 1 so pool swaps (and their saved state) matter from step 2 on; decay starts at 2 so the LR schedule does too.
    const opts = { pool_size: 1, decay_start: 2 };
    const straight = createCycleGANTrainer(makeInit(RESNET, opts, { steps: 4 }));
    const ls: number[] = [];
    for (let i = 0; i < 4; i++) ls.push((await straight.trainStep()).losses.D_A);
    const first = createCycleGANTrainer(makeInit(RESNET, opts, { steps: 4 }));
    await first.trainStep();
    await first.trainStep();
    const state = first.saveState();
    expect(state.has("pool_A.images") && state.has("pool_B.count") && state.has("step")).toBe(true);
    expect([...state.keys()].some((k) => k.startsWith("opt_G.G_A.") && k.endsWith(".m"))).toBe(true);
    expect([...state.keys()].some((k) => k.startsWith("D_B.model.0."))).toBe(true);
    first.dispose();
    const resumed = createCycleGANTrainer(makeInit(RESNET, opts, { steps: 4 }));
    resumed.loadState(state);
    expect(resumed.step).toBe(2);
    const rs: number[] = [];
    for (let i = 0; i < 2; i++) rs.push((await resumed.trainStep()).losses.D_A);
    expect(rs).toEqual(ls.slice(2));
    const a = flat(straight.exportGenerator().weights);
    const b = flat(resumed.exportGenerator().weights);
    for (const [k, v] of a) expect(b.get(k), k).toEqual(v);
    const sa = flat(straight.saveState());
    const sb = flat(resumed.saveState());
    for (const [k, v] of sa) expect(sb.get(k), k).toEqual(v);
    straight.dispose();
    resumed.dispose();
  });

  it("a base with only G_A gets a randomly initialised G_B and still exports both", async () => {
    const t = createCycleGANTrainer(makeInit(RESNET, {}, {}, false)) as CycleGANTrainer;
    expect(t.baseHadG_B).toBe(false);
    await t.trainStep();
    const keys = [...t.exportGenerator().weights.keys()];
    expect(keys.some((k) => k.startsWith("netG_B."))).toBe(true);
    t.dispose();
  });

  it("unet_128 ngf 2 at 128x128: one step", async () => {
    const init = makeInit({ netG: "unet_128", ngf: 2 }, { lambda_identity: 0 });
    init.data = { family: "cyclegan", A: [shapeImage("A", 1, 140)], B: [shapeImage("B", 2, 150)] };
    const t = createCycleGANTrainer(init);
    const { losses, secondsPerStep } = await timedSteps(t, 1);
    timings.push(`cyclegan unet_128 ngf2 ndf8 128x128 batch1 wasm: ${secondsPerStep.toFixed(3)} s/step`);
    expect(Object.keys(losses[0])).not.toContain("idt_A");
    for (const v of Object.values(losses[0])) expect(Number.isFinite(v)).toBe(true);
    t.dispose();
  });
});

describe("CycleGAN trainer (cpu)", () => {
  it("resnet_6blocks ngf 4 at 32x32: steps with finite losses", async () => {
    await tf.setBackend("cpu");
    try {
      const t = createCycleGANTrainer(makeInit(RESNET));
      const { losses, secondsPerStep } = await timedSteps(t, 1);
      timings.push(`cyclegan resnet_6blocks ngf4 ndf8 32x32 batch1 cpu: ${secondsPerStep.toFixed(3)} s/step`);
      for (const v of Object.values(losses[0])) expect(Number.isFinite(v)).toBe(true);
      t.dispose();
    } finally {
      await tf.setBackend("wasm");
    }
  });
});
