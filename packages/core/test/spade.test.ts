import { readFileSync } from "node:fs";
import { officialDir } from "../../../test/fixtures/index.ts";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import "@tensorflow/tfjs-backend-cpu";
// After the backend import: the Node bundle of tfjs-core must create the engine before this ESM module loads.
import "@tensorflow/tfjs-core/dist/register_all_gradients.js";
import { initBackend, tf } from "../src/engine/backend.ts";
import { registerWasmGradientKernels } from "../src/engine/wasm-gradients.ts";
import { readSafetensors } from "../src/checkpoints/safetensors.ts";
import { toFloat32, type RawTensor, type StateDict } from "../src/checkpoints/tensor.ts";
import { overlayResolved } from "../src/networks/common/spectral-norm.ts";
import { spadeAdapter } from "../src/parity/spade.ts";
import type { ParityCase } from "../src/parity/types.ts";
import {
  buildSemantics,
  LabelMapError,
  parseSpadeConfig,
  pyRound,
  readSpectralState,
  resolveSpectralNorm,
  SpadeConfigError,
  SpadeEncoder,
  SpadeGenerator,
  spectralSigma,
} from "../src/networks/spade/index.ts";

const MODEL = "label6_dontcare_instance_ngf1";
const DIR = path.join(officialDir, "spade", MODEL);

interface Manifest {
  config: Record<string, unknown>;
  weights: { safetensors: string; resolved_spectral_norm: string; spectral_norm_layers: string[] };
  io: { file: string };
  cases: ParityCase[];
}

const manifest = JSON.parse(readFileSync(path.join(DIR, "manifest.json"), "utf8")) as Manifest;
const weights = readSafetensors(readFileSync(path.join(DIR, manifest.weights.safetensors))).tensors;
const resolved = readSafetensors(readFileSync(path.join(DIR, manifest.weights.resolved_spectral_norm))).tensors;
const io = readSafetensors(readFileSync(path.join(DIR, manifest.io.file))).tensors;

function compare(out: Float32Array, expected: RawTensor, atol: number, rtol: number) {
  const exp = toFloat32(expected);
  let maxDiff = 0;
  let ok = out.length === exp.length;
  for (let i = 0; i < exp.length; i++) {
    const d = Math.abs(out[i] - exp[i]);
    if (!(d <= atol + rtol * Math.abs(exp[i]))) ok = false;
    if (!(d <= maxDiff)) maxDiff = d;
  }
  return { maxDiff, ok };
}

/** Runs every manifest case through the adapter; returns one report line per case. */
async function runCases(sd: StateDict, label: string): Promise<string[]> {
  const lines: string[] = [];
  const runner = await spadeAdapter.load(manifest.config, sd);
  try {
    for (const kase of manifest.cases) {
      const t0 = performance.now();
      const outs = await runner.run(kase, io);
      const ms = performance.now() - t0;
      for (const name of [kase.expected, ...(kase.intermediates ?? [])]) {
        const out = outs.get(name);
        const expected = io.get(name)!;
        expect(out, `${kase.name}: ${name} missing`).toBeDefined();
        expect(out!.shape).toEqual(expected.shape);
        const tol = name === kase.expected ? kase : { atol: 0, rtol: 0 };
        const { maxDiff, ok } = compare(out!.data, expected, tol.atol, tol.rtol);
        lines.push(`${tf.getBackend()} ${label} ${kase.name}/${name}: ${ms.toFixed(1)} ms, max|diff| ${maxDiff.toExponential(2)} (atol ${tol.atol})`);
        expect(ok, `${kase.name}/${name}: max|diff| ${maxDiff}`).toBe(true);
      }
    }
  } finally {
    runner.dispose();
  }
  return lines;
}

const report: string[] = [];

beforeAll(async () => {
  await initBackend("wasm");
  registerWasmGradientKernels();
});

afterAll(() => {
  console.log(`spade parity and forward times:\n  ${report.join("\n  ")}`);
});

