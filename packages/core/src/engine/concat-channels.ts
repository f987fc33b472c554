/**
 * tf.concat along the channel (last) axis of NHWC tensors as one pass in JS over the wasm heap, with a gradient
 * that splits dy the same way. wasm's own Concat and Slice copy one pixel's channels at a time through
 * typed-array views (a subarray and a set per input per pixel): joining SPADE's semantics (8 channels) and an
 * image (3) for its discriminator cost ~3 ms per call at the demo's 2×64×64, several times the arithmetic of
 * the conv that reads it. Element copies only, so values are bit-identical to tf.concat's. Other backends, and
 * tensors that are not float32, take tf.concat.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WasmMemoryBackend } from "./split-flat.ts";

const CONCAT = "GanserveConcatChannels";
const SPLIT = "GanserveSplitChannels";

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

function concatKernel({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const b = backend as WasmMemoryBackend;
  const parts = Object.values(inputs) as tf.TensorInfo[];
  const widths = parts.map((t) => t.shape[t.shape.length - 1]);
  const total = widths.reduce((a, c) => a + c, 0);
  const info = b.makeOutput([...parts[0].shape.slice(0, -1), total], "float32");
  // Views are taken after the allocation: growing the heap would detach earlier ones.
  const out = b.typedArrayFromHeap(info);
  let offset = 0;
  for (const [i, t] of parts.entries()) {
    const src = b.typedArrayFromHeap(t);
    const c = widths[i];
    for (let s = 0, d = offset; s < src.length; s += c, d += total) for (let k = 0; k < c; k++) out[d + k] = src[s + k];
    offset += c;
  }
  return info;
}

function splitKernel({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const b = backend as WasmMemoryBackend;
  const x = inputs.x as tf.TensorInfo;
  const widths = (attrs as unknown as { widths: number[] }).widths;
  const total = x.shape[x.shape.length - 1];
  const outs = widths.map((c) => b.makeOutput([...x.shape.slice(0, -1), c], "float32"));
  const src = b.typedArrayFromHeap(x);
  let offset = 0;
  for (const [i, o] of outs.entries()) {
    const dst = b.typedArrayFromHeap(o);
    const c = widths[i];
    for (let d = 0, s = offset; d < dst.length; d += c, s += total) for (let k = 0; k < c; k++) dst[d + k] = src[s + k];
    offset += c;
  }
  return outs;
}

function register(): void {
  if (!tf.getKernel(CONCAT, "wasm")) tf.registerKernel({ kernelName: CONCAT, backendName: "wasm", kernelFunc: concatKernel as unknown as tf.KernelFunc });
  if (!tf.getKernel(SPLIT, "wasm")) tf.registerKernel({ kernelName: SPLIT, backendName: "wasm", kernelFunc: splitKernel as unknown as tf.KernelFunc });
}

const run = (tensors: tf.Tensor[]): tf.Tensor => tf.engine().runKernel(CONCAT, { ...tensors } as unknown as tf.NamedTensorMap) as tf.Tensor;

/** tf.concat(tensors, -1) for tensors of equal leading dimensions. */
export function concatChannels<T extends tf.Tensor>(tensors: T[]): T {
  const lead = tensors[0].shape.slice(0, -1);
  const fits = tensors.every((t) => t.dtype === "float32" && t.rank === lead.length + 1 && t.shape.slice(0, -1).every((d, i) => d === lead[i]));
  if (tf.getBackend() !== "wasm" || !fits || tensors.length < 2) return tf.concat(tensors, -1);
  register();
  if (!tf.engine().isTapeOn()) return run(tensors) as T;
  const widths = tensors.map((t) => t.shape[t.rank - 1]);
  const fused = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => ({
    value: run(args.slice(0, -1) as tf.Tensor[]),
    gradFunc: (dy: tf.Tensor) => tf.engine().runKernel(SPLIT, { x: dy }, { widths } as unknown as tf.NamedAttrMap) as unknown as tf.Tensor[],
  })) as (...xs: tf.Tensor[]) => tf.Tensor;
  return fused(...tensors) as T;
}
