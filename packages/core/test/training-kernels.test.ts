import * as tf from "@tensorflow/tfjs-core";
// tfjs-core's Node bundle registers no gradients at all; vitest can load its ESM registration module.
import "@tensorflow/tfjs-core/dist/register_all_gradients.js";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import { beforeAll, describe, expect, test } from "vitest";
import { maxAbsDiff, probeCase, randomData } from "../src/engine/wasm-gradient-probe.ts";
import { concatChannels } from "../src/engine/concat-channels.ts";
import { powerIteration, spectralSigma, spectralWeight } from "../src/engine/spectral.ts";
import { registerSharedCopies } from "../src/engine/wasm-shared-copies.ts";

/** The tolerance every wasm-against-cpu gradient check uses (wasm-gradients.test.ts). */
const TOL = 1e-4;
type T4 = tf.Tensor4D;

/** HWIO weights of the spectral convs our networks use: SPADE's 3x3 and 1x1, the PatchGAN's 4x4. */
const SHAPES = [
  [3, 3, 5, 6],
  [1, 1, 7, 4],
  [4, 4, 4, 8],
];

const unit = (n: number) => ({ shape: [n] });

beforeAll(async () => {
  await tf.setBackend("wasm");
});

describe("engine/spectral.ts kernels on wasm against the tf-op form on cpu", () => {
  test.each(SHAPES)("weight_orig / sigma: forward and gradient, HWIO [%i, %i, %i, %i]", async (kh, kw, cin, cout) => {
    const r = await probeCase(
      {
        name: `spectralWeight ${kh}x${kw}x${cin}x${cout}`,
        diff: [{ shape: [kh, kw, cin, cout] }],
        fixed: [unit(cout), unit(cin * kh * kw)],
        fn: ([w], [u, v]) => spectralWeight(w as T4, u, v),
        // The op form with autograd's gradient: what the fused node replaces, on both backends.
        reference: ([w], [u, v]) => tf.div(w, spectralSigma(w, u, v)),
      },
      "wasm",
      TOL,
    );
    expect(r.error).toBeUndefined();
    expect(r.forwardDiff).toBeLessThanOrEqual(TOL);
    expect(r.gradDiff).toBeLessThanOrEqual(TOL);
    expect(r.referenceDiff).toBeLessThanOrEqual(TOL);
  });

  test.each(SHAPES)("a training forward without a tape: the sigma kernel, same weight, HWIO [%i, %i, %i, %i]", async (kh, kw, cin, cout) => {
    const data = [[kh, kw, cin, cout], [cout], [cin * kh * kw]].map((shape, i) => tf.randomNormal(shape, 0, 1, "float32", 10 + i));
    const [w, u, v] = data as [T4, tf.Tensor, tf.Tensor];
    const eval_ = spectralWeight(w, u, v).dataSync();
    const info = await tf.profile(() => tf.dispose(spectralWeight(w, u, v, true)));
    expect(info.kernels.map((k) => k.name)).toEqual(["GanserveSpectralSigma", "RealDiv"]);
    const training = spectralWeight(w, u, v, true).dataSync();
    expect(maxAbsDiff(training, eval_)).toBeLessThanOrEqual(TOL);
    tf.dispose(data);
  });

  test("on wasm under a tape the weight is one node: its backward is one kernel, no transpose", async () => {
    const w = tf.variable(tf.randomNormal([3, 3, 5, 6], 0, 1, "float32", 1)) as tf.Variable<tf.Rank.R4>;
    const u = tf.randomNormal([6], 0, 1, "float32", 2);
    const v = tf.randomNormal([45], 0, 1, "float32", 3);
    const info = await tf.profile(() => {
      const { value, grads } = tf.variableGrads(() => tf.sum(spectralWeight(w, u, v)) as tf.Scalar, [w]);
      tf.dispose([value, grads[w.name]]);
    });
    const names = info.kernels.map((k) => k.name);
    expect(names).toContain("GanserveSpectralSigma");
    expect(names).toContain("GanserveSpectralWeightGrad");
    expect(names).not.toContain("Transpose");
    tf.dispose([w, u, v]);
  });

  test.each(SHAPES)("power iteration, 1 and 3 steps, HWIO [%i, %i, %i, %i]", async (kh, kw, cin, cout) => {
    let seed = kh * 1000 + cin * 10 + cout;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const data = [randomData({ shape: [kh, kw, cin, cout] }, rand), randomData(unit(cout), rand), randomData(unit(cin * kh * kw), rand)] as Float32Array[];
    for (const steps of [1, 3]) {
      const run = () =>
        tf.tidy(() => {
          const [w, u, v] = [
            tf.tensor4d(data[0], [kh, kw, cin, cout]),
            tf.tensor1d(data[1]),
            tf.tensor1d(data[2]),
          ];
          const [u1, v1] = powerIteration(w, u, v, steps);
          return [u1.dataSync().slice(), v1.dataSync().slice(), spectralSigma(w, u1, v1).dataSync()[0]] as const;
        });
      await tf.setBackend("cpu");
      const [uc, vc, sc] = run();
      await tf.setBackend("wasm");
      const [uw, vw, sw] = run();
      expect(maxAbsDiff(uw, uc), `u, ${steps} steps`).toBeLessThanOrEqual(TOL);
      expect(maxAbsDiff(vw, vc), `v, ${steps} steps`).toBeLessThanOrEqual(TOL);
      expect(Math.abs(sw - sc), `sigma, ${steps} steps`).toBeLessThanOrEqual(TOL);
      // A real power-iteration step: unit u and v, and sigma = ‖W v‖ once u = W v / ‖W v‖.
      expect(Math.hypot(...uw)).toBeCloseTo(1, 5);
      expect(Math.hypot(...vw)).toBeCloseTo(1, 5);
    }
  });
});