describe("spade config", () => {
  it("parses the manifest config and derives the same sizes", () => {
    const c = parseSpadeConfig(manifest.config);
    expect([c.semantic_nc, c.sw, c.sh, c.output_hw]).toEqual([8, 2, 2, [64, 64]]);
    expect(c.spade).toEqual({ spectral: true, paramFree: "syncbatch", kernel: 3 });
  });

  it("derives sw/sh like upstream (crop_size is the width, python rounding)", () => {
    const c = parseSpadeConfig({ label_nc: 3, crop_size: 512, aspect_ratio: 2, num_upsampling_layers: "more" });
    expect([c.sw, c.sh, c.output_hw]).toEqual([8, 4, [256, 512]]);
    expect(pyRound(2.5)).toBe(2);
    expect(pyRound(3.5)).toBe(4);
    // sw 5 / 2 = 2.5 rounds to 2 in Python.
    expect(parseSpadeConfig({ label_nc: 3, crop_size: 160, aspect_ratio: 2 }).sh).toBe(2);
    expect(() => parseSpadeConfig({ ...manifest.config, sw: 3 })).toThrow(SpadeConfigError);
    expect(() => parseSpadeConfig({ label_nc: 3, crop_size: 16 })).toThrow(/too small/);
    expect(() => parseSpadeConfig({ label_nc: 3, norm_G: "spectralspadegroup3x3" })).toThrow(SpadeConfigError);
  });
});

describe("spade preprocessing", () => {
  const cfg = parseSpadeConfig(manifest.config);
  const asMap = (t: RawTensor) => ({ data: t.data as BigInt64Array, shape: t.shape });

  it("matches Pix2PixModel.preprocess_input exactly", () => {
    const s = buildSemantics(cfg, asMap(io.get("label")!), asMap(io.get("instance")!));
    const [n, h, w, c] = s.shape;
    const exp = toFloat32(io.get("semantics")!);
    let bad = 0;
    for (let b = 0; b < n; b++)
      for (let k = 0; k < c; k++)
        for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (s.data[((b * h + y) * w + x) * c + k] !== exp[((b * c + k) * h + y) * w + x]) bad++;
    expect(bad).toBe(0);
  });

  it("marks both pixels of every unequal 4-neighbour pair, without border padding", () => {
    const s = buildSemantics({ label_nc: 2, contain_dontcare_label: false, no_instance: false }, { data: [0, 0, 0, 0, 1, 0, 0, 0, 0], shape: [3, 3] }, {
      data: [5, 5, 5, 5, 7, 5, 5, 5, 5],
      shape: [3, 3],
    });
    expect(Array.from({ length: 9 }, (_, i) => s.data[i * 3 + 2])).toEqual([0, 1, 0, 1, 1, 1, 0, 1, 0]);
    expect(s.data[4 * 3 + 1]).toBe(1);
  });

  it("rejects bad labels with the first bad value and its position", () => {
    const label = { data: new Int32Array([0, 1, 7, 9]), shape: [1, 1, 2, 2] };
    const inst = { data: new Int32Array(4), shape: [1, 1, 2, 2] };
    let err: unknown;
    try {
      buildSemantics(cfg, label, inst);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LabelMapError);
    expect((err as LabelMapError).message).toMatch(/value 7 at \(n=0, y=1, x=0\).*0\.\.6/);
    expect((err as LabelMapError).detail).toMatchObject({ map: "label", value: "7", n: 0, y: 1, x: 0 });
    // Without a dontcare class, label_nc itself is out of range.
    const noDc = { label_nc: 6, contain_dontcare_label: false, no_instance: true };
    expect(() => buildSemantics(noDc, { data: [6], shape: [1, 1] })).toThrow(/value 6 .*0\.\.5/);
    expect(() => buildSemantics(noDc, { data: [-1], shape: [1, 1] })).toThrow(LabelMapError);
    expect(() => buildSemantics(noDc, { data: [1.5], shape: [1, 1] })).toThrow(/value 1.5/);
    expect(() => buildSemantics(cfg, { data: [255], shape: [1, 1] }, { data: [0], shape: [1, 1] })).toThrow(/255/);
    expect(buildSemantics(cfg, { data: [255], shape: [1, 1] }, { data: [0], shape: [1, 1] }, { dontcare255: true }).data[6]).toBe(1);
    expect(() => buildSemantics(cfg, { data: [1], shape: [1, 1] })).toThrow(/instance map is required/);
    expect(() => buildSemantics(cfg, { data: [1, 2], shape: [1, 2] }, { data: [1], shape: [1, 1] })).toThrow(/instance map is/);
    expect(() => buildSemantics(cfg, { data: [1, 2], shape: [3] })).toThrow(/shape/);
  });
});

