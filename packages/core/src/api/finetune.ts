/**
 * Schemas of the datasets and fine-tunes API (Replicate's trainings API is the model: create, poll or
 * stream events, cancel, get a new model version at the end).
 */
import { z } from "zod";
import { FAMILIES } from "../families.ts";
import { Family, ModelName, VersionId, VersionRef } from "../models/model-json.ts";

/** A dataset's layout is named after the family it trains, or `auto` to detect it. */
export const DatasetLayout = z.enum([...FAMILIES, "auto"]).meta({
  description: "stylegan2: images/ (optionally images/<class>/); cyclegan: trainA/ + trainB/; spade: images/ + labels/; dcgan: images/ (class folders pooled; a stylegan2 images/ dataset trains a DCGAN too)",
});

export const CreateDatasetRequest = z
  .object({
    name: z.string().min(1).max(100).optional(),
    layout: DatasetLayout.default("auto"),
    size_bytes: z.number().int().min(1).optional().meta({
      description:
        "Size of the zip you will upload. The upload form accepts at most this many bytes, and this much of your dataset quota is held for it until finalize or until the form expires. Default: the most your remaining quota and the server's upload limit allow (holding all of it meanwhile).",
    }),
  })
  .meta({ id: "CreateDatasetRequest", example: { name: "my-sneakers", layout: "stylegan2", size_bytes: 3_400_000 } });
export type CreateDatasetRequest = z.input<typeof CreateDatasetRequest>;

export const DatasetId = z.string().regex(/^ds_[A-Za-z0-9]{16,40}$/).meta({ example: "ds_8f3k2m9q1x7c4v6b" });
export const FineTuneId = z.string().regex(/^ft_[A-Za-z0-9]{16,40}$/).meta({ example: "ft_2m9q1x7c4v6b8f3k" });

export const Rejection = z.object({ path: z.string(), code: z.string(), reason: z.string() });

export const Dataset = z
  .object({
    id: DatasetId,
    name: z.string().optional(),
    layout: DatasetLayout,
    status: z.enum(["awaiting_upload", "processing", "ready", "failed"]).meta({
      description: "processing: finalize accepted the upload and is validating and indexing it (GET until ready or failed)",
    }),
    created_at: z.string(),
    upload: z
      .object({
        url: z.string(),
        method: z.literal("POST"),
        fields: z.record(z.string(), z.string()).meta({ description: "Form fields to send as they are, before the file" }),
        file_field: z.literal("file").meta({ description: "Name of the form part that carries the zip; it must come last" }),
        max_bytes: z.number().int().meta({ description: "Largest zip the form accepts; a larger one is refused (400 EntityTooLarge) and not stored" }),
        expires_at: z.string(),
      })
      .optional()
      .meta({
        description:
          "S3's browser upload form (presigned POST, no API key needed): POST multipart/form-data to url with every field, then the zip as the part named file_field, last. Only while the dataset awaits its upload, until expires_at.",
      }),
    stats: z
      .object({
        images: z.number().int(),
        counts_by_folder: z.record(z.string(), z.number().int()),
        total_bytes: z.number().int(),
        resolutions: z.record(z.string(), z.number().int()),
        classes: z.array(z.string()).optional(),
        max_label_value: z.number().int().optional(),
      })
      .optional(),
    rejected: z.array(Rejection).optional(),
    error: z.object({ code: z.string(), message: z.string() }).optional(),
  })
  .meta({ id: "Dataset" });
export type Dataset = z.infer<typeof Dataset>;

export const DatasetList = z.object({ datasets: z.array(Dataset) }).meta({ id: "DatasetList" });

export const Webhook = z
  .object({
    url: z.url().meta({ description: "https only in production; never private or loopback addresses there" }),
    secret: z.string().min(16).max(200).meta({ description: "HMAC-SHA256 key for the X-Ganserve-Signature header (at least 16 characters)" }),
  })
  .meta({ id: "Webhook" });

