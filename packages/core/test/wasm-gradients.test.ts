import * as tf from "@tensorflow/tfjs-core";
// tfjs-core's Node bundle registers no gradients at all; vitest can load its ESM registration module.
import "@tensorflow/tfjs-core/dist/register_all_gradients.js";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { registerWasmGradientKernels } from "../src/engine/wasm-gradients.ts";
import {
  GAN_GRADIENT_CASES,
  type GradCase,
  maxAbsDiff,
  probeCase,
  probeWasmGradients,
  randomData,
  reflectPadReference,
} from "../src/engine/wasm-gradient-probe.ts";

const TOL = 1e-4;
type T4 = tf.Tensor4D;
const f32 = (...shape: number[]) => ({ shape });

function rand(shape: number[], seed: number): Float32Array {
  let a = seed;
  return randomData({ shape }, () => {
    a = (a * 1103515245 + 12345) % 2147483648;
    return a / 2147483648;
  }) as Float32Array;
}

/** Every diff measured here, printed at the end so the numbers are in the log, not just pass/fail. */
const measured: Array<[string, number]> = [];

async function expectMatches(cases: GradCase[]): Promise<void> {
  for (const c of cases) {
    const r = await probeCase(c, "wasm", TOL);
    measured.push([c.name, Math.max(r.gradDiff, r.referenceDiff ?? 0)]);
    expect(r.error, c.name).toBeUndefined();
    expect(r.gradDiff, c.name).toBeLessThanOrEqual(TOL);
    if (r.referenceDiff !== undefined) expect(r.referenceDiff, c.name).toBeLessThanOrEqual(TOL);
  }
}

const strides = [1, 2];
const pads = ["same", "valid"] as const;
const channels = [1, 3, 8];

let firstRegistration: ReturnType<typeof registerWasmGradientKernels>;

beforeAll(async () => {
  await tf.setBackend("wasm");
  firstRegistration = registerWasmGradientKernels();
});

afterAll(() => {
  const width = Math.max(...measured.map(([n]) => n.length));
  console.log(measured.map(([n, d]) => `${n.padEnd(width)}  max|wasm-cpu| ${d.toExponential(2)}`).join("\n"));
});

