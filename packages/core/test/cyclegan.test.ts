import { readFileSync } from "node:fs";
import { officialDir } from "../../../test/fixtures/index.ts";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import "@tensorflow/tfjs-backend-cpu";
import { initBackend, tf } from "../src/engine/backend.ts";
import { readSafetensors } from "../src/checkpoints/safetensors.ts";
import type { RawTensor, StateDict } from "../src/checkpoints/tensor.ts";
import { cycleganAdapter } from "../src/parity/cyclegan.ts";
import type { ParityCase } from "../src/parity/types.ts";
import { CycleGANGenerator, CycleGANModel, inferCycleGANConfig, parseCycleGANConfig, sizeConstraints } from "../src/networks/cyclegan/index.ts";
import { exportCycleGAN } from "../src/networks/cyclegan/generator.ts";

const MODELS = ["resnet_9blocks_instance_ngf8", "unet_128_batch_ngf2"];

interface Manifest {
  config: Record<string, unknown>;
  weights: { safetensors: string };
  io: { file: string };
  cases: ParityCase[];
}

function loadFixture(model: string) {
  const dir = path.join(officialDir, "cyclegan", model);
  const manifest = JSON.parse(readFileSync(path.join(dir, "manifest.json"), "utf8")) as Manifest;
  const weights = readSafetensors(readFileSync(path.join(dir, manifest.weights.safetensors))).tensors;
  const io = readSafetensors(readFileSync(path.join(dir, manifest.io.file))).tensors;
  return { manifest, weights, io };
}

/** Largest |out - expected| and whether every element is within atol + rtol*|expected|. */
function compare(out: Float32Array, expected: RawTensor, atol: number, rtol: number) {
  const exp = expected.data as Float32Array;
  let maxDiff = 0;
  let ok = out.length === exp.length;
  for (let i = 0; i < exp.length; i++) {
    const d = Math.abs(out[i] - exp[i]);
    if (!(d <= atol + rtol * Math.abs(exp[i]))) ok = false;
    if (!(d <= maxDiff)) maxDiff = d;
  }
  return { maxDiff, ok };
}

const nchwToNhwc = (t: RawTensor) => tf.transpose(tf.tensor4d(t.data as Float32Array, t.shape as [number, number, number, number]), [0, 2, 3, 1]) as tf.Tensor4D;

const timings: string[] = [];

beforeAll(async () => {
  await initBackend("wasm");
});

afterAll(() => {
  console.log(`cyclegan forward times:\n  ${timings.join("\n  ")}`);
});

