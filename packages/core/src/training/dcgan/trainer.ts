/**
 * DCGAN training as pytorch/examples `dcgan/main.py` does it: per step, D on a real batch and on G(z) (no
 * gradient to G), then G on D(G(z)) with the same z; Adam(β = (0.5, 0.999)) for both, lr 2e-4 unless
 * `learning_rate` / `lr_g` / `lr_d` say otherwise; BatchNorm in train mode (batch statistics) for G and D, and
 * G's running statistics updated (momentum 0.1) on the step's first G forward, as torch's `netG(noise)` does, so
 * the exported generator works in eval mode.
 * The loss is `options.loss` (default nonsaturating, which is what main.py's BCELoss against the real label
 * computes); wgan-gp and R1 are refused (training/losses.ts says why). A base generator is fine-tuned, or with
 * no weights one is trained from scratch (pytorch/examples' N(0, 0.02) init).
 *
 * Every draw of step k (batch indices, z) is a pure function of (seed, k), as the Trainer contract asks, so a
 * worker that resumes from saveState continues exactly; createDcganTrainer is the fine-tune registry's entry.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { StateDict } from "../../checkpoints/tensor.ts";
import { enableTraining } from "../../engine/gradients.ts";
import { type DcganConfig, parseDcganConfig } from "../../networks/dcgan/config.ts";
import { DcganDiscriminator, type DcganDiscriminatorOptions } from "../../networks/dcgan/discriminator.ts";
import { DcganGenerator } from "../../networks/dcgan/generator.ts";
import { Adam } from "../common/adam.ts";
import { imageTensor } from "../common/images.ts";
import { normals } from "../common/normal.ts";
import { tensorImages, tileRows } from "../common/images.ts";
import { updateRunningStats } from "../common/running-stats.ts";
import { ganPairState, readInt, underPrefix } from "../common/state.ts";
import { torchSeedToZ } from "../../random/torch-randn.ts";
import { numberOption, stringOption, TrainerOptionError } from "../common/options.ts";
import { stepRng, stepSeed } from "../common/step-rng.ts";
import { discriminatorLoss, generatorLoss, type LossOptions, parseLossOptions } from "../losses.ts";
import type { StepResult, Trainer, TrainerInit, TrainerOptions, TrainImage } from "../types.ts";

const BETAS = { beta1: 0.5, beta2: 0.999 };

export interface DcganTrainerInit {
  /** The generator's config (networks/dcgan/config.ts). */
  config: unknown;
  /** Base generator weights; absent: train from scratch. */
  weights?: StateDict;
  images: TrainImage[];
  options: TrainerOptions;
}

/** Samples in the grid: torch seeds 0..SAMPLES-1, one row. */
const SAMPLES = 8;

export class DcganTrainer implements Trainer {
  readonly family = "dcgan" as const;
  readonly cfg: DcganConfig;
  readonly loss: LossOptions;
  G: DcganGenerator;
  D: DcganDiscriminator;
  private optG: Adam;
  private optD: Adam;
  private readonly dOptions: DcganDiscriminatorOptions;
  private readonly lrG: number;
  private readonly lrD: number;
  /** The training images at the model's size and channels, NHWC in [-1, 1]. */
  private readonly data: tf.Tensor4D;
  private _step = 0;

  constructor(private readonly init: DcganTrainerInit) {
    enableTraining();
    this.cfg = parseDcganConfig(init.config);
    const o = init.options.options ?? {};
    const norm = stringOption(o, "d_norm", "batch");
    if (norm !== "batch" && norm !== "none") throw new TrainerOptionError(`options.d_norm must be batch or none, got ${JSON.stringify(norm)}`);
    this.loss = parseLossOptions("dcgan", o, { dHasBatchNorm: norm === "batch" });
    if (init.images.length === 0) throw new TrainerOptionError("no training images");
    const { seed, learning_rate } = init.options;
    this.lrG = this.loss.lrG ?? learning_rate;
    this.lrD = this.loss.lrD ?? learning_rate;
    this.G = init.weights ? DcganGenerator.fromStateDict(this.cfg, init.weights, "base weights") : DcganGenerator.randomInit(this.cfg, stepSeed(seed, 0, "init.G") % 1_000_000);
    const ndf = numberOption(o, "ndf", 64, { integer: true, min: 1 });
    this.dOptions = { nc: this.cfg.nc, imgSize: this.cfg.img_size, ndf, norm };
    this.D = DcganDiscriminator.randomInit(this.dOptions, stepSeed(seed, 0, "init.D") % 1_000_000);
    this.optG = new Adam(this.G.trainableVariables(), BETAS);
    this.optD = new Adam(this.D.trainableVariables(), BETAS);
    const S = this.cfg.img_size;
    this.data = tf.tidy(() => {
      const rgb = tf.concat(init.images.map((img) => imageTensor(img, S, S))) as tf.Tensor4D;
      // One-channel models see the mean of R, G and B.
      return this.cfg.nc === 1 ? (tf.mean(rgb, 3, true) as tf.Tensor4D) : rgb;
    });
  }

