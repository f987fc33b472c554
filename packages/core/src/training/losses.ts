/**
 * The GAN losses a fine-tune may choose (`options.loss`), written once for every family, with R1 (`r1_gamma`) and
 * TTUR learning rates (`lr_d`, `lr_g`), and the per-family rules that refuse combinations a family cannot train.
 *
 * Every loss takes D's raw outputs (logits / critic scores, any shape: a PatchGAN map is averaged like a vector),
 * never probabilities: a D that ends in Sigmoid is trained through its logits, which is the same BCE without the
 * log(0) overflow. Per loss (r = D(x) on real, f = D(G(z)) on fake, means over all elements):
 *
 *   bce            D: softplus(-r) + softplus(f)            G: -softplus(f)  = log(1 - σ(f))   (minimax, Goodfellow 2014)
 *   nonsaturating  D: softplus(-r) + softplus(f)            G: softplus(-f)  = -log σ(f)
 *   lsgan          D: ½ (r - 1)² + ½ f²                     G: (f - 1)²      (Mao 2017; CycleGAN's and PyTorch-GAN's weights)
 *   hinge          D: relu(1 - r) + relu(1 + f)             G: -f            (Lim 2017; SPADE, BigGAN)
 *   wgan-gp        D: -r + f + λ E[(‖∇D(x̂)‖₂ - 1)²]         G: -f            (Gulrajani 2017, λ = gp_lambda = 10,
 *                  x̂ = α x + (1 - α) G(z), α ~ U(0, 1) per sample)
 *
 * R1 (Mescheder 2018) adds (γ/2) E‖∇D(x)‖² on real images to D's loss, whichever loss is chosen.
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { ModelFamily } from "../families.ts";
import { TrainerOptionError } from "./common/options.ts";

export const GAN_LOSSES = ["bce", "nonsaturating", "lsgan", "hinge", "wgan-gp"] as const;
export type GanLoss = (typeof GAN_LOSSES)[number];

/** The loss keys of a fine-tune's `options`, for every family (spread into a family's strict option schema). */
export const LossOptionsShape = {
  loss: z.enum(GAN_LOSSES).optional(),
  /** R1 weight γ on real images; 0 turns it off. */
  r1_gamma: z.number().min(0).optional(),
  /** WGAN-GP's λ. */
  gp_lambda: z.number().min(0).optional(),
  /** Two time-scale update rule (Heusel 2017): D's and G's learning rates. */
  lr_d: z.number().positive().max(1).optional(),
  lr_g: z.number().positive().max(1).optional(),
};
const LossOptionsSchema = z.looseObject(LossOptionsShape);

export interface LossOptions {
  loss: GanLoss;
  r1Gamma: number;
  gpLambda: number;
  /** Undefined: the family's own default learning rate. */
  lrD?: number;
  lrG?: number;
}

export interface FamilyLossRules {
  default: GanLoss;
  /** Losses this family refuses, with the reason a user is told. */
  refuse: Partial<Record<GanLoss, string>>;
  /** Why R1 is refused, or null when it is supported. */
  r1Refused: string | null;
}

const NOT_TWICE_DIFFERENTIABLE =
  "its discriminator (TF.js LeakyReLU, spectral norm and the fused instance norm's hand-written gradient) has no second derivative here, which a gradient penalty needs (it differentiates D's input gradient again)";

/** A family that trains: the served families, and DCGAN, whose trainer exists before it joins families.ts. */
export type TrainingFamily = ModelFamily | "dcgan";

/** Which losses each family trains with: its upstream loss by default, and what it cannot do. */
export const FAMILY_LOSS_RULES: Record<TrainingFamily, FamilyLossRules> = {
  stylegan2: { default: "nonsaturating", refuse: {}, r1Refused: null },
  cyclegan: { default: "lsgan", refuse: { "wgan-gp": NOT_TWICE_DIFFERENTIABLE }, r1Refused: NOT_TWICE_DIFFERENTIABLE },
  spade: { default: "hinge", refuse: { "wgan-gp": NOT_TWICE_DIFFERENTIABLE }, r1Refused: NOT_TWICE_DIFFERENTIABLE },
  // pytorch/examples computes G's BCELoss against the "real" label: the non-saturating form.
  dcgan: { default: "nonsaturating", refuse: { "wgan-gp": NOT_TWICE_DIFFERENTIABLE }, r1Refused: NOT_TWICE_DIFFERENTIABLE },
};

/**
 * Reads and checks the loss options of a fine-tune for a family. `r1Default` is the family's R1 weight when the
 * request names none (StyleGAN2's heuristic; 0 elsewhere); `dHasBatchNorm` and `dHasSigmoid` describe the D that
 * will be trained. Throws TrainerOptionError saying why a combination is refused.
 */
