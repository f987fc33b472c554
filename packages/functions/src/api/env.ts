import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Settings } from "@ganserve/core/config";
import type { KeyRing, ApiKeyRecord } from "@ganserve/core/auth/keys";
import type { Logger } from "@ganserve/core/log";
import type { Storage } from "@ganserve/core/storage/storage";
import type { ModelRegistry } from "@ganserve/core/models/registry";
import type { InferenceService } from "@ganserve/core/inference/service";
import type { Metrics } from "@ganserve/core/inference/metrics";
import type { DatasetService } from "@ganserve/core/datasets/service";
import type { Launcher } from "@ganserve/core/jobs/launcher";
import type { FineTuneService } from "@ganserve/core/jobs/service";
import type { JobStore } from "@ganserve/core/jobs/store";
import type { TokenBucketLimiter } from "@ganserve/core/limits/rate-limiter";
import type { FineTuneSlots } from "@ganserve/core/jobs/quota";
import type { DatasetQuota } from "@ganserve/core/datasets/quota";
import type { DatasetFinalizer } from "@ganserve/core/datasets/finalizer";
import type { Predictions } from "@ganserve/core/predictions/index";

/** Everything a router needs, built once per process by `createServices` and passed down explicitly. */
export interface Services {
  settings: Settings;
  storage: Storage;
  keys: KeyRing;
  log: Logger;
  registry: ModelRegistry;
  inference: InferenceService;
  metrics: Metrics;
  datasets: DatasetService;
  jobs: JobStore;
  fineTunes: FineTuneService;
  launcher: Launcher;
  limiter: TokenBucketLimiter;
  fineTuneSlots: FineTuneSlots;
  /** Dataset finalize under the tenant's dataset-bytes quota, serialised per tenant. */
  datasetQuota: DatasetQuota;
  /** Finalize as a job: in this process locally, on AWS Batch when deployed (datasets/finalizer.ts). */
  datasetFinalizer: DatasetFinalizer;
  /** Predictions: the service routes use, the queue, and the worker (in-process only with the memory queue). */
  predictions: Predictions;
  /** Extra readiness probes that later parts (model cache, queues) register. */
  readiness: Map<string, () => Promise<{ ok: boolean; detail?: string }>>;
  startedAt: number;
  /**
   * How event routes answer: `stream` holds the connection and writes events as they come; `snapshot` (the
   * Lambda behind API Gateway, which buffers whole responses) answers at once with the events so far and a
   * `retry:` delay, so a client polls with Last-Event-ID instead of holding a function for nothing.
   */
  eventDelivery?: "stream" | "snapshot";
}

export interface AppEnv {
  Variables: {
    requestId: string;
    apiKey?: ApiKeyRecord;
  };
}

export type Router = OpenAPIHono<AppEnv>;