  get step(): number {
    return this._step;
  }

  async trainStep(): Promise<StepResult> {
    const k = this._step;
    const { seed, batch_size: b } = this.init.options;
    const nz = this.G.nz;
    const pick = stepRng(seed, k, "data");
    const n = this.data.shape[0];
    const idx = tf.tensor1d(Array.from({ length: b }, () => Math.floor(pick.next() * n)), "int32");
    const real = tf.gather(this.data, idx) as tf.Tensor4D;
    const z = tf.tensor2d(normals(stepRng(seed, k, "z"), b * nz), [b, nz]);
    const loss = this.loss.loss;
    let dParts: tf.Tensor1D | undefined;
    try {
      const fake = this.G.forward(z, { training: true, onBatchNorm: (bn, x) => updateRunningStats(bn, x, 0.1) });
      const d = tf.variableGrads(() => {
        const l = discriminatorLoss(loss, this.D.forward(real, true), this.D.forward(fake, true));
        dParts = tf.keep(tf.stack([l.real, l.fake]) as tf.Tensor1D);
        return tf.add(l.real, l.fake) as tf.Scalar;
      }, [...this.optD.params.values()]);
      this.optD.apply(d.grads, this.lrD, k + 1);
      tf.dispose([fake, d.value, ...Object.values(d.grads)]);

      const g = tf.variableGrads(() => generatorLoss(loss, this.D.forward(this.G.forward(z, { training: true }), true)), [...this.optG.params.values()]);
      this.optG.apply(g.grads, this.lrG, k + 1);
      const gv = (await g.value.data())[0];
      tf.dispose([g.value, ...Object.values(g.grads)]);
      const dv = await dParts!.data();
      this._step = k + 1;
      return { step: this._step, losses: { D_real: dv[0], D_fake: dv[1], G: gv } };
    } finally {
      tf.dispose([idx, real, z, ...(dParts ? [dParts] : [])]);
    }
  }

  /** G, D (official names under G. and D.), both Adams' moments and the step. */
  saveState(): StateDict {
    return ganPairState(this.G, this.D, this.optG, this.optD, this._step);
  }

  loadState(state: StateDict): void {
    const G = DcganGenerator.fromStateDict(this.cfg, underPrefix(state, "G."), "state G");
    let D: DcganDiscriminator;
    try {
      D = DcganDiscriminator.fromStateDict(this.dOptions, underPrefix(state, "D."), "state D");
    } catch (e) {
      G.dispose();
      throw e;
    }
    const step = readInt(state, "step");
    for (const x of [this.G, this.D, this.optG, this.optD]) x.dispose();
    this.G = G;
    this.D = D;
    this.optG = new Adam(this.G.trainableVariables(), BETAS);
    this.optD = new Adam(this.D.trainableVariables(), BETAS);
    this.optG.loadState(state, "opt_G.");
    this.optD.loadState(state, "opt_D.");
    this._step = step;
  }

  /** G in eval mode on torch seeds 0..7 (what `/v1/generate` gives for them), one row, gray shown as RGB. */
  async sampleGrid(): Promise<TrainImage> {
    const nz = this.G.nz;
    const z = new Float32Array(SAMPLES * nz);
    for (let i = 0; i < SAMPLES; i++) z.set(torchSeedToZ(i, nz), i * nz);
    const rgb = tf.tidy(() => {
      const y = this.G.forward(tf.tensor2d(z, [SAMPLES, nz]));
      return y.shape[3] === 1 ? (tf.tile(y, [1, 1, 1, 3]) as tf.Tensor4D) : y;
    });
    try {
      return tileRows([tensorImages(rgb)]);
    } finally {
      rgb.dispose();
    }
  }

  /** The generator to publish: its config and official state_dict. */
  exportGenerator(): { config: Record<string, unknown>; weights: StateDict } {
    return { config: { ...this.cfg }, weights: this.G.stateDict() };
  }

  dispose(): void {
    for (const x of [this.G, this.D, this.optG, this.optD, this.data]) x.dispose();
  }
}

/** The fine-tune registry's entry: the base model's config and weights, trained on the dataset's images. */
export function createDcganTrainer(init: TrainerInit): DcganTrainer {
  if (init.data.family !== "dcgan") throw new Error(`a dcgan trainer cannot train on ${init.data.family} data`);
  return new DcganTrainer({ config: init.config, weights: init.weights, images: init.data.images, options: init.options });
}
