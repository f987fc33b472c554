/**
 * StyleGAN2 fine-tuning (stylegan2-ada-pytorch `training_loop` + `StyleGAN2Loss`, written for TF.js):
 * non-saturating logistic loss, lazy R1 every `r1_interval` steps with ada's lr/beta adjustment for D, G_ema,
 * style mixing, optional DiffAugment and FreezeD. D is the residual discriminator, initialised randomly (a
 * generator checkpoint has none) unless a trainer state carries one.
 *
 * One step = one G update (Gmain), one D update (Dmain) and, on steps k ≡ 0 (mod r1_interval), one more D update
 * with the R1 penalty scaled by the interval (Dreg), then the G_ema update. Path-length regularisation is not
 * implemented, so G has no lazy-regularisation phase and keeps its plain lr and betas.
 *
 * Resumability: batch indices, flips, z, class labels, mixing cutoffs, per-layer noise and augmentation of step k
 * come from `stepRng(seed, k, stream)`; the state dict holds every tensor that evolves (G, G_ema, D, Adam moments,
 * Adam step counts, step).
 */
import * as tf from "@tensorflow/tfjs-core";
import type { RawTensor, StateDict } from "../../checkpoints/tensor.ts";
import { enableTraining } from "../../engine/gradients.ts";
import { parseConfig, type StyleGAN2Config } from "../../networks/stylegan2/config.ts";
import { DEFAULT_DISCRIMINATOR_CONFIG, StyleGAN2Discriminator, type DiscriminatorConfig } from "../../networks/stylegan2/discriminator.ts";
import { StyleGAN2Generator } from "../../networks/stylegan2/generator.ts";
import { mappingKeys } from "../../networks/stylegan2/mapping.ts";
import { seedToZ } from "../../random/randomstate.ts";
import { Adam } from "../common/adam.ts";
import { applyDiffAugment, sampleDiffAugment } from "../common/diffaugment.ts";
import { copyInto, emaBeta, emaUpdate } from "../common/ema.ts";
import { tileRows } from "../common/images.ts";
import { r1Penalty } from "../common/logistic-losses.ts";
import { discriminatorLoss, generatorLoss, wganGradientPenalty } from "../losses.ts";
import { normals } from "../common/normal.ts";
import { i64Scalar, readInt, underPrefix, withPrefix } from "../common/state.ts";
import { stepRng, stepSeed } from "../common/step-rng.ts";
import type { StepResult, TrainImage, Trainer, TrainerInit } from "../types.ts";
import { StyleGAN2Dataset, stylegan2ToUint8 } from "./data.ts";
import { parseStyleGAN2Options, type StyleGAN2TrainOptions } from "./options.ts";

export { parseStyleGAN2Options, StyleGAN2TrainOptionsSchema, type StyleGAN2TrainOptions } from "./options.ts";

/** Seeds of the sample grid (fixed, so grids from different checkpoints compare image by image). */
export const SAMPLE_GRID_SEEDS = [0, 1, 2, 3, 4, 5, 6, 7] as const;

export function createStyleGAN2Trainer(init: TrainerInit): Trainer {
  return new StyleGAN2Trainer(init);
}

/**
 * Official layout ↔ TF.js layout of a network variable, decided by rank: every rank-4 tensor in these networks is a
 * conv weight (OIHW ↔ HWIO) and every rank-3 one is the synthesis const (CHW ↔ HWC); the rest agree.
 */
const TO_TF: Record<number, number[] | undefined> = { 4: [2, 3, 1, 0], 3: [1, 2, 0] };
const TO_OFFICIAL: Record<number, number[] | undefined> = { 4: [3, 2, 0, 1], 3: [2, 0, 1] };

function permuted(shape: readonly number[], perm: number[] | undefined): number[] {
  return perm ? perm.map((p) => shape[p]) : [...shape];
}