describe("spade spectral norm", () => {
  it("sigma from stored u, v matches weights_resolved (sigma and weight)", () => {
    const mine = resolveSpectralNorm(weights);
    let maxSigmaRel = 0;
    let maxW = 0;
    for (const layer of manifest.weights.spectral_norm_layers) {
      const ref = toFloat32(resolved.get(`${layer}.sigma`)!)[0];
      const got = toFloat32(mine.get(`${layer}.sigma`)!)[0];
      maxSigmaRel = Math.max(maxSigmaRel, Math.abs(got - ref) / Math.abs(ref));
      const rw = toFloat32(resolved.get(`${layer}.weight`)!);
      const mw = toFloat32(mine.get(`${layer}.weight`)!);
      for (let i = 0; i < rw.length; i++) maxW = Math.max(maxW, Math.abs(rw[i] - mw[i]));
      expect(mine.has(`${layer}.weight_orig`)).toBe(false);
    }
    report.push(`sigma vs weights_resolved: max rel ${maxSigmaRel.toExponential(2)}, weight max|diff| ${maxW.toExponential(2)}`);
    expect(maxSigmaRel).toBeLessThan(1e-5);
    expect(maxW).toBeLessThan(1e-5);
  });

  it("reads torch 0.4 layouts (no weight_v) and resolved layouts", () => {
    const layer = "up_0.conv_0";
    const sigma = spectralSigma(weights.get(`${layer}.weight_orig`)!, weights.get(`${layer}.weight_u`)!, weights.get(`${layer}.weight_v`)!);
    // torch 0.4: weight_orig, weight_u and the eval `weight` buffer.
    const legacy = new Map(weights);
    legacy.delete(`${layer}.weight_v`);
    legacy.set(`${layer}.weight`, resolved.get(`${layer}.weight`)!);
    const st = readSpectralState(legacy, layer)!;
    expect(st.origin).toBe("legacy-weight");
    expect(Math.abs(spectralSigma(st.weightOrig, st.u, st.v) - sigma) / sigma).toBeLessThan(1e-5);
    // Resolved: weight + sigma.
    const res = readSpectralState(overlayResolved(weights, resolved), layer)!;
    expect(res.origin).toBe("resolved");
    expect(Math.abs(spectralSigma(res.weightOrig, res.u, res.v) - sigma) / sigma).toBeLessThan(1e-5);
    // No weight_v and no weight: one power iteration from the stored u gives the top singular value estimate.
    legacy.delete(`${layer}.weight`);
    const pi = readSpectralState(legacy, layer)!;
    expect(pi.origin).toBe("legacy-power-iteration");
    expect(spectralSigma(pi.weightOrig, pi.u, pi.v)).toBeGreaterThan(0);
  });

  it("power iteration matches the host formula and stateDict keeps weight_orig/u/v", async () => {
    await tf.setBackend("cpu");
    const g = SpadeGenerator.fromStateDict(manifest.config, weights);
    try {
      const conv = g.spectralConvs().find((c) => c.name === "up_1.conv_0")!;
      const w = weights.get("up_1.conv_0.weight_orig")!;
      const u0 = toFloat32(weights.get("up_1.conv_0.weight_u")!);
      expect(Math.abs(conv.sigma().dataSync()[0] - toFloat32(resolved.get("up_1.conv_0.sigma")!)[0])).toBeLessThan(1e-5);
      conv.powerIteration();
      // Host power iteration: v = normalize(Wᵀu), u = normalize(W v).
      const rows = w.shape[0];
      const cols = w.data.length / rows;
      const wd = toFloat32(w);
      const v = new Float64Array(cols);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) v[c] += wd[r * cols + c] * u0[r];
      const vn = Math.hypot(...v);
      const u = new Float64Array(rows);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) u[r] += (wd[r * cols + c] * v[c]) / vn;
      const un = Math.hypot(...u);
      const gotU = conv.u.dataSync();
      for (let r = 0; r < rows; r++) expect(Math.abs(gotU[r] - u[r] / un)).toBeLessThan(1e-5);
      const sd = g.stateDict();
      expect(sd.has("up_1.conv_0.weight_orig") && sd.has("up_1.conv_0.weight_v") && !sd.has("up_1.conv_0.weight")).toBe(true);
      expect(Array.from(toFloat32(sd.get("up_1.conv_0.weight_u")!))).toEqual(Array.from(gotU));
    } finally {
      g.dispose();
    }
  });
});

