/**
 * SPADE fine-tuning after NVlabs `Pix2PixTrainer` / `Pix2PixModel` (GAN mode 'hinge'):
 *
 *   G step: fake = G(sem); D sees concat(sem, fake) and concat(sem, real) in one batch (as upstream);
 *           G_GAN = -mean(D(fake)) averaged over scales, GAN_Feat = λ_feat · Σ_layers L1(D_feat(fake), D_feat(real))
 *           averaged over scales.
 *   D step: fake regenerated with the updated G (no gradient); D_Fake = hinge(fake), D_real = hinge(real).
 *
 * Train-mode details matching torch: every training forward of a spectral-normed network first runs one power
 * iteration on its u/v (so G and D each get two per step, one per forward, as the hooks do upstream); param-free
 * BatchNorms normalise with batch statistics and update running_mean / running_var (momentum 0.1, unbiased var),
 * so the exported generator behaves in eval mode as upstream's would. `num_batches_tracked` is not advanced (only
 * momentum=None reads it).
 *
 * TTUR (upstream default): Adam(β1 = 0, β2 = 0.9), G lr = lr / 2, D lr = 2 lr (`d_lr` overrides D's);
 * `no_TTUR` gives both lr with (beta1, beta2) from options (upstream defaults 0, 0.9). LR stays constant unless
 * `decay_start` is given (upstream's niter_decay defaults to 0), then decays linearly to the last step.
 *
 * `options.loss` swaps hinge for another loss of training/losses.ts (averaged over scales the same way); `lr_g` and
 * `lr_d` override the TTUR rates (`lr_d` is `d_lr`'s other name); wgan-gp and R1 are refused (losses.ts says why).
 *
 * `lambda_l1` (default 0, as upstream) adds pix2pix's reconstruction term λ_L1 · mean|fake − real| to G's loss
 * (`G_L1`). It stands in for the VGG perceptual loss on paired data where that loss is missing (below): it pulls G
 * towards the image a label map was rendered from instead of only towards images D cannot tell from real ones.
 *
 * Not done: the VGG perceptual loss (upstream trains with it; its ImageNet VGG19 weights are not available offline,
 * so `no_vgg_loss` is implied), and use_vae models (the encoder and KL term are not trained here; rejected).
 * n_layers_D defaults to 4 (upstream) for outputs of 128 px and more, 3 below, where a fourth stride-2 stage
 * leaves the coarse scale with only a few pixels.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { StateDict } from "../../checkpoints/tensor.ts";
import { concatChannels } from "../../engine/concat-channels.ts";
import { enableTraining } from "../../engine/gradients.ts";
import type { BatchNorm2d } from "../../networks/common/norm.ts";
import { MultiscaleDiscriminator, type MultiscaleDiscriminatorOptions } from "../../networks/spade/discriminator.ts";
import { parseSpadeConfig, SpadeGenerator, type SpadeConfig } from "../../networks/spade/index.ts";
import { Adam } from "../common/adam.ts";
import { tensorImages, tileRows } from "../common/images.ts";
import { featureMatchingLoss } from "../common/losses.ts";
import { linearDecayFactor } from "../common/lr.ts";
import { booleanOption, numberOption, stringOption, TrainerOptionError } from "../common/options.ts";
import { updateRunningStats } from "../common/running-stats.ts";
import { ganPairState, readInt, underPrefix } from "../common/state.ts";
import { stepRng, stepSeed } from "../common/step-rng.ts";
import { averaged, discriminatorLoss, generatorLoss, type GanLoss, parseLossOptions } from "../losses.ts";
import type { StepResult, Trainer, TrainerInit, TrainImage } from "../types.ts";
import { PairedData } from "./data.ts";

export interface SpadeTrainOptions {
  numD: number;
  nLayersD: number;
  ndf: number;
  normD: string;
  lambdaFeat: number;
  lambdaL1: number;
  ganFeatLoss: boolean;
  beta1: number;
  beta2: number;
  gLr: number;
  dLr: number;
  decayStart: number;
  sampleCount: number;
  flip: boolean;
  bnMomentum: number;
  loss: GanLoss;
}

function resolveOptions(init: TrainerInit, cfg: SpadeConfig): SpadeTrainOptions {
  const o = init.options.options ?? {};
  const lr = init.options.learning_rate;
  const ttur = !booleanOption(o, "no_TTUR", false);
  const loss = parseLossOptions("spade", o);
  if (loss.lrD !== undefined && o.d_lr !== undefined && o.d_lr !== loss.lrD)
    throw new TrainerOptionError(`options.lr_d (${loss.lrD}) and options.d_lr (${String(o.d_lr)}) disagree; give one`);
  const res = o.resolution;
  if (res !== undefined && res !== null && res !== cfg.output_hw[0] && res !== cfg.output_hw[1])
    throw new TrainerOptionError(`options.resolution ${String(res)}: a SPADE generator only produces ${cfg.output_hw[1]}x${cfg.output_hw[0]} (its crop_size)`);
  return {
    numD: numberOption(o, "num_D", 2, { integer: true, min: 1 }),
    nLayersD: numberOption(o, "n_layers_D", Math.min(...cfg.output_hw) >= 128 ? 4 : 3, { integer: true, min: 1 }),
    ndf: numberOption(o, "ndf", 64, { integer: true, min: 1 }),
    normD: stringOption(o, "norm_D", "spectralinstance"),
    lambdaFeat: numberOption(o, "lambda_feat", 10, { min: 0 }),
    lambdaL1: numberOption(o, "lambda_l1", 0, { min: 0 }),
    ganFeatLoss: !booleanOption(o, "no_ganFeat_loss", false),
    beta1: ttur ? 0 : numberOption(o, "beta1", 0, { min: 0 }),
    beta2: ttur ? 0.9 : numberOption(o, "beta2", 0.9, { min: 0 }),
    gLr: loss.lrG ?? (ttur ? lr / 2 : lr),
    dLr: loss.lrD ?? numberOption(o, "d_lr", ttur ? lr * 2 : lr, { min: 0 }),
    decayStart: numberOption(o, "decay_start", init.options.steps, { integer: true, min: 0 }),
    sampleCount: numberOption(o, "sample_count", 4, { integer: true, min: 1 }),
    flip: !booleanOption(o, "no_flip", false),
    bnMomentum: 0.1,
    loss: loss.loss,
  };
}

export class SpadeTrainer implements Trainer {
  readonly family = "spade" as const;
  readonly cfg: SpadeConfig;
  readonly opts: SpadeTrainOptions;
  private _step = 0;
  private G!: SpadeGenerator;
  private D!: MultiscaleDiscriminator;
  private optG!: Adam;
  private optD!: Adam;
  private readonly data: PairedData;
  private readonly dOptions: MultiscaleDiscriminatorOptions;

  constructor(private readonly init: TrainerInit) {
    enableTraining();
    if (init.data.family !== "spade") throw new Error(`spade trainer got ${init.data.family} data`);
    this.cfg = parseSpadeConfig(init.config);
    if (this.cfg.use_vae) throw new TrainerOptionError("fine-tuning use_vae SPADE models (encoder + KL loss) is not supported");
    this.opts = resolveOptions(init, this.cfg);
    this.dOptions = { inputNc: this.cfg.semantic_nc + 3, ndf: this.opts.ndf, numD: this.opts.numD, nLayers: this.opts.nLayersD, normD: this.opts.normD };
    this.G = SpadeGenerator.fromStateDict(init.config, new Map([...init.weights].filter(([k]) => !k.startsWith("netE."))), "base generator");
    this.D = MultiscaleDiscriminator.randomInit(this.dOptions, stepSeed(init.options.seed, 0, "init.D"), this.cfg.init_type, this.cfg.init_variance);
    this.makeOptimizers();
    this.data = new PairedData(this.cfg, init.data.images, init.data.labels, this.opts.sampleCount, this.opts.flip);
  }

  get step(): number {
    return this._step;
  }

  private makeOptimizers(): void {
    const betas = { beta1: this.opts.beta1, beta2: this.opts.beta2 };
    this.optG = new Adam(this.G.trainableVariables(), betas);
    this.optD = new Adam(this.D.trainableVariables(), betas);
  }

  /** torch's BatchNorm running-stat update: momentum blend with the batch mean and the unbiased batch variance. */
  private readonly updateRunningStats = (bn: BatchNorm2d, x: tf.Tensor4D): void => updateRunningStats(bn, x, this.opts.bnMomentum);

  /**
   * D on [fake; real] in one batch, split back into (fake, real) per scale and layer, as upstream's divide_pred.
   * The batch is stacked first and the channels joined once, by the kernel that makes that join cheap on wasm.
   */
  private discriminate(sem: tf.Tensor4D, fake: tf.Tensor4D, real: tf.Tensor4D): { fake: tf.Tensor[][]; real: tf.Tensor[][] } {
    const n = fake.shape[0];
    const out = this.D.forward(concatChannels([tf.concat([sem, sem], 0), tf.concat([fake, real], 0)]));
    const half = (t: tf.Tensor4D, i: 0 | 1) => tf.slice(t, [i * n, 0, 0, 0], [n, -1, -1, -1]);
    return { fake: out.map((s) => s.map((t) => half(t, 0))), real: out.map((s) => s.map((t) => half(t, 1))) };
  }

  async trainStep(): Promise<StepResult> {
    const k = this._step;
    const { seed, steps, batch_size } = this.init.options;
    const factor = linearDecayFactor(k, steps, this.opts.decayStart);
    const { semantics: sem, images: real } = this.data.batch(batch_size, stepRng(seed, k, "data"));
    const fwd = { training: true, onBatchNorm: this.updateRunningStats };
    let gTerms: tf.Tensor1D | undefined;
    let dTerms: tf.Tensor1D | undefined;
    try {
      this.G.powerIteration(1);
      this.D.powerIteration(1);
      const g = tf.variableGrads(() => {
        const fake = this.G.forward(sem, fwd);
        const pred = this.discriminate(sem, fake, real);
        const gan = averaged(pred.fake.map((scale) => generatorLoss(this.opts.loss, scale[scale.length - 1])));
        const feat = this.opts.ganFeatLoss ? featureMatchingLoss(pred.fake, pred.real, this.opts.lambdaFeat) : tf.scalar(0);
        const l1 = this.opts.lambdaL1 > 0 ? tf.mul(tf.mean(tf.abs(tf.sub(fake, real))), this.opts.lambdaL1) : tf.scalar(0);
        gTerms = tf.keep(tf.stack([gan, feat, l1]) as tf.Tensor1D);
        return tf.addN([gan, feat, l1]) as tf.Scalar;
      }, [...this.optG.params.values()]);
      this.optG.apply(g.grads, this.opts.gLr * factor, k + 1);
      tf.dispose([g.value, ...Object.values(g.grads)]);

      this.G.powerIteration(1);
      const fake = this.G.forward(sem, fwd);
      this.D.powerIteration(1);
      const d = tf.variableGrads(() => {
        const pred = this.discriminate(sem, fake, real);
        const per = pred.fake.map((scale, i) => discriminatorLoss(this.opts.loss, pred.real[i][pred.real[i].length - 1], scale[scale.length - 1]));
        const { fake: dFake, real: dReal } = averaged(per);
        dTerms = tf.keep(tf.stack([dFake, dReal]) as tf.Tensor1D);
        return tf.add(dFake, dReal) as tf.Scalar;
      }, [...this.optD.params.values()]);
      this.optD.apply(d.grads, this.opts.dLr * factor, k + 1);
      tf.dispose([d.value, ...Object.values(d.grads), fake]);

      const gv = gTerms!.dataSync();
      const dv = dTerms!.dataSync();
      this._step = k + 1;
      const losses: Record<string, number> = { G_GAN: gv[0], D_Fake: dv[0], D_real: dv[1] };
      if (this.opts.ganFeatLoss) losses.GAN_Feat = gv[1];
      if (this.opts.lambdaL1 > 0) losses.G_L1 = gv[2];
      return { step: this._step, losses };
    } finally {
      tf.dispose([sem, real, ...(gTerms ? [gTerms] : []), ...(dTerms ? [dTerms] : [])]);
    }
  }

  saveState(): StateDict {
    return ganPairState(this.G, this.D, this.optG, this.optD, this._step);
  }

  loadState(state: StateDict): void {
    const G = SpadeGenerator.fromStateDict(this.init.config, underPrefix(state, "G."), "state G");
    let D: MultiscaleDiscriminator;
    try {
      D = MultiscaleDiscriminator.fromStateDict(this.dOptions, underPrefix(state, "D."), "state D");
    } catch (e) {
      G.dispose();
      throw e;
    }
    const step = readInt(state, "step");
    this.G.dispose();
    this.D.dispose();
    this.optG.dispose();
    this.optD.dispose();
    this.G = G;
    this.D = D;
    this.makeOptimizers();
    this.optG.loadState(state, "opt_G.");
    this.optD.loadState(state, "opt_D.");
    this._step = step;
  }

  /** The generator's official state_dict (spectral layers as weight_orig/u/v), under the base config. */
  exportGenerator(): { config: Record<string, unknown>; weights: StateDict } {
    return { config: { ...this.init.config }, weights: this.G.stateDict() };
  }

  /** One row per held sample: colour-coded labels | G(labels) in eval mode | real image. */
  async sampleGrid(): Promise<TrainImage> {
    const out = this.G.forward(this.data.sampleSemantics);
    const fakes = tensorImages(out);
    out.dispose();
    const reals = tensorImages(this.data.sampleImages);
    const [h, w] = this.cfg.output_hw;
    const labels = this.data.sampleLabels.map((l) => colorizeLabels(l, w, h));
    return tileRows(fakes.map((f, i) => [labels[i], f, reals[i]]));
  }

  discriminator(): MultiscaleDiscriminator {
    return this.D;
  }

  generator(): SpadeGenerator {
    return this.G;
  }

  dispose(): void {
    for (const n of [this.G, this.D, this.optG, this.optD, this.data]) n.dispose();
  }
}

/** A fixed, well-spread colour per class id (golden-angle hues), for looking at label maps. */
export function colorizeLabels(labels: Int32Array, width: number, height: number): TrainImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < labels.length; i++) {
    const hue = (labels[i] * 137.508) % 360;
    const [r, g, b] = hsvToRgb(hue, 0.65, 0.95);
    data[i * 3] = r;
    data[i * 3 + 1] = g;
    data[i * 3 + 2] = b;
  }
  return { data, width, height };
}

function hsvToRgb(h: number, s: number, v: number): [number, number, number] {
  const f = (n: number) => {
    const k = (n + h / 60) % 6;
    return Math.round(255 * (v - v * s * Math.max(0, Math.min(k, 4 - k, 1))));
  };
  return [f(5), f(3), f(1)];
}

export function createSpadeTrainer(init: TrainerInit): Trainer {
  return new SpadeTrainer(init);
}
