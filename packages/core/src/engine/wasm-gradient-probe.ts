/**
 * Differential probe: runs the forward pass and the gradients of every op our GAN training uses on the
 * wasm backend and on the cpu backend (the reference implementation of TF.js) and reports what throws
 * or disagrees. Kept as a module rather than a one-off script so the test can rerun it after
 * `registerWasmGradientKernels()` and prove the list of failures is empty.
 *
 * Some upstream gradients are wrong on every backend (cpu included), so agreeing with cpu proves
 * nothing for them; a case may carry `reference`, a composition of primitives with trusted gradients,
 * which both backends are then also checked against.
 */
import * as tf from "@tensorflow/tfjs-core";
import { biasAdd } from "./bias-add.ts";
import { instanceNormalize } from "./instance-norm.ts";

export interface TensorSpec {
  shape: number[];
  /** Integer tensors draw from [0, maxInt); float tensors from [-1, 1) or, if positive, [0.5, 1.5). */
  dtype?: "float32" | "int32";
  maxInt?: number;
  positive?: boolean;
}

export interface GradCase {
  name: string;
  /** Inputs the gradient is taken with respect to. */
  diff: TensorSpec[];
  /** Inputs held constant (indices, masks), closed over so tf.grads never sees an int tensor. */
  fixed?: TensorSpec[];
  fn: (d: tf.Tensor[], c: tf.Tensor[]) => tf.Tensor;
  reference?: (d: tf.Tensor[], c: tf.Tensor[]) => tf.Tensor;
}

export interface ProbeResult {
  name: string;
  status: "ok" | "throws" | "mismatch";
  /** Max |wasm - cpu| over the forward output. */
  forwardDiff: number;
  /** Max |wasm - cpu| over all input gradients. */
  gradDiff: number;
  /** Max |backend - reference| over gradients, where the case has a reference. */
  referenceDiff?: number;
  /** Max |cpu - reference|: nonzero means the upstream gradient itself is wrong, not the wasm kernel. */
  cpuReferenceDiff?: number;
  error?: string;
}

