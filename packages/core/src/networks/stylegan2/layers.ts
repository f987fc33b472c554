/**
 * StyleGAN2 building blocks as described in Karras et al. 2020 ("Analyzing and Improving the Image Quality of
 * StyleGAN") and its ADA follow-up: equalized-learning-rate layers, weight (de)modulation, per-pixel noise.
 * Written once against the op interface (docs/design/networks.md): on a ParamStore they train and serve on
 * TF.js, on a GraphOps they emit the ONNX graph. Each class registers its parameters under the official
 * state_dict names, in upstream's order (own parameters, own buffers, then children), so a PyTorch checkpoint
 * loads by name and `stateDict()` writes back something the official code loads strictly.
 *
 * Vectors (z, w, styles) travel as [N, 1, 1, C] maps. Equalized learning rate: weights are stored at unit scale
 * and multiplied by their He gain at every use, so optimisers see well-conditioned parameters; a trainer must
 * keep doing the same. FC weights keep the official [out, in] layout ("plain"), conv weights "OIHW".
 */
import { ACTIVATIONS, type Activation } from "../common/bias_act.ts";
import { assertShape, type Ops } from "../ops/ops.ts";

export type NoiseMode = "const" | "random" | "none";

/**
 * Official leaf names these layers register, spelled only here: config inference, the random init, SeFa and
 * projection find parameters through them (docs/design/networks.md, "where official names live").
 */
export const AFFINE = "affine";
export const NOISE_STRENGTH = "noise_strength";
export const NOISE_CONST = "noise_const";
export const RESAMPLE_FILTER = "resample_filter";

/** Whether a state-dict key is a synthesis layer's stored noise map (projection optimises these). */
export const isNoiseConstKey = (key: string): boolean => key.endsWith(`.${NOISE_CONST}`);

export interface LayerRunOptions {
  noiseMode: NoiseMode;
  /** Seed for noiseMode "random" (eager); each layer offsets it by its own index, so a seed reproduces an image. */
  noiseSeed: number;
}

export class FullyConnectedLayer<T, P> {
  readonly weight: P;
  readonly bias?: P;
  private readonly weightGain: number;
  private readonly biasGain: number;

  constructor(
    private readonly ops: Ops<T, P>,
    readonly prefix: string,
    readonly inFeatures: number,
    readonly outFeatures: number,
    readonly opts: { bias?: boolean; activation?: Activation; lrMultiplier?: number } = {},
  ) {
    const lr = opts.lrMultiplier ?? 1;
    this.weight = ops.param(`${prefix}.weight`, [outFeatures, inFeatures], "conv.weight");
    if (opts.bias ?? true) this.bias = ops.param(`${prefix}.bias`, [outFeatures], "conv.bias");
    this.weightGain = lr / Math.sqrt(inFeatures);
    this.biasGain = lr;
  }

  /** [N, 1, 1, in] → [N, 1, 1, out]. */
  apply(x: T): T {
    assertShape(this.ops, x, [null, 1, 1, this.inFeatures], this.prefix);
    const y = this.ops.fullyConnected(x, this.weight, this.bias, { weightGain: this.weightGain, biasGain: this.biasGain });
    const act = this.opts.activation ?? "linear";
    return act === "linear" ? y : this.ops.biasAct(y, undefined, { act, gain: ACTIVATIONS[act].gain, clamp: null });
  }
}

export class SynthesisLayer<T, P> {
  readonly weight: P;
  readonly noiseStrength?: P;
  readonly bias: P;
  readonly resampleFilter: P;
  readonly noiseConst?: P;
  readonly affine: FullyConnectedLayer<T, P>;
  private readonly padding: number;
  private readonly activation: Activation;

  constructor(
    private readonly ops: Ops<T, P>,
    readonly prefix: string,
    readonly inChannels: number,
    readonly outChannels: number,
    wDim: number,
    readonly resolution: number,
    readonly opts: {
      kernelSize?: number;
      up?: number;
      useNoise?: boolean;
      activation?: Activation;
      resampleFilterShape: number[];
      convClamp?: number | null;
      /** Distinguishes this layer's random noise from its siblings' under one seed. */
      noiseIndex: number;
    },
  ) {
    const k = opts.kernelSize ?? 3;
    const r = resolution;
    this.padding = Math.floor(k / 2);
    this.activation = opts.activation ?? "lrelu";
    const noise = opts.useNoise ?? true;
    this.weight = ops.param(`${prefix}.weight`, [outChannels, inChannels, k, k], "conv.weight", { layout: "OIHW" });
    if (noise) this.noiseStrength = ops.param(`${prefix}.${NOISE_STRENGTH}`, [], "conv.bias");
    this.bias = ops.param(`${prefix}.bias`, [outChannels], "conv.bias");
    this.resampleFilter = ops.param(`${prefix}.${RESAMPLE_FILTER}`, opts.resampleFilterShape, "norm.running_mean", { trainable: false });
    if (noise) this.noiseConst = ops.param(`${prefix}.${NOISE_CONST}`, [r, r], "norm.running_mean", { trainable: false });
    this.affine = new FullyConnectedLayer(ops, `${prefix}.${AFFINE}`, wDim, inChannels);
  }

