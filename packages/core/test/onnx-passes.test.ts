/**
 * Each graph pass on its own: a small network written once against the op interface runs eagerly (TF.js, the
 * training path) and as an ONNX graph on ONNX Runtime with only that pass applied; the pass must fire (the node
 * it removes is gone) and the outputs must agree.
 */
import { beforeAll, describe, expect, it } from "vitest";
import "@tensorflow/tfjs-backend-cpu";
import { initBackend, tf } from "../src/engine/backend.ts";
import type { StateDict } from "../src/checkpoints/tensor.ts";
import { createSession } from "../src/inference/engines/onnx.ts";
import { Conv2d, ConvTranspose2d } from "../src/networks/common/conv.ts";
import { BatchNorm2d, InstanceNorm2d } from "../src/networks/common/norm.ts";
import { ParamStore, stateDictSource } from "../src/networks/common/param-store.ts";
import { GraphOps } from "../src/networks/ops/graph.ts";
import type { Ops } from "../src/networks/ops/ops.ts";
import type { GraphBuilder } from "../src/onnx/graph.ts";
import { Linear } from "../src/networks/common/linear.ts";
import { SpectralConv2d } from "../src/networks/common/spectral-norm.ts";
import { dropBiasBeforeInstanceNorm, foldAddIntoConvBias, foldBatchNorm, mergeSiblingConvs, optimize, polyphaseConvTranspose, spaceToDepthConv } from "../src/onnx/passes.ts";
import { foldBiasIntoConv, foldConstants, foldScalarGains } from "../src/onnx/fold.ts";
import { FullyConnectedLayer } from "../src/networks/stylegan2/layers.ts";

/** Deterministic values in [lo, hi). */
function rand(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = lo + ((hi - lo) * s) / 2 ** 32;
  }
  return out;
}

/** A layer stack under test, built the same way on both backends. */
type Net = <T, P>(ops: Ops<T, P>) => (x: T) => T;

/** Random values for every parameter the net registers (variances positive), in the official layout. */
function stateDictFor(net: Net): StateDict {
  const sd: StateDict = new Map();
  let k = 0;
  const probe = new ParamStore((name, shape, role) => {
    const data = role === "norm.running_var" ? rand(shape.reduce((a, b) => a * b, 1), 100 + k, 0.5, 2) : rand(shape.reduce((a, b) => a * b, 1), 100 + k);
    k++;
    sd.set(name, { dtype: "F32", shape: [...shape], data });
    return tf.tensor(data, [...shape]);
  });
  net(probe);
  for (const name of probe.names()) if (!sd.has(name)) sd.set(name, { dtype: "I64", shape: [], data: BigInt64Array.of(3n) });
  probe.dispose();
  return sd;
}

async function compare(net: Net, inC: number, pass: (g: GraphBuilder) => void, h = 6, w = 5) {
  const sd = stateDictFor(net);
  const x = rand(2 * h * w * inC, 7);
  const src = stateDictSource(sd);
  const store = new ParamStore(src.source, src.counter);
  const eager = tf.tidy(() => net(store)(tf.tensor4d(x, [2, h, w, inC])));
  const want = (await eager.data()) as Float32Array;
  const ops = new GraphOps("t", sd);
  const y = net(ops)(ops.input("x", [null, h, w, inC]));
  const ops2 = ops.g.nodes.map((n) => n.opType);
  const bytes = ops.finish({ y }, "test", { passes: pass });
  const session = await createSession(bytes, 1);
  const got = await session.run({ x: { data: x, dims: [2, h, w, inC] } });
  await session.release();
  eager.dispose();
  store.dispose();
  let diff = 0;
  for (let i = 0; i < want.length; i++) diff = Math.max(diff, Math.abs(want[i] - got[i]));
  expect(got.length).toBe(want.length);
  return { before: ops2, after: ops.g.nodes.map((n) => n.opType), diff };
}

