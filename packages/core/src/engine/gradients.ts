/**
 * Makes autodiff work outside the browser bundles. tfjs-core's Node entry registers no gradient functions
 * (its `register_all_gradients` module is ESM that plain Node cannot load), so `tf.grad` would throw
 * "gradient function not found". The `@tensorflow/tfjs` Node bundle registers them against the same
 * tfjs-core instance. Then the kernels the wasm backend lacks for training are added, and its copying Identity
 * and same-dtype Cast are replaced by sharing ones (wasm-shared-copies.ts).
 */
import "@tensorflow/tfjs";
import { registerWasmGradientKernels } from "./wasm-gradients.ts";
import { registerSharedCopies } from "./wasm-shared-copies.ts";

let done = false;

export function enableTraining(): void {
  if (done) return;
  registerWasmGradientKernels();
  registerSharedCopies();
  done = true;
}
