/**
 * The eager (TF.js) kernels behind `ParamStore`'s side of the op interface, with PyTorch semantics on NHWC
 * tensors. Conv weights arrive in the TF layouts `ParamStore` keeps them in (Conv2d HWIO, ConvTranspose2d
 * HW-out-in).
 */
import * as tf from "@tensorflow/tfjs-core";
import { biasAdd } from "../../engine/bias-add.ts";
import { instanceNormalize } from "../../engine/instance-norm.ts";
import * as spectral from "../../engine/spectral.ts";
import { conv2dResample } from "../common/conv2d_resample.ts";
import type { BatchNormParams, ConvTransposeOptions, SpectralParams } from "./ops.ts";

/**
 * nn.Conv2d's forward on NHWC: explicit symmetric padding (TF's 'same' would pad asymmetrically for even
 * kernels with stride 2), then the bias.
 */
export function conv2dSymmetric(x: tf.Tensor4D, weight: tf.Tensor4D, stride: number, padding: number, bias?: tf.Tensor): tf.Tensor4D {
  const p = padding;
  const pad: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [p, p], [p, p], [0, 0]];
  const y = tf.conv2d(x, weight, stride, p === 0 ? "valid" : pad);
  return bias ? biasAdd(y, bias) : y;
}

/** sigma = u · (W.reshape(out, -1) @ v) from the stored u and v (no power iteration, as torch's eval). */
export function spectralSigma(p: SpectralParams<tf.Tensor>): tf.Scalar {
  return spectral.spectralSigma(p.orig, p.u, p.v);
}

/** The eval weight weight_orig / sigma, HWIO; differentiable w.r.t. weight_orig (u and v are constants, as in torch). */
export function spectralWeight(p: SpectralParams<tf.Tensor>, training = false): tf.Tensor4D {
  return spectral.spectralWeight(p.orig as tf.Tensor4D, p.u, p.v, training);
}

/** nn.ReflectionPad2d(p): mirror without repeating the edge; PyTorch requires p < H and p < W, and so do we. */
export function reflectionPad2d(x: tf.Tensor4D, p: number): tf.Tensor4D {
  if (p === 0) return x;
  const [, h, w] = x.shape;
  if (p >= h || p >= w) throw new Error(`reflection padding ${p} needs a spatial size above ${p}, got ${h}x${w}`);
  return tf.mirrorPad(x, [[0, 0], [p, p], [p, p], [0, 0]], "reflect");
}

export function instanceNorm(x: tf.Tensor4D, eps: number, weight?: tf.Tensor, bias?: tf.Tensor): tf.Tensor4D {
  let y = instanceNormalize(x, eps);
  if (weight && bias) y = tf.add(tf.mul(y, weight), bias);
  return y;
}

/**
 * Training normalises with the batch statistics and leaves the running buffers alone, so the forward stays a
 * pure function of its inputs (PyTorch's momentum update of the buffers is not reproduced).
 */
export function batchNorm(x: tf.Tensor4D, p: BatchNormParams<tf.Tensor>, training: boolean): tf.Tensor4D {
  let mean: tf.Tensor = p.mean;
  let variance: tf.Tensor = p.variance;
  if (training) ({ mean, variance } = tf.moments(x, [0, 1, 2]));
  let scale = tf.rsqrt(tf.add(variance, p.eps));
  if (p.weight) scale = tf.mul(scale, p.weight);
  const y = tf.mul(tf.sub(x, mean), scale) as tf.Tensor4D;
  return p.bias ? tf.add(y, p.bias) : y;
}

export type ConvTransposeMethod = "subpixel" | "native";

let forcedMethod: ConvTransposeMethod | undefined;

/**
 * Which kernel strided transposed convs use. By default the phase decomposition on wasm, whose Conv2D is about
 * 4x faster than its Conv2DBackpropInput (unet_256 ngf 64 at 256²: 0.57 s vs 2.4 s per forward), and the
 * backend's own transposed conv elsewhere (on the JS cpu backend it is the faster one). `undefined` restores the
 * default.
 */
