/**
 * Packs tensors into one flat tensor (`concatFlat`) and cuts a flat tensor into consecutive pieces of given
 * shapes (`splitInto`), each as one kernel on wasm, for optimisers that update all parameters at once.
 * concatFlat saves a reshape dispatch per piece. splitInto matters more: wasm's SplitV runs its Slice once
 * per piece and that Slice copies the whole input out of the heap each time, so splitting n pieces costs n
 * full copies: with ~90 pieces (a fused optimiser step over CycleGAN's parameters) that was a quarter of a
 * training step. Here each piece is one copy of its own elements. Other backends use tf.concat, tf.split and
 * reshapes. No gradient: for use outside tapes.
 */
import * as tf from "@tensorflow/tfjs-core";

const SPLIT = "GanserveSplitInto";
const CONCAT = "GanserveConcatFlat";

/**
 * The parts of tfjs-backend-wasm's BackendWasm that kernels written in JS use (its type is not exported from the
 * package root): outputs allocated on its heap, and views of the heap.
 */
export type WasmMemoryBackend = {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
};

function splitIntoKernel({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo[] {
  const b = backend as WasmMemoryBackend;
  const x = inputs.x as tf.TensorInfo;
  const shapes = (attrs as unknown as { shapes: number[][] }).shapes;
  const outs = shapes.map((s) => b.makeOutput(s, "float32"));
  // Views are taken after every allocation: growing the heap would detach earlier ones.
  const src = b.typedArrayFromHeap(x);
  let at = 0;
  for (const o of outs) {
    const dst = b.typedArrayFromHeap(o);
    dst.set(src.subarray(at, at + dst.length));
    at += dst.length;
  }
  return outs;
}

function concatFlatKernel({ inputs, backend }: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const b = backend as WasmMemoryBackend;
  const parts = Object.values(inputs) as tf.TensorInfo[];
  const out = b.makeOutput([parts.reduce((n, t) => n + tf.util.sizeFromShape(t.shape), 0)], "float32");
  const dst = b.typedArrayFromHeap(out);
  let at = 0;
  for (const t of parts) {
    const src = b.typedArrayFromHeap(t);
    dst.set(src, at);
    at += src.length;
  }
  return out;
}

/** The tensors' elements one after another, as tf.concat of their flattened forms. */
export function concatFlat(tensors: tf.Tensor[]): tf.Tensor1D {
  if (tf.getBackend() === "wasm" && tensors.every((t) => t.dtype === "float32")) {
    if (!tf.getKernel(CONCAT, "wasm")) tf.registerKernel({ kernelName: CONCAT, backendName: "wasm", kernelFunc: concatFlatKernel as unknown as tf.KernelFunc });
    return tf.engine().runKernel(CONCAT, { ...tensors } as unknown as tf.NamedTensorMap) as tf.Tensor1D;
  }
  return tf.tidy(() => tf.concat(tensors.map((t) => tf.reshape(t, [-1]))) as tf.Tensor1D);
}

export function splitInto(flat: tf.Tensor1D, shapes: number[][]): tf.Tensor[] {
  const sizes = shapes.map((s) => tf.util.sizeFromShape(s));
  if (sizes.reduce((a, n) => a + n, 0) !== flat.size) throw new Error(`splitInto: pieces of ${sizes} do not make up ${flat.size} elements`);
  if (tf.getBackend() === "wasm" && flat.dtype === "float32") {
    if (!tf.getKernel(SPLIT, "wasm")) tf.registerKernel({ kernelName: SPLIT, backendName: "wasm", kernelFunc: splitIntoKernel as unknown as tf.KernelFunc });
    return tf.engine().runKernel(SPLIT, { x: flat }, { shapes } as unknown as tf.NamedAttrMap) as unknown as tf.Tensor[];
  }
  return tf.tidy(() => {
    const parts = shapes.length === 1 ? [flat] : tf.split(flat, sizes);
    return parts.map((p, i) => tf.reshape(p, shapes[i]));
  });
}
