/**
 * The TF.js FID Inception-v3 (src/eval/inception.ts) against pytorch-fid, with no weights download: the
 * network gets weights defined by a formula of (parameter name, element index), and
 * scripts/inception-fixture.py builds pytorch-fid's network in PyTorch with the same formula weights, runs the
 * same formula images through pytorch-fid's resize + normalise + forward and stores the expected features in
 * fixtures/inception/features.json. Also: reading a torch.save zip written by torch (fixtures/inception/stem.pth),
 * errors for missing / mis-shaped / wrong-network weights, and the Fréchet distance used for 2048-d features.
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CheckpointError, loadCheckpoint } from "../src/checkpoints/index.ts";
import type { StateDict } from "../src/checkpoints/tensor.ts";
import { featureStats, frechetDistance } from "../src/eval/fid.ts";
import { frechetDistanceWide, symmetricEigenvalues, transposedCholesky } from "../src/eval/inception-fid.ts";
import { convKeys, INCEPTION_CONVS, INCEPTION_FEATURE_DIM, inceptionFeatures, InceptionV3, preprocess, rgbBatch } from "../src/eval/inception.ts";
import type { RgbImage } from "../src/images/codec.ts";
import { symmetricEigen } from "../src/eval/linalg.ts";

const FIXTURES = path.join(import.meta.dirname, "fixtures", "inception");

/**
 * Tolerance on every compared value (features are O(1), up to ~7). Measured max |TF.js − PyTorch| over the
 * three images and all four outputs: wasm 7.6e-6, cpu 7.2e-6 (pool3 of the 331×307 image; 2.5e-6 for block0).
 * For scale, getting a detail wrong moves pool3 by far more: resizeBilinear without halfPixelCenters 3e-2 to
 * 9e-2, an average pool that counts the zero padding 0.3 to 0.5.
 */
const ATOL = 5e-5;

// ------------------------------------------------------------- the formula (scripts/inception-fixture.py)

/** Σ (i+1)·charCode(name[i]) mod 2^32 (name_seed). */
function nameSeed(name: string): number {
  let s = 0;
  for (let i = 0; i < name.length; i++) s = (s + (i + 1) * name.charCodeAt(i)) >>> 0;
  return s;
}

/** Element k of `unit(name)`: murmur3's fmix32 of (k + seed·0x9E3779B9) mod 2^32, over 2^32 — integer-exact in both languages. */
function unit(k: number, base: number): number {
  let h = (k + base) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}

/** `formula(name, shape)`: float64 arithmetic rounded to float32 once, as numpy's astype(float32). */
function formula(name: string, shape: number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const base = Math.imul(nameSeed(name), 0x9e3779b9) >>> 0;
  let f: (u: number) => number;
  if (name.endsWith("conv.weight")) {
    const s = Math.sqrt(6 / (n / shape[0]));
    f = (u) => (2 * u - 1) * s;
  } else if (name.endsWith("bn.weight") || name.endsWith("bn.running_var")) f = (u) => 0.8 + 0.4 * u;
  else if (name.endsWith("bn.bias") || name.endsWith("bn.running_mean")) f = (u) => 0.2 * u - 0.1;
  else throw new Error(`no formula for ${name}`);
  const out = new Float32Array(n);
  for (let k = 0; k < n; k++) out[k] = f(unit(k, base));
  return out;
}

function formulaStateDict(): StateDict {
  const sd: StateDict = new Map();
  for (const spec of INCEPTION_CONVS) for (const [key, shape] of convKeys(spec)) sd.set(key, { dtype: "F32", shape, data: formula(key, shape) });
  return sd;
}

/** `image(i, w, h)`: 8-bit RGB, v = (3x² + 5y² + (c+1)·x·y + 17c + 41i) mod 256. */
function image(i: number, width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = (3 * x * x + 5 * y * y + (c + 1) * x * y + 17 * c + 41 * i) % 256;
  return { data, width, height };
}

// ------------------------------------------------------------- fixture and comparison

interface FixtureImage {
  width: number;
  height: number;
  block0_mean: number[];
  block1_mean: number[];
  block2_mean: number[];
  pool3: number[];
}
const fixture = JSON.parse(readFileSync(path.join(FIXTURES, "features.json"), "utf8")) as { images: FixtureImage[] };
const OUTPUTS = ["block0_mean", "block1_mean", "block2_mean", "pool3"] as const;

function maxAbsDiff(got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length).toBe(want.length);
  let m = 0;
  for (let i = 0; i < want.length; i++) m = Math.max(m, Math.abs(got[i] - want[i]));
  return m;
}

