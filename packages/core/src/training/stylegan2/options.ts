/**
 * StyleGAN2 fine-tune options (`TrainerOptions.options`), with defaults from stylegan2-ada's `auto` configuration
 * where it has one. Unknown keys are rejected so a typo does not silently train with a default.
 */
import { z } from "zod";
import { AUGMENT_OPS, type AugmentOp } from "../common/diffaugment.ts";

export const StyleGAN2TrainOptionsSchema = z.strictObject({
  /** R1 weight. Default: ada's auto heuristic 0.0002 · res² / batch (10 at 256² / batch 64 is the paper scale). */
  r1_gamma: z.number().min(0).optional(),
  /** Lazy regularisation interval in steps (ada: 16). */
  r1_interval: z.number().int().min(1).default(16),
  /** D learning rate; defaults to TrainerOptions.learning_rate. */
  d_lr: z.number().positive().optional(),
  /** Number of top-resolution D blocks (b{res}, b{res/2}, ...) whose weights stay fixed (FreezeD, Mo et al. 2020). */
  freeze_d: z.number().int().min(0).default(0),
  /** DiffAugment on real and fake images before D; default: on when the dataset has fewer than 1000 images. */
  augment: z.boolean().optional(),
  augment_policy: z.array(z.enum(AUGMENT_OPS as [AugmentOp, ...AugmentOp[]])).default(["color", "translation", "cutout"]),
  /** G_ema half-life in thousands of images; default ada's batch · 10 / 32. */
  ema_kimg: z.number().positive().optional(),
  /** G_ema half-life in steps (overrides ema_kimg). */
  ema_steps: z.number().positive().optional(),
  /** ada's ema_rampup (e.g. 0.05 when training from scratch); null = off, the better default when fine-tuning. */
  ema_rampup: z.number().positive().nullable().default(null),
  /** Probability of style mixing regularisation per step (ada: 0.9). */
  style_mixing_prob: z.number().min(0).max(1).default(0.9),
  /** Random horizontal flips of real images (ada's --mirror). */
  mirror: z.boolean().default(false),
  /** Minibatch-std group size in D (clipped to the batch and to a divisor of it). */
  mbstd_group_size: z.number().int().min(1).default(4),
  /** Layers of D's conditioning mapping network (upstream default 8). */
  d_mapping_layers: z.number().int().min(1).default(8),
});

export interface StyleGAN2TrainOptions {
  r1Gamma: number;
  r1Interval: number;
  dLr: number;
  gLr: number;
  freezeD: number;
  augment: boolean;
  augmentPolicy: AugmentOp[];
  /** G_ema half-life in images. */
  emaNimg: number;
  emaRampup: number | null;
  styleMixingProb: number;
  mirror: boolean;
  mbstdGroupSize: number;
  dMappingLayers: number;
}

export function parseStyleGAN2Options(raw: Record<string, unknown>, ctx: { resolution: number; batchSize: number; learningRate: number; datasetSize: number }): StyleGAN2TrainOptions {
  const o = StyleGAN2TrainOptionsSchema.parse(raw ?? {});
  const { resolution: res, batchSize: b } = ctx;
  const emaNimg = o.ema_steps !== undefined ? o.ema_steps * b : (o.ema_kimg ?? (b * 10) / 32) * 1000;
  return {
    r1Gamma: o.r1_gamma ?? (0.0002 * res * res) / b,
    r1Interval: o.r1_interval,
    gLr: ctx.learningRate,
    dLr: o.d_lr ?? ctx.learningRate,
    freezeD: o.freeze_d,
    augment: o.augment ?? ctx.datasetSize < 1000,
    augmentPolicy: [...o.augment_policy],
    emaNimg,
    emaRampup: o.ema_rampup,
    styleMixingProb: o.style_mixing_prob,
    mirror: o.mirror,
    mbstdGroupSize: o.mbstd_group_size,
    dMappingLayers: o.d_mapping_layers,
  };
}