  /** x [N|1, r', r', in] (r' = r / up), w [N, 1, 1, w_dim] → [N, r, r, out]. */
  apply(x: T, w: T, run: LayerRunOptions, gain = 1): T {
    const { ops, resolution: r } = this;
    const up = this.opts.up ?? 1;
    assertShape(ops, x, [null, r / up, r / up, this.inChannels], this.prefix);
    return ops.scope(() => {
      const styles = this.affine.apply(w);
      let y = ops.modulatedConv2d(x, this.weight, styles, { demodulate: true, up, padding: this.padding, filter: this.resampleFilter });
      if (this.noiseStrength && this.noiseConst && run.noiseMode !== "none") {
        const base = run.noiseMode === "const" ? ops.paramMap(this.noiseConst, 1, r, r) : ops.noise(w, r, r, run.noiseSeed * 1009 + this.opts.noiseIndex);
        y = ops.plus(y, ops.mulParam(base, this.noiseStrength));
      }
      const clamp = this.opts.convClamp != null ? this.opts.convClamp * gain : null;
      return ops.biasAct(y, this.bias, { act: this.activation, gain: ACTIVATIONS[this.activation].gain * gain, clamp });
    });
  }
}

export class ToRGBLayer<T, P> {
  readonly weight: P;
  readonly bias: P;
  readonly affine: FullyConnectedLayer<T, P>;
  private readonly weightGain: number;

  constructor(
    private readonly ops: Ops<T, P>,
    readonly prefix: string,
    readonly inChannels: number,
    outChannels: number,
    wDim: number,
    readonly opts: { kernelSize?: number; convClamp?: number | null } = {},
  ) {
    const k = opts.kernelSize ?? 1;
    this.weight = ops.param(`${prefix}.weight`, [outChannels, inChannels, k, k], "conv.weight", { layout: "OIHW" });
    this.bias = ops.param(`${prefix}.bias`, [outChannels], "conv.bias");
    this.affine = new FullyConnectedLayer(ops, `${prefix}.${AFFINE}`, wDim, inChannels);
    // Without demodulation the He gain has to come from somewhere; upstream folds it into the style.
    this.weightGain = 1 / Math.sqrt(inChannels * k * k);
  }

  apply(x: T, w: T): T {
    const { ops } = this;
    assertShape(ops, x, [null, null, null, this.inChannels], this.prefix);
    return ops.scope(() => {
      const styles = ops.mulScalar(this.affine.apply(w), this.weightGain);
      const y = ops.modulatedConv2d(x, this.weight, styles, { demodulate: false, up: 1, padding: 0 });
      return ops.biasAct(y, this.bias, { act: "linear", gain: 1, clamp: this.opts.convClamp ?? null });
    });
  }
}

/** Equalized-lr conv with FIR up/down-sampling: the resnet architecture's skip path (up; down has no graph form). */
export class Conv2dLayer<T, P> {
  readonly weight: P;
  readonly bias?: P;
  readonly resampleFilter: P;
  private readonly weightGain: number;
  private readonly padding: number;

  constructor(
    private readonly ops: Ops<T, P>,
    readonly prefix: string,
    readonly inChannels: number,
    outChannels: number,
    kernelSize: number,
    readonly opts: { bias?: boolean; activation?: Activation; up?: number; down?: number; resampleFilterShape: number[]; convClamp?: number | null },
  ) {
    this.weight = ops.param(`${prefix}.weight`, [outChannels, inChannels, kernelSize, kernelSize], "conv.weight", { layout: "OIHW" });
    if (opts.bias ?? true) this.bias = ops.param(`${prefix}.bias`, [outChannels], "conv.bias");
    this.resampleFilter = ops.param(`${prefix}.${RESAMPLE_FILTER}`, opts.resampleFilterShape, "norm.running_mean", { trainable: false });
    this.weightGain = 1 / Math.sqrt(inChannels * kernelSize * kernelSize);
    this.padding = Math.floor(kernelSize / 2);
  }

  apply(x: T, gain = 1): T {
    const { ops } = this;
    assertShape(ops, x, [null, null, null, this.inChannels], this.prefix);
    return ops.scope(() => {
      const act = this.opts.activation ?? "linear";
      const o = { up: this.opts.up ?? 1, down: this.opts.down ?? 1, padding: this.padding, weightGain: this.weightGain };
      const y = ops.resampleConv2d(x, this.weight, this.resampleFilter, o);
      const clamp = this.opts.convClamp != null ? this.opts.convClamp * gain : null;
      return ops.biasAct(y, this.bias, { act, gain: ACTIVATIONS[act].gain * gain, clamp });
    });
  }
}