describe("engine/concat-channels.ts on wasm against tf.concat on cpu", () => {
  test.each([
    [[2, 5, 6, 8], [2, 5, 6, 3]],
    [[4, 3, 3, 1], [4, 3, 3, 2], [4, 3, 3, 5]],
    [[3, 7], [3, 2]],
  ])("concat and its gradient, shapes %j %j %j", async (...shapes) => {
    const r = await probeCase(
      {
        name: `concatChannels ${JSON.stringify(shapes)}`,
        diff: shapes.map((shape) => ({ shape })),
        fn: (xs) => concatChannels(xs),
        reference: (xs) => tf.concat(xs, -1),
      },
      "wasm",
      TOL,
    );
    expect(r.error).toBeUndefined();
    // Element copies: exact, forward and backward.
    expect(r.forwardDiff).toBe(0);
    expect(r.gradDiff).toBe(0);
    expect(r.referenceDiff).toBe(0);
  });
});

describe("engine/wasm-shared-copies.ts", () => {
  test("Identity and same-dtype Cast share the data on wasm; other casts still convert", () => {
    registerSharedCopies();
    expect(registerSharedCopies()).toEqual([]);
    const x = tf.tensor([1.5, -2, 3], [3]);
    const buffers = tf.memory().numDataBuffers;
    const copies = [tf.clone(x), tf.cast(x, "float32")];
    // Another reference to the same data: no new buffer, and the data outlives the original.
    expect(tf.memory().numDataBuffers).toBe(buffers);
    x.dispose();
    for (const c of copies) expect(Array.from(c.dataSync())).toEqual([1.5, -2, 3]);
    const i = tf.cast(copies[0], "int32");
    expect(i.dtype).toBe("int32");
    expect(Array.from(i.dataSync())).toEqual([1, -2, 3]);
    tf.dispose([...copies, i]);
  });

  test("Slice reads in place and takes the same window as a naive index walk, every rank and dtype", () => {
    registerSharedCopies();
    const shape = [3, 4, 5, 6, 2];
    const cases: Array<[number[], number[]]> = [
      [[1], [2]],
      [[1, 0], [2, -1]],
      [[0, 1, 2], [3, 2, 3]],
      [[2, 0, 0, 0], [1, -1, -1, -1]], // contiguous: one image of a batch, as the trainers' data loaders take it
      [[1, 1, 2, 1], [2, 3, 2, 4]], // a crop window
      [[0, 1, 0, 2, 1], [3, 2, 5, 3, 1]],
      [[1, 0, 0], [0, 4, 5]], // empty
    ];
    for (const [begin, size] of cases) {
      const xs = shape.slice(0, begin.length);
      const n = xs.reduce((a, b) => a * b, 1);
      for (const dtype of ["float32", "int32", "bool"] as const) {
        const x = tf.tensor(Array.from({ length: n }, (_, i) => (dtype === "bool" ? Number(i % 3 === 0) : i * 0.5 - 7)), xs, dtype);
        const got = tf.slice(x, begin, size);
        const real = size.map((s, d) => (s === -1 ? xs[d] - begin[d] : s));
        const src = x.bufferSync();
        const want = tf.buffer(real, dtype);
        for (let i = 0; i < want.size; i++) {
          const idx = want.indexToLoc(i);
          want.set(src.get(...idx.map((v, d) => v + begin[d])), ...idx);
        }
        expect(got.shape, `${begin} ${size}`).toEqual(real);
        expect(Array.from(got.dataSync()), `${dtype} ${begin} ${size}`).toEqual(Array.from(want.values));
        tf.dispose([x, got]);
      }
    }
  });

  test("gradients through clones and casts are unchanged", async () => {
    const r = await probeCase(
      {
        name: "clone/cast chain",
        diff: [{ shape: [2, 3, 4] }],
        fn: ([x]) => tf.mul(tf.cast(tf.clone(x), "float32"), tf.clone(x)),
        reference: ([x]) => tf.square(x),
      },
      "wasm",
      TOL,
    );
    expect(r.error).toBeUndefined();
    expect(r.forwardDiff).toBe(0);
    expect(r.gradDiff).toBe(0);
    expect(r.referenceDiff).toBe(0);
  });
});