for (const backend of ["wasm", "cpu"] as const) {
  describe(`spade parity on ${backend}`, () => {
    beforeAll(async () => {
      expect(await tf.setBackend(backend)).toBe(true);
    });

    it("every fixture case within tolerance (weights.safetensors)", async () => {
      report.push(...(await runCases(weights, "weights")));
    });

    it("every fixture case within tolerance (weights_resolved overlaid)", async () => {
      report.push(...(await runCases(overlayResolved(weights, resolved), "resolved")));
    });

    it("loads a torch 0.4-style checkpoint (no weight_v, eval weight buffer) to the same output", async () => {
      const legacy: StateDict = new Map(weights);
      for (const layer of manifest.weights.spectral_norm_layers) {
        legacy.delete(`${layer}.weight_v`);
        legacy.set(`${layer}.weight`, resolved.get(`${layer}.weight`)!);
      }
      report.push(...(await runCases(legacy, "torch0.4")).filter((l) => l.includes("forward/output")));
    });

    it("round-trips the state dict", () => {
      const g = SpadeGenerator.fromStateDict(manifest.config, weights);
      try {
        const sd = g.stateDict();
        expect([...sd.keys()].sort()).toEqual([...weights.keys()].sort());
        for (const [k, t] of weights) {
          expect(sd.get(k)!.shape, k).toEqual(t.shape);
          expect(Array.from(toFloat32(sd.get(k)!)), k).toEqual(Array.from(toFloat32(t)));
        }
      } finally {
        g.dispose();
      }
    });

    it("rejects a checkpoint that does not fit the config", () => {
      const missing = new Map(weights);
      missing.delete("up_2.norm_1.mlp_beta.bias");
      expect(() => SpadeGenerator.fromStateDict(manifest.config, missing)).toThrow(/missing key up_2.norm_1.mlp_beta.bias/);
      expect(() => SpadeGenerator.fromStateDict({ ...manifest.config, ngf: 2 }, weights)).toThrow(/shape/);
      const extra = new Map(weights).set("up_4.conv_0.bias", weights.get("up_3.conv_0.bias")!);
      expect(() => SpadeGenerator.fromStateDict(manifest.config, extra)).toThrow(/unexpected/);
    });
  });
}

describe("spade randomInit sizes", () => {
  const cases = [
    { label_nc: 4, ngf: 2, crop_size: 64, num_upsampling_layers: "more" },
    { label_nc: 4, ngf: 2, crop_size: 128, num_upsampling_layers: "most", contain_dontcare_label: true },
    { label_nc: 3, ngf: 2, crop_size: 128, aspect_ratio: 2, no_instance: true, norm_G: "spectralspadeinstance3x3" },
    { label_nc: 3, ngf: 2, crop_size: 64, aspect_ratio: 0.5, no_instance: true, norm_G: "spadebatch5x5" },
  ] as const;
  // The plain-JS cpu backend takes seconds per 128-channel SPADE mlp at 128x128, so it runs the smallest config only.
  const runs = [...cases.map((config) => ({ backend: "wasm" as const, config })), { backend: "cpu" as const, config: cases[0] }];
  for (const { backend, config } of runs)
      it(`${backend} ${JSON.stringify(config)}`, async () => {
        await tf.setBackend(backend);
        const c = parseSpadeConfig(config);
        const g = SpadeGenerator.randomInit(config, 7);
        try {
          const [oh, ow] = c.output_hw;
          const sem = tf.tidy(() => tf.cast(tf.oneHot(tf.randomUniform([1, oh, ow], 0, c.semantic_nc, "int32", 3), c.semantic_nc), "float32")) as tf.Tensor4D;
          const t0 = performance.now();
          const y = g.forward(sem);
          const data = await y.data();
          report.push(`${backend} randomInit ${c.num_upsampling_layers} ar=${c.aspect_ratio} -> [${y.shape}]: ${(performance.now() - t0).toFixed(1)} ms`);
          expect(y.shape).toEqual([1, oh, ow, 3]);
          expect(data.every(Number.isFinite)).toBe(true);
          expect(Math.max(...data) - Math.min(...data)).toBeGreaterThan(0);
          // Same seed, same weights.
          const g2 = SpadeGenerator.randomInit(config, 7);
          const y2 = g2.forward(sem);
          expect(Array.from(await y2.data())).toEqual(Array.from(data));
          g2.dispose();
          tf.dispose([sem, y, y2]);
        } finally {
          g.dispose();
        }
      });
});

