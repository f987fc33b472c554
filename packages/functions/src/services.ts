/** Builds the per-process services from settings: storage (embedded locally), keys, registry, inference. */
import { launcherMode, loadSettings, type Settings } from "@ganserve/core/config";
import { ensureDevKey, KeyRing } from "@ganserve/core/auth/keys";
import { createLogger } from "@ganserve/core/log";
import { createMetrics } from "@ganserve/core/inference/metrics";
import { InferenceService, inferenceOptions } from "@ganserve/core/inference/service";
import { servingEnginesFor } from "@ganserve/core/inference/engines/index";
import { ModelRegistry } from "@ganserve/core/models/registry";
import { openStorage, EMBEDDED_CREDENTIALS, type OpenedStorage } from "@ganserve/core/storage/index";
import { DatasetService } from "@ganserve/core/datasets/service";
import { StoredKeyRing } from "@ganserve/core/auth/store";
import { TokenBucketLimiter } from "@ganserve/core/limits/rate-limiter";
import { FineTuneSlots } from "@ganserve/core/jobs/quota";
import { DatasetQuota } from "@ganserve/core/datasets/quota";
import { DatasetFinalizer } from "@ganserve/core/datasets/finalizer";
import { BatchLauncher, LocalLauncher, type Launcher } from "@ganserve/core/jobs/launcher";
import { FineTuneService } from "@ganserve/core/jobs/service";
import { JobReconciler } from "@ganserve/core/jobs/reconcile";
import { JobStore } from "@ganserve/core/jobs/store";
import { loadSecretKey, SecretBox } from "@ganserve/core/jobs/secrets";
import { createPredictions } from "@ganserve/core/predictions/index";
import path from "node:path";
import { fileURLToPath } from "node:url";
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
  // Before anything starts: production refuses to run without GANSERVE_SECRET_KEY.
  const secrets = new SecretBox(loadSecretKey(settings));
  const opened = await openStorage(settings);
  let devKey: string | undefined;
  let configured: KeyRing;
  if (settings.GANSERVE_API_KEYS) configured = KeyRing.fromList(settings.GANSERVE_API_KEYS);
  else if (settings.GANSERVE_PRODUCTION) configured = new KeyRing([]);
  else {
    devKey = ensureDevKey(settings.dataDir);
    configured = KeyRing.fromList(devKey);
  }
  // Keys created with `ganserve keys create` live in storage; revocations are picked up within seconds.
  const keys = await StoredKeyRing.open(opened.storage, configured, { onError: (err) => log.warn({ err }, "could not refresh stored API keys") });
  if (settings.GANSERVE_PRODUCTION && keys.size === 0) throw new Error("no API keys: set GANSERVE_API_KEYS or run `ganserve keys create` (production mode)");
  const registry = new ModelRegistry(opened.storage);
  const metrics = createMetrics();
  // Not from a Lambda: it freezes once its response is sent, so a background copy to the store would hang there.
  const engines = servingEnginesFor(settings, process.env.AWS_LAMBDA_FUNCTION_NAME ? undefined : opened.storage, log);
  const inference = new InferenceService(registry, opened.storage, engines, metrics, inferenceOptions(settings));
  const datasets = new DatasetService(opened.storage, { maxUploadBytes: settings.GANSERVE_MAX_UPLOAD_BYTES });
  const jobs = new JobStore(opened.storage);
  const launcher = createLauncher(settings, opened, jobs, log);
  // Jobs that run where this process cannot watch them (Batch) are reconciled with Batch's state when read.
  const reconciler = launcher.states ? new JobReconciler(jobs, launcher.states, { onError: (err) => log.warn({ err }, "could not ask AWS Batch for fine-tune states") }) : undefined;
  const fineTunes = new FineTuneService(jobs, datasets, registry, opened.storage, launcher, settings.GANSERVE_PRODUCTION, secrets, reconciler);
  const datasetQuota = new DatasetQuota({ storage: opened.storage, datasets }, settings.GANSERVE_TENANT_DATASET_BYTES);
  // Finalize jobs go where fine-tunes go when that is AWS Batch (a `ds_` id: the worker finalizes it); locally
  // they run in this process.
  const datasetFinalizer = new DatasetFinalizer(datasets, datasetQuota, launcher instanceof BatchLauncher ? (id) => launcher.launch(id) : undefined);
  const predictions = createPredictions({ settings, storage: opened.storage, registry, inference, log, secrets });
  const services: Services = {
    settings,
    storage: opened.storage,
    keys,
    log,
    registry,
    inference,
    metrics,
    datasets,
    jobs,
    fineTunes,
    launcher,
    limiter: new TokenBucketLimiter({ rpm: settings.GANSERVE_RATE_LIMIT_RPM }),
    fineTuneSlots: new FineTuneSlots(jobs, settings.GANSERVE_MAX_CONCURRENT_FINE_TUNES, reconciler),
    datasetQuota,
    datasetFinalizer,
    predictions,
    readiness: new Map(),
    startedAt: Date.now(),
  };
  return {
    services,
    opened,
    devKey,
    close: async () => {
      keys.stop();
      await predictions.worker.stop();
      await launcher.close();
      await datasetFinalizer.close();
      inference.cache.clear();
      await engines.flush?.();
      await opened.close();
    },
  };
}

/**
 * The launcher of `launcherMode(settings)`: AWS Batch when deployed with the FineTune link, none for a
 * deployed process that must never run fine-tunes (the GPU workers), otherwise supervised local child
 * processes that reach the same storage (the embedded server's endpoint when this process runs it).
 */
function createLauncher(settings: Settings, opened: OpenedStorage, jobs: JobStore, log: Services["log"]): Launcher {
  const mode = launcherMode(settings);
  if (mode.mode === "batch") return new BatchLauncher({ jobQueue: mode.jobQueue, jobDefinition: mode.jobDefinition });
  if (mode.mode === "none") return NO_LAUNCHER;
  const worker = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "worker.ts");
  const storageEnv: Record<string, string> = opened.embedded
    ? {
        GANSERVE_S3_ENDPOINT: opened.embedded.endpoint,
        GANSERVE_EMBEDDED_S3: "false",
        AWS_ACCESS_KEY_ID: EMBEDDED_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: EMBEDDED_CREDENTIALS.secretAccessKey,
      }
    : {};
  return new LocalLauncher({
    command: [process.execPath, "--import", "tsx", worker],
    env: { ...process.env, ...storageEnv, GANSERVE_DATA_DIR: settings.dataDir },
    jobs,
    log,
  });
}

/** GANSERVE_LAUNCHER=none: this process neither runs nor submits fine-tunes, and adopts none at start. */
const NO_LAUNCHER: Launcher = {
  async launch(): Promise<string | undefined> {
    throw new Error("fine-tunes are not launched by this process (GANSERVE_LAUNCHER=none)");
  },
  async adopt() {
    return [];
  },
  async close() {},
};