export function setConvTransposeMethod(m: ConvTransposeMethod | undefined): void {
  forcedMethod = m;
}

function resolveMethod(): ConvTransposeMethod {
  if (forcedMethod) return forcedMethod;
  return tf.getBackend() === "wasm" ? "subpixel" : "native";
}

/**
 * nn.ConvTranspose2d: both paths compute the full transposed convolution ((H-1)*stride + kernel, no padding);
 * PyTorch's `padding` then crops that many rows and columns from each side, and `output_padding` gives back rows
 * at the bottom/right only. Rows past the full extent receive no input, so they are zero before the bias.
 * `weight` is [k, k, out, in]; `cache` holds the rearranged subpixel kernels of this backend's weights.
 */
export function convTranspose2d(x: tf.Tensor4D, weight: tf.Variable, bias: tf.Tensor | undefined, o: ConvTransposeOptions, cache: SubpixelCache): tf.Tensor4D {
  const [n, h, w] = x.shape;
  const [k, , co] = weight.shape;
  const s = o.stride;
  const fullH = (h - 1) * s + k;
  const fullW = (w - 1) * s + k;
  let y = resolveMethod() === "subpixel" && s > 1 ? subpixel(x, weight, s, cache) : tf.conv2dTranspose(x, weight as tf.Tensor4D, [n, fullH, fullW, co], s, "valid");
  const size = (v: number) => (v - 1) * s - 2 * o.padding + k + o.outputPadding;
  const [outH, outW] = [size(h), size(w)];
  const p = o.padding;
  const extraH = Math.max(0, p + outH - y.shape[1]);
  const extraW = Math.max(0, p + outW - y.shape[2]);
  if (extraH || extraW) y = tf.pad(y, [[0, 0], [0, extraH], [0, extraW], [0, 0]]);
  if (p || outH !== y.shape[1] || outW !== y.shape[2]) y = tf.slice(y, [0, p, p, 0], [n, outH, outW, co]);
  return bias ? biasAdd(y, bias) : y;
}

/**
 * Last rearranged kernel per weight, reused until the variable is assigned (assign swaps its dataId).
 * Rearranging big weights costs more than the convolution itself on wasm, so eval reuses the result.
 */
export class SubpixelCache {
  private readonly filters = new Map<tf.Variable, { dataId: object; filter: tf.Tensor4D }>();

  get(weight: tf.Variable, s: number): tf.Tensor4D {
    // Under a gradient tape the kernel is rebuilt from the variable so gradients reach it.
    if (tf.engine().isTapeOn()) return buildSubpixelFilter(weight, s);
    let c = this.filters.get(weight);
    if (c?.dataId !== weight.dataId) {
      c?.filter.dispose();
      // Rearranging in JS is much cheaper than with wasm kernels, and reading the weight back is synchronous anyway.
      const index = subpixelIndex(weight.shape as number[], s);
      const data = weight.dataSync() as Float32Array;
      const out = new Float32Array(index.length);
      for (let i = 0; i < index.length; i++) out[i] = index[i] < 0 ? 0 : data[index[i]];
      c = { dataId: weight.dataId, filter: tf.keep(tf.tensor4d(out, subpixelShape(weight.shape as number[], s))) };
      this.filters.set(weight, c);
    }
    return c.filter;
  }

  dispose(): void {
    for (const c of this.filters.values()) c.filter.dispose();
    this.filters.clear();
  }
}

/**
 * The transposed conv as one ordinary stride-1 conv producing stride² phases, interleaved afterwards. Output
 * row q*s + r only sees kernel rows r, r+s, r+2s... applied to input rows q, q-1, q-2...; with c = ceil(k/s)
 * taps per phase that is a c x c correlation over the input padded by c-1 above. When s does not divide k
 * some taps are zero (k3 s2: 16 taps instead of 9), which wasm's faster Conv2D more than pays for. The result
 * covers s*(H+c) rows, at least the full extent, and the extra rows are zero.
 */
