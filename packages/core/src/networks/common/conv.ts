/**
 * PyTorch-compatible convolutions on NHWC tensors. Weights are loaded from the official layouts (Conv2d OIHW,
 * ConvTranspose2d IOHW) under the official names `<prefix>.weight` / `<prefix>.bias`, and kept in TF.js layout.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { ParamStore } from "./param-store.ts";

const join = (prefix: string, leaf: string) => (prefix ? `${prefix}.${leaf}` : leaf);

export interface Conv2dOptions {
  stride?: number;
  /** Zero padding on every side, as PyTorch's integer `padding`. */
  padding?: number;
  bias?: boolean;
}

/**
 * nn.Conv2d's forward on NHWC: explicit symmetric padding (TF's 'same' would pad asymmetrically for even
 * kernels with stride 2), then the bias. Shared by plain and spectral-normed convs.
 */
export function conv2dSymmetric(x: tf.Tensor4D, weight: tf.Tensor4D, stride: number, padding: number, bias?: tf.Tensor): tf.Tensor4D {
  const p = padding;
  const pad: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [p, p], [p, p], [0, 0]];
  const y = tf.conv2d(x, weight, stride, p === 0 ? "valid" : pad);
  return bias ? tf.add(y, bias) : y;
}

export class Conv2d {
  readonly weight: tf.Variable;
  readonly bias?: tf.Variable;
  readonly stride: number;
  readonly padding: number;

  constructor(
    store: ParamStore,
    readonly name: string,
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    opts: Conv2dOptions = {},
  ) {
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    const k = kernelSize;
    // OIHW → HWIO
    this.weight = store.add(join(name, "weight"), [outChannels, inChannels, k, k], "conv.weight", { perm: [2, 3, 1, 0] });
    if (opts.bias ?? true) this.bias = store.add(join(name, "bias"), [outChannels], "conv.bias");
  }

  apply(x: tf.Tensor4D): tf.Tensor4D {
    return conv2dSymmetric(x, this.weight as tf.Tensor4D, this.stride, this.padding, this.bias);
  }
}

export interface ConvTranspose2dOptions {
  stride?: number;
  padding?: number;
  outputPadding?: number;
  bias?: boolean;
}

/**
 * nn.ConvTranspose2d: output size (H-1)*stride - 2*padding + kernel + output_padding. Both paths below compute
 * the full transposed convolution ((H-1)*stride + kernel, no padding); PyTorch's `padding` then crops that many
 * rows and columns from each side, and `output_padding` gives back rows at the bottom/right only. Rows past the
 * full extent receive no input, so they are zero before the bias.
 */
export class ConvTranspose2d {
  readonly weight: tf.Variable;
  readonly bias?: tf.Variable;
  readonly stride: number;
  readonly padding: number;
  readonly outputPadding: number;

  constructor(
    store: ParamStore,
    readonly name: string,
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    opts: ConvTranspose2dOptions = {},
  ) {
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    this.outputPadding = opts.outputPadding ?? 0;
    if (this.outputPadding >= Math.max(this.stride, 1)) throw new Error(`${name}: output_padding must be smaller than stride`);
    const k = kernelSize;
    // IOHW → HW(out)(in), the filter layout tf.conv2dTranspose expects.
    this.weight = store.add(join(name, "weight"), [inChannels, outChannels, k, k], "conv.weight", { perm: [2, 3, 1, 0] });
    if (opts.bias ?? true) this.bias = store.add(join(name, "bias"), [outChannels], "conv.bias");
    store.own({ dispose: () => this.cached?.filter.dispose() });
    // Loading is synchronous anyway; rearranging here in JS is much cheaper than with wasm kernels later.
    if (this.stride > 1 && resolveMethod() === "subpixel") {
      const filter = tf.keep(tf.tensor4d(this.rearrange(this.weight.dataSync() as Float32Array), this.subpixelShape()));
      this.cached = { dataId: this.weight.dataId, filter };
    }
  }

  outputSize(inSize: number): number {
    return (inSize - 1) * this.stride - 2 * this.padding + this.kernelSize + this.outputPadding;
  }