describe("spade use_vae", () => {
  const config = { label_nc: 3, ngf: 2, crop_size: 256, aspect_ratio: 2, use_vae: true, z_dim: 16, no_instance: true };

  it("encoder shapes, seeded z, deterministic generator output", async () => {
    await tf.setBackend("wasm");
    const c = parseSpadeConfig(config);
    const g = SpadeGenerator.randomInit(config, 1);
    const e = SpadeEncoder.randomInit(config, 2);
    try {
      expect(g.stateDict().get("fc.weight")!.shape).toEqual([16 * 2 * c.sh * c.sw, 16]);
      expect(e.stateDict().has("layer6.0.weight_orig")).toBe(true);
      expect(e.stateDict().has("layer1.0.bias")).toBe(false);
      const style = tf.randomUniform([2, 100, 120, 3], -1, 1, "float32", 5) as tf.Tensor4D;
      const { mu, logvar } = e.encode(style);
      expect(mu.shape).toEqual([2, 16]);
      expect(logvar.shape).toEqual([2, 16]);
      const z1 = e.styleZ(style, 9);
      const z2 = e.styleZ(style, 9);
      const z3 = e.styleZ(style, 10);
      expect(Array.from(z1.dataSync())).toEqual(Array.from(z2.dataSync()));
      expect(Array.from(z1.dataSync())).not.toEqual(Array.from(z3.dataSync()));
      const [oh, ow] = c.output_hw;
      const sem = tf.tidy(() => tf.cast(tf.oneHot(tf.randomUniform([2, oh, ow], 0, c.semantic_nc, "int32", 3), c.semantic_nc), "float32")) as tf.Tensor4D;
      const withStyle = g.forward(sem, { z: z1 });
      const seeded = g.forward(sem, { seed: 4 });
      const seededAgain = g.forward(sem, { seed: 4 });
      const otherSeed = g.forward(sem, { seed: 5 });
      expect(withStyle.shape).toEqual([2, oh, ow, 3]);
      expect(Array.from(seeded.dataSync())).toEqual(Array.from(seededAgain.dataSync()));
      expect(Array.from(seeded.dataSync())).not.toEqual(Array.from(otherSeed.dataSync()));
      expect(withStyle.dataSync().every(Number.isFinite)).toBe(true);
      expect(() => g.forward(sem, { z: tf.zeros([2, 3]) as tf.Tensor2D })).toThrow(/z must be/);
      // Round trip of the encoder weights.
      const e2 = SpadeEncoder.fromStateDict(config, e.stateDict());
      const mu2 = e2.encode(style).mu;
      expect(Array.from(mu2.dataSync())).toEqual(Array.from(mu.dataSync()));
      e2.dispose();
      tf.dispose([style, mu, logvar, z1, z2, z3, sem, withStyle, seeded, seededAgain, otherSeed, mu2]);
    } finally {
      g.dispose();
      e.dispose();
    }
    expect(() => SpadeEncoder.randomInit({ ...config, crop_size: 128 }, 1)).toThrow(/crop_size >= 256/);
  });
});

describe("spade training mode", () => {
  for (const backend of ["wasm", "cpu"] as const)
    it(`${backend}: gradients reach weight_orig and SPADE mlps; u/v and running stats are not trainable`, async () => {
      await tf.setBackend(backend);
      const config = { label_nc: 3, ngf: 1, crop_size: 32, num_upsampling_layers: "normal", no_instance: true };
      // crop_size 32 gives sw = 1; batch 2 so the 1x1 head still has batch statistics with spread.
      const g = SpadeGenerator.randomInit(config, 3);
      try {
        const vars = g.trainableVariables();
        expect(vars.has("up_0.conv_0.weight_orig")).toBe(true);
        expect(vars.has("up_0.conv_0.weight_u")).toBe(false);
        expect(vars.has("up_0.norm_0.param_free_norm.running_mean")).toBe(false);
        const sem = tf.tidy(() => tf.cast(tf.oneHot(tf.randomUniform([2, 32, 32], 0, 3, "int32", 1), 3), "float32")) as tf.Tensor4D;
        g.powerIteration();
        const { value, grads } = tf.variableGrads(() => tf.mean(tf.square(g.forward(sem, { training: true }))) as tf.Scalar, [...vars.values()]);
        expect(Number.isFinite(value.dataSync()[0])).toBe(true);
        const name = (n: string) => grads[vars.get(n)!.name];
        for (const n of ["up_0.conv_0.weight_orig", "head_0.norm_0.mlp_gamma.weight", "fc.weight", "conv_img.bias"]) {
          const gd = name(n).dataSync();
          expect(gd.every(Number.isFinite), n).toBe(true);
          expect(gd.some((v) => v !== 0), n).toBe(true);
        }
        tf.dispose([sem, value, ...Object.values(grads)]);
      } finally {
        g.dispose();
      }
    });
});