/** Seeded so both backends see identical inputs and a failing case reproduces. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

export function randomData(spec: TensorSpec, rand: () => number): Float32Array | Int32Array {
  const size = spec.shape.reduce((a, b) => a * b, 1);
  if (spec.dtype === "int32") {
    const out = new Int32Array(size);
    for (let i = 0; i < size; i++) out[i] = Math.floor(rand() * (spec.maxInt ?? 2));
    return out;
  }
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = spec.positive ? 0.5 + rand() : 2 * rand() - 1;
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    // NaN on one side only must count as a mismatch, which Math.max alone would hide.
    if (Number.isNaN(d)) return Number.isNaN(a[i]) && Number.isNaN(b[i]) ? m : Infinity;
    m = Math.max(m, d);
  }
  return m;
}

interface Evaluation {
  y: Float32Array;
  grads: Float32Array[];
}

function evaluate(
  fn: GradCase["fn"],
  c: GradCase,
  diffData: (Float32Array | Int32Array)[],
  fixedData: (Float32Array | Int32Array)[],
  dySeed: number,
): Evaluation {
  return tf.tidy(() => {
    const d = c.diff.map((s, i) => tf.tensor(diffData[i], s.shape, s.dtype ?? "float32"));
    const k = (c.fixed ?? []).map((s, i) => tf.tensor(fixedData[i], s.shape, s.dtype ?? "float32"));
    const y = fn(d, k);
    // A random upstream gradient rather than ones: with ones, errors that cancel in a sum go unseen.
    const dy = tf.tensor(randomData({ shape: y.shape }, mulberry32(dySeed)), y.shape);
    const grads = tf.grads((...xs: tf.Tensor[]) => fn(xs, k))(d, dy);
    return { y: y.dataSync() as Float32Array, grads: grads.map((g) => g.dataSync() as Float32Array) };
  });
}

function gradsDiff(a: Evaluation, b: Evaluation): number {
  let m = 0;
  for (const [i, g] of a.grads.entries()) m = Math.max(m, maxAbsDiff(g, b.grads[i]));
  return m;
}

/** Runs one case on cpu and on `backend`; leaves `backend` active. */
export async function probeCase(c: GradCase, backend = "wasm", tolerance = 1e-4): Promise<ProbeResult> {
  const rand = mulberry32(hash(c.name));
  const diffData = c.diff.map((s) => randomData(s, rand));
  const fixedData = (c.fixed ?? []).map((s) => randomData(s, rand));
  const dySeed = hash(`${c.name}/dy`);

  await tf.setBackend("cpu");
  let ref: Evaluation;
  let composed: Evaluation | undefined;
  try {
    ref = evaluate(c.fn, c, diffData, fixedData, dySeed);
    composed = c.reference ? evaluate(c.reference, c, diffData, fixedData, dySeed) : undefined;
  } catch (e) {
    // Broken on the reference backend too: an upstream gradient bug, not something a wasm kernel can fix.
    await tf.setBackend(backend);
    return { name: c.name, status: "throws", forwardDiff: NaN, gradDiff: NaN, error: `cpu: ${(e as Error).message.split("\n")[0]}` };
  }
  await tf.setBackend(backend);
  let got: Evaluation;
  try {
    got = evaluate(c.fn, c, diffData, fixedData, dySeed);
  } catch (e) {
    return { name: c.name, status: "throws", forwardDiff: NaN, gradDiff: NaN, error: `${backend}: ${(e as Error).message.split("\n")[0]}` };
  }
  const forwardDiff = maxAbsDiff(ref.y, got.y);
  const gradDiff = gradsDiff(ref, got);
  const referenceDiff = composed ? gradsDiff(composed, got) : undefined;
  const cpuReferenceDiff = composed ? gradsDiff(composed, ref) : undefined;
  const bad = !(forwardDiff <= tolerance && gradDiff <= tolerance && (referenceDiff ?? 0) <= tolerance);
  return { name: c.name, status: bad ? "mismatch" : "ok", forwardDiff, gradDiff, referenceDiff, cpuReferenceDiff };
}

const f32 = (...shape: number[]): TensorSpec => ({ shape });
const pos = (...shape: number[]): TensorSpec => ({ shape, positive: true });

/** Reflection padding from slices, reverses and concats, whose gradients are trusted. */
export function reflectPadReference(x: tf.Tensor4D, p: number): tf.Tensor4D {
  const [, h, w] = x.shape;
  const rows = tf.concat([tf.reverse(tf.slice(x, [0, 1, 0, 0], [-1, p, -1, -1]), 1), x, tf.reverse(tf.slice(x, [0, h - 1 - p, 0, 0], [-1, p, -1, -1]), 1)], 1);
  return tf.concat([tf.reverse(tf.slice(rows, [0, 0, 1, 0], [-1, -1, p, -1]), 2), rows, tf.reverse(tf.slice(rows, [0, 0, w - 1 - p, 0], [-1, -1, p, -1]), 2)], 2);
}

/** depthToSpace (DCR order, NHWC) as reshape/transpose, whose gradients are trusted. */
export function depthToSpaceReference(x: tf.Tensor4D, b: number): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const oc = c / (b * b);
  return tf.reshape(tf.transpose(tf.reshape(x, [n, h, w, b, b, oc]), [0, 1, 3, 2, 4, 5]), [n, h * b, w * b, oc]);
}

/** Symmetric (edge-included) mirror padding of H and W from slices, reverses and concats. */
export function symmetricPadReference(x: tf.Tensor4D, ph: [number, number], pw: [number, number]): tf.Tensor4D {
  const padAxis = (t: tf.Tensor4D, axis: 1 | 2, [b, a]: [number, number]): tf.Tensor4D => {
    const len = t.shape[axis];
    const cut = (start: number, size: number): tf.Tensor4D => {
      const begin = [0, 0, 0, 0];
      const sz = [-1, -1, -1, -1];
      begin[axis] = start;
      sz[axis] = size;
      return tf.reverse(tf.slice(t, begin, sz), axis);
    };
    return tf.concat([cut(0, b), t, cut(len - a, a)], axis);
  };
  return padAxis(padAxis(x, 1, ph), 2, pw);
}

