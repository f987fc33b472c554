/** Builds the per-process services from settings: storage (embedded locally), keys, registry, inference. */
import { loadSettings, type Settings } from "@ganserve/core/config";
import { ensureDevKey, KeyRing } from "@ganserve/core/auth/keys";
import { createLogger } from "@ganserve/core/log";
import { createMetrics } from "@ganserve/core/inference/metrics";
import { InferenceService } from "@ganserve/core/inference/service";
import { tfjsEngines } from "@ganserve/core/inference/engines/tfjs";
import { ModelRegistry } from "@ganserve/core/models/registry";
import { openStorage, type OpenedStorage } from "@ganserve/core/storage/index";
import type { Services } from "./api/env.ts";

export interface Runtime {
  services: Services;
  opened: OpenedStorage;
  /** Set when no key was configured and a dev key was generated (printed by `npm start`). */
  devKey?: string;
  close(): Promise<void>;
}

export async function createRuntime(settings: Settings = loadSettings()): Promise<Runtime> {
  const log = createLogger(settings.GANSERVE_LOG_LEVEL);
  const opened = await openStorage(settings);
  let devKey: string | undefined;
  let keys: KeyRing;
  if (settings.GANSERVE_API_KEYS) keys = KeyRing.fromList(settings.GANSERVE_API_KEYS);
  else if (settings.GANSERVE_PRODUCTION) throw new Error("GANSERVE_API_KEYS must be set in production mode");
  else keys = KeyRing.fromList((devKey = ensureDevKey(settings.dataDir)));
  const registry = new ModelRegistry(opened.storage);
  const metrics = createMetrics();
  const inference = new InferenceService(registry, opened.storage, tfjsEngines(settings.GANSERVE_BACKEND), metrics, {
    maxBatch: settings.GANSERVE_MAX_BATCH,
    maxBatchDelayMs: settings.GANSERVE_MAX_BATCH_DELAY_MS,
    maxQueue: settings.GANSERVE_MAX_QUEUE,
    requestTimeoutMs: settings.GANSERVE_REQUEST_TIMEOUT_MS,
    maxPixels: settings.GANSERVE_MAX_PIXELS,
    cacheBytes: settings.GANSERVE_MODEL_CACHE_BYTES,
  });
  const services: Services = {
    settings,
    storage: opened.storage,
    keys,
    log,
    registry,
    inference,
    metrics,
    readiness: new Map(),
    warmModels: () => inference.cache.status(),
    startedAt: Date.now(),
  };
  return {
    services,
    opened,
    devKey,
    close: async () => {
      inference.cache.clear();
      await opened.close();
    },
  };
}