describe("registerWasmGradientKernels", () => {
  test("registers what wasm lacks, wraps its slow Conv2DBackpropInput, and only once", () => {
    expect(firstRegistration.kernels.sort()).toEqual(
      ["Conv2DBackpropFilter", "Conv2DBackpropInput", "DepthwiseConv2dNativeBackpropFilter", "DepthwiseConv2dNativeBackpropInput", "GanserveCol2Im", "GanserveFlipFilter", "GanserveIm2ColT", "GanserveMirrorPadGrad", "UnsortedSegmentSum"].sort(),
    );
    expect(firstRegistration.gradients).toContain("MirrorPad");
    expect(firstRegistration.gradients).toContain("DepthToSpace");
    // Conv2D already has a wasm kernel and an upstream gradient: untouched.
    expect(firstRegistration.kernels).not.toContain("Conv2D");
    expect(registerWasmGradientKernels()).toEqual({ kernels: [], gradients: [] });
  });

  test("Conv2DBackpropFilter (conv2d filter grad): strides, pads, odd sizes, channels 1/3/8", async () => {
    const cases: GradCase[] = [];
    for (const s of strides)
      for (const pad of pads)
        for (const cin of channels)
          for (const k of [3, 4])
            cases.push({
              name: `conv2d k${k} s${s} ${pad} cin${cin}`,
              diff: [f32(2, 7, 9, cin), f32(k, k, cin, 5)],
              fn: ([x, f]) => tf.conv2d(x as T4, f as T4, s, pad),
            });
    // Stride 1 with 4+ output channels takes the matMul form (the grid above, cout 5): also asymmetric explicit pads.
    cases.push({ name: "conv2d explicit pad s1", diff: [f32(2, 7, 6, 3), f32(3, 3, 3, 6)], fn: ([x, f]) => tf.conv2d(x as T4, f as T4, 1, [[0, 0], [2, 0], [0, 1], [0, 0]]) });
    cases.push({ name: "conv2d explicit pad", diff: [f32(1, 7, 6, 3), f32(3, 3, 3, 4)], fn: ([x, f]) => tf.conv2d(x as T4, f as T4, 2, [[0, 0], [1, 2], [2, 0], [0, 0]]) });
    cases.push({ name: "conv2d k1 batch3", diff: [f32(3, 5, 5, 8), f32(1, 1, 8, 8)], fn: ([x, f]) => tf.conv2d(x as T4, f as T4, 1, "valid") });
    await expectMatches(cases);
  });

  test("Conv2DBackpropFilter with NCHW data format, called as a kernel", async () => {
    const xData = rand([2, 3, 7, 7], 1);
    const dyData = rand([2, 4, 4, 4], 2);
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      return tf.tidy(() =>
        (tf.engine().runKernel("Conv2DBackpropFilter", { x: tf.tensor(xData, [2, 3, 7, 7]), dy: tf.tensor(dyData, [2, 4, 4, 4]) }, {
          strides: [2, 2], pad: "same", dataFormat: "NCHW", filterShape: [3, 3, 3, 4],
        } as unknown as tf.NamedAttrMap) as tf.Tensor).dataSync(),
      );
    };
    const diff = maxAbsDiff(await run("cpu"), await run("wasm"));
    measured.push(["Conv2DBackpropFilter NCHW kernel", diff]);
    expect(diff).toBeLessThanOrEqual(TOL);
  });

  test("Conv2DBackpropFilter whose im2col is built a few filter rows at a time (over 2^24 floats)", async () => {
    // 5×5, 32 channels, 128×128, batch 2: cols would be 27M floats, so the kernel splits it at filter row 3.
    const [n, s, cin, cout, k] = [2, 128, 32, 4, 5];
    const xData = rand([n, s, s, cin], 3);
    const dyData = rand([n, s, s, cout], 4);
    await tf.setBackend("wasm");
    let got: ArrayLike<number> = [];
    const profile = await tf.profile(() => {
      got = tf.tidy(() =>
        (tf.engine().runKernel("Conv2DBackpropFilter", { x: tf.tensor(xData, [n, s, s, cin]), dy: tf.tensor(dyData, [n, s, s, cout]) }, {
          strides: 1, pad: "same", dataFormat: "NHWC", filterShape: [k, k, cin, cout],
        } as unknown as tf.NamedAttrMap) as tf.Tensor).dataSync(),
      );
    });
    // The split happened: one im2col and one product per chunk.
    expect(profile.kernels.filter((e) => e.name === "GanserveIm2ColT").length).toBe(2);
    expect(profile.kernels.filter((e) => e.name === "BatchMatMul").length).toBe(2);
    // Reference in float64 (the cpu backend's float32 sums over 32K products drift more than wasm's).
    const want = new Float64Array(k * k * cin * cout);
    const half = (k - 1) / 2;
    for (let b = 0; b < n; b++)
      for (let p = 0; p < s; p++)
        for (let q = 0; q < s; q++)
          for (let i = 0; i < k; i++) {
            const y = p + i - half;
            if (y < 0 || y >= s) continue;
            for (let j = 0; j < k; j++) {
              const x = q + j - half;
              if (x < 0 || x >= s) continue;
              const xo = ((b * s + y) * s + x) * cin;
              const dyo = ((b * s + p) * s + q) * cout;
              const wo = (i * k + j) * cin * cout;
              for (let c = 0; c < cin; c++) for (let o = 0; o < cout; o++) want[wo + c * cout + o] += xData[xo + c] * dyData[dyo + o];
            }
          }
    const scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const rel = maxAbsDiff(got, want) / scale;
    measured.push(["Conv2DBackpropFilter in row chunks (relative to float64)", rel]);
    // A misplaced chunk is off by O(1). Rounding is bounded by float32 recursive summation of the K products per
    // output, all positive here: (K − 1)·2^-24 of the largest output (measured: 7e-6, the bound 2e-3).
    expect(rel).toBeLessThanOrEqual(n * s * (s + k - 1) * 2 ** -24);
  });

  test("Conv2DBackpropFilter (conv2dTranspose filter grad) and the transpose's input grad", async () => {
    const cases: GradCase[] = [];
    for (const s of strides)
      for (const pad of pads)
        for (const c of channels) {
          const [h, w, k] = [5, 3, 4];
          const out = pad === "same" ? [h * s, w * s] : [(h - 1) * s + k, (w - 1) * s + k];
          cases.push({
            name: `conv2dTranspose k${k} s${s} ${pad} c${c}`,
            diff: [f32(2, h, w, c), f32(k, k, 3, c)],
            fn: ([x, f]) => tf.conv2dTranspose(x as T4, f as T4, [2, out[0], out[1], 3], s, pad),
          });
        }
    await expectMatches(cases);
  });

  test("strided Conv2DBackpropInput runs as one GEMM and a col2im, matching cpu", async () => {
    // SPADE's discriminator layer: 4×4, stride 2, pad 2 (its values are checked by the grids above; this pins the form).
    const dyData = rand([2, 5, 5, 6], 5);
    const fData = rand([4, 4, 3, 6], 6);
    const attrs = { strides: [2, 2], pad: 2, dataFormat: "NHWC", inputShape: [2, 8, 8, 3] } as unknown as tf.NamedAttrMap;
    const run = () => tf.tidy(() => (tf.engine().runKernel("Conv2DBackpropInput", { dy: tf.tensor(dyData, [2, 5, 5, 6]), filter: tf.tensor(fData, [4, 4, 3, 6]) }, attrs) as tf.Tensor).dataSync());
    await tf.setBackend("cpu");
    const want = run();
    await tf.setBackend("wasm");
    let got: ArrayLike<number> = [];
    const profile = await tf.profile(() => {
      got = run();
    });
    expect(profile.kernels.map((e) => e.name)).toEqual(expect.arrayContaining(["BatchMatMul", "GanserveCol2Im"]));
    const diff = maxAbsDiff(got, want);
    measured.push(["Conv2DBackpropInput s2 kernel", diff]);
    expect(diff).toBeLessThanOrEqual(TOL);
  });

  test("DepthwiseConv2dNativeBackpropInput/Filter: strides, pads, multipliers, channels 1/3/8", async () => {
    const cases: GradCase[] = [];
    for (const s of strides)
      for (const pad of pads)
        for (const c of channels)
          for (const mult of [1, 2])
            cases.push({
              name: `depthwise k4 s${s} ${pad} c${c} x${mult}`,
              diff: [f32(2, 9, 7, c), f32(4, 4, c, mult)],
              fn: ([x, f]) => tf.depthwiseConv2d(x as T4, f as T4, s, pad),
            });
    await expectMatches(cases);
  });

  test("UnsortedSegmentSum directly and through the gather gradient", async () => {
    await expectMatches([
      { name: "unsortedSegmentSum 1d ids", diff: [f32(9, 3)], fixed: [{ shape: [9], dtype: "int32", maxInt: 5 }], fn: ([x], [i]) => tf.unsortedSegmentSum(x, i as tf.Tensor1D, 5) },
      { name: "unsortedSegmentSum empty segments", diff: [f32(4, 3, 2)], fixed: [{ shape: [4], dtype: "int32", maxInt: 3 }], fn: ([x], [i]) => tf.unsortedSegmentSum(x, i as tf.Tensor1D, 7) },
      { name: "gather axis0 repeated idx", diff: [f32(5, 8)], fixed: [{ shape: [12], dtype: "int32", maxInt: 5 }], fn: ([x], [i]) => tf.gather(x, i) },
      { name: "gather axis2", diff: [f32(2, 3, 6)], fixed: [{ shape: [4], dtype: "int32", maxInt: 6 }], fn: ([x], [i]) => tf.gather(x, i, 2) },
    ]);
    // TF drops out-of-range segment ids; ScatterNd on wasm must never see them.
    await tf.setBackend("wasm");
    const out = tf.tidy(() => tf.unsortedSegmentSum(tf.tensor2d([[1], [2], [4], [8]]), tf.tensor1d([0, -1, 3, 1], "int32"), 2).dataSync());
    expect(Array.from(out)).toEqual([1, 8]);
  });

  test("gradients tfjs lacks or gets wrong: MirrorPad, DepthToSpace, GatherNd, comparisons", async () => {
    await expectMatches([
      { name: "mirrorPad reflect asym", diff: [f32(2, 6, 5, 3)], fn: ([x]) => tf.mirrorPad(x, [[0, 0], [3, 3], [3, 3], [0, 0]], "reflect"), reference: ([x]) => reflectPadReference(x as T4, 3) },
      {
        // Second order: wasm's one-kernel MirrorPad gradient differentiated again (its gradient is the pad).
        name: "mirrorPad gradient of gradient",
        diff: [f32(1, 8, 7, 2)],
        fixed: [f32(1, 4, 3, 2)],
        fn: ([w], [x]) => tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.mirrorPad(v, [[0, 0], [2, 2], [2, 2], [0, 0]], "reflect"), w)))(x),
        reference: ([w], [x]) => tf.grad((v: tf.Tensor) => tf.sum(tf.mul(reflectPadReference(v as T4, 2), w)))(x),
      },
      { name: "depthToSpace b2 NHWC", diff: [f32(2, 3, 5, 12)], fn: ([x]) => tf.depthToSpace(x as T4, 2) },
      { name: "gatherND", diff: [f32(4, 5, 3)], fixed: [{ shape: [7, 2], dtype: "int32", maxInt: 4 }], fn: ([x], [i]) => tf.gatherND(x, i) },
      { name: "where(greater)", diff: [f32(4, 5), f32(4, 5)], fn: ([a, b]) => tf.where(tf.greater(a, b), tf.mul(a, 3), tf.mul(tf.cast(tf.less(a, 0), "float32"), b)) },
    ]);
  });

  test("end to end: mirrorPad → conv s2 → leakyRelu → conv transpose → tanh, variableGrads match cpu", async () => {
    const shapes = { w1: [3, 3, 3, 8], b1: [8], w2: [4, 4, 3, 8], b2: [3] };
    const xData = rand([2, 8, 8, 3], 7);
    const init = Object.fromEntries(Object.entries(shapes).map(([k, s], i) => [k, rand(s, 11 + i)]));
    const grads = async (backend: string) => {
      await tf.setBackend(backend);
      const vars = Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, tf.variable(tf.tensor(init[k], s), true, `${k}_${backend}`)]));
      const x = tf.tensor4d(xData, [2, 8, 8, 3]);
      const target = tf.tensor4d(rand([2, 8, 8, 3], 99), [2, 8, 8, 3]);
      const before = tf.memory().numTensors;
      const { value, grads: g } = tf.variableGrads(() => {
        const p = tf.mirrorPad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], "reflect") as T4;
        const h = tf.leakyRelu(tf.add(tf.conv2d(p, vars.w1 as tf.Variable<tf.Rank.R4>, 2, "valid"), vars.b1), 0.2);
        const y = tf.tanh(tf.add(tf.conv2dTranspose(h as T4, vars.w2 as tf.Variable<tf.Rank.R4>, [2, 8, 8, 3], 2, "same"), vars.b2));
        return tf.mean(tf.square(tf.sub(y, target)));
      });
      const out = Object.fromEntries(Object.entries(g).map(([k, t]) => [k.replace(`_${backend}`, ""), t.dataSync()]));
      const leaked = tf.memory().numTensors - before - Object.keys(g).length - 1;
      value.dispose();
      tf.dispose(Object.values(g));
      tf.dispose([x, target, ...Object.values(vars)]);
      return { out, leaked };
    };
    const cpu = await grads("cpu");
    const wasm = await grads("wasm");
    expect(wasm.leaked).toBe(0);
    for (const k of Object.keys(shapes)) {
      const d = maxAbsDiff(cpu.out[k], wasm.out[k]);
      measured.push([`e2e d/d${k}`, d]);
      expect(d, k).toBeLessThanOrEqual(TOL);
    }
  });

  test("probe after registration: only the known upstream defects remain", async () => {
    const results = await probeWasmGradients(GAN_GRADIENT_CASES, TOL);
    const failing = results.filter((r) => r.status !== "ok").map((r) => r.name).sort();
    // Left alone on purpose, see the report in wasm-gradients.ts: cpu's nearest-neighbour gradient is
    // wrong (wasm's is right), cpu's bilinear gradient throws on non-square images, wasm's existing
    // MaxPoolGrad kernel is wrong (not ours to replace), batchNorm without scale/offset cannot be
    // differentiated on any backend.
    expect(failing).toEqual(
      [
        "batchNorm 4d without scale/offset",
        "maxPool 2x2 s2",
        "maxPool 2x2 s2 non-square",
        "resizeBilinear x2",
        "resizeNearestNeighbor x2",
        "resizeNearestNeighbor x2 square",
      ].sort(),
    );
  });
});
