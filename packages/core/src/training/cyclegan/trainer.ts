/**
 * CycleGAN fine-tuning after junyanz `CycleGANModel.optimize_parameters`:
 *
 *   fake_B = G_A(A), rec_A = G_B(fake_B), fake_A = G_B(B), rec_B = G_A(fake_A)
 *   G: LSGAN(D_A(fake_B), real) + LSGAN(D_B(fake_A), real) + λ_cyc (|rec_A - A| + |rec_B - B|)
 *      + λ_cyc λ_idt (|G_A(B) - B| + |G_B(A) - A|)        (identity only when input_nc == output_nc)
 *   D_A: ½ [LSGAN(D_A(B), real) + LSGAN(D_A(pool_B(fake_B)), fake)], D_B likewise with A and pool_A(fake_A)
 *
 * G_A and G_B are updated together with one Adam, then D_A and D_B with another (both β = (0.5, 0.999)), with the
 * fakes from before G's update, as upstream. LR is constant until `decay_start` and then decays linearly.
 *
 * Names in the saved state: `pool_A` holds generated domain-A images (fake_A, judged by D_B), `pool_B` generated
 * domain-B images (fake_B, judged by D_A), matching upstream's fake_A_pool / fake_B_pool.
 *
 * `options.loss` swaps LSGAN for another loss of training/losses.ts (the ½ on D stays LSGAN's own), and
 * `lr_g`/`lr_d` give G and D their own learning rates; wgan-gp and R1 are refused (training/losses.ts says why).
 *
 * Deviations from upstream, each deliberate:
 * - A base model with only G_A (pix2pix-style or single direction) gets a fresh G_B (normal init, std init_gain);
 *   the cycle loss then trains it from scratch alongside G_A.
 * - Images are drawn at random for both domains every step (upstream walks A in order and draws B at random).
 * - Resize is bilinear (upstream: bicubic via PIL), to load = round(crop * 286 / 256) as upstream's 286/256.
 * - Dropout stays off (deterministic steps). Instance-norm models run their norms the same way in either mode, so
 *   they are stepped in eval mode; BatchNorm models run in train mode (batch statistics), which would also turn
 *   dropout on, so BatchNorm + use_dropout is rejected. BatchNorm running statistics are not updated.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { StateDict } from "../../checkpoints/tensor.ts";
import { enableTraining } from "../../engine/gradients.ts";
import { CycleGANGenerator } from "../../networks/cyclegan/generator.ts";
import { CycleGANModel } from "../../networks/cyclegan/model.ts";
import { parseCycleGANConfig, sizeConstraints, type CycleGANConfig } from "../../networks/cyclegan/config.ts";
import { NLayerDiscriminator } from "../../networks/cyclegan/discriminator.ts";
import { Adam } from "../common/adam.ts";
import { ImagePool } from "../common/image-pool.ts";
import { tensorImages, tileRows } from "../common/images.ts";
import { l1Loss } from "../common/losses.ts";
import { linearDecayFactor } from "../common/lr.ts";
import { booleanOption, numberOption, TrainerOptionError } from "../common/options.ts";
import { i64Scalar, readInt, underPrefix, withPrefix } from "../common/state.ts";
import { stepRng, stepSeed } from "../common/step-rng.ts";
import { discriminatorLoss, generatorLoss, type LossOptions, parseLossOptions } from "../losses.ts";
import type { StepResult, Trainer, TrainerInit, TrainImage } from "../types.ts";
import { DomainData } from "./data.ts";

export interface CycleGANTrainOptions {
  resolution: number;
  loadSize: number;
  lambdaCycle: number;
  lambdaIdentity: number;
  poolSize: number;
  decayStart: number;
  ndf: number;
  nLayersD: number;
  beta1: number;
  beta2: number;
  sampleCount: number;
  flip: boolean;
  loss: LossOptions;
}

function resolveOptions(init: TrainerInit, cfg: CycleGANConfig): CycleGANTrainOptions {
  const o = init.options.options ?? {};
  const { sizeMultiple, minSize } = sizeConstraints(cfg.netG);
  const fromConfig = typeof init.config.crop_size === "number" ? init.config.crop_size : 64;
  const resolution = numberOption(o, "resolution", Math.max(minSize, fromConfig), { integer: true, min: 1 });
  if (resolution % sizeMultiple !== 0 || resolution < minSize)
    throw new TrainerOptionError(`options.resolution ${resolution}: ${cfg.netG} needs a multiple of ${sizeMultiple}, at least ${minSize}`);
  const steps = init.options.steps;
  const loadSize = numberOption(o, "load_size", Math.round((resolution * 286) / 256), { integer: true, min: resolution });
  return {
    resolution,
    loadSize,
    lambdaCycle: numberOption(o, "lambda_cycle", 10, { min: 0 }),
    lambdaIdentity: numberOption(o, "lambda_identity", 0.5, { min: 0 }),
    poolSize: numberOption(o, "pool_size", 50, { integer: true, min: 0 }),
    decayStart: numberOption(o, "decay_start", Math.floor(steps / 2), { integer: true, min: 0 }),
    ndf: numberOption(o, "ndf", 64, { integer: true, min: 1 }),
    nLayersD: numberOption(o, "n_layers_D", 3, { integer: true, min: 1 }),
    beta1: numberOption(o, "beta1", 0.5, { min: 0 }),
    beta2: numberOption(o, "beta2", 0.999, { min: 0 }),
    sampleCount: numberOption(o, "sample_count", 4, { integer: true, min: 1 }),
    flip: !booleanOption(o, "no_flip", false),
    loss: parseLossOptions("cyclegan", o, { dHasBatchNorm: cfg.norm === "batch" }),
  };
}

const GEN_PREFIX = { G_A: "netG_A.", G_B: "netG_B." } as const;

export class CycleGANTrainer implements Trainer {
  readonly family = "cyclegan" as const;
  readonly cfg: CycleGANConfig;
  readonly opts: CycleGANTrainOptions;
  private _step = 0;
  private G_A!: CycleGANGenerator;
  private G_B!: CycleGANGenerator;
  private D_A!: NLayerDiscriminator;
  private D_B!: NLayerDiscriminator;
  private optG!: Adam;
  private optD!: Adam;
  readonly poolA: ImagePool;
  readonly poolB: ImagePool;
  private readonly A: DomainData;
  private readonly B: DomainData;
  /** Whether G_B came from the base weights (false: randomly initialised). */
  readonly baseHadG_B: boolean;

  constructor(private readonly init: TrainerInit) {
    enableTraining();
    if (init.data.family !== "cyclegan") throw new Error(`cyclegan trainer got ${init.data.family} data`);
    this.cfg = parseCycleGANConfig(init.config);
    if (this.cfg.norm === "batch" && this.cfg.use_dropout)
      throw new TrainerOptionError("BatchNorm generators with dropout cannot be fine-tuned deterministically (train mode would turn dropout on)");
    this.opts = resolveOptions(init, this.cfg);
    const seed = init.options.seed;
    const model = CycleGANModel.fromStateDicts(this.cfg, init.weights);
    this.G_A = model.G_A;
    this.baseHadG_B = model.G_B !== undefined;
    this.G_B = model.G_B ?? CycleGANGenerator.randomInit(this.cfg, stepSeed(seed, 0, "init.G_B"), { in: this.cfg.output_nc, out: this.cfg.input_nc });
    const dOpts = (inputNc: number) => ({ inputNc, ndf: this.opts.ndf, nLayers: this.opts.nLayersD, norm: this.cfg.norm });
    // D_A judges domain B (G_A's output), D_B judges domain A.
    this.D_A = NLayerDiscriminator.randomInit(dOpts(this.cfg.output_nc), stepSeed(seed, 0, "init.D_A"), this.cfg.init_gain);
    this.D_B = NLayerDiscriminator.randomInit(dOpts(this.cfg.input_nc), stepSeed(seed, 0, "init.D_B"), this.cfg.init_gain);
    this.makeOptimizers();
    const { resolution: S, loadSize, sampleCount, flip } = this.opts;
    this.poolA = new ImagePool(this.opts.poolSize, [S, S, this.cfg.input_nc]);
    this.poolB = new ImagePool(this.opts.poolSize, [S, S, this.cfg.output_nc]);
    this.A = new DomainData("A", init.data.A, loadSize, S, sampleCount, flip);
    this.B = new DomainData("B", init.data.B, loadSize, S, sampleCount, flip);
  }

  get step(): number {
    return this._step;
  }

  private get training(): boolean {
    return this.cfg.norm === "batch";
  }

  private makeOptimizers(): void {
    const named = (pairs: [string, { trainableVariables(): Map<string, tf.Variable> }][]) => {
      const out = new Map<string, tf.Variable>();
      for (const [tag, net] of pairs) for (const [n, v] of net.trainableVariables()) out.set(`${tag}.${n}`, v);
      return out;
    };
    const betas = { beta1: this.opts.beta1, beta2: this.opts.beta2 };
    this.optG = new Adam(named([["G_A", this.G_A], ["G_B", this.G_B]]), betas);
    this.optD = new Adam(named([["D_A", this.D_A], ["D_B", this.D_B]]), betas);
  }

  async trainStep(): Promise<StepResult> {
    const k = this._step;
    const { seed, steps, batch_size, learning_rate } = this.init.options;
    const decay = linearDecayFactor(k, steps, this.opts.decayStart);
    const { loss } = this.opts.loss;
    const lrG = (this.opts.loss.lrG ?? learning_rate) * decay;
    const lrD = (this.opts.loss.lrD ?? learning_rate) * decay;
    const realA = this.A.batch(batch_size, stepRng(seed, k, "data.A"));
    const realB = this.B.batch(batch_size, stepRng(seed, k, "data.B"));
    const training = this.training;
    const { lambdaCycle: lc } = this.opts;
    const li = this.cfg.input_nc === this.cfg.output_nc ? this.opts.lambdaIdentity : 0;
    let fakeA: tf.Tensor4D | undefined;
    let fakeB: tf.Tensor4D | undefined;
    let terms: tf.Tensor1D | undefined;
    try {
      const g = tf.variableGrads(() => {
        const fB = this.G_A.forward(realA, { training });
        const fA = this.G_B.forward(realB, { training });
        fakeB = tf.keep(fB);
        fakeA = tf.keep(fA);
        const lossG_A = generatorLoss(loss, this.D_A.forward(fB, training));
        const lossG_B = generatorLoss(loss, this.D_B.forward(fA, training));
        const cycA = tf.mul(l1Loss(this.G_B.forward(fB, { training }), realA), lc);
        const cycB = tf.mul(l1Loss(this.G_A.forward(fA, { training }), realB), lc);
        const idtA = li > 0 ? tf.mul(l1Loss(this.G_A.forward(realB, { training }), realB), lc * li) : tf.scalar(0);
        const idtB = li > 0 ? tf.mul(l1Loss(this.G_B.forward(realA, { training }), realA), lc * li) : tf.scalar(0);
        terms = tf.keep(tf.stack([lossG_A, lossG_B, cycA, cycB, idtA, idtB]) as tf.Tensor1D);
        return tf.addN([lossG_A, lossG_B, cycA, cycB, idtA, idtB]) as tf.Scalar;
      }, [...this.optG.params.values()]);
      this.optG.apply(g.grads, lrG, k + 1);
      tf.dispose([g.value, ...Object.values(g.grads)]);

      const S = this.opts.resolution;
      const pooled = (pool: ImagePool, fake: tf.Tensor4D, stream: string) =>
        tf.tensor4d(pool.query(fake.dataSync() as Float32Array, stepRng(seed, k, stream)), [fake.shape[0], S, S, fake.shape[3]]);
      const poolFakeB = pooled(this.poolB, fakeB!, "pool_B");
      const poolFakeA = pooled(this.poolA, fakeA!, "pool_A");
      let dTerms: tf.Tensor1D | undefined;
      const d = tf.variableGrads(() => {
        const dA = discriminatorLoss(loss, this.D_A.forward(realB, training), this.D_A.forward(poolFakeB, training));
        const dB = discriminatorLoss(loss, this.D_B.forward(realA, training), this.D_B.forward(poolFakeA, training));
        const lossD_A = tf.add(dA.real, dA.fake);
        const lossD_B = tf.add(dB.real, dB.fake);
        dTerms = tf.keep(tf.stack([lossD_A, lossD_B]) as tf.Tensor1D);
        return tf.add(lossD_A, lossD_B) as tf.Scalar;
      }, [...this.optD.params.values()]);
      this.optD.apply(d.grads, lrD, k + 1);
      tf.dispose([d.value, ...Object.values(d.grads), poolFakeA, poolFakeB]);

      const gv = terms!.dataSync();
      const dv = dTerms!.dataSync();
      dTerms!.dispose();
      this._step = k + 1;
      const losses: Record<string, number> = { G_A: gv[0], G_B: gv[1], cycle_A: gv[2], cycle_B: gv[3], D_A: dv[0], D_B: dv[1] };
      if (li > 0) Object.assign(losses, { idt_A: gv[4], idt_B: gv[5] });
      return { step: this._step, losses };
    } finally {
      tf.dispose([realA, realB, ...(fakeA ? [fakeA] : []), ...(fakeB ? [fakeB] : []), ...(terms ? [terms] : [])]);
    }
  }

  saveState(): StateDict {
    const out: StateDict = new Map();
    withPrefix("G_A.", this.G_A.stateDict(), out);
    withPrefix("G_B.", this.G_B.stateDict(), out);
    withPrefix("D_A.", this.D_A.stateDict(), out);
    withPrefix("D_B.", this.D_B.stateDict(), out);
    this.optG.saveState("opt_G.", out);
    this.optD.saveState("opt_D.", out);
    this.poolA.saveState("pool_A.", out);
    this.poolB.saveState("pool_B.", out);
    out.set("step", i64Scalar(this._step));
    return out;
  }

  /** Rebuilds every network from `state` (strict names and shapes), then the optimisers, pools and step. */
  loadState(state: StateDict): void {
    const channels = { A: this.cfg.input_nc, B: this.cfg.output_nc };
    const dOpts = (inputNc: number) => ({ inputNc, ndf: this.opts.ndf, nLayers: this.opts.nLayersD, norm: this.cfg.norm });
    const built: { dispose(): void }[] = [];
    const keep = <T extends { dispose(): void }>(x: T) => {
      built.push(x);
      return x;
    };
    try {
      const G_A = keep(CycleGANGenerator.fromStateDict(this.cfg, underPrefix(state, "G_A."), { in: channels.A, out: channels.B }, "state G_A"));
      const G_B = keep(CycleGANGenerator.fromStateDict(this.cfg, underPrefix(state, "G_B."), { in: channels.B, out: channels.A }, "state G_B"));
      const D_A = keep(NLayerDiscriminator.fromStateDict(dOpts(channels.B), underPrefix(state, "D_A."), "state D_A"));
      const D_B = keep(NLayerDiscriminator.fromStateDict(dOpts(channels.A), underPrefix(state, "D_B."), "state D_B"));
      const step = readInt(state, "step");
      for (const n of [this.G_A, this.G_B, this.D_A, this.D_B]) n.dispose();
      this.optG.dispose();
      this.optD.dispose();
      Object.assign(this, { G_A, G_B, D_A, D_B });
      this.makeOptimizers();
      this.optG.loadState(state, "opt_G.");
      this.optD.loadState(state, "opt_D.");
      this.poolA.loadState(state, "pool_A.");
      this.poolB.loadState(state, "pool_B.");
      this._step = step;
    } catch (e) {
      if (!built.includes(this.G_A)) for (const b of built) b.dispose();
      throw e;
    }
  }

  exportGenerator(): { config: Record<string, unknown>; weights: StateDict } {
    const weights: StateDict = new Map();
    withPrefix(GEN_PREFIX.G_A, this.G_A.stateDict(), weights);
    withPrefix(GEN_PREFIX.G_B, this.G_B.stateDict(), weights);
    return { config: { ...this.init.config }, weights };
  }

  /** One row per sample: A | G_A(A) | B | G_B(B), eval mode, HWC uint8. */
  async sampleGrid(): Promise<TrainImage> {
    const fbT = this.G_A.forward(this.A.samples);
    const faT = this.G_B.forward(this.B.samples);
    const [a, fb, b, fa] = [this.A.samples, fbT, this.B.samples, faT].map(tensorImages);
    tf.dispose([fbT, faT]);
    const rows = Math.max(a.length, b.length);
    const blank: TrainImage = { data: new Uint8Array(a[0].data.length), width: a[0].width, height: a[0].height };
    return tileRows(Array.from({ length: rows }, (_, i) => [a[i] ?? blank, fb[i] ?? blank, b[i] ?? blank, fa[i] ?? blank]));
  }

  /** For tests and diagnostics: the discriminators (D_A judges domain B, D_B domain A). */
  discriminators(): { D_A: NLayerDiscriminator; D_B: NLayerDiscriminator } {
    return { D_A: this.D_A, D_B: this.D_B };
  }

  dispose(): void {
    for (const n of [this.G_A, this.G_B, this.D_A, this.D_B, this.optG, this.optD, this.A, this.B]) n.dispose();
  }
}

/** The load×load size every training image is resized to (options.load_size), for the loader to decode at. */
export function cycleGanLoadSize(init: Pick<TrainerInit, "config" | "options">): number {
  return resolveOptions(init as TrainerInit, parseCycleGANConfig(init.config)).loadSize;
}

export function createCycleGANTrainer(init: TrainerInit): Trainer {
  return new CycleGANTrainer(init);
}
