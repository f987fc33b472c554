/**
 * wasm's Identity kernel, and its Cast to the dtype a tensor already has, copy the tensor's memory; the cpu
 * backend's Identity hands out another reference to the same data instead, as wasm's own Reshape does. Data
 * behind a tensor is never written after the kernel that made it (variables take new data on assign, and every
 * kernel here writes only its outputs), so sharing is safe. It matters for training: the tape clones every
 * tensor a gradient saves (tfjs' saveTensorsForBackwardMode) and each clone's gradient is a same-dtype Cast,
 * ~640 copies of activations per SPADE demo step, 30 ms of a ~600 ms step in a V8 CPU profile (load 4.4).
 */
import * as tf from "@tensorflow/tfjs-core";

type RefCountingBackend = { incRef(dataId: tf.DataId): void };
type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

const SHARED = new WeakSet<tf.KernelFunc>();

function share(x: tf.TensorInfo, backend: unknown): tf.TensorInfo {
  (backend as RefCountingBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/** Replaces wasm's Identity and Cast with sharing versions (Cast only where the dtype stays); idempotent. */
export function registerSharedCopies(): string[] {
  const replaced: string[] = [];
  const wrap = (kernelName: string, shares: (args: KernelArgs) => boolean) => {
    const config = tf.getKernel(kernelName, "wasm");
    if (!config || SHARED.has(config.kernelFunc)) return;
    const copying = config.kernelFunc;
    const kernelFunc = ((args: KernelArgs) => {
      const x = args.inputs.x as tf.TensorInfo;
      return x.dtype !== "string" && shares(args) ? share(x, args.backend) : copying(args as never);
    }) as tf.KernelFunc;
    SHARED.add(kernelFunc);
    tf.unregisterKernel(kernelName, "wasm");
    tf.registerKernel({ ...config, kernelFunc });
    replaced.push(kernelName);
  };
  wrap("Identity", () => true);
  wrap("Cast", (args) => (args.attrs as unknown as tf.CastAttrs).dtype === (args.inputs.x as tf.TensorInfo).dtype);
  return replaced;
}