for (const backend of ["wasm", "cpu"] as const) {
  describe(`cyclegan on ${backend}`, () => {
    beforeAll(async () => {
      expect(await tf.setBackend(backend)).toBe(true);
    });

    for (const model of MODELS) {
      it(`${model}: every fixture case within tolerance (parity adapter)`, async () => {
        const { manifest, weights, io } = loadFixture(model);
        const runner = await cycleganAdapter.load(manifest.config, weights);
        try {
          for (const kase of manifest.cases) {
            const t0 = performance.now();
            const outs = await runner.run(kase, io);
            const ms = performance.now() - t0;
            const out = outs.get(kase.expected)!;
            const expected = io.get(kase.expected)!;
            expect(out.shape).toEqual(expected.shape);
            const { maxDiff, ok } = compare(out.data, expected, kase.atol, kase.rtol);
            timings.push(`${backend} ${model}/${kase.name} [${expected.shape}]: ${ms.toFixed(1)} ms, max|diff| ${maxDiff.toExponential(2)} (atol ${kase.atol})`);
            expect(ok, `${kase.name}: max|diff| ${maxDiff}`).toBe(true);
          }
        } finally {
          runner.dispose();
        }
      });
    }

    it("ignores InstanceNorm running stats that 2018 checkpoints carry", async () => {
      const { manifest, weights, io } = loadFixture("resnet_9blocks_instance_ngf8");
      const stale: StateDict = new Map(weights);
      // Every InstanceNorm position in a resnet_9blocks: stem, two downs, two per block, two ups.
      const norms = new Map([["model.2", 8], ["model.5", 16], ["model.8", 32], ["model.20", 16], ["model.23", 8]]);
      for (let b = 10; b < 19; b++) norms.set(`model.${b}.conv_block.2`, 32).set(`model.${b}.conv_block.6`, 32);
      for (const [n, c] of norms) {
        stale.set(`${n}.running_mean`, { dtype: "F32", shape: [c], data: new Float32Array(c).fill(3) });
        stale.set(`${n}.running_var`, { dtype: "F32", shape: [c], data: new Float32Array(c).fill(7) });
        stale.set(`${n}.num_batches_tracked`, { dtype: "I64", shape: [], data: BigInt64Array.of(5n) });
      }
      const g = CycleGANGenerator.fromStateDict(manifest.config, stale);
      try {
        const y = tf.tidy(() => tf.transpose(g.forward(nchwToNhwc(io.get("input")!)), [0, 3, 1, 2]));
        const { ok, maxDiff } = compare((await y.data()) as Float32Array, io.get("output")!, manifest.cases[0].atol, manifest.cases[0].rtol);
        y.dispose();
        expect(ok, `max|diff| ${maxDiff}`).toBe(true);
        // Stale stats are dropped, not carried: the state_dict matches the current upstream layout.
        expect([...g.stateDict().keys()].sort()).toEqual([...weights.keys()].sort());
      } finally {
        g.dispose();
      }
    });

    it("rejects unknown keys and wrong shapes", () => {
      const { manifest, weights } = loadFixture("resnet_9blocks_instance_ngf8");
      const extra: StateDict = new Map(weights);
      extra.set("model.99.weight", { dtype: "F32", shape: [1], data: new Float32Array(1) });
      expect(() => CycleGANGenerator.fromStateDict(manifest.config, extra)).toThrow(/unexpected key.*model\.99\.weight/);
      expect(() => CycleGANGenerator.fromStateDict({ ...manifest.config, ngf: 16 }, weights)).toThrow(/shape/);
      expect(() => CycleGANGenerator.fromStateDict({ ...manifest.config, netG: "resnet_6blocks" }, weights)).toThrow(/missing key|unexpected key/);
      const missing: StateDict = new Map(weights);
      missing.delete("model.26.bias");
      expect(() => CycleGANGenerator.fromStateDict(manifest.config, missing)).toThrow(/missing key model\.26\.bias/);
    });

    for (const model of MODELS) {
      it(`${model}: stateDict round trip is exact`, async () => {
        const { manifest, weights, io } = loadFixture(model);
        const g = CycleGANGenerator.fromStateDict(manifest.config, weights);
        try {
          const sd = g.stateDict();
          expect([...sd.keys()]).toEqual([...weights.keys()]);
          for (const [k, v] of weights) {
            const r = sd.get(k)!;
            expect(r.dtype, k).toBe(v.dtype);
            expect(r.shape, k).toEqual(v.shape);
            expect(r.data, k).toEqual(v.data);
          }
          const g2 = CycleGANGenerator.fromStateDict(manifest.config, sd);
          const x = nchwToNhwc(io.get("input")!);
          const [a, b] = [g.forward(x), g2.forward(x)];
          expect(Array.from(await a.data())).toEqual(Array.from(await b.data()));
          tf.dispose([x, a, b]);
          g2.dispose();
        } finally {
          g.dispose();
        }
      });
    }

    it("CycleGANModel: G_A and G_B from two state dicts, each direction with its own channels", async () => {
      const cfg = { input_nc: 3, output_nc: 1, ngf: 4, netG: "resnet_6blocks", norm: "batch", use_dropout: false };
      const src = CycleGANModel.randomInit(cfg, 3);
      const dicts = src.stateDicts();
      expect(dicts.G_A.get("model.1.weight")!.shape).toEqual([4, 3, 7, 7]);
      expect(dicts.G_B!.get("model.1.weight")!.shape).toEqual([4, 1, 7, 7]);
      // batch norm: no conv bias except the last conv
      expect(dicts.G_A.has("model.1.bias")).toBe(false);
      expect(dicts.G_A.has("model.23.bias")).toBe(true);
      const m = CycleGANModel.fromStateDicts(cfg, dicts);
      const combined: StateDict = new Map([
        ...[...dicts.G_A].map(([k, v]) => [`netG_A.${k}`, v] as const),
        ...[...dicts.G_B!].map(([k, v]) => [`netG_B.${k}`, v] as const),
      ]);
      const m2 = CycleGANModel.fromStateDicts(cfg, combined);
      const onlyA = CycleGANModel.fromStateDicts(cfg, { G_A: dicts.G_A });
      try {
        const a = tf.randomUniform([1, 16, 16, 3], -1, 1, "float32", 1) as tf.Tensor4D;
        const b = tf.randomUniform([1, 16, 16, 1], -1, 1, "float32", 2) as tf.Tensor4D;
        const outs = [m.translate(a, "AtoB"), m.translate(b, "BtoA"), src.translate(a, "AtoB"), m2.translate(b, "BtoA"), src.translate(b, "BtoA")];
        expect(outs[0].shape).toEqual([1, 16, 16, 1]);
        expect(outs[1].shape).toEqual([1, 16, 16, 3]);
        expect(Array.from(await outs[0].data())).toEqual(Array.from(await outs[2].data()));
        expect(Array.from(await outs[3].data())).toEqual(Array.from(await outs[4].data()));
        expect(onlyA.directions()).toEqual(["AtoB"]);
        expect(() => onlyA.translate(b, "BtoA")).toThrow(/G_B/);
        tf.dispose([a, b, ...outs]);
      } finally {
        for (const x of [src, m, m2, onlyA]) x.dispose();
      }
    });

    for (const netG of ["resnet_6blocks", "unet_256"] as const) {
      it(`randomInit ${netG}: finite output in [-1, 1], deterministic per seed, no leaks`, async () => {
        const cfg = { input_nc: 3, output_nc: 3, ngf: 8, netG, norm: "instance" };
        const size = Math.max(sizeConstraints(netG).minSize, 64);
        const m = CycleGANModel.randomInit(cfg, 42);
        const m2 = CycleGANModel.randomInit(cfg, 42);
        try {
          const x = tf.randomUniform([1, size, size, 3], -1, 1, "float32", 7) as tf.Tensor4D;
          const t0 = performance.now();
          const y = m.translate(x, "AtoB");
          const data = (await y.data()) as Float32Array;
          timings.push(`${backend} randomInit ${netG} ngf8 [1,3,${size},${size}]: ${(performance.now() - t0).toFixed(1)} ms`);
          // Later calls allocate nothing that outlives them (the first may cache rearranged kernels).
          const before = tf.memory().numTensors;
          tf.dispose(m.translate(x, "AtoB"));
          expect(tf.memory().numTensors).toBe(before);
          expect(y.shape).toEqual([1, size, size, 3]);
          expect(data.every((v) => Number.isFinite(v) && Math.abs(v) <= 1)).toBe(true);
          const y2 = m2.translate(x, "AtoB");
          expect(Array.from(await y2.data())).toEqual(Array.from(data));
          tf.dispose([x, y, y2]);
        } finally {
          m.dispose();
          m2.dispose();
        }
      });
    }

    it("validates config and input sizes", () => {
      expect(() => parseCycleGANConfig({ netG: "resnet_5blocks" })).toThrow();
      expect(parseCycleGANConfig({ no_dropout: false }).use_dropout).toBe(true);
      expect(parseCycleGANConfig({ no_dropout: true, extra: "kept" })).toMatchObject({ use_dropout: false, netG: "resnet_9blocks", ngf: 64 });
      const g = CycleGANGenerator.randomInit({ ngf: 2, netG: "unet_128" }, 1);
      try {
        expect(g.sizeMultiple).toBe(128);
        const x = tf.zeros([1, 64, 64, 3]) as tf.Tensor4D;
        expect(() => g.forward(x)).toThrow(/multiple of 128/);
        x.dispose();
      } finally {
        g.dispose();
      }
    });
  });
}

