/**
 * Spectral norm's training-time arithmetic on wasm as single kernels: the power-iteration step, sigma, and the
 * gradient of weight_orig / sigma. Built from tf ops, each costs a transpose of the whole HWIO weight into
 * torch's [out, in·kh·kw] matrix plus a chain of small matVec, norm and reshape kernels: a SPADE demo step
 * (18 spectral convs in G, each power-iterated twice and differentiated once) ran 4,726 kernels, 3,444 with
 * these (`npm run bench:train -- --families spade --profile`); on wasm a dispatch costs more than these
 * matVecs' arithmetic. The kernels here read the HWIO weight in place (row r = (ky, kx, in), column =
 * out) and translate v's index to torch's (in, ky, kx) order, so u and v keep the official layout.
 * Sums run in float64 (the tf ops sum in float32): the results agree with the op form to float32 rounding,
 * which the gradient check in the tests bounds. Other backends keep the op form.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WasmMemoryBackend } from "./split-flat.ts";

/** PyTorch's F.normalize eps in spectral_norm. */
export const NORMALIZE_EPS = 1e-12;

const POWER = "GanserveSpectralPowerIteration";
const SIGMA = "GanserveSpectralSigma";
const WEIGHT_GRAD = "GanserveSpectralWeightGrad";

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

/** Row r of the HWIO weight as a [rows, out] matrix holds torch's column `index[r]` (in, ky, kx order). */
function torchColumns(shape: number[]): Int32Array {
  const [kh, kw, cin] = shape;
  const index = new Int32Array(kh * kw * cin);
  for (let y = 0, r = 0; y < kh; y++) for (let x = 0; x < kw; x++) for (let i = 0; i < cin; i++, r++) index[r] = (i * kh + y) * kw + x;
  return index;
}

const columnCache = new Map<string, Int32Array>();
function columnsFor(shape: number[]): Int32Array {
  const key = shape.join("x");
  let c = columnCache.get(key);
  if (!c) {
    c = torchColumns(shape);
    columnCache.set(key, c);
  }
  return c;
}

function normalizeInPlace(x: Float64Array): void {
  let n = 0;
  for (let i = 0; i < x.length; i++) n += x[i] * x[i];
  const d = Math.max(Math.sqrt(n), NORMALIZE_EPS);
  for (let i = 0; i < x.length; i++) x[i] /= d;
}

/*
 * The two products over the HWIO weight as a row-major [rows, out] matrix. Four accumulators in the first and
 * four rows per sweep in the second: a third fewer loads and stores than the plain loops (V8, a 1152 × 128
 * weight: 0.23 ms against 0.35 ms per power-iteration step).
 */

/** dst[r] = Σ_o w[r, o] · u[o]. */
function rowDots(w: Float32Array, u: ArrayLike<number>, dst: Float64Array): void {
  const out = u.length;
  for (let r = 0; r < dst.length; r++) {
    const base = r * out;
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    let o = 0;
    for (; o + 3 < out; o += 4) {
      a0 += w[base + o] * u[o];
      a1 += w[base + o + 1] * u[o + 1];
      a2 += w[base + o + 2] * u[o + 2];
      a3 += w[base + o + 3] * u[o + 3];
    }
    for (; o < out; o++) a0 += w[base + o] * u[o];
    dst[r] = a0 + a1 + a2 + a3;
  }
}

/** dst[o] = Σ_r w[r, o] · v[r]. */
function columnSums(w: Float32Array, v: Float64Array, dst: Float64Array): void {
  const out = dst.length;
  dst.fill(0);
  let r = 0;
  for (; r + 3 < v.length; r += 4) {
    const v0 = v[r];
    const v1 = v[r + 1];
    const v2 = v[r + 2];
    const v3 = v[r + 3];
    const b0 = r * out;
    const b1 = b0 + out;
    const b2 = b1 + out;
    const b3 = b2 + out;
    for (let o = 0; o < out; o++) dst[o] += w[b0 + o] * v0 + w[b1 + o] * v1 + w[b2 + o] * v2 + w[b3 + o] * v3;
  }
  for (; r < v.length; r++) {
    const vr = v[r];
    const base = r * out;
    for (let o = 0; o < out; o++) dst[o] += w[base + o] * vr;
  }
}

