/**
 * Schemas of the predictions API, shaped like Replicate's prediction object so users and tools feel at home:
 * a request to run a model becomes a record with a status that ends `succeeded`, `failed` or `canceled`.
 * `input` is exactly the body of today's /v1/generate or /v1/translate (less model and version, which are
 * top-level here); which one is decided by the model's family (handlers.ts).
 */
import { z } from "zod";
import { ImageResult, Timings } from "../api/inference.ts";
import { Webhook } from "../api/finetune.ts";
import { ModelName, VersionId, VersionRef } from "../models/model-json.ts";

export const PredictionId = z
  .string()
  .regex(/^p[a-z0-9]{21}$/)
  .meta({ example: "p2vxj0e9k4m1q8r7s6t5u3w" });

export const PredictionStatus = z.enum(["starting", "processing", "succeeded", "failed", "canceled"]);
export type PredictionStatus = z.infer<typeof PredictionStatus>;
export const TERMINAL_STATUSES: ReadonlySet<PredictionStatus> = new Set(["succeeded", "failed", "canceled"]);
export const isTerminal = (s: PredictionStatus) => TERMINAL_STATUSES.has(s);

export const WebhookEvent = z.enum(["start", "output", "logs", "completed"]);
export type WebhookEvent = z.infer<typeof WebhookEvent>;

export const CreatePredictionRequest = z
  .object({
    model: ModelName,
    version: VersionRef.default("latest"),
    task: z
      .string()
      .regex(/^[a-z][a-z0-9_-]{0,31}$/)
      .optional()
      .meta({ description: "What to run (generate, translate, …); default: the one the model's family serves" }),
    input: z
      .record(z.string(), z.unknown())
      .meta({ description: "The body of /v1/generate (StyleGAN2) or /v1/translate (CycleGAN, SPADE), without model and version" }),
    webhook: Webhook.optional(),
    webhook_events_filter: z.array(WebhookEvent).min(1).optional().meta({ description: "Events to send (default: all)" }),
    deadline: z
      .number()
      .int()
      .min(1)
      .max(24 * 3600)
      .optional()
      .meta({ description: "Seconds after creation: canceled if it started by then, failed (deadline_exceeded) if it never started" }),
  })
  .meta({
    id: "CreatePredictionRequest",
    example: { model: "fashion-stylegan2", input: { seeds: "0-3", truncation_psi: 0.7 } },
  });
export type CreatePredictionRequest = z.input<typeof CreatePredictionRequest>;
export type CreatePredictionParams = z.output<typeof CreatePredictionRequest>;

/**
 * Replicate's metric (seconds, whole prediction) for each span that Timings (`api/inference.ts`, ms, one
 * pass) also names: one table, from which the metrics schema is built, so the two name the same spans.
 */
export const METRIC_OF_TIMING = {
  queue_ms: { name: "queue_time", description: "seconds from creation to start" },
  compute_ms: { name: "predict_time", description: "seconds running" },
  total_ms: { name: "total_time", description: "seconds from creation to the end" },
} as const satisfies Partial<Record<keyof z.infer<typeof Timings>, { name: string; description: string }>>;

type MetricName = (typeof METRIC_OF_TIMING)[keyof typeof METRIC_OF_TIMING]["name"];
const metric = (description: string) => z.number().optional().meta({ description });

export const PredictionMetrics = z
  .object(
    Object.fromEntries(Object.values(METRIC_OF_TIMING).map((m) => [m.name, metric(m.description)])) as Record<MetricName, ReturnType<typeof metric>>,
  )
  .meta({ id: "PredictionMetrics" });

export const Prediction = z
  .object({
    id: PredictionId,
    model: ModelName,
    version: VersionId,
    task: z.string(),
    input: z.record(z.string(), z.unknown()).meta({ description: "as sent; input files are shown by size only" }),
    status: PredictionStatus,
    output: z.array(ImageResult).nullable().meta({ description: "images (URLs, or base64 when input.output is base64)" }),
    error: z.string().nullable(),
    error_code: z.string().nullable().meta({ description: "stable machine-readable code of `error` (e.g. deadline_exceeded)" }),
    logs: z.string(),
    progress: z
      .object({ completed: z.number().int(), total: z.number().int() })
      .optional()
      .meta({ description: "units done of all (images for generate)" }),
    metrics: PredictionMetrics,
    attempts: z.number().int().meta({ description: "how many times a worker started it (more than 1 after a worker died)" }),
    data_removed: z.boolean().meta({ description: "input and output were deleted by retention" }),
    created_at: z.string(),
    started_at: z.string().nullable(),
    completed_at: z.string().nullable(),
    deadline_at: z.string(),
    urls: z.object({ get: z.string(), cancel: z.string(), stream: z.string() }),
  })
  .meta({ id: "Prediction" });
export type Prediction = z.infer<typeof Prediction>;

export const PredictionList = z
  .object({
    results: z.array(Prediction),
    next: z.string().nullable().meta({ description: "URL of the next (older) page; null on the last page" }),
  })
  .meta({ id: "PredictionList" });
export type PredictionList = z.infer<typeof PredictionList>;

export const ListQuery = z.object({
  cursor: PredictionId.optional().meta({ description: "the id after which the page starts (from `next`)" }),
  limit: z.coerce.number().int().min(1).max(100).default(20),
});

/** What a handler hands back: the images, plus the parameters and timings /v1/generate and /v1/translate answer with. */
export const PredictionResult = z.object({
  output: z.array(ImageResult.extend({ key: z.string().optional() })),
  params: z.record(z.string(), z.unknown()),
  timings: Timings,
});
export type PredictionResult = z.infer<typeof PredictionResult>;

/** An event of the /events stream (and the body of a webhook, which carries the prediction). */
export const PredictionEvent = z
  .object({
    type: z.enum(["status", "output", "logs", "done"]),
    prediction: Prediction,
  })
  .meta({ id: "PredictionEvent" });
export type PredictionEvent = z.infer<typeof PredictionEvent>;
