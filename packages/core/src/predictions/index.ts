/**
 * Builds the predictions parts from settings: the queue (SQS when GANSERVE_PREDICTION_QUEUE_URL is set, from
 * the PredictionQueue link when deployed; otherwise in-process), the store, the service the API uses, and
 * a worker. Entry points (functions/) call this instead of wiring the parts themselves.
 */
import type { Settings } from "../config.ts";
import type { InferenceService } from "../inference/service.ts";
import type { SecretBox } from "../jobs/secrets.ts";
import type { Logger } from "../log.ts";
import type { ModelRegistry } from "../models/registry.ts";
import type { Storage } from "../storage/storage.ts";
import { registerLatentHandlers } from "./tasks/latent-tasks.ts";
import { PredictionBus, PredictionWebhooks } from "./events.ts";
import { MemoryQueue } from "./memory-queue.ts";
import type { PredictionQueue } from "./queue.ts";
import { periodic, sweepPredictionData } from "./retention.ts";
import { PredictionService } from "./service.ts";
import { SqsQueue } from "./sqs-queue.ts";
import { PredictionStore } from "./store.ts";
import { PredictionWorker } from "./worker.ts";

export interface Predictions {
  queue: PredictionQueue;
  store: PredictionStore;
  bus: PredictionBus;
  service: PredictionService;
  webhooks: PredictionWebhooks;
  /** The worker over this queue and these parts; whether and when it pulls is the entry point's choice. */
  worker: PredictionWorker;
}

export interface PredictionDeps {
  settings: Settings;
  storage: Storage;
  registry: ModelRegistry;
  inference: InferenceService;
  log: Logger;
  secrets?: SecretBox;
  queue?: PredictionQueue;
}

export function createPredictionQueue(settings: Settings): PredictionQueue {
  return settings.GANSERVE_PREDICTION_QUEUE_URL ? new SqsQueue(settings.GANSERVE_PREDICTION_QUEUE_URL) : new MemoryQueue();
}

export function createPredictions(deps: PredictionDeps): Predictions {
  const { settings, storage, log } = deps;
  // Keyframe videos and projections (tasks/) are prediction tasks beside generate and translate.
  registerLatentHandlers(deps.registry, { maxFrames: settings.GANSERVE_MAX_VIDEO_FRAMES, maxPixels: settings.GANSERVE_MAX_PIXELS });
  const queue = deps.queue ?? createPredictionQueue(settings);
  const store = new PredictionStore(storage);
  const bus = new PredictionBus();
  const retentionSeconds = settings.GANSERVE_PREDICTION_RETENTION_S;
  const service = new PredictionService(store, queue, deps.registry, bus, storage, {
    deadlineSeconds: settings.GANSERVE_PREDICTION_DEADLINE_S,
    retentionSeconds,
    production: settings.GANSERVE_PRODUCTION,
    secrets: deps.secrets,
    // In-process, every end reaches waiters through the bus: storage is re-read only as a rare safety net
    // (a poll per waiter per second would load the embedded store more than the predictions themselves).
    pollMs: queue.kind === "memory" ? 15_000 : 1_000,
  });
  const webhooks = new PredictionWebhooks({ production: settings.GANSERVE_PRODUCTION, secrets: deps.secrets, log, view: (rec) => service.view(rec) });
  // Sweeps a few times per retention period, at most once a minute.
  const sweep = periodic(Math.min(60_000, (retentionSeconds * 1000) / 4), () => sweepPredictionData(store, retentionSeconds, Date.now(), log));
  const worker = new PredictionWorker(
    { queue, store, storage, inference: deps.inference, bus, webhooks, log },
    {
      concurrency: settings.GANSERVE_WORKER_CONCURRENCY,
      visibilitySeconds: settings.GANSERVE_QUEUE_VISIBILITY_S,
      maxBatch: settings.GANSERVE_MAX_BATCH,
      onIdle: sweep,
    },
  );
  return { queue, store, bus, service, webhooks, worker };
}