export function parseLossOptions(
  family: TrainingFamily,
  raw: Record<string, unknown>,
  ctx: { r1Default?: number; dHasBatchNorm?: boolean; dHasSigmoid?: boolean } = {},
): LossOptions {
  const parsed = LossOptionsSchema.safeParse(raw ?? {});
  if (!parsed.success) throw new TrainerOptionError(`options: ${z.prettifyError(parsed.error)}`);
  const o = parsed.data;
  const rules = FAMILY_LOSS_RULES[family];
  const loss = o.loss ?? rules.default;
  const refused = rules.refuse[loss];
  if (refused) throw new TrainerOptionError(`options.loss ${loss} is not available for ${family}: ${refused}`);
  if (ctx.dHasSigmoid && loss !== "bce" && loss !== "nonsaturating")
    throw new TrainerOptionError(`options.loss ${loss} needs D's raw scores, and this discriminator ends in Sigmoid (only bce and nonsaturating read its logits)`);
  if (loss === "wgan-gp" && ctx.dHasBatchNorm)
    throw new TrainerOptionError("options.loss wgan-gp penalises each sample's gradient norm, which a BatchNorm discriminator couples across the batch (Gulrajani et al. 2017 use none)");
  if (o.gp_lambda !== undefined && loss !== "wgan-gp") throw new TrainerOptionError(`options.gp_lambda only applies to loss wgan-gp, not ${loss}`);
  if (o.r1_gamma !== undefined && o.r1_gamma > 0) {
    if (rules.r1Refused) throw new TrainerOptionError(`options.r1_gamma is not available for ${family}: ${rules.r1Refused}`);
    if (loss === "wgan-gp") throw new TrainerOptionError("options.r1_gamma: wgan-gp already has its own gradient penalty (gp_lambda); use one of them");
  }
  const r1Gamma = o.r1_gamma ?? (loss === "wgan-gp" ? 0 : (ctx.r1Default ?? 0));
  return { loss, r1Gamma, gpLambda: o.gp_lambda ?? 10, lrD: o.lr_d, lrG: o.lr_g };
}

/** D's loss on its real and fake outputs, as two terms (their sum is the loss; wgan-gp's penalty comes on top). */
export function discriminatorLoss(loss: GanLoss, real: tf.Tensor, fake: tf.Tensor): { real: tf.Scalar; fake: tf.Scalar } {
  return tf.tidy(() => {
    switch (loss) {
      case "bce":
      case "nonsaturating":
        return { real: tf.mean(tf.softplus(tf.neg(real))) as tf.Scalar, fake: tf.mean(tf.softplus(fake)) as tf.Scalar };
      case "lsgan":
        return { real: tf.mul(tf.mean(tf.square(tf.sub(real, 1))), 0.5) as tf.Scalar, fake: tf.mul(tf.mean(tf.square(fake)), 0.5) as tf.Scalar };
      case "hinge":
        return { real: tf.mean(tf.relu(tf.sub(1, real))) as tf.Scalar, fake: tf.mean(tf.relu(tf.add(1, fake))) as tf.Scalar };
      case "wgan-gp":
        return { real: tf.neg(tf.mean(real)) as tf.Scalar, fake: tf.mean(fake) as tf.Scalar };
    }
  });
}

/** G's loss on D's outputs for its fakes. */
export function generatorLoss(loss: GanLoss, fake: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    switch (loss) {
      case "bce":
        return tf.neg(tf.mean(tf.softplus(fake))) as tf.Scalar;
      case "nonsaturating":
        return tf.mean(tf.softplus(tf.neg(fake))) as tf.Scalar;
      case "lsgan":
        return tf.mean(tf.square(tf.sub(fake, 1))) as tf.Scalar;
      case "hinge":
      case "wgan-gp":
        return tf.neg(tf.mean(fake)) as tf.Scalar;
    }
  });
}

/**
 * WGAN-GP's penalty E[(‖∇ₓD(x̂)‖₂ - 1)²] at x̂ = α·real + (1 - α)·fake, α of shape [N, 1, 1, 1]. Built with tf.grad,
 * so inside tf.variableGrads D's parameters get the second-order gradient (D must be twice differentiable).
 */
export function wganGradientPenalty(d: (x: tf.Tensor4D) => tf.Tensor, real: tf.Tensor4D, fake: tf.Tensor4D, alpha: tf.Tensor4D): tf.Scalar {
  const xHat = tf.add(tf.mul(alpha, real), tf.mul(tf.sub(1, alpha), fake)) as tf.Tensor4D;
  const g = tf.grad((x: tf.Tensor) => tf.sum(d(x as tf.Tensor4D)))(xHat);
  const norm = tf.sqrt(tf.sum(tf.square(g), [1, 2, 3]));
  return tf.mean(tf.square(tf.sub(norm, 1))) as tf.Scalar;
}

/** The same loss averaged over several discriminators' outputs (SPADE's multiscale D, one output per scale). */
export function averaged<T extends tf.Scalar | { real: tf.Scalar; fake: tf.Scalar }>(per: T[]): T {
  if (per[0] instanceof tf.Tensor) return tf.div(tf.addN(per as tf.Scalar[]), per.length) as T;
  const pairs = per as { real: tf.Scalar; fake: tf.Scalar }[];
  return {
    real: tf.div(tf.addN(pairs.map((p) => p.real)), pairs.length),
    fake: tf.div(tf.addN(pairs.map((p) => p.fake)), pairs.length),
  } as T;
}
