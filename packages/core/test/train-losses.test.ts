/**
 * Each GAN loss against its formula, evaluated here in float64 on fixed logits, and the per-family rules that
 * refuse combinations a family cannot train.
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { beforeAll, describe, expect, it } from "vitest";
import { enableTraining } from "../src/engine/gradients.ts";
import { TrainerOptionError } from "../src/training/common/options.ts";
import { averaged, discriminatorLoss, GAN_LOSSES, type GanLoss, generatorLoss, parseLossOptions, wganGradientPenalty } from "../src/training/losses.ts";

const REAL = [2.0, -1.5, 0.3, 4.0, 0.0, -0.7, 1.1, 3.3];
const FAKE = [-3.0, 0.5, 1.2, -0.1, 2.2, -4.5, 0.05, -0.9];
const softplus = (x: number) => Math.log1p(Math.exp(x));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const relu = (x: number) => Math.max(0, x);

/** The formulas of losses.ts's header, one number per term. */
const FORMULAS: Record<GanLoss, { dReal: number; dFake: number; g: number }> = {
  bce: { dReal: mean(REAL.map((r) => softplus(-r))), dFake: mean(FAKE.map(softplus)), g: mean(FAKE.map((f) => Math.log(1 - 1 / (1 + Math.exp(-f))))) },
  nonsaturating: { dReal: mean(REAL.map((r) => softplus(-r))), dFake: mean(FAKE.map(softplus)), g: mean(FAKE.map((f) => -Math.log(1 / (1 + Math.exp(-f))))) },
  lsgan: { dReal: 0.5 * mean(REAL.map((r) => (r - 1) ** 2)), dFake: 0.5 * mean(FAKE.map((f) => f * f)), g: mean(FAKE.map((f) => (f - 1) ** 2)) },
  hinge: { dReal: mean(REAL.map((r) => relu(1 - r))), dFake: mean(FAKE.map((f) => relu(1 + f))), g: -mean(FAKE) },
  "wgan-gp": { dReal: -mean(REAL), dFake: mean(FAKE), g: -mean(FAKE) },
};

describe("GAN losses on fixed logits", () => {
  for (const loss of GAN_LOSSES) {
    it(`${loss} matches its formula, on vectors and on PatchGAN maps alike`, () => {
      for (const shape of [[8], [2, 2, 2, 1]]) {
        const r = tf.tensor(REAL, shape);
        const f = tf.tensor(FAKE, shape);
        const d = discriminatorLoss(loss, r, f);
        const g = generatorLoss(loss, f);
        expect(d.real.dataSync()[0]).toBeCloseTo(FORMULAS[loss].dReal, 5);
        expect(d.fake.dataSync()[0]).toBeCloseTo(FORMULAS[loss].dFake, 5);
        expect(g.dataSync()[0]).toBeCloseTo(FORMULAS[loss].g, 5);
        tf.dispose([r, f, d.real, d.fake, g]);
      }
    });
  }

  it("bce's G is minimax (log(1 - D)), nonsaturating's is -log D: they differ where D rejects the fake", () => {
    expect(FORMULAS.bce.g).not.toBeCloseTo(FORMULAS.nonsaturating.g, 2);
  });

  it("averages over a multiscale D's outputs", () => {
    const a = discriminatorLoss("hinge", tf.tensor(REAL.slice(0, 4)), tf.tensor(FAKE.slice(0, 4)));
    const b = discriminatorLoss("hinge", tf.tensor(REAL.slice(4)), tf.tensor(FAKE.slice(4)));
    const both = averaged([a, b]);
    const half = (xs: number[], f: (x: number) => number) => (mean(xs.slice(0, 4).map(f)) + mean(xs.slice(4).map(f))) / 2;
    expect(both.real.dataSync()[0]).toBeCloseTo(half(REAL, (r) => relu(1 - r)), 5);
    expect(both.fake.dataSync()[0]).toBeCloseTo(half(FAKE, (f) => relu(1 + f)), 5);
  });
});