/** Every output of one fixture image on the current backend; returns the largest difference. */
async function compareImage(net: InceptionV3, i: number): Promise<number> {
  const im = fixture.images[i];
  const outs = tf.tidy(() => {
    const b = net.blocks(preprocess(rgbBatch([image(i, im.width, im.height)])));
    return [tf.mean(b.block0, [1, 2]), tf.mean(b.block1, [1, 2]), tf.mean(b.block2, [1, 2]), b.pool3];
  });
  const got = await Promise.all(outs.map((o) => o.data()));
  tf.dispose(outs);
  let worst = 0;
  OUTPUTS.forEach((key, j) => {
    const d = maxAbsDiff(got[j], im[key]);
    expect(d, `${tf.getBackend()} image ${i} (${im.width}×${im.height}) ${key}`).toBeLessThan(ATOL);
    worst = Math.max(worst, d);
  });
  return worst;
}

describe("FID Inception-v3 against pytorch-fid (formula weights)", () => {
  let net: InceptionV3;
  const sd = formulaStateDict();

  beforeAll(async () => {
    await tf.setBackend("wasm");
    await tf.ready();
    net = InceptionV3.fromStateDict(sd, "formula");
  });
  afterAll(() => net?.dispose());

  it("has pytorch-fid's 94 convolutions and 21.8 M feature parameters", () => {
    expect(INCEPTION_CONVS.length).toBe(94);
    let n = 0;
    for (const t of sd.values()) n += t.data.length;
    // scripts/inception-fixture.py counts 23 885 392 values with fc (2048·1008 + 1008); without it:
    expect(n).toBe(23_885_392 - 2048 * 1008 - 1008);
  });

  it("matches PyTorch on every block for up- and downsampled inputs (wasm)", async () => {
    const worst = [];
    for (let i = 0; i < fixture.images.length; i++) worst.push(await compareImage(net, i));
    console.log(`max |TF.js wasm − PyTorch| per image: ${worst.map((d) => d.toExponential(2)).join(", ")}`);
  });

  it("inceptionFeatures batches same-sized images and keeps the input order", async () => {
    const [a, b] = fixture.images;
    const images = [image(0, a.width, a.height), image(1, b.width, b.height), image(0, a.width, a.height), image(0, a.width, a.height)];
    const seen: number[] = [];
    const f = await inceptionFeatures(net, images, { batch: 8, onProgress: (p) => seen.push(p.done) });
    expect(seen).toEqual([1, 2, 4]); // 32×32 | 64×48 | 32×32 ×2
    const want = [a.pool3, b.pool3, a.pool3, a.pool3];
    for (const [r, w] of want.entries()) expect(maxAbsDiff(f.subarray(r * INCEPTION_FEATURE_DIM, (r + 1) * INCEPTION_FEATURE_DIM), w)).toBeLessThan(ATOL);
  });

  it("gives FID(X, X) = 0 and FID(X, Y) > 0 on its features", async () => {
    const x = await inceptionFeatures(net, [0, 1, 2, 3].map((i) => image(i, 32, 32)));
    expect(frechetDistanceWide(x, 4, x, 4, INCEPTION_FEATURE_DIM)).toBeLessThan(1e-6);
    const y = await inceptionFeatures(net, [4, 5, 6, 7].map((i) => image(i, 48, 40)));
    expect(frechetDistanceWide(x, 4, y, 4, INCEPTION_FEATURE_DIM)).toBeGreaterThan(1e-2);
  });

  it("matches PyTorch on the cpu backend too (downsampled image)", async () => {
    await tf.setBackend("cpu");
    const cpuNet = InceptionV3.fromStateDict(sd, "formula");
    try {
      console.log(`max |TF.js cpu − PyTorch|: ${(await compareImage(cpuNet, 2)).toExponential(2)}`);
    } finally {
      cpuNet.dispose();
      await tf.setBackend("wasm");
    }
  });
});