describe("graph passes against the eager forward", () => {
  beforeAll(async () => {
    await initBackend("cpu");
  });

  it("foldBatchNorm folds eval BatchNorm into the conv before it", async () => {
    const net: Net = (ops) => {
      const conv = new Conv2d(ops, "c", 3, 4, 3, { stride: 2, padding: 1 });
      const bn = new BatchNorm2d(ops, "bn", 4);
      return (x) => bn.apply(conv.apply(x), false);
    };
    const r = await compare(net, 3, foldBatchNorm);
    expect(r.before).toContain("BatchNormalization");
    expect(r.after).not.toContain("BatchNormalization");
    expect(r.diff).toBeLessThan(1e-5);
  });

  it("foldBatchNorm folds into a transposed conv (output channels on axis 1)", async () => {
    const net: Net = (ops) => {
      const up = new ConvTranspose2d(ops, "u", 3, 2, 4, { stride: 2, padding: 1, bias: false });
      const bn = new BatchNorm2d(ops, "bn", 2);
      return (x) => bn.apply(up.apply(x), false);
    };
    const r = await compare(net, 3, foldBatchNorm);
    expect(r.after).not.toContain("BatchNormalization");
    expect(r.diff).toBeLessThan(1e-5);
  });

  it("foldBatchNorm leaves a BatchNorm whose input has another reader", async () => {
    const net: Net = (ops) => {
      const conv = new Conv2d(ops, "c", 2, 2, 1);
      const bn = new BatchNorm2d(ops, "bn", 2);
      return (x) => {
        const h = conv.apply(x);
        return ops.plus(h, bn.apply(h, false));
      };
    };
    const r = await compare(net, 2, foldBatchNorm);
    expect(r.after).toContain("BatchNormalization");
    expect(r.diff).toBeLessThan(1e-5);
  });

  it("dropBiasBeforeInstanceNorm drops the conv bias that the normalisation cancels", async () => {
    const net: Net = (ops) => {
      const conv = new Conv2d(ops, "c", 3, 4, 3, { padding: 1 });
      const norm = new InstanceNorm2d(ops, "in", 4);
      return (x) => norm.apply(conv.apply(x));
    };
    const sd = stateDictFor(net);
    const ops = new GraphOps("t", sd);
    const conv = () => ops.g.nodes.find((n) => n.opType === "Conv")!;
    net(ops)(ops.input("x", [null, null, null, 3]));
    expect(conv().inputs.length).toBe(3);
    dropBiasBeforeInstanceNorm(ops.g);
    expect(conv().inputs.length).toBe(2);
    const r = await compare(net, 3, dropBiasBeforeInstanceNorm);
    expect(r.diff).toBeLessThan(1e-5);
  });

  for (const { k, p, op } of [
    { k: 3, p: 1, op: 1 }, // CycleGAN Resnet up-conv
    { k: 4, p: 1, op: 0 }, // U-Net up-conv
  ])
    it(`polyphaseConvTranspose rewrites ConvTranspose k${k} s2 p${p} op${op} as Conv + DepthToSpace`, async () => {
      const net: Net = (ops) => {
        const up = new ConvTranspose2d(ops, "u", 3, 5, k, { stride: 2, padding: p, outputPadding: op });
        return (x) => up.apply(x);
      };
      const r = await compare(net, 3, polyphaseConvTranspose);
      expect(r.before).toContain("ConvTranspose");
      expect(r.after).not.toContain("ConvTranspose");
      expect(r.after).toContain("DepthToSpace");
      expect(r.diff).toBeLessThan(1e-5);
    });

  it("polyphaseConvTranspose leaves a transposed conv whose output is not exactly 2H x 2W", async () => {
    const net: Net = (ops) => {
      const up = new ConvTranspose2d(ops, "u", 2, 3, 3, { stride: 2, padding: 0, outputPadding: 1 });
      return (x) => up.apply(x);
    };
    const r = await compare(net, 2, polyphaseConvTranspose);
    expect(r.after).toContain("ConvTranspose");
    expect(r.diff).toBeLessThan(1e-5);
  });

  it("all passes together on conv → BatchNorm → transposed conv → BatchNorm", async () => {
    const net: Net = (ops) => {
      const conv = new Conv2d(ops, "c", 3, 4, 3, { padding: 1, bias: false });
      const bn = new BatchNorm2d(ops, "bn", 4);
      const up = new ConvTranspose2d(ops, "u", 4, 2, 3, { stride: 2, padding: 1, outputPadding: 1, bias: false });
      const bn2 = new BatchNorm2d(ops, "bn2", 2);
      return (x) => bn2.apply(up.apply(ops.relu(bn.apply(conv.apply(x), false))), false);
    };
    const r = await compare(net, 3, optimize);
    expect(r.after).toEqual(["Transpose", "Conv", "Relu", "Conv", "DepthToSpace", "Transpose", "Identity"]);
    expect(r.diff).toBeLessThan(1e-5);
  });

  it("foldAddIntoConvBias moves a scalar added to a conv output into its bias", async () => {
    const net: Net = (ops) => {
      const conv = new Conv2d(ops, "c", 3, 3, 3, { padding: 1 });
      return (x) => ops.mul(x, ops.addScalar(conv.apply(x), 1));
    };
    const r = await compare(net, 3, foldAddIntoConvBias);
    // One Add (the scalar) before, none after; the Mul stays.
    expect(r.before.filter((o) => o === "Add")).toHaveLength(1);
    expect(r.after).not.toContain("Add");
    expect(r.diff).toBeLessThan(1e-5);
  });

  for (const k of [7, 3])
    it(`spaceToDepthConv computes a ${k}x${k} conv after a reflection pad as SpaceToDepth, conv, DepthToSpace`, async () => {
      const net: Net = (ops) => {
        const conv = new Conv2d(ops, "c", 4, 3, k);
        return (x) => conv.apply(ops.reflectPad(x, (k - 1) / 2));
      };
      const r = await compare(net, 4, (g) => spaceToDepthConv(g, g.nodes.find((n) => n.opType === "Conv")!, 2), 8, 6);
      expect(r.after).toEqual(["Transpose", "Pad", "SpaceToDepth", "Conv", "DepthToSpace", "Transpose", "Identity"]);
      expect(r.diff).toBeLessThan(1e-5);
    });

  it("spaceToDepthConv refuses what blocks cannot tile: an even kernel, a strided or padded conv", () => {
    const sd = stateDictFor((ops) => {
      const a = new Conv2d(ops, "a", 2, 2, 4);
      const b = new Conv2d(ops, "b", 2, 2, 3, { stride: 2 });
      const c = new Conv2d(ops, "c", 2, 2, 3, { padding: 1 });
      return (x) => c.apply(b.apply(a.apply(x)));
    });
    const ops = new GraphOps("t", sd);
    const a = new Conv2d(ops, "a", 2, 2, 4);
    const b = new Conv2d(ops, "b", 2, 2, 3, { stride: 2 });
    const c = new Conv2d(ops, "c", 2, 2, 3, { padding: 1 });
    c.apply(b.apply(a.apply(ops.input("x", [null, null, null, 2]))));
    const convs = ops.g.nodes.filter((n) => n.opType === "Conv");
    expect(() => spaceToDepthConv(ops.g, convs[0], 2)).toThrow(/does not tile/);
    for (const n of convs.slice(1)) expect(() => spaceToDepthConv(ops.g, n, 2)).toThrow(/not a plain stride-1 conv/);
  });

  it("mergeSiblingConvs merges convs reading one value into one conv and a Split", async () => {
    const net: Net = (ops) => {
      const a = new Conv2d(ops, "a", 3, 4, 3, { padding: 1 });
      const b = new Conv2d(ops, "b", 3, 2, 3, { padding: 1 });
      const c = new Conv2d(ops, "c", 3, 3, 3, { stride: 2, padding: 1 }); // reads x too, with other attributes
      const d = new Conv2d(ops, "d", 6, 3, 3, { stride: 2, padding: 1 });
      return (x) => ops.plus(d.apply(ops.concat([ops.relu(a.apply(x)), b.apply(x)])), c.apply(x));
    };
    const r = await compare(net, 3, mergeSiblingConvs);
    expect(r.before.filter((o) => o === "Conv")).toHaveLength(4);
    expect(r.after.filter((o) => o === "Conv")).toHaveLength(3);
    expect(r.after).toContain("Split");
    expect(r.diff).toBeLessThan(1e-5);
  });

  it("spectral conv, legacy nearest resizes and upsampling: graph ops against eager ops", async () => {
    const net: Net = (ops) => {
      const conv = new SpectralConv2d(ops, "s", 3, 4, 3, { padding: 1 });
      return (x) => {
        const y = conv.apply(x);
        const down = ops.resizeNearest(y, 4, 3); // 12x9 → 4x3: ratio 3, the Gather path
        const half = ops.resizeNearest(y, 6, 9); // a power of two on one axis, 1 on the other: Resize
        return ops.plus(ops.upsampleNearest2x(ops.resizeNearest(half, 3, 3), false), ops.resizeNearest(ops.upsampleNearest2x(down, false), 6, 6));
      };
    };
    const r = await compare(net, 3, () => {}, 12, 9);
    expect(r.after).toContain("Gather");
    expect(r.after).toContain("Resize");
    expect(r.diff).toBeLessThan(1e-5);
  });

  it("linear, unflatten (PyTorch's NCHW view) and sigmoid: graph ops against eager ops", async () => {
    const net: Net = (ops) => {
      const fc = new Linear(ops, "fc", 3, 2 * 3 * 2);
      const conv = new Conv2d(ops, "c", 2, 2, 1);
      return (x) => ops.sigmoid(conv.apply(ops.unflatten(fc.apply(x), 2, 3, 2)));
    };
    const r = await compare(net, 3, () => {}, 1, 1);
    expect(r.after).toContain("Gemm");
    expect(r.diff).toBeLessThan(1e-5);
  });

  it("foldConstants turns a product of constants (noise_const · noise_strength) into one constant", async () => {
    const net: Net = (ops) => {
      const map = ops.param("noise_const", [6, 5], "norm.running_mean");
      const strength = ops.param("noise_strength", [], "conv.bias");
      return (x) => ops.plus(x, ops.mulParam(ops.paramMap(map, 1, 6, 5), strength));
    };
    const r = await compare(net, 3, foldConstants);
    expect(r.before.filter((o) => o === "Mul")).toHaveLength(1);
    expect(r.after).not.toContain("Mul");
    expect(r.diff).toBeLessThan(1e-6);
  });

  it("foldScalarGains moves an activation gain through lrelu and the bias into the conv", async () => {
    const net: Net = (ops) => {
      const conv = new Conv2d(ops, "c", 3, 4, 3, { padding: 1, bias: false });
      const bias = ops.param("b", [4], "conv.bias");
      return (x) => ops.biasAct(conv.apply(x), bias, { act: "lrelu", gain: Math.SQRT2, clamp: 0.5 });
    };
    const r = await compare(net, 3, foldScalarGains);
    expect(r.before).toContain("Mul");
    expect(r.after).not.toContain("Mul");
    expect(r.after).toContain("Clip");
    expect(r.diff).toBeLessThan(1e-5);
  });

  it("foldScalarGains folds into a MatMul weight through reshapes (equalized-lr FC with lrelu)", async () => {
    const net: Net = (ops) => {
      const fc = new FullyConnectedLayer(ops, "fc", 3, 4, { activation: "lrelu", lrMultiplier: 0.01 });
      const out = new FullyConnectedLayer(ops, "out", 4, 2);
      return (x) => ops.mulScalar(out.apply(fc.apply(x)), 0.5);
    };
    const r = await compare(net, 3, foldScalarGains, 1, 1);
    expect(r.before.filter((o) => o === "Mul")).toHaveLength(2);
    expect(r.after).not.toContain("Mul");
    expect(r.diff).toBeLessThan(1e-5);
  });

  it("foldScalarGains leaves a gain whose value has another reader, and a negative gain before lrelu", async () => {
    const net: Net = (ops) => {
      const conv = new Conv2d(ops, "c", 3, 3, 1);
      return (x) => {
        const h = conv.apply(x);
        return ops.plus(ops.mulScalar(ops.leakyRelu(ops.mulScalar(x, 2), 0.2), -1), ops.plus(h, ops.mulScalar(h, 3)));
      };
    };
    const r = await compare(net, 3, foldScalarGains);
    expect(r.after.filter((o) => o === "Mul")).toHaveLength(3);
    expect(r.diff).toBeLessThan(1e-5);
  });

  it("foldBiasIntoConv makes a per-channel bias added after a conv the conv's bias", async () => {
    const net: Net = (ops) => {
      const conv = new Conv2d(ops, "c", 3, 4, 1, { bias: false });
      const bias = ops.param("b", [4], "conv.bias");
      return (x) => ops.biasAct(conv.apply(x), bias, { act: "linear", gain: 1, clamp: null });
    };
    const r = await compare(net, 3, foldBiasIntoConv);
    expect(r.before).toContain("Add");
    expect(r.after).not.toContain("Add");
    expect(r.diff).toBeLessThan(1e-5);
  });

  it("a wrong channel count fails at build time with the layer's official name", () => {
    const sd = stateDictFor((ops) => {
      const conv = new Conv2d(ops, "model.1", 3, 4, 3);
      return (x) => conv.apply(x);
    });
    const ops = new GraphOps("t", sd);
    const conv = new Conv2d(ops, "model.1", 3, 4, 3);
    expect(() => conv.apply(ops.input("x", [null, null, null, 5]))).toThrow(/model\.1: expected shape \[\*,\*,\*,3\], got \[\?,\?,\?,5\]/);
  });
});
