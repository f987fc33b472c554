import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import { probeWasmGradients } from "./wasm-gradient-probe.ts";
await tf.setBackend("wasm"); await tf.ready();
if (process.argv[2] === "fix") { const m = await import("./wasm-gradients.ts"); console.log("registered", m.registerWasmGradientKernels()); }
const r = await probeWasmGradients();
for (const x of r) console.log(x.status.padEnd(8), x.name.padEnd(40), x.forwardDiff.toExponential(2), x.gradDiff.toExponential(2), x.referenceDiff?.toExponential(2) ?? "", x.error ?? "");
console.log("tensors", tf.memory().numTensors);
