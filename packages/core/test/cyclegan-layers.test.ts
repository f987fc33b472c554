/**
 * The building blocks against direct loops over PyTorch's definitions (NCHW, OIHW / IOHW weights), on both
 * backends, for shapes and hyper-parameters beyond what the shipped fixtures exercise.
 */
import { beforeAll, describe, expect, it } from "vitest";
import "@tensorflow/tfjs-backend-cpu";
// Training code must register the gradients; tfjs-core alone does not.
import "@tensorflow/tfjs-core/dist/register_all_gradients.js";
import { initBackend, tf } from "../src/engine/backend.ts";
import type { StateDict } from "../src/checkpoints/tensor.ts";
import { Conv2d, ConvTranspose2d, setConvTransposeMethod, type ConvTransposeMethod } from "../src/networks/common/conv.ts";
import { BatchNorm2d, InstanceNorm2d } from "../src/networks/common/norm.ts";
import { reflectionPad2d } from "../src/networks/ops/eager.ts";
import { ParamStore, stateDictSource } from "../src/networks/common/param-store.ts";
import { CycleGANGenerator, CycleGANModel } from "../src/networks/cyclegan/index.ts";

/** The layer's forward with the given transposed-conv kernel forced. */
function applyWith(layer: ConvTranspose2d, x: tf.Tensor4D, method: ConvTransposeMethod): tf.Tensor4D {
  setConvTransposeMethod(method);
  try {
    return layer.apply(x);
  } finally {
    setConvTransposeMethod(undefined);
  }
}

