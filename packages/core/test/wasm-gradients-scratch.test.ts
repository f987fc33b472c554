import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-core/dist/register_all_gradients.js";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import { test } from "vitest";
import { probeWasmGradients } from "../src/engine/wasm-gradient-probe.ts";
test("probe", async () => {
  await tf.setBackend("wasm"); await tf.ready();
  if (process.env.FIX) { const m = await import("../src/engine/wasm-gradients.ts"); console.log("registered", m.registerWasmGradientKernels()); }
  const n0 = tf.memory().numTensors;
  const r = await probeWasmGradients();
  const lines = r.map((x) => `${x.status.padEnd(8)} ${x.name.padEnd(40)} fwd=${x.forwardDiff.toExponential(2)} grad=${x.gradDiff.toExponential(2)} ${x.referenceDiff !== undefined ? "ref=" + x.referenceDiff.toExponential(2) : ""} ${x.error ?? ""}`);
  console.log(lines.join("\n") + `\nleaked tensors ${tf.memory().numTensors - n0}`);
});
