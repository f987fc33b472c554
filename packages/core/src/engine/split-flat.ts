/**
 * Cuts a flat tensor into consecutive pieces of the given shapes (the inverse of concatenating reshaped
 * tensors), as one kernel on wasm. wasm's SplitV runs its Slice once per piece and that Slice copies the whole
 * input out of the heap each time, so splitting n pieces costs n full copies: with ~90 pieces (a fused
 * optimiser step over CycleGAN's parameters) that was a quarter of a training step. Here each piece is one
 * copy of its own elements. Other backends use tf.split and reshapes. No gradient: for use outside tapes.
 */
import * as tf from "@tensorflow/tfjs-core";

const KERNEL = "GanserveSplitInto";

/** The parts of tfjs-backend-wasm's BackendWasm the kernel uses (its type is not exported from the package root). */
type WasmMemoryBackend = {
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

export function splitInto(flat: tf.Tensor1D, shapes: number[][]): tf.Tensor[] {
  const sizes = shapes.map((s) => tf.util.sizeFromShape(s));
  if (sizes.reduce((a, n) => a + n, 0) !== flat.size) throw new Error(`splitInto: pieces of ${sizes} do not make up ${flat.size} elements`);
  if (tf.getBackend() === "wasm" && flat.dtype === "float32") {
    if (!tf.getKernel(KERNEL, "wasm")) tf.registerKernel({ kernelName: KERNEL, backendName: "wasm", kernelFunc: splitIntoKernel as unknown as tf.KernelFunc });
    return tf.engine().runKernel(KERNEL, { x: flat }, { shapes } as unknown as tf.NamedAttrMap) as unknown as tf.Tensor[];
  }
  return tf.tidy(() => {
    const parts = shapes.length === 1 ? [flat] : tf.split(flat, sizes);
    return parts.map((p, i) => tf.reshape(p, shapes[i]));
  });
}