describe("WGAN-GP gradient penalty", () => {
  beforeAll(() => enableTraining());
  const real = tf.tensor4d([0.5, -1, 2, 0.25, 1, 1, -0.5, 0], [2, 2, 2, 1]);
  const fake = tf.tensor4d([-0.5, 0, 1, 0.75, 0, 2, 0.5, -1], [2, 2, 2, 1]);
  const alpha = tf.tensor4d([0.3, 0.8], [2, 1, 1, 1]);

  it("is (‖w‖ - 1)² for a linear critic D(x) = Σ w·x, and its w-gradient is second order", () => {
    const wv = [0.1, -0.4, 0.8, 0.3];
    const w = tf.variable(tf.tensor4d(wv, [1, 2, 2, 1]));
    const norm = Math.sqrt(wv.reduce((a, b) => a + b * b, 0));
    const { value, grads } = tf.variableGrads(() => wganGradientPenalty((x) => tf.sum(tf.mul(x, w), [1, 2, 3]), real, fake, alpha), [w]);
    expect(value.dataSync()[0]).toBeCloseTo((norm - 1) ** 2, 5);
    // d/dw (‖w‖ - 1)² = 2 (‖w‖ - 1) w / ‖w‖
    const got = [...grads[w.name].dataSync()];
    for (const [i, x] of wv.entries()) expect(got[i]).toBeCloseTo((2 * (norm - 1) * x) / norm, 5);
  });

  it("is the mean of (‖x̂‖ - 1)² for D(x) = ½‖x‖², at x̂ = α real + (1 - α) fake", () => {
    const r = real.arraySync().map((s) => s.flat(2));
    const f = fake.arraySync().map((s) => s.flat(2));
    const a = [0.3, 0.8];
    const per = r.map((rs, n) => (Math.sqrt(rs.reduce((acc, x, i) => acc + (a[n] * x + (1 - a[n]) * f[n][i]) ** 2, 0)) - 1) ** 2);
    const gp = wganGradientPenalty((x) => tf.mul(tf.sum(tf.square(x), [1, 2, 3]), 0.5), real, fake, alpha);
    expect(gp.dataSync()[0]).toBeCloseTo(mean(per), 5);
  });
});

describe("loss options per family", () => {
  it("defaults to each family's upstream loss", () => {
    expect(parseLossOptions("stylegan2", {}, { r1Default: 2 })).toEqual({ loss: "nonsaturating", r1Gamma: 2, gpLambda: 10, lrD: undefined, lrG: undefined });
    expect(parseLossOptions("cyclegan", {}).loss).toBe("lsgan");
    expect(parseLossOptions("spade", {}).loss).toBe("hinge");
  });

  it("takes TTUR learning rates and every loss StyleGAN2's twice-differentiable D allows", () => {
    for (const loss of GAN_LOSSES) expect(parseLossOptions("stylegan2", { loss, lr_d: 0.004, lr_g: 0.001 })).toMatchObject({ loss, lrD: 0.004, lrG: 0.001 });
    expect(parseLossOptions("stylegan2", { loss: "wgan-gp" }, { r1Default: 2 }).r1Gamma).toBe(0);
  });

  const refused: [string, Parameters<typeof parseLossOptions>, RegExp][] = [
    ["wgan-gp on CycleGAN's D", ["cyclegan", { loss: "wgan-gp" }], /wgan-gp is not available for cyclegan: .*second derivative/],
    ["R1 on SPADE's D", ["spade", { r1_gamma: 1 }], /r1_gamma is not available for spade/],
    ["R1 on top of WGAN-GP", ["stylegan2", { loss: "wgan-gp", r1_gamma: 1 }], /already has its own gradient penalty/],
    ["hinge on a Sigmoid D", ["stylegan2", { loss: "hinge" }, { dHasSigmoid: true }], /ends in Sigmoid/],
    ["WGAN-GP on a BatchNorm D", ["stylegan2", { loss: "wgan-gp" }, { dHasBatchNorm: true }], /BatchNorm/],
    ["gp_lambda without wgan-gp", ["stylegan2", { loss: "hinge", gp_lambda: 5 }], /gp_lambda only applies to loss wgan-gp/],
    ["an unknown loss", ["cyclegan", { loss: "wasserstein" }], /loss/],
    ["a negative learning rate", ["spade", { lr_d: -1 }], /lr_d/],
  ];
  for (const [what, args, message] of refused)
    it(`refuses ${what}`, () => {
      expect(() => parseLossOptions(...args)).toThrow(TrainerOptionError);
      expect(() => parseLossOptions(...args)).toThrow(message);
    });

  it("lets a Sigmoid D train with the BCE losses (through its logits)", () => {
    expect(parseLossOptions("stylegan2", { loss: "bce" }, { dHasSigmoid: true }).loss).toBe("bce");
  });
});