describe("inferCycleGANConfig", () => {
  it("recovers the fixtures' configs", () => {
    for (const model of MODELS) {
      const { manifest, weights } = loadFixture(model);
      const c = manifest.config;
      expect(inferCycleGANConfig(weights)).toEqual({ input_nc: c.input_nc, output_nc: c.output_nc, ngf: c.ngf, netG: c.netG, norm: c.norm, use_dropout: false });
    }
  });

  it("recovers generated configs, including G_B's swapped channels and resnet dropout", async () => {
    await initBackend("wasm");
    const configs = [
      { input_nc: 3, output_nc: 1, ngf: 4, netG: "resnet_6blocks", norm: "batch", use_dropout: true },
      { input_nc: 1, output_nc: 3, ngf: 2, netG: "unet_256", norm: "instance", use_dropout: false },
      { input_nc: 3, output_nc: 3, ngf: 2, netG: "unet_128", norm: "none", use_dropout: false },
      { input_nc: 3, output_nc: 3, ngf: 6, netG: "resnet_9blocks", norm: "none", use_dropout: false },
    ] as const;
    for (const cfg of configs) {
      const m = CycleGANModel.randomInit(cfg, 1);
      const { G_A, G_B } = m.stateDicts();
      expect(inferCycleGANConfig(G_A)).toEqual(cfg);
      expect(inferCycleGANConfig(G_B!)).toEqual({ ...cfg, input_nc: cfg.output_nc, output_nc: cfg.input_nc });
      m.dispose();
    }
  });
});


describe("exportCycleGAN", () => {
  // The ONNX outputs themselves are checked against the fixtures in onnx-parity.test.ts.
  it("computes the ResNet's head conv on 2x2 blocks (SpaceToDepth), and leaves the U-Net's transposed head", () => {
    const has = (model: string) => {
      const { manifest, weights } = loadFixture(model);
      return Buffer.from(exportCycleGAN(manifest.config, weights)).includes("SpaceToDepth");
    };
    expect(has("resnet_9blocks_instance_ngf8")).toBe(true);
    expect(has("unet_128_batch_ngf2")).toBe(false);
  });
});
