/**
 * Picks the serving engine. ONNX Runtime is the default: on the measured 2-core CPU it is 0.2-0.6× PyTorch's
 * latency on the same weights (docs/performance.md), against 1.7-4.8× for TF.js wasm. A model the ONNX
 * exporter does not cover (SPADE with a VAE style encoder) falls back to TF.js, which covers everything.
 * `GANSERVE_ENGINE=tfjs` forces TF.js (e.g. on a GPU host running tfjs-node-gpu).
 */
import path from "node:path";
import type { Settings } from "../../config.ts";
import type { BackendChoice } from "../../engine/backend.ts";
import type { EngineFactory } from "../engine.ts";
import { type OnnxEngineOptions, onnxEngines } from "./onnx.ts";
import type { Logger } from "../../log.ts";
import type { Storage } from "../../storage/storage.ts";
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
    flush: async () => onnx.cache?.flush(),
  };
}

/**
 * The engines a serving process (the API's or a prediction worker's) runs, as its settings choose them.
 * `store`: the model store, where the optimised-model cache keeps what one container built for the next.
 */
export function servingEnginesFor(
  settings: Pick<Settings, "GANSERVE_ENGINE" | "GANSERVE_BACKEND" | "GANSERVE_ORT_CACHE_DIR" | "dataDir">,
  store?: Storage,
  log?: Logger,
): EngineFactory {
  // The optimised-model cache (ort-cache.ts) lives beside the local store unless the settings put it elsewhere.
  const cacheDir = settings.GANSERVE_ORT_CACHE_DIR ?? path.join(settings.dataDir, "ort-cache");
  const shared = store && { store, onError: (err: unknown, what: string) => log?.warn({ err: String(err) }, `optimised-model cache: ${what}`) };
  return servingEngines(settings.GANSERVE_ENGINE, settings.GANSERVE_BACKEND, { cacheDir, shared });
}