describe("loading Inception weights", () => {
  beforeAll(async () => {
    await tf.setBackend("wasm");
    await tf.ready();
  });

  function expectLoadError(sd: StateDict, pattern: RegExp) {
    let err: unknown;
    try {
      InceptionV3.fromStateDict(sd, "weights.pth").dispose();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).toMatch(/^weights\.pth: /);
    expect((err as Error).message).toMatch(pattern);
  }

  /** A state dict with the right keys and shapes (zeros: only the loader's checks are under test). */
  function shapesOnly(): StateDict {
    const sd: StateDict = new Map();
    for (const spec of INCEPTION_CONVS) for (const [key, shape] of convKeys(spec)) sd.set(key, { dtype: "F32", shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
    return sd;
  }

  it("reads torch's own zip format (stem.pth written by torch.save) with pytorch-fid's key names", async () => {
    const file = path.join(FIXTURES, "stem.pth");
    const { format, stateDict } = await loadCheckpoint(new Uint8Array(readFileSync(file)), "stem.pth");
    expect(format).toBe("torch-zip");
    for (const [key, shape] of convKeys(INCEPTION_CONVS[0])) {
      const t = stateDict.get(key)!;
      expect(t.shape).toEqual(shape);
      expect(t.data).toEqual(formula(key, shape)); // bit-exact: the formula is the same in both languages
    }
    expect(stateDict.get("Conv2d_1a_3x3.bn.num_batches_tracked")?.data).toEqual(new BigInt64Array([7n]));
    // A state dict that stops after the stem names the first key it lacks.
    let err: unknown;
    try {
      InceptionV3.fromStateDict(stateDict, "stem.pth");
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).toBe("stem.pth: Conv2d_2a_3x3.conv.weight is missing (expected a [32,32,3,3] tensor): not pytorch-fid's FID Inception weights");
  });

  it("names a missing key", () => {
    const sd = shapesOnly();
    sd.delete("Mixed_7c.branch_pool.bn.running_var");
    expectLoadError(sd, /Mixed_7c\.branch_pool\.bn\.running_var is missing/);
  });

  it("names a mis-shaped key and both shapes", () => {
    const sd = shapesOnly();
    sd.set("Mixed_6b.branch7x7_2.conv.weight", { dtype: "F32", shape: [128, 128, 7, 1], data: new Float32Array(128 * 128 * 7) });
    expectLoadError(sd, /Mixed_6b\.branch7x7_2\.conv\.weight is \[128,128,7,1\], expected \[128,128,1,7\]/);
  });

  it("refuses an integer tensor where weights belong", () => {
    const sd = shapesOnly();
    sd.set("Conv2d_1a_3x3.bn.weight", { dtype: "I64", shape: [32], data: new BigInt64Array(32) });
    expectLoadError(sd, /Conv2d_1a_3x3\.bn\.weight is I64/);
  });

  it("tells torchvision's ImageNet Inception apart (1000 classes, aux head)", () => {
    const sd = shapesOnly();
    sd.set("fc.weight", { dtype: "F32", shape: [1000, 2048], data: new Float32Array(0) });
    expectLoadError(sd, /torchvision's ImageNet Inception-v3/);
    const aux = shapesOnly();
    aux.set("AuxLogits.fc.weight", { dtype: "F32", shape: [1008, 768], data: new Float32Array(0) });
    expectLoadError(aux, /AuxLogits/);
    const fid = shapesOnly();
    fid.set("fc.weight", { dtype: "F32", shape: [1008, 2048], data: new Float32Array(0) });
    fid.set("Conv2d_1a_3x3.bn.num_batches_tracked", { dtype: "I64", shape: [], data: new BigInt64Array(1) });
    InceptionV3.fromStateDict(fid, "weights.pth").dispose(); // the release file's extra keys are fine
  });
});

describe("Fréchet distance for wide features", () => {
  let seed = 7;
  const rnd = () => {
    seed = (seed * 16807) % 2147483647;
    return seed / 2147483647;
  };
  /** ReLU-like features with per-dimension scales, some dimensions always zero, one a sum of two others. */
  function features(n: number, dim: number, shift: number): Float32Array {
    const f = new Float32Array(n * dim);
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < dim; j++) f[r * dim + j] = j % 7 === 3 ? 0 : Math.max(0, rnd() * (1 + j / dim) - 0.3 + shift);
      f[r * dim + dim - 1] = f[r * dim] + f[r * dim + 1];
    }
    return f;
  }

  it("equals fid.ts's frechetDistance with fewer, more and mixed samples than dimensions", () => {
    const dim = 24;
    for (const [n1, n2] of [[10, 15], [60, 80], [10, 80], [80, 10], [2, 2], [25, 24]]) {
      const a = features(n1, dim, 0);
      const b = features(n2, dim, 0.1);
      const ref = frechetDistance(featureStats(a, n1, dim), featureStats(b, n2, dim));
      expect(Math.abs(frechetDistanceWide(a, n1, b, n2, dim) - ref), `${n1} vs ${n2}`).toBeLessThan(1e-9 * ref);
      expect(frechetDistanceWide(a, n1, a, n1, dim)).toBeLessThan(1e-9);
    }
  });

  it("has the eigenvalues of the Jacobi decomposition and a Cholesky factor that rebuilds a singular PSD matrix", () => {
    const n = 40;
    const m = new Float64Array(n * n);
    for (let i = 0; i < n; i++)
      for (let j = 0; j <= i; j++) {
        const v = rnd() - 0.5;
        m[i * n + j] = v;
        m[j * n + i] = v;
      }
    const ours = symmetricEigenvalues(m, n);
    const jacobi = symmetricEigen(m, n).values;
    expect(maxAbsDiff(ours, jacobi)).toBeLessThan(1e-12);

    const f = features(30, n, 0); // rank < 40: constant and dependent dimensions
    const { cov } = featureStats(f, 30, n);
    const u = transposedCholesky(cov, n);
    const rebuilt = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) rebuilt[i * n + j] += u[k * n + i] * u[k * n + j];
    expect(maxAbsDiff(rebuilt, cov)).toBeLessThan(1e-9);
  });
});
