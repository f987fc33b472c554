/**
 * wasm's Identity kernel, and its Cast to the dtype a tensor already has, copy the tensor's memory; the cpu
 * backend's Identity hands out another reference to the same data instead, as wasm's own Reshape does. Data
 * behind a tensor is never written after the kernel that made it (variables take new data on assign, and every
 * kernel here writes only its outputs), so sharing is safe. It matters for training: the tape clones every
 * tensor a gradient saves (tfjs' saveTensorsForBackwardMode) and each clone's gradient is a same-dtype Cast,
 * ~640 copies of activations per SPADE demo step, 30 ms of a ~600 ms step in a V8 CPU profile (load 4.4).
 *
 * wasm's Slice copies too much: it reads its whole input out of the heap (`readSync` returns a copy) before it
 * takes the window. A trainer's dataset is one tensor and every step slices its batch out of it, so a SPADE demo
 * step copied its 600 label maps' semantics (78 MB) four times: 1.25 s of a 1.8 s step in a V8 CPU profile.
 * Ours reads the input through a view of the heap.
 */
import * as tf from "@tensorflow/tfjs-core";

type RefCountingBackend = { incRef(dataId: tf.DataId): void };
type HeapBackend = { makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo; typedArrayFromHeap(t: tf.TensorInfo): tf.TypedArray };
type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

const SHARED = new WeakSet<tf.KernelFunc>();

function share(x: tf.TensorInfo, backend: unknown): tf.TensorInfo {
  (backend as RefCountingBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/** wasm's Slice, reading its input in place: rows of the last axis copied from a heap view into the output. */
function sliceInPlace(args: KernelArgs): tf.TensorInfo {
  const x = args.inputs.x as tf.TensorInfo;
  const attrs = args.attrs as unknown as tf.SliceAttrs;
  const backend = args.backend as HeapBackend;
  const [begin, size] = tf.slice_util.parseSliceParams(x as tf.Tensor, attrs.begin, attrs.size);
  const out = backend.makeOutput(size, x.dtype);
  const n = tf.util.sizeFromShape(size);
  if (n === 0) return out;
  // Views only after makeOutput: an allocation may grow the heap, which detaches views taken before it.
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  const strides = tf.util.computeStrides(x.shape);
  if (tf.slice_util.isSliceContinous(x.shape, begin, size)) {
    const offset = tf.slice_util.computeFlatOffset(begin, strides);
    dst.set(src.subarray(offset, offset + n));
    return out;
  }
  const rank = size.length;
  const row = size[rank - 1];
  const index = new Array<number>(rank - 1).fill(0);
  for (let o = 0; o < n; o += row) {
    let offset = begin[rank - 1];
    for (let d = 0; d < rank - 1; d++) offset += (begin[d] + index[d]) * strides[d];
    dst.set(src.subarray(offset, offset + row), o);
    for (let d = rank - 2; d >= 0 && ++index[d] === size[d]; d--) index[d] = 0;
  }
  return out;
}

/**
 * Replaces wasm's Identity and Cast with sharing versions (Cast only where the dtype stays), and its Slice with
 * one that reads in place; idempotent.
 */
export function registerSharedCopies(): string[] {
  const replaced: string[] = [];
  // Ours runs where `applies` says (never on strings, which live outside the heap); wasm's own everywhere else.
  const replace = (kernelName: string, applies: (args: KernelArgs) => boolean, ours: (args: KernelArgs) => tf.TensorInfo) => {
    const config = tf.getKernel(kernelName, "wasm");
    if (!config || SHARED.has(config.kernelFunc)) return;
    const copying = config.kernelFunc;
    const kernelFunc = ((args: KernelArgs) => ((args.inputs.x as tf.TensorInfo).dtype !== "string" && applies(args) ? ours(args) : copying(args as never))) as tf.KernelFunc;
    SHARED.add(kernelFunc);
    tf.unregisterKernel(kernelName, "wasm");
    tf.registerKernel({ ...config, kernelFunc });
    replaced.push(kernelName);
  };
  const shareInput = (args: KernelArgs) => share(args.inputs.x as tf.TensorInfo, args.backend);
  replace("Identity", () => true, shareInput);
  replace("Cast", (args) => (args.attrs as unknown as tf.CastAttrs).dtype === (args.inputs.x as tf.TensorInfo).dtype, shareInput);
  replace("Slice", () => true, sliceInPlace);
  return replaced;
}