function rawFromTensor(t: tf.Tensor, perm: number[] | undefined): RawTensor {
  const u = perm ? tf.transpose(t, perm) : t;
  const raw: RawTensor = { dtype: "F32", shape: [...u.shape], data: Float32Array.from(u.dataSync() as Float32Array) };
  if (u !== t) u.dispose();
  return raw;
}

function tensorFromRaw(raw: RawTensor, perm: number[] | undefined): tf.Tensor {
  const data = raw.data instanceof Float32Array ? raw.data : Float32Array.from(raw.data as ArrayLike<number>, Number);
  return tf.tidy(() => {
    const t = tf.tensor(data, raw.shape, "float32");
    return perm ? tf.transpose(t, perm) : t;
  });
}

interface Net {
  variable(name: string): tf.Variable;
}

/** Assigns an official-layout state dict into a network's variables; every name in `names` must be present. */
function assignNetwork(net: Net, names: readonly string[], sd: StateDict, what: string): void {
  for (const name of names) {
    const raw = sd.get(name);
    if (!raw) throw new Error(`trainer state is missing ${what}${name}`);
    const v = net.variable(name);
    const perm = TO_TF[raw.shape.length];
    const want = permuted(raw.shape, perm);
    if (want.length !== v.shape.length || want.some((d, i) => d !== v.shape[i]))
      throw new Error(`${what}${name}: shape [${raw.shape}] does not match this network`);
    const t = tensorFromRaw(raw, perm);
    v.assign(t);
    t.dispose();
  }
}

class StyleGAN2Trainer implements Trainer {
  readonly family = "stylegan2" as const;
  private k = 0;
  /** Adam update counts (D's includes the R1 updates), as torch's per-optimizer `step`. */
  private tG = 0;
  private tD = 0;
  readonly config: StyleGAN2Config;
  readonly opts: StyleGAN2TrainOptions;
  readonly G: StyleGAN2Generator;
  readonly G_ema: StyleGAN2Generator;
  readonly D: StyleGAN2Discriminator;
  readonly dConfig: DiscriminatorConfig;
  private readonly optG: Adam;
  private readonly optD: Adam;
  private readonly gNames: string[];
  private readonly dNames: string[];
  /** D variables left out of the optimiser by freeze_d. */
  readonly frozenD: string[];
  private readonly dataset: StyleGAN2Dataset;
  private readonly labels: number[] | null;
  private readonly seed: number;
  private readonly batch: number;
  private readonly dLrEffective: number;
  private readonly dBetas: [number, number];
  private epochCache: { epoch: number; perm: Int32Array } | null = null;