  apply(x: tf.Tensor4D, method: ConvTransposeMethod = resolveMethod()): tf.Tensor4D {
    const [n, h, w] = x.shape;
    const k = this.kernelSize;
    const s = this.stride;
    const fullH = (h - 1) * s + k;
    const fullW = (w - 1) * s + k;
    let y = method === "subpixel" && s > 1 ? this.subpixel(x) : tf.conv2dTranspose(x, this.weight as tf.Tensor4D, [n, fullH, fullW, this.outChannels], s, "valid");
    const outH = this.outputSize(h);
    const outW = this.outputSize(w);
    const p = this.padding;
    const extraH = Math.max(0, p + outH - y.shape[1]);
    const extraW = Math.max(0, p + outW - y.shape[2]);
    if (extraH || extraW) y = tf.pad(y, [[0, 0], [0, extraH], [0, extraW], [0, 0]]);
    if (p || outH !== y.shape[1] || outW !== y.shape[2]) y = tf.slice(y, [0, p, p, 0], [n, outH, outW, this.outChannels]);
    return this.bias ? tf.add(y, this.bias) : y;
  }

  /**
   * The transposed conv as one ordinary stride-1 conv producing stride² phases, interleaved afterwards. Output
   * row q*s + r only sees kernel rows r, r+s, r+2s... applied to input rows q, q-1, q-2...; with c = ceil(k/s)
   * taps per phase that is a c x c correlation over the input padded by c-1 above. When s does not divide k
   * some taps are zero (k3 s2: 16 taps instead of 9), which wasm's faster Conv2D more than pays for. The result
   * covers s*(H+c) rows, at least the full extent, and the extra rows are zero.
   */
  private subpixel(x: tf.Tensor4D): tf.Tensor4D {
    const [n, h, w] = x.shape;
    const s = this.stride;
    const c = Math.ceil(this.kernelSize / s);
    const co = this.outChannels;
    const phases = tf.conv2d(x, this.subpixelFilter(), 1, [[0, 0], [c - 1, c], [c - 1, c], [0, 0]]);
    const rows = h + c;
    const cols = w + c;
    const interleaved = tf.transpose(tf.reshape(phases, [n, rows, cols, s, s, co]), [0, 1, 3, 2, 4, 5]);
    return tf.reshape(interleaved, [n, rows * s, cols * s, co]);
  }

  /** Last rearranged weight, reused until the variable is assigned (assign swaps its dataId). */
  private cached?: { dataId: object; filter: tf.Tensor4D };

  /**
   * Rearranging big weights costs more than the convolution itself on wasm, so eval reuses the result; under a
   * gradient tape it is rebuilt from the variable so gradients reach it.
   */
  private subpixelFilter(): tf.Tensor4D {
    if (tf.engine().isTapeOn()) return this.buildSubpixelFilter();
    if (this.cached?.dataId !== this.weight.dataId) {
      this.cached?.filter.dispose();
      this.cached = { dataId: this.weight.dataId, filter: tf.keep(tf.tidy(() => this.buildSubpixelFilter())) };
    }
    return this.cached.filter;
  }

  private subpixelShape(): [number, number, number, number] {
    const c = Math.ceil(this.kernelSize / this.stride);
    return [c, c, this.inChannels, this.stride * this.stride * this.outChannels];
  }

  /**
   * Position in the flat [ky, kx, out, in] weight of each element of the phase filter [my, mx, in, (ry, rx, out)],
   * or -1 for taps past the kernel edge. Tap m of phase r is kernel row r + (c-1-m)*s (a correlation runs the
   * taps backwards).
   */
  private subpixelIndex(): Int32Array {
    const k = this.kernelSize;
    const s = this.stride;
    const co = this.outChannels;
    const ci = this.inChannels;
    const [c] = this.subpixelShape();
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

  private rearrange(weight: Float32Array): Float32Array {
    const index = this.subpixelIndex();
    const out = new Float32Array(index.length);
    for (let i = 0; i < index.length; i++) out[i] = index[i] < 0 ? 0 : weight[index[i]];
    return out;
  }

  /** The same rearrangement as TF ops, differentiable: one gather (wasm's StridedSlice/Reverse are far slower). */
  private buildSubpixelFilter(): tf.Tensor4D {
    const index = this.subpixelIndex();
    const zero = this.weight.size; // an appended 0
    for (let i = 0; i < index.length; i++) if (index[i] < 0) index[i] = zero;
    const flat = tf.concat([tf.reshape(this.weight, [-1]), tf.zeros([1])]);
    return tf.reshape(tf.gather(flat, tf.tensor1d(index, "int32")), this.subpixelShape());
  }
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