/** Nearest-neighbour 2x upsampling (no align-corners, no half-pixel) as concats; tile's gradient stops at rank 4. */
export function upsample2xReference(x: tf.Tensor4D): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const cols = tf.reshape(tf.concat([x, x], 3), [n, h, 2 * w, c]);
  return tf.reshape(tf.concat([cols, cols], 2), [n, 2 * h, 2 * w, c]);
}

/** 2x2 stride-2 max pooling as a max reduction, whose gradient is tfjs's generic min/max gradient. */
export function maxPool2xReference(x: tf.Tensor4D): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  return tf.max(tf.reshape(x, [n, h / 2, 2, w / 2, 2, c]), [2, 4]);
}

type T4 = tf.Tensor4D;

/** Every op GAN training here relies on, in the configurations our networks use. */
export const GAN_GRADIENT_CASES: GradCase[] = [
  ...(["same", "valid"] as const).flatMap((pad) =>
    [1, 2].map((s): GradCase => ({
      name: `conv2d k3 s${s} ${pad}`,
      diff: [f32(2, 9, 9, 3), f32(3, 3, 3, 8)],
      fn: ([x, f]) => tf.conv2d(x as T4, f as T4, s, pad),
    })),
  ),
  { name: "conv2d k4 s2 same (even kernel)", diff: [f32(2, 8, 8, 4), f32(4, 4, 4, 6)], fn: ([x, f]) => tf.conv2d(x as T4, f as T4, 2, "same") },
  { name: "conv2d k1 s1 valid", diff: [f32(2, 5, 5, 8), f32(1, 1, 8, 3)], fn: ([x, f]) => tf.conv2d(x as T4, f as T4, 1, "valid") },
  { name: "conv2d explicit pad", diff: [f32(1, 7, 7, 3), f32(3, 3, 3, 4)], fn: ([x, f]) => tf.conv2d(x as T4, f as T4, 1, [[0, 0], [1, 2], [2, 1], [0, 0]]) },
  { name: "conv2dTranspose k4 s2 same", diff: [f32(2, 5, 5, 8), f32(4, 4, 3, 8)], fn: ([x, f]) => tf.conv2dTranspose(x as T4, f as T4, [2, 10, 10, 3], 2, "same") },
  { name: "conv2dTranspose k3 s1 same", diff: [f32(2, 6, 6, 4), f32(3, 3, 5, 4)], fn: ([x, f]) => tf.conv2dTranspose(x as T4, f as T4, [2, 6, 6, 5], 1, "same") },
  { name: "conv2dTranspose k4 s2 valid", diff: [f32(1, 5, 5, 4), f32(4, 4, 2, 4)], fn: ([x, f]) => tf.conv2dTranspose(x as T4, f as T4, [1, 12, 12, 2], 2, "valid") },
  { name: "depthwiseConv2d k4 s1 valid (FIR)", diff: [f32(2, 8, 8, 4), f32(4, 4, 4, 1)], fn: ([x, f]) => tf.depthwiseConv2d(x as T4, f as T4, 1, "valid") },
  { name: "depthwiseConv2d k4 s2 valid (FIR down)", diff: [f32(2, 9, 9, 3), f32(4, 4, 3, 1)], fn: ([x, f]) => tf.depthwiseConv2d(x as T4, f as T4, 2, "valid") },
  { name: "depthwiseConv2d k3 s1 same mult2", diff: [f32(1, 7, 7, 3), f32(3, 3, 3, 2)], fn: ([x, f]) => tf.depthwiseConv2d(x as T4, f as T4, 1, "same") },
  { name: "matMul batched", diff: [f32(3, 4, 5), f32(3, 5, 6)], fn: ([a, b]) => tf.matMul(a, b) },
  { name: "matMul batched transposeA/B", diff: [f32(3, 5, 4), f32(3, 6, 5)], fn: ([a, b]) => tf.matMul(a, b, true, true) },
  { name: "matMul 2d", diff: [f32(4, 5), f32(5, 6)], fn: ([a, b]) => tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D) },
  {
    name: "mirrorPad reflect 3",
    diff: [f32(2, 6, 7, 3)],
    fn: ([x]) => tf.mirrorPad(x, [[0, 0], [3, 3], [3, 3], [0, 0]], "reflect"),
    reference: ([x]) => reflectPadReference(x as T4, 3),
  },
  {
    name: "mirrorPad symmetric 2",
    diff: [f32(1, 5, 6, 2)],
    fn: ([x]) => tf.mirrorPad(x, [[0, 0], [2, 1], [1, 2], [0, 0]], "symmetric"),
    reference: ([x]) => symmetricPadReference(x as T4, [2, 1], [1, 2]),
  },
  {
    name: "resizeNearestNeighbor x2",
    diff: [f32(2, 4, 5, 3)],
    fn: ([x]) => tf.image.resizeNearestNeighbor(x as T4, [8, 10]),
    reference: ([x]) => upsample2xReference(x as T4),
  },
  {
    name: "resizeNearestNeighbor x2 square",
    diff: [f32(2, 4, 4, 3)],
    fn: ([x]) => tf.image.resizeNearestNeighbor(x as T4, [8, 8]),
    reference: ([x]) => upsample2xReference(x as T4),
  },
  { name: "resizeBilinear x2", diff: [f32(2, 4, 5, 3)], fn: ([x]) => tf.image.resizeBilinear(x as T4, [8, 10]) },
  { name: "pad", diff: [f32(2, 4, 4, 3)], fn: ([x]) => tf.pad(x, [[0, 0], [1, 2], [2, 1], [0, 0]]) },
  { name: "slice/concat/stack", diff: [f32(2, 6, 6, 3), f32(2, 6, 6, 3)], fn: ([a, b]) => tf.stack([tf.concat([tf.slice(a, [0, 1, 1, 0], [2, 4, 4, 3]), tf.slice(b, [0, 0, 0, 0], [2, 4, 4, 3])], 3), tf.slice(tf.concat([a, b], 3), [0, 2, 2, 0], [2, 4, 4, 6])]) },
  { name: "mean/variance/moments", diff: [f32(2, 5, 5, 4)], fn: ([x]) => { const { mean, variance } = tf.moments(x, [1, 2], true); return tf.add(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), tf.mean(x)); } },
  {
    // engine/instance-norm.ts: one tape node with a hand-written gradient, against the composed kernels' own.
    name: "instanceNormalize (fused gradient)",
    diff: [f32(2, 5, 6, 4)],
    fn: ([x]) => instanceNormalize(x as T4, 1e-5),
    reference: ([x]) => {
      const { mean, variance } = tf.moments(x, [1, 2], true);
      return tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5)));
    },
  },
  {
    // engine/bias-add.ts: one tape node with its own gradient (taken only while a tape records), against tf.add's.
    name: "biasAdd (fused gradient)",
    diff: [f32(2, 5, 6, 4), f32(4)],
    fn: ([x, b]) => biasAdd(x, b),
    reference: ([x, b]) => tf.add(x, b),
  },
  { name: "leakyRelu/relu/tanh/sigmoid/softplus", diff: [f32(3, 7)], fn: ([x]) => tf.addN([tf.leakyRelu(x, 0.2), tf.relu(x), tf.tanh(x), tf.sigmoid(x), tf.softplus(x)]) },
  { name: "sqrt/rsqrt/square", diff: [pos(3, 7)], fn: ([x]) => tf.addN([tf.sqrt(x), tf.rsqrt(x), tf.square(x)]) },
  { name: "gather axis0", diff: [f32(6, 4)], fixed: [{ shape: [9], dtype: "int32", maxInt: 6 }], fn: ([x], [i]) => tf.gather(x, i) },
  { name: "gather axis1", diff: [f32(3, 6, 2)], fixed: [{ shape: [5], dtype: "int32", maxInt: 6 }], fn: ([x], [i]) => tf.gather(x, i, 1) },
  { name: "gatherND", diff: [f32(4, 5, 3)], fixed: [{ shape: [6, 2], dtype: "int32", maxInt: 4 }], fn: ([x], [i]) => tf.gatherND(x, i) },
  { name: "unsortedSegmentSum", diff: [f32(7, 3)], fixed: [{ shape: [7], dtype: "int32", maxInt: 4 }], fn: ([x], [i]) => tf.unsortedSegmentSum(x, i as tf.Tensor1D, 4) },
  { name: "tile/broadcastTo", diff: [f32(1, 3, 1, 2)], fn: ([x]) => tf.add(tf.tile(x, [2, 1, 3, 1]), tf.broadcastTo(x, [2, 3, 3, 2])) },
  { name: "transpose/reshape", diff: [f32(2, 3, 4)], fn: ([x]) => tf.reshape(tf.transpose(x, [2, 0, 1]), [4, 6]) },
  { name: "maxPool 2x2 s2", diff: [f32(2, 6, 6, 3)], fn: ([x]) => tf.maxPool(x as T4, 2, 2, "valid"), reference: ([x]) => maxPool2xReference(x as T4) },
  { name: "maxPool 2x2 s2 non-square", diff: [f32(2, 4, 6, 3)], fn: ([x]) => tf.maxPool(x as T4, 2, 2, "valid"), reference: ([x]) => maxPool2xReference(x as T4) },
  { name: "avgPool 3x3 s2 same (excl. pad)", diff: [f32(2, 7, 7, 3)], fn: ([x]) => tf.avgPool(x as T4, 3, 2, "same") },
  { name: "avgPool 3x3 s2 same even", diff: [f32(1, 8, 8, 2)], fn: ([x]) => tf.avgPool(x as T4, 3, 2, "same") },
  { name: "batchNorm 4d with scale/offset", diff: [f32(2, 4, 4, 3), f32(3), pos(3), f32(3), f32(3)], fn: ([x, m, v, o, s]) => tf.batchNorm(x, m, v, o, s, 1e-3) },
  { name: "batchNorm 4d without scale/offset", diff: [f32(2, 4, 4, 3), f32(3), pos(3)], fn: ([x, m, v]) => tf.batchNorm(x, m, v, undefined, undefined, 1e-3) },
  { name: "batchNorm 2d with scale/offset", diff: [f32(5, 3), f32(3), pos(3), f32(3), f32(3)], fn: ([x, m, v, o, s]) => tf.batchNorm(x, m, v, o, s, 1e-3) },
  { name: "cast/where/abs", diff: [f32(4, 5), f32(4, 5)], fn: ([a, b]) => tf.add(tf.where(tf.greater(a, b), tf.abs(a), tf.mul(b, 2)), tf.cast(tf.cast(a, "float32"), "float32")) },
  { name: "log/exp/clipByValue", diff: [pos(4, 5)], fn: ([x]) => tf.addN([tf.log(x), tf.exp(x), tf.clipByValue(x, 0.8, 1.2)]) },
  { name: "depthToSpace b2", diff: [f32(2, 3, 4, 8)], fn: ([x]) => tf.depthToSpace(x as T4, 2), reference: ([x]) => depthToSpaceReference(x as T4, 2) },
];

/** Runs every case; the caller must have registered both the cpu and the wasm backends. */
export async function probeWasmGradients(cases: GradCase[] = GAN_GRADIENT_CASES, tolerance = 1e-4): Promise<ProbeResult[]> {
  const before = tf.getBackend();
  const results: ProbeResult[] = [];
  for (const c of cases) results.push(await probeCase(c, "wasm", tolerance));
  await tf.setBackend(before);
  return results;
}
