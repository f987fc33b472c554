/**
 * Run by wasm-threads.test.ts in a fresh process (the backend is chosen once per process): one conv's
 * gradient on the wasm backend as GANSERVE_WASM_THREADS says, printed with the thread count it ran on.
 */
import { initBackend, tf } from "../../src/engine/backend.ts";
import { enableTraining } from "../../src/engine/gradients.ts";

await initBackend("wasm");
enableTraining();
const wasm = await import("@tensorflow/tfjs-backend-wasm");
const x = tf.randomNormal([2, 24, 24, 16], 0, 1, "float32", 1);
const w = tf.variable(tf.randomNormal([3, 3, 16, 16], 0, 1, "float32", 2));
const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, "same"))), [w]);
console.log(JSON.stringify({ threads: wasm.getThreadsCount(), value: value.dataSync()[0], grad: Array.from(grads[w.name].dataSync()) }));