export const CreateFineTuneRequest = z
  .object({
    base_model: ModelName,
    version: VersionRef.default("latest"),
    dataset: DatasetId,
    name: ModelName.meta({ description: "Model name the result is published under (a new version if it exists)", example: "my-sneakers" }),
    steps: z.number().int().min(1).max(200_000).default(500),
    batch_size: z.number().int().min(1).max(64).default(4),
    learning_rate: z.number().positive().max(1).default(0.002),
    resolution: z.number().int().min(8).max(1024).optional().meta({ description: "Training size (default: the model's)" }),
    checkpoint_every: z.number().int().min(1).optional().meta({ description: "Steps between checkpoints (default: steps/10, at least 1)" }),
    sample_every: z.number().int().min(1).optional().meta({ description: "Steps between sample grids (default: steps/5)" }),
    seed: z.number().int().min(0).max(4294967295).default(0),
    options: z
      .record(z.string(), z.unknown())
      .default({})
      .meta({
        description:
          "Per family. Every family: loss (bce | nonsaturating | lsgan | hinge | wgan-gp; default stylegan2 nonsaturating, cyclegan lsgan, spade hinge, dcgan nonsaturating), r1_gamma, gp_lambda (wgan-gp, 10), lr_d and lr_g (TTUR); cyclegan, spade and dcgan refuse wgan-gp and r1_gamma (their discriminators are not twice differentiable here; a BatchNorm D would also couple WGAN-GP's per-sample penalty). stylegan2: ema_steps, freeze_d, augment (bool), d_lr. cyclegan: lambda_cycle (10), lambda_identity (0.5), pool_size (50), decay_start. spade: lambda_feat (10), lambda_l1 (0: pix2pix's L1 to the paired image), num_D (2), d_lr. dcgan: ndf (64), d_norm (batch | none).",
      }),
    webhook: Webhook.optional(),
  })
  .meta({
    id: "CreateFineTuneRequest",
    example: { base_model: "fashion-stylegan2", dataset: "ds_8f3k2m9q1x7c4v6b", name: "my-sneakers", steps: 200, batch_size: 4 },
  });
export type CreateFineTuneRequest = z.input<typeof CreateFineTuneRequest>;
export type FineTuneParams = z.output<typeof CreateFineTuneRequest>;

export const FineTuneStatus = z.enum(["queued", "running", "succeeded", "failed", "canceled"]);
export type FineTuneStatus = z.infer<typeof FineTuneStatus>;

export const FineTune = z
  .object({
    id: FineTuneId,
    status: FineTuneStatus,
    family: Family,
    base_model: ModelName,
    base_version: VersionId,
    dataset: DatasetId,
    name: ModelName,
    params: z.record(z.string(), z.unknown()),
    step: z.number().int(),
    total_steps: z.number().int(),
    losses: z.record(z.string(), z.number()).meta({ description: "latest value of each loss term" }),
    loss_history: z.array(z.object({ step: z.number().int(), losses: z.record(z.string(), z.number()) })),
    seconds_per_step: z.number().optional(),
    eta_seconds: z.number().optional(),
    samples: z.array(z.object({ step: z.number().int(), key: z.string(), url: z.string().optional() })),
    last_checkpoint_step: z.number().int().optional(),
    result: z.object({ model: ModelName, version: VersionId }).optional(),
    error: z.object({ code: z.string(), message: z.string() }).optional(),
    attempts: z.number().int().meta({ description: "how many times a worker started (more than 1 after a crash)" }),
    cancel_requested: z.boolean(),
    created_at: z.string(),
    started_at: z.string().optional(),
    finished_at: z.string().optional(),
  })
  .meta({ id: "FineTune" });
export type FineTune = z.infer<typeof FineTune>;

export const FineTuneList = z.object({ fine_tunes: z.array(FineTune) }).meta({ id: "FineTuneList" });

export const FineTuneEvent = z
  .object({
    seq: z.number().int(),
    type: z.enum(["status", "progress", "checkpoint", "sample", "log", "done"]),
    time: z.string(),
    step: z.number().int().optional(),
    status: FineTuneStatus.optional(),
    losses: z.record(z.string(), z.number()).optional(),
    message: z.string().optional(),
    data: z.record(z.string(), z.unknown()).optional(),
  })
  .meta({ id: "FineTuneEvent", description: "One server-sent event of GET /v1/fine-tunes/{id}/events" });
export type FineTuneEvent = z.infer<typeof FineTuneEvent>;