  constructor(private readonly init: TrainerInit) {
    if (init.data.family !== "stylegan2") throw new Error(`stylegan2 trainer got ${init.data.family} data`);
    enableTraining();
    const { batch_size, learning_rate, seed } = init.options;
    if (!Number.isInteger(batch_size) || batch_size < 1) throw new Error(`batch_size must be a positive integer, got ${batch_size}`);
    this.seed = seed;
    this.batch = batch_size;
    this.config = parseConfig(init.config);
    const cfg = this.config;
    this.opts = parseStyleGAN2Options(init.options.options ?? {}, {
      resolution: cfg.img_resolution,
      batchSize: batch_size,
      learningRate: learning_rate,
      datasetSize: init.data.images.length,
    });

    const labels = init.data.labels;
    if (labels && labels.length !== init.data.images.length) throw new Error(`${labels.length} labels for ${init.data.images.length} images`);
    if (cfg.c_dim > 0 && labels)
      for (const l of labels) if (!Number.isInteger(l) || l < 0 || l >= cfg.c_dim) throw new Error(`label ${l} out of range for c_dim ${cfg.c_dim}`);
    this.labels = cfg.c_dim > 0 && labels ? [...labels] : null;
    this.dataset = new StyleGAN2Dataset(init.data.images, cfg.img_resolution, cfg.img_channels);

    this.dConfig = {
      ...DEFAULT_DISCRIMINATOR_CONFIG,
      c_dim: cfg.c_dim,
      img_resolution: cfg.img_resolution,
      img_channels: cfg.img_channels,
      channel_base: cfg.synthesis_kwargs.channel_base,
      channel_max: cfg.synthesis_kwargs.channel_max,
      conv_clamp: cfg.synthesis_kwargs.conv_clamp,
      mapping_kwargs: { ...DEFAULT_DISCRIMINATOR_CONFIG.mapping_kwargs, num_layers: this.opts.dMappingLayers },
      epilogue_kwargs: { ...DEFAULT_DISCRIMINATOR_CONFIG.epilogue_kwargs, mbstd_group_size: this.opts.mbstdGroupSize },
    };

    this.G = StyleGAN2Generator.fromStateDict(init.config, init.weights, "base weights");
    this.G_ema = StyleGAN2Generator.fromStateDict(init.config, init.weights, "base weights");
    this.D = StyleGAN2Discriminator.randomInit(this.dConfig, stepSeed(seed, 0, "D.init") % 1_000_000);
    this.gNames = [...init.weights.keys()];
    this.dNames = [...this.D.stateDict().keys()];

    const freeze = Math.min(this.opts.freezeD, this.D.blocks.length);
    this.frozenD = this.D.blocks.slice(0, freeze).flatMap((b) => b.variableNames());
    const frozen = new Set(this.frozenD);
    const dTrain = new Map([...this.D.trainableVariables()].filter(([n]) => !frozen.has(n)));
    // ada's lazy regularisation: with an R1 update every I steps, the main updates use lr·I/(I+1) and betas^(I/(I+1)).
    const mb = this.opts.r1Gamma > 0 ? this.opts.r1Interval / (this.opts.r1Interval + 1) : 1;
    this.dLrEffective = this.opts.dLr * mb;
    this.dBetas = [0 ** mb, 0.99 ** mb];
    this.optG = new Adam(this.G.trainableVariables(), { beta1: 0, beta2: 0.99, eps: 1e-8 });
    this.optD = new Adam(dTrain, { beta1: this.dBetas[0], beta2: this.dBetas[1], eps: 1e-8 });
  }

  get step(): number {
    return this.k;
  }

  /** Dataset indices of step k: one fresh permutation per epoch, itself a function of (seed, epoch). */
  batchIndices(k: number): number[] {
    const m = this.dataset.size;
    const out: number[] = [];
    for (let i = 0; i < this.batch; i++) {
      const pos = k * this.batch + i;
      const epoch = Math.floor(pos / m);
      if (this.epochCache?.epoch !== epoch) {
        const perm = Int32Array.from({ length: m }, (_, j) => j);
        const rng = stepRng(this.seed, epoch, "epoch-permutation");
        for (let j = m - 1; j > 0; j--) {
          const r = rng.int(j + 1);
          [perm[j], perm[r]] = [perm[r], perm[j]];
        }
        this.epochCache = { epoch, perm };
      }
      out.push(this.epochCache.perm[pos % m]);
    }
    return out;
  }

