/**
 * GPU container entry point: pulls predictions from the queue (SQS through the PredictionQueue link in AWS),
 * runs them on this machine's models and writes the results to storage. Beside it, a tiny HTTP server on
 * PORT (bound to GANSERVE_HOST, default 0.0.0.0) answers `/health` (the process is up) and `/ready` (storage
 * reachable, the worker loop pulling and, where ONNX Runtime is told to use a GPU provider, that provider
 * loaded) for the container's health check. SIGTERM stops pulling, lets the predictions under way finish
 * (their messages are deleted) and exits; anything cut short reappears on the queue for another worker.
 */
import http from "node:http";
import { loadSettings } from "@ganserve/core/config";
import { servingEnginesFor } from "@ganserve/core/inference/engines/index";
import { createMetrics } from "@ganserve/core/inference/metrics";
import { checkOrtProviders, wantsAccelerator } from "@ganserve/core/inference/engines/ort-providers";
import { InferenceService, inferenceOptions } from "@ganserve/core/inference/service";
import { optionalSecretBox } from "@ganserve/core/jobs/secrets";
import { createLogger } from "@ganserve/core/log";
import { ModelRegistry } from "@ganserve/core/models/registry";
import { createPredictions } from "@ganserve/core/predictions/index";
import { openStorage } from "@ganserve/core/storage/index";

const settings = loadSettings();
const log = createLogger(settings.GANSERVE_LOG_LEVEL);
const opened = await openStorage(settings);
const secrets = optionalSecretBox(settings, (err) => log.error({ err }, "no secret key: prediction webhooks will not be sent"));
const registry = new ModelRegistry(opened.storage);
const engines = servingEnginesFor(settings, opened.storage, log);
const inference = new InferenceService(registry, opened.storage, engines, createMetrics(), inferenceOptions(settings));
const { worker, queue } = createPredictions({ settings, storage: opened.storage, registry, inference, log, secrets });
if (queue.kind === "memory") log.warn("no PredictionQueue link or GANSERVE_PREDICTION_QUEUE_URL: this worker pulls from an in-process queue nobody sends to");
// A task that asked for a GPU provider (GANSERVE_ORT_PROVIDERS=cuda,cpu) and did not get one could not create
// a single session: it takes nothing from the queue, and /ready names the failed check, so ECS replaces it.
const accelerator = wantsAccelerator(settings.GANSERVE_ORT_PROVIDERS) ? await checkOrtProviders(settings.GANSERVE_ORT_PROVIDERS) : undefined;
if (accelerator && !accelerator.ok) {
  log.error({ providers: accelerator.providers, err: accelerator.error }, "the configured ONNX Runtime providers do not load: not pulling predictions");
} else {
  worker.start();
  log.info({ queue: queue.kind, providers: settings.GANSERVE_ORT_PROVIDERS }, "prediction worker pulling");
}

const server = http.createServer(async (req, res) => {
  const path = (req.url ?? "/").split("?")[0];
  if (path === "/health") {
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ status: "ok" }));
  } else if (path === "/ready") {
    const storage = await opened.storage.ping();
    const ok = storage && worker.pulling && (accelerator?.ok ?? true);
    res.writeHead(ok ? 200 : 503, { "content-type": "application/json" }).end(
      JSON.stringify({
        status: ok ? "ready" : "not_ready",
        checks: { storage: { ok: storage }, worker: { ok: worker.pulling }, ...(accelerator ? { gpu_provider: accelerator } : {}) },
      }),
    );
  } else res.writeHead(404).end();
});
server.listen(settings.PORT, settings.GANSERVE_HOST ?? "0.0.0.0");

let stopping = false;
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  log.info({ signal, active: worker.active }, "prediction worker stopping");
  server.close();
  await worker.stop();
  // A compiled graph still being copied to the model store would otherwise be built again by the next task.
  await engines.flush?.();
  await opened.close();
  process.exit(0);
};
process.on("SIGTERM", () => void stop("SIGTERM"));
process.on("SIGINT", () => void stop("SIGINT"));
