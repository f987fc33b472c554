/**
 * StyleGAN2 fine-tune options (`TrainerOptions.options`), with defaults from stylegan2-ada's `auto` configuration
 * where it has one. Unknown keys are rejected so a typo does not silently train with a default.
 */
import { z } from "zod";
import { AUGMENT_OPS, type AugmentOp } from "../common/diffaugment.ts";
import { type GanLoss, LossOptionsShape, parseLossOptions } from "../losses.ts";
import { TrainerOptionError } from "../common/options.ts";

export const StyleGAN2TrainOptionsSchema = z.strictObject({
  /**
   * loss (default nonsaturating), r1_gamma, gp_lambda, lr_d, lr_g: see training/losses.ts. R1's default is ada's
   * auto heuristic 0.0002 · res² / batch (10 at 256² / batch 64 is the paper scale); 0 with wgan-gp.
   */
  ...LossOptionsShape,
  /** Lazy regularisation interval in steps (ada: 16). */
  r1_interval: z.number().int().min(1).default(16),
  /** D learning rate (lr_d's older name); defaults to TrainerOptions.learning_rate. */
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
  loss: GanLoss;
  gpLambda: number;
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
  const loss = parseLossOptions("stylegan2", o, { r1Default: (0.0002 * res * res) / b });
  if (loss.lrD !== undefined && o.d_lr !== undefined && o.d_lr !== loss.lrD)
    throw new TrainerOptionError(`options.lr_d (${loss.lrD}) and options.d_lr (${o.d_lr}) disagree; give one`);
  const emaNimg = o.ema_steps !== undefined ? o.ema_steps * b : (o.ema_kimg ?? (b * 10) / 32) * 1000;
  return {
    loss: loss.loss,
    gpLambda: loss.gpLambda,
    r1Gamma: loss.r1Gamma,
    r1Interval: o.r1_interval,
    gLr: loss.lrG ?? ctx.learningRate,
    dLr: loss.lrD ?? o.d_lr ?? ctx.learningRate,
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
