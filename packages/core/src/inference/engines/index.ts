/**
 * Picks the serving engine. ONNX Runtime is the default: on the measured 2-core CPU it is 0.2-0.6× PyTorch's
 * latency on the same weights (docs/performance.md), against 1.7-4.8× for TF.js wasm. A model the ONNX
 * exporter does not cover (SPADE with a VAE style encoder) falls back to TF.js, which covers everything.
 * `GANSERVE_ENGINE=tfjs` forces TF.js (e.g. on a GPU host running tfjs-node-gpu).
 */
import type { BackendChoice } from "../../engine/backend.ts";
import type { EngineFactory } from "../engine.ts";
import { type OnnxEngineOptions, onnxEngines } from "./onnx.ts";
import { tfjsEngines } from "./tfjs.ts";

export function servingEngines(choice: "auto" | "onnx" | "tfjs", backend: BackendChoice, onnxOptions: OnnxEngineOptions = {}): EngineFactory {
  const tfjs = tfjsEngines(backend);
  if (choice === "tfjs") return tfjs;
  const onnx = onnxEngines(onnxOptions);
  const onnxOnly = choice === "onnx";
  return {
    name: onnxOnly ? "onnx" : "auto",
    async load(record, weights) {
      if (onnxOnly || !(record.family === "spade" && record.config.use_vae === true)) return onnx.load(record, weights);
      return tfjs.load(record, weights);
    },
  };
}