/** v = normalize(Wᵀu), u = normalize(W v), `steps` times; outputs [u, v]. */
function powerIterationKernel({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const b = backend as WasmMemoryBackend;
  const { w, u, v } = inputs as Record<string, tf.TensorInfo>;
  const steps = (attrs as unknown as { steps: number }).steps;
  const uOut = b.makeOutput([...u.shape], "float32");
  const vOut = b.makeOutput([...v.shape], "float32");
  const cols = columnsFor(w.shape);
  const wv = b.typedArrayFromHeap(w);
  const uu = Float64Array.from(b.typedArrayFromHeap(u));
  const vv = new Float64Array(cols.length);
  for (let s = 0; s < steps; s++) {
    rowDots(wv, uu, vv);
    normalizeInPlace(vv);
    columnSums(wv, vv, uu);
    normalizeInPlace(uu);
  }
  b.typedArrayFromHeap(uOut).set(uu);
  const vDst = b.typedArrayFromHeap(vOut);
  for (let r = 0; r < cols.length; r++) vDst[cols[r]] = vv[r];
  return [uOut, vOut];
}

/** sigma = u · (W v) with v in torch's order: a scalar. */
function sigmaKernel({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const b = backend as WasmMemoryBackend;
  const { w, u, v } = inputs as Record<string, tf.TensorInfo>;
  const res = b.makeOutput([], "float32");
  const cols = columnsFor(w.shape);
  const wu = new Float64Array(cols.length);
  rowDots(b.typedArrayFromHeap(w), b.typedArrayFromHeap(u), wu);
  const vs = b.typedArrayFromHeap(v);
  let sigma = 0;
  for (let r = 0; r < cols.length; r++) sigma += wu[r] * vs[cols[r]];
  b.typedArrayFromHeap(res)[0] = sigma;
  return res;
}

/**
 * Gradient of W = orig / sigma, sigma = u · (orig v), with u and v constants (as torch's spectral_norm):
 *   d orig = (dW − ⟨dW, W⟩ · v uᵀ) / sigma.
 */
function weightGradKernel({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const b = backend as WasmMemoryBackend;
  const { dy, w, u, v, sigma } = inputs as Record<string, tf.TensorInfo>;
  const res = b.makeOutput([...w.shape], "float32");
  const cols = columnsFor(w.shape);
  const [g, wv, uv, vv, dst] = [dy, w, u, v, res].map((t) => b.typedArrayFromHeap(t));
  const s = b.typedArrayFromHeap(sigma)[0];
  let dot = 0;
  for (let i = 0; i < g.length; i++) dot += g[i] * wv[i];
  const out = uv.length;
  for (let r = 0; r < cols.length; r++) {
    const dv = dot * vv[cols[r]];
    const base = r * out;
    for (let o = 0; o < out; o++) dst[base + o] = (g[base + o] - dv * uv[o]) / s;
  }
  return res;
}

const KERNELS: Array<[string, tf.KernelFunc]> = [
  [POWER, powerIterationKernel as unknown as tf.KernelFunc],
  [SIGMA, sigmaKernel as unknown as tf.KernelFunc],
  [WEIGHT_GRAD, weightGradKernel as unknown as tf.KernelFunc],
];

/** Whether the kernels apply: wasm, float32, and a 4-d HWIO weight. */
function onWasm(orig: tf.Tensor): boolean {
  if (tf.getBackend() !== "wasm" || orig.rank !== 4 || orig.dtype !== "float32") return false;
  for (const [kernelName, kernelFunc] of KERNELS) if (!tf.getKernel(kernelName, "wasm")) tf.registerKernel({ kernelName, backendName: "wasm", kernelFunc });
  return true;
}

/** W.reshape(out, -1) of an HWIO weight, in PyTorch's element order (in, kh, kw). */
function spectralMatrix(orig: tf.Tensor): tf.Tensor2D {
  return tf.reshape(tf.transpose(orig, [3, 2, 0, 1]), [orig.shape[3] as number, -1]);
}

/**
 * sigma = u · (W.reshape(out, -1) @ v) from the given u and v (no power iteration, as torch's eval), as tf ops on
 * every backend: eval and inference outputs stay what they were before the kernels existed.
 */
export function spectralSigma(orig: tf.Tensor, u: tf.Tensor, v: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.sum(tf.mul(u, tf.squeeze(tf.matMul(spectralMatrix(orig), tf.expandDims(v, 1)), [1]))) as tf.Scalar);
}

/** `steps` training-mode power-iteration steps from (u, v) on the HWIO weight: the new [u, v]. */
export function powerIteration(orig: tf.Tensor, u: tf.Tensor1D, v: tf.Tensor1D, steps: number): [tf.Tensor1D, tf.Tensor1D] {
  // With no step the op form would hand back u and v themselves, which callers dispose as new tensors.
  if (!(steps >= 1)) throw new Error(`powerIteration: steps must be at least 1 (got ${steps})`);
  if (onWasm(orig)) return tf.engine().runKernel(POWER, { w: orig, u, v }, { steps } as unknown as tf.NamedAttrMap) as unknown as [tf.Tensor1D, tf.Tensor1D];
  return tf.tidy(() => {
    const w = spectralMatrix(orig);
    const unit = (x: tf.Tensor1D) => tf.div(x, tf.maximum(tf.sqrt(tf.sum(tf.square(x))), NORMALIZE_EPS)) as tf.Tensor1D;
    for (let i = 0; i < steps; i++) {
      v = unit(tf.squeeze(tf.matMul(w, tf.expandDims(u, 1), true, false), [1]) as tf.Tensor1D);
      u = unit(tf.squeeze(tf.matMul(w, tf.expandDims(v, 1)), [1]) as tf.Tensor1D);
    }
    return [u, v];
  });
}

/**
 * The weight orig / sigma (HWIO), differentiable w.r.t. orig; u and v are constants, as in torch. On wasm while a
 * tape records it is one tape node (forward: the sigma kernel and a div; backward: one kernel) where the op form
 * records ten nodes and differentiates them with ~16 kernels. First-order only, like engine/instance-norm.ts.
 * A `training` forward without a tape (SPADE's D step regenerates its fakes so) takes the sigma kernel too; eval
 * keeps the op form, so inference outputs stay what they were.
 */
export function spectralWeight(orig: tf.Tensor4D, u: tf.Tensor, v: tf.Tensor, training = false): tf.Tensor4D {
  const tape = tf.engine().isTapeOn();
  if (!(tape || training) || !onWasm(orig)) return tf.tidy(() => tf.div(orig, spectralSigma(orig, u, v)) as tf.Tensor4D);
  if (!tape) return tf.tidy(() => tf.div(orig, tf.engine().runKernel(SIGMA, { w: orig, u, v }) as tf.Scalar) as tf.Tensor4D);
  const fused = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x, save] = args as [tf.Tensor4D, tf.GradSaveFunc];
    const sigma = tf.engine().runKernel(SIGMA, { w: x, u, v }) as tf.Scalar;
    const w = tf.div(x, sigma) as tf.Tensor4D;
    save([w, sigma, u, v]);
    return {
      value: w,
      gradFunc: (dy: tf.Tensor, [ws, ss, us, vs]: tf.Tensor[]) => tf.engine().runKernel(WEIGHT_GRAD, { dy, w: ws, u: us, v: vs, sigma: ss }) as tf.Tensor,
    };
  }) as (x: tf.Tensor4D) => tf.Tensor4D;
  return fused(orig);
}