  private oneHot(classes: number[]): tf.Tensor2D {
    return tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(classes, "int32"), this.config.c_dim), "float32") as tf.Tensor2D);
  }

  /** Classes for generated images: drawn from the dataset's labels (ada), or uniform when it has none. */
  private genClasses(k: number, stream: string): number[] {
    const rng = stepRng(this.seed, k, stream);
    return Array.from({ length: this.batch }, () => (this.labels ? this.labels[rng.int(this.labels.length)] : rng.int(this.config.c_dim)));
  }

  /** Mapping + style mixing + synthesis with seeded per-layer noise; also returns the batch-mean w for w_avg. */
  private runG(k: number, phase: string, c: tf.Tensor2D | null): { img: tf.Tensor4D; wMean: tf.Tensor1D } {
    const { z_dim } = this.config;
    const n = this.batch;
    const z = z_dim > 0 ? tf.tensor2d(normals(stepRng(this.seed, k, `${phase}.z`), n * z_dim), [n, z_dim]) : null;
    let ws = this.G.mapping(z, c);
    const wMean = tf.mean(tf.squeeze(tf.slice(ws, [0, 0, 0], [-1, 1, -1]), [1]), 0) as tf.Tensor1D;
    const mixRng = stepRng(this.seed, k, `${phase}.mix`);
    const cutoffDraw = 1 + mixRng.int(Math.max(1, this.G.numWs - 1));
    if (this.opts.styleMixingProb > 0 && mixRng.next() < this.opts.styleMixingProb && this.G.numWs > 1) {
      const z2 = z_dim > 0 ? tf.tensor2d(normals(stepRng(this.seed, k, `${phase}.z_mix`), n * z_dim), [n, z_dim]) : null;
      ws = StyleGAN2Generator.mixStyles(ws, this.G.mapping(z2, c), cutoffDraw);
    }
    const img = this.G.synthesis(ws, { noise_mode: "random", noiseSeed: stepSeed(this.seed, k, `${phase}.noise`) });
    return { img, wMean };
  }

  private augment(x: tf.Tensor4D, k: number, stream: string): tf.Tensor4D {
    if (!this.opts.augment || this.opts.augmentPolicy.length === 0) return x;
    const [n, h, w] = x.shape;
    return applyDiffAugment(x, sampleDiffAugment(stepRng(this.seed, k, `${stream}.augment`), n, h, w, this.opts.augmentPolicy));
  }

  /** The augmentation parameters a stream uses at step k (exposed so tests can check determinism). */
  augmentParams(k: number, stream: string) {
    const r = this.config.img_resolution;
    return sampleDiffAugment(stepRng(this.seed, k, `${stream}.augment`), this.batch, r, r, this.opts.augmentPolicy);
  }

  private updateWAvg(wMean: tf.Tensor1D): void {
    const beta = this.config.mapping_kwargs.w_avg_beta;
    if (beta == null) return;
    const wAvg = this.G.variable(mappingKeys.wAvg);
    tf.tidy(() => wAvg.assign(tf.add(wMean, tf.mul(tf.sub(wAvg, wMean), beta))));
  }

  async trainStep(): Promise<StepResult> {
    const k = this.k;
    const cDim = this.config.c_dim;
    const indices = this.batchIndices(k);
    const flipRng = stepRng(this.seed, k, "mirror");
    const flips = this.opts.mirror ? indices.map(() => flipRng.next() < 0.5) : undefined;
    const real = this.dataset.batch(indices, flips);
    const realC = cDim > 0 ? this.oneHot(this.labels ? indices.map((i) => this.labels![i]) : this.genClasses(k, "real.c")) : null;
    const cG = cDim > 0 ? this.oneHot(this.genClasses(k, "Gmain.c")) : null;
    const cD = cDim > 0 ? this.oneHot(this.genClasses(k, "Dmain.c")) : null;
    const gVars = [...this.optG.params.values()];
    const dVars = [...this.optD.params.values()];
    const losses: Record<string, number> = {};
    const pending: tf.Tensor[] = [real, ...(realC ? [realC] : []), ...(cG ? [cG] : []), ...(cD ? [cD] : [])];
    try {
      // Gmain
      let wMean: tf.Tensor1D | null = null;
      const g = tf.variableGrads(() => {
        const { img, wMean: wm } = this.runG(k, "Gmain", cG);
        wMean = tf.keep(wm);
        return generatorLoss(this.opts.loss, this.D.apply(this.augment(img, k, "Gmain.fake"), cG));
      }, gVars);
      this.optG.apply(g.grads, this.opts.gLr, ++this.tG);
      losses["loss/G"] = (await g.value.data())[0];
      tf.dispose([g.value, ...Object.values(g.grads)]);
      this.updateWAvg(wMean!);
      tf.dispose(wMean!);

      // Dmain: fakes from the updated G, no gradient to G.
      const fake = tf.tidy(() => {
        const { img, wMean: wm } = this.runG(k, "Dmain", cD);
        this.updateWAvg(wm);
        return img;
      });
      pending.push(fake);
      let parts: tf.Scalar[] = [];
      const d = tf.variableGrads(() => {
        const l = discriminatorLoss(this.opts.loss, this.D.apply(this.augment(real, k, "Dmain.real"), realC), this.D.apply(this.augment(fake, k, "Dmain.fake"), cD));
        parts = [tf.keep(l.real), tf.keep(l.fake)];
        if (this.opts.loss !== "wgan-gp") return tf.add(l.real, l.fake) as tf.Scalar;
        // WGAN-GP: one α per sample, a pure function of (seed, k) like every other draw of the step.
        const rng = stepRng(this.seed, k, "Dmain.gp_alpha");
        const alpha = tf.tensor4d(Array.from({ length: real.shape[0] }, () => rng.next()), [real.shape[0], 1, 1, 1]);
        const gp = wganGradientPenalty((x) => this.D.apply(this.augment(x, k, "Dmain.gp"), realC), real, fake, alpha);
        parts.push(tf.keep(gp));
        return tf.addN([l.real, l.fake, tf.mul(gp, this.opts.gpLambda)]) as tf.Scalar;
      }, dVars);
      this.optD.apply(d.grads, this.dLrEffective, ++this.tD);
      losses["loss/D"] = (await d.value.data())[0];
      losses["loss/D_real"] = (await parts[0].data())[0];
      losses["loss/D_fake"] = (await parts[1].data())[0];
      if (parts[2]) losses["loss/gradient_penalty"] = (await parts[2].data())[0];
      tf.dispose([d.value, ...parts, ...Object.values(d.grads)]);

      // Dreg: lazy R1, scaled by the interval so its average strength is r1_gamma.
      const { r1Gamma, r1Interval } = this.opts;
      if (r1Gamma > 0 && k % r1Interval === 0) {
        let penalty: tf.Tensor | null = null;
        const r = tf.variableGrads(() => {
          const p = r1Penalty((x) => this.D.apply(this.augment(x, k, "Dreg.real"), realC), real);
          penalty = tf.keep(tf.mean(p));
          return tf.mul(tf.mean(p), (r1Gamma / 2) * r1Interval) as tf.Scalar;
        }, dVars);
        this.optD.apply(r.grads, this.dLrEffective, ++this.tD);
        losses["loss/r1_penalty"] = (await penalty!.data())[0];
        losses["loss/D_reg"] = (await r.value.data())[0];
        tf.dispose([r.value, penalty!, ...Object.values(r.grads)]);
      }

      // G_ema
      const beta = emaBeta(this.batch, this.opts.emaNimg, k * this.batch, this.opts.emaRampup);
      emaUpdate(
        [...this.G_ema.trainableVariables()].map(([name, v]) => [v, this.G.variable(name)] as [tf.Variable, tf.Variable]),
        beta,
      );
      if (this.config.mapping_kwargs.w_avg_beta != null) copyInto([[this.G_ema.variable(mappingKeys.wAvg), this.G.variable(mappingKeys.wAvg)]]);
    } finally {
      tf.dispose(pending);
    }
    this.k = k + 1;
    return { step: this.k, losses };
  }

  saveState(): StateDict {
    const out: StateDict = new Map();
    withPrefix("G.", this.G.stateDict(), out);
    withPrefix("G_ema.", this.G_ema.stateDict(), out);
    withPrefix("D.", this.D.stateDict(), out);
    for (const [key, opt] of [["optG", this.optG], ["optD", this.optD]] as const) {
      // The shared Adam writes `<name>.m` in TF layout; the state uses `optX.m.<name>` in the official layout.
      const raw = opt.saveState("");
      for (const name of opt.params.keys())
        for (const leaf of ["m", "v"] as const) {
          const r = raw.get(`${name}.${leaf}`)!;
          const t = tf.tensor(r.data as Float32Array, r.shape, "float32");
          out.set(`${key}.${leaf}.${name}`, rawFromTensor(t, TO_OFFICIAL[r.shape.length]));
          t.dispose();
        }
    }
    out.set("optG.step", i64Scalar(this.tG));
    out.set("optD.step", i64Scalar(this.tD));
    out.set("step", i64Scalar(this.k));
    return out;
  }

  loadState(state: StateDict): void {
    assignNetwork(this.G, this.gNames, underPrefix(state, "G."), "G.");
    assignNetwork(this.G_ema, this.gNames, underPrefix(state, "G_ema."), "G_ema.");
    const dState = underPrefix(state, "D.");
    // A state without D (e.g. made from a generator checkpoint) keeps the random D.
    if (dState.size > 0) assignNetwork(this.D, this.dNames, dState, "D.");
    for (const [key, opt] of [["optG", this.optG], ["optD", this.optD]] as const) {
      const hasMoments = [...state.keys()].some((n) => n.startsWith(`${key}.m.`));
      const converted: StateDict = new Map();
      for (const [name, p] of opt.params)
        for (const leaf of ["m", "v"] as const) {
          const r = state.get(`${key}.${leaf}.${name}`);
          if (!r) {
            if (hasMoments) throw new Error(`trainer state is missing ${key}.${leaf}.${name}`);
            converted.set(`${name}.${leaf}`, { dtype: "F32", shape: [...p.shape], data: new Float32Array(p.size) });
            continue;
          }
          const t = tensorFromRaw(r, TO_TF[r.shape.length]);
          converted.set(`${name}.${leaf}`, rawFromTensor(t, undefined));
          t.dispose();
        }
      opt.loadState(converted, "");
    }
    this.k = readInt(state, "step");
    const regSteps = this.opts.r1Gamma > 0 ? Math.ceil(this.k / this.opts.r1Interval) : 0;
    this.tG = state.has("optG.step") ? readInt(state, "optG.step") : this.k;
    this.tD = state.has("optD.step") ? readInt(state, "optD.step") : this.k + regSteps;
  }

  exportGenerator(): { config: Record<string, unknown>; weights: StateDict } {
    return { config: this.init.config, weights: this.G_ema.stateDict() };
  }

  async sampleGrid(): Promise<TrainImage> {
    const { z_dim, c_dim, img_resolution: r, img_channels } = this.config;
    const n = SAMPLE_GRID_SEEDS.length;
    const zData = new Float32Array(n * z_dim);
    for (const [i, s] of SAMPLE_GRID_SEEDS.entries()) zData.set(seedToZ(s, z_dim), i * z_dim);
    const img = tf.tidy(() => {
      const z = z_dim > 0 ? tf.tensor2d(zData, [n, z_dim]) : null;
      const c = c_dim > 0 ? this.oneHot(SAMPLE_GRID_SEEDS.map((_, i) => i % c_dim)) : null;
      const x = this.G_ema.generate(z, c, { truncation_psi: 1, noise_mode: "const" });
      return img_channels === 1 ? tf.tile(x, [1, 1, 1, 3]) : x;
    });
    const u8 = stylegan2ToUint8((await img.data()) as Float32Array);
    img.dispose();
    const per = r * r * 3;
    const images: TrainImage[] = Array.from({ length: n }, (_, i) => ({ data: u8.slice(i * per, (i + 1) * per), width: r, height: r }));
    const cols = 4;
    const rows: TrainImage[][] = [];
    for (let i = 0; i < n; i += cols) rows.push(images.slice(i, i + cols));
    return tileRows(rows);
  }

  dispose(): void {
    this.optG.dispose();
    this.optD.dispose();
    this.G.dispose();
    this.G_ema.dispose();
    this.D.dispose();
  }
}