function subpixel(x: tf.Tensor4D, weight: tf.Variable, s: number, cache: SubpixelCache): tf.Tensor4D {
  const [n, h, w] = x.shape;
  const [k, , co] = weight.shape;
  const c = Math.ceil(k / s);
  const phases = tf.conv2d(x, cache.get(weight, s), 1, [[0, 0], [c - 1, c], [c - 1, c], [0, 0]]);
  const rows = h + c;
  const cols = w + c;
  const interleaved = tf.transpose(tf.reshape(phases, [n, rows, cols, s, s, co]), [0, 1, 3, 2, 4, 5]);
  return tf.reshape(interleaved, [n, rows * s, cols * s, co]);
}

function subpixelShape([k, , co, ci]: number[], s: number): [number, number, number, number] {
  const c = Math.ceil(k / s);
  return [c, c, ci, s * s * co];
}

/**
 * Position in the flat [ky, kx, out, in] weight of each element of the phase filter [my, mx, in, (ry, rx, out)],
 * or -1 for taps past the kernel edge. Tap m of phase r is kernel row r + (c-1-m)*s (a correlation runs the
 * taps backwards).
 */
function subpixelIndex(shape: number[], s: number): Int32Array {
  const [k, , co, ci] = shape;
  const [c] = subpixelShape(shape, s);
  const index = new Int32Array(c * c * ci * s * s * co);
  let i = 0;
  for (let my = 0; my < c; my++)
    for (let mx = 0; mx < c; mx++)
      for (let in_ = 0; in_ < ci; in_++)
        for (let ry = 0; ry < s; ry++)
          for (let rx = 0; rx < s; rx++) {
            const ky = ry + (c - 1 - my) * s;
            const kx = rx + (c - 1 - mx) * s;
            for (let out = 0; out < co; out++) index[i++] = ky < k && kx < k ? ((ky * k + kx) * co + out) * ci + in_ : -1;
          }
  return index;
}

/** The same rearrangement as TF ops, differentiable: one gather (wasm's StridedSlice/Reverse are far slower). */
function buildSubpixelFilter(weight: tf.Variable, s: number): tf.Tensor4D {
  const index = subpixelIndex(weight.shape as number[], s);
  const zero = weight.size; // an appended 0
  for (let i = 0; i < index.length; i++) if (index[i] < 0) index[i] = zero;
  const flat = tf.concat([tf.reshape(weight, [-1]), tf.zeros([1])]);
  return tf.reshape(tf.gather(flat, tf.tensor1d(index, "int32")), subpixelShape(weight.shape as number[], s));
}

/**
 * StyleGAN2's modulated conv as scale-inputs → shared conv → scale-outputs. That equals modulating the weight per
 * sample (upstream's fused grouped conv) up to float rounding (~5e-6), keeps one conv for the whole batch and needs
 * no grouped conv, which TF.js lacks. x [N, H, W, I]; weight HWIO; styles [N, I].
 */
export function modulatedConv2d(
  x: tf.Tensor4D,
  weight: tf.Tensor4D,
  styles: tf.Tensor2D,
  o: { demodulate: boolean; up: number; padding: number; f?: tf.Tensor2D },
): tf.Tensor4D {
  const [n, inC] = styles.shape;
  const outC = weight.shape[3];
  let y = tf.mul(x, tf.reshape(styles, [n, 1, 1, inC])) as tf.Tensor4D;
  y = conv2dResample(y, weight, { f: o.f, up: o.up, padding: o.padding, flipWeight: o.up === 1 });
  if (!o.demodulate) return y;
  // sum over (i, kh, kw) of (W*s)^2 = s^2 · sum_{kh,kw} W^2, one small matmul instead of an N-fold weight.
  const wsq = tf.sum(tf.square(weight), [0, 1]) as tf.Tensor2D; // [I, O]
  const d = tf.rsqrt(tf.add(tf.matMul(tf.square(styles), wsq), 1e-8));
  return tf.mul(y, tf.reshape(d, [n, 1, 1, outC]));
}