/** Deterministic values in [-1, 1). */
function rand(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

const toNhwc = (data: Float32Array, [n, c, h, w]: number[]) => tf.transpose(tf.tensor4d(data, [n, c, h, w]), [0, 2, 3, 1]) as tf.Tensor4D;
async function toNchw(t: tf.Tensor4D): Promise<Float32Array> {
  const y = tf.transpose(t, [0, 3, 1, 2]);
  const d = (await y.data()) as Float32Array;
  y.dispose();
  return d;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function storeFrom(entries: Record<string, { shape: number[]; data: Float32Array }>) {
  const sd: StateDict = new Map(Object.entries(entries).map(([k, v]) => [k, { dtype: "F32" as const, ...v }]));
  const src = stateDictSource(sd);
  return { store: new ParamStore(src.source, src.counter), finish: src.finish };
}

/** nn.ConvTranspose2d by definition: every input pixel scatters weight[i, o] to out[y*s - p + ky]. */
function refConvTranspose(x: Float32Array, [n, ci, h, w]: number[], wt: Float32Array, co: number, k: number, s: number, p: number, op: number, b: Float32Array) {
  const oh = (h - 1) * s - 2 * p + k + op;
  const ow = (w - 1) * s - 2 * p + k + op;
  const out = new Float32Array(n * co * oh * ow);
  for (let b0 = 0; b0 < n; b0++)
    for (let o = 0; o < co; o++) for (let i = 0; i < oh * ow; i++) out[(b0 * co + o) * oh * ow + i] = b[o];
  for (let b0 = 0; b0 < n; b0++)
    for (let i = 0; i < ci; i++)
      for (let y = 0; y < h; y++)
        for (let xx = 0; xx < w; xx++) {
          const v = x[((b0 * ci + i) * h + y) * w + xx];
          for (let o = 0; o < co; o++)
            for (let ky = 0; ky < k; ky++)
              for (let kx = 0; kx < k; kx++) {
                const oy = y * s - p + ky;
                const ox = xx * s - p + kx;
                if (oy < 0 || ox < 0 || oy >= oh || ox >= ow) continue;
                out[((b0 * co + o) * oh + oy) * ow + ox] += v * wt[((i * co + o) * k + ky) * k + kx];
              }
        }
  return { out, shape: [n, co, oh, ow] };
}

/** nn.Conv2d (zero padding) by definition. */
function refConv(x: Float32Array, [n, ci, h, w]: number[], wt: Float32Array, co: number, k: number, s: number, p: number, b: Float32Array) {
  const oh = Math.floor((h + 2 * p - k) / s) + 1;
  const ow = Math.floor((w + 2 * p - k) / s) + 1;
  const out = new Float32Array(n * co * oh * ow);
  for (let b0 = 0; b0 < n; b0++)
    for (let o = 0; o < co; o++)
      for (let y = 0; y < oh; y++)
        for (let xx = 0; xx < ow; xx++) {
          let acc = b[o];
          for (let i = 0; i < ci; i++)
            for (let ky = 0; ky < k; ky++)
              for (let kx = 0; kx < k; kx++) {
                const iy = y * s - p + ky;
                const ix = xx * s - p + kx;
                if (iy < 0 || ix < 0 || iy >= h || ix >= w) continue;
                acc += x[((b0 * ci + i) * h + iy) * w + ix] * wt[((o * ci + i) * k + ky) * k + kx];
              }
          out[((b0 * co + o) * oh + y) * ow + xx] = acc;
        }
  return { out, shape: [n, co, oh, ow] };
}

beforeAll(async () => {
  await initBackend("wasm");
});

for (const backend of ["wasm", "cpu"] as const) {
  describe(`layers on ${backend}`, () => {
    beforeAll(async () => {
      expect(await tf.setBackend(backend)).toBe(true);
    });

    const tconvCases = [
      { k: 3, s: 2, p: 1, op: 1, shape: [1, 2, 1, 1] }, // single pixel
      { k: 3, s: 2, p: 1, op: 1, shape: [2, 3, 5, 4] }, // Resnet up-conv
      { k: 4, s: 2, p: 1, op: 0, shape: [1, 4, 4, 6] }, // U-Net up-conv
      { k: 3, s: 2, p: 0, op: 1, shape: [1, 2, 3, 3] }, // output_padding beyond the full extent
      { k: 5, s: 3, p: 2, op: 2, shape: [1, 2, 4, 3] },
      { k: 3, s: 1, p: 1, op: 0, shape: [1, 3, 5, 5] },
    ];
    for (const { k, s, p, op, shape } of tconvCases)
      for (const method of ["subpixel", "native"] as const)
      it(`ConvTranspose2d k${k} s${s} p${p} op${op} (${method}) matches PyTorch's definition`, async () => {
        const ci = shape[1];
        const co = 3;
        const x = rand(shape.reduce((a, b) => a * b), 1 + k);
        const wt = rand(ci * co * k * k, 2 + s);
        const b = rand(co, 3);
        const { store, finish } = storeFrom({ "up.weight": { shape: [ci, co, k, k], data: wt }, "up.bias": { shape: [co], data: b } });
        const layer = new ConvTranspose2d(store, "up", ci, co, k, { stride: s, padding: p, outputPadding: op });
        finish();
        const ref = refConvTranspose(x, shape, wt, co, k, s, p, op, b);
        const xt = toNhwc(x, shape);
        const y = applyWith(layer, xt, method);
        expect([y.shape[0], y.shape[3], y.shape[1], y.shape[2]]).toEqual(ref.shape);
        expect(maxAbsDiff(await toNchw(y), ref.out)).toBeLessThan(1e-5);
        tf.dispose([xt, y]);
        store.dispose();
      });

    it("ConvTranspose2d follows assigned weights, and both methods give the same gradients", async () => {
      const [ci, co, k] = [3, 2, 3];
      const shape = [1, ci, 4, 5];
      const x = rand(ci * 20, 21);
      const { store } = storeFrom({ "up.weight": { shape: [ci, co, k, k], data: rand(ci * co * k * k, 22) }, "up.bias": { shape: [co], data: rand(co, 23) } });
      const layer = new ConvTranspose2d(store, "up", ci, co, k, { stride: 2, padding: 1, outputPadding: 1 });
      const xt = toNhwc(x, shape);
      tf.dispose(applyWith(layer, xt, "subpixel")); // caches the rearranged kernel
      const w2 = rand(ci * co * k * k, 24);
      const b = store.stateDict().get("up.bias")!.data as Float32Array;
      layer.weight.assign(tf.transpose(tf.tensor4d(w2, [ci, co, k, k]), [2, 3, 1, 0]));
      const ref = refConvTranspose(x, shape, w2, co, k, 2, 1, 1, b);
      for (const method of ["subpixel", "native"] as const) {
        const y = applyWith(layer, xt, method);
        expect(maxAbsDiff(await toNchw(y), ref.out), method).toBeLessThan(1e-5);
        y.dispose();
      }
      if (backend === "cpu") {
        // Under a tape the subpixel kernel is rebuilt from the variable, so weight gradients must match.
        const r = tf.randomNormal([1, 8, 10, co], 0, 1, "float32", 5);
        const gradsOf = (method: "subpixel" | "native") =>
          tf.variableGrads(() => tf.sum(tf.mul(applyWith(layer, xt, method), r)) as tf.Scalar, [layer.weight, layer.bias!]);
        const [a, n] = [gradsOf("subpixel"), gradsOf("native")];
        for (const v of [layer.weight, layer.bias!]) {
          expect(maxAbsDiff(a.grads[v.name].dataSync() as Float32Array, n.grads[v.name].dataSync() as Float32Array)).toBeLessThan(1e-4);
        }
        tf.dispose([r, a.value, n.value, ...Object.values(a.grads), ...Object.values(n.grads)]);
      }
      xt.dispose();
      store.dispose();
    });

    for (const { k, s, p, shape } of [
      { k: 7, s: 1, p: 0, shape: [1, 3, 9, 8] },
      { k: 3, s: 2, p: 1, shape: [2, 2, 7, 6] },
      { k: 4, s: 2, p: 1, shape: [1, 3, 8, 4] },
    ]) {
      it(`Conv2d k${k} s${s} p${p} matches PyTorch's definition`, async () => {
        const ci = shape[1];
        const co = 4;
        const x = rand(shape.reduce((a, b) => a * b), 5 + k);
        const wt = rand(co * ci * k * k, 6);
        const b = rand(co, 7);
        const { store } = storeFrom({ "c.weight": { shape: [co, ci, k, k], data: wt }, "c.bias": { shape: [co], data: b } });
        const layer = new Conv2d(store, "c", ci, co, k, { stride: s, padding: p });
        const ref = refConv(x, shape, wt, co, k, s, p, b);
        const xt = toNhwc(x, shape);
        const y = layer.apply(xt);
        expect([y.shape[0], y.shape[3], y.shape[1], y.shape[2]]).toEqual(ref.shape);
        expect(maxAbsDiff(await toNchw(y), ref.out)).toBeLessThan(1e-5);
        tf.dispose([xt, y]);
        store.dispose();
      });
    }

    it("ReflectionPad2d, InstanceNorm2d and eval BatchNorm2d match PyTorch's definitions", async () => {
      const shape = [2, 3, 5, 4];
      const [n, c, h, w] = shape;
      const x = rand(n * c * h * w, 11);
      const xt = toNhwc(x, shape);

      const padded = reflectionPad2d(xt, 2);
      const refl = (i: number, len: number) => (i < 0 ? -i : i >= len ? 2 * (len - 1) - i : i);
      const refPad = new Float32Array(n * c * (h + 4) * (w + 4));
      for (let b = 0; b < n; b++)
        for (let ch = 0; ch < c; ch++)
          for (let y = 0; y < h + 4; y++)
            for (let xx = 0; xx < w + 4; xx++)
              refPad[((b * c + ch) * (h + 4) + y) * (w + 4) + xx] = x[((b * c + ch) * h + refl(y - 2, h)) * w + refl(xx - 2, w)];
      expect(maxAbsDiff(await toNchw(padded), refPad)).toBe(0);

      const { store } = storeFrom({
        "bn.weight": { shape: [c], data: rand(c, 12) },
        "bn.bias": { shape: [c], data: rand(c, 13) },
        "bn.running_mean": { shape: [c], data: rand(c, 14) },
        "bn.running_var": { shape: [c], data: rand(c, 15).map((v) => 1.5 + v) },
      });
      const inorm = new InstanceNorm2d(store, "in", c);
      const bn = new BatchNorm2d(store, "bn", c);
      const [bw, bb, rm, rv] = ["weight", "bias", "running_mean", "running_var"].map((l) => store.stateDict().get(`bn.${l}`)!.data as Float32Array);
      const refIn = new Float32Array(x.length);
      const refBn = new Float32Array(x.length);
      for (let b = 0; b < n; b++)
        for (let ch = 0; ch < c; ch++) {
          const base = (b * c + ch) * h * w;
          let mean = 0;
          for (let i = 0; i < h * w; i++) mean += x[base + i];
          mean /= h * w;
          let v = 0;
          for (let i = 0; i < h * w; i++) v += (x[base + i] - mean) ** 2;
          v /= h * w; // biased, as PyTorch normalises
          for (let i = 0; i < h * w; i++) {
            refIn[base + i] = (x[base + i] - mean) / Math.sqrt(v + 1e-5);
            refBn[base + i] = ((x[base + i] - rm[ch]) / Math.sqrt(rv[ch] + 1e-5)) * bw[ch] + bb[ch];
          }
        }
      const yin = inorm.apply(xt);
      const ybn = bn.apply(xt, false);
      expect(maxAbsDiff(await toNchw(yin), refIn)).toBeLessThan(1e-5);
      expect(maxAbsDiff(await toNchw(ybn), refBn)).toBeLessThan(1e-5);
      tf.dispose([xt, padded, yin, ybn]);
      store.dispose();
    });

    it("resnet use_dropout shifts the second conv of each block and only acts in training", async () => {
      const cfg = { input_nc: 3, output_nc: 3, ngf: 4, netG: "resnet_6blocks", norm: "instance", use_dropout: true };
      const g = CycleGANGenerator.randomInit(cfg, 5);
      try {
        const sd = g.stateDict();
        expect(sd.get("model.10.conv_block.6.weight")!.shape).toEqual([16, 16, 3, 3]);
        expect(sd.has("model.10.conv_block.5.weight")).toBe(false);
        const x = tf.randomUniform([1, 16, 16, 3], -1, 1, "float32", 3) as tf.Tensor4D;
        const [e1, e2, t1] = [g.forward(x), g.forward(x), g.forward(x, { training: true })];
        expect(maxAbsDiff((await e1.data()) as Float32Array, (await e2.data()) as Float32Array)).toBe(0);
        expect(maxAbsDiff((await e1.data()) as Float32Array, (await t1.data()) as Float32Array)).toBeGreaterThan(0);
        tf.dispose([x, e1, e2, t1]);
      } finally {
        g.dispose();
      }
    });

    // tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter kernel, so weight gradients only run on cpu (and native);
    // the test is defined for that backend only rather than listed as skipped on the others.
    const gradientCases = backend === "cpu" ? ([["resnet_6blocks", "batch"], ["unet_128", "instance"], ["unet_128", "batch"]] as const) : [];
    for (const [netG, norm] of gradientCases) {
      it(`gradients flow to every trainable parameter (${netG}, ${norm}, train mode)`, () => {
        const m = CycleGANModel.randomInit({ ngf: 2, netG, norm, use_dropout: true }, 9);
        try {
          const vars = m.G_A.trainableVariables();
          const size = netG === "unet_128" ? 128 : 16;
          const x = tf.randomUniform([2, size, size, 3], -1, 1, "float32", 4) as tf.Tensor4D;
          const { value, grads } = tf.variableGrads(() => tf.mean(tf.abs(tf.sub(m.translate(x, "AtoB", { training: true }), 0.3))) as tf.Scalar, [...vars.values()]);
          expect(Number.isFinite(value.dataSync()[0])).toBe(true);
          // Every parameter the forward uses gets a gradient of the right shape.
          for (const [name, v] of vars) {
            const gr = grads[v.name];
            expect(gr, name).toBeDefined();
            expect(gr.shape, name).toEqual(v.shape);
            expect(Array.from(gr.dataSync()).every(Number.isFinite), name).toBe(true);
          }
          tf.dispose([x, value, ...Object.values(grads)]);
        } finally {
          m.dispose();
        }
      });
    }
  });
}
