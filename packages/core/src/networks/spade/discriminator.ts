/**
 * NVlabs SPADE `MultiscaleDiscriminator`: `num_D` PatchGAN `NLayerDiscriminator`s (`discriminator_<i>`), each
 * seeing the input downsampled once more (3x3 average pool, stride 2, padding 1, count_include_pad=False). Each
 * returns every sub-model's output, so the last one is the patch prediction and the others feed feature matching.
 *
 * One NLayerDiscriminator (kernel 4, padding 2, LeakyReLU 0.2):
 *   model0: conv(input_nc → ndf, s2) with bias
 *   model1..model{n-1}: norm_D(conv(nf_prev → min(2 nf_prev, 512))), stride 2 except the last (stride 1)
 *   model{n}: conv(nf → 1, s1) with bias
 * input_nc = semantic_nc + 3 (D sees concat(semantics, image)). Under norm_D 'spectralinstance' (the default),
 * norm_D wraps the conv as nn.Sequential(spectral conv without bias, InstanceNorm2d(affine=False)), hence names
 * `discriminator_0.model1.0.0.weight_orig`; with a bare 'spectral' the conv keeps its bias under `model1.0.*`.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { StateDict } from "../../checkpoints/tensor.ts";
import { Conv2d } from "../common/conv.ts";
import { BatchNorm2d, InstanceNorm2d, type NormLayer } from "../common/norm.ts";
import { ParamModule, ParamStore, loadStrict, type ParamSource } from "../common/param-store.ts";
import { SpectralConv2d } from "../common/spectral-norm.ts";
import { spadeInitSource } from "./init.ts";
import type { AnyConv } from "./layers.ts";

export interface MultiscaleDiscriminatorOptions {
  /** semantic_nc + 3. */
  inputNc: number;
  ndf?: number;
  numD?: number;
  nLayers?: number;
  /** Upstream's norm_D: [spectral]{instance|batch|syncbatch|none}. */
  normD?: string;
}

interface SubModel {
  conv: AnyConv;
  norm?: NormLayer;
  act: boolean;
}

function parseNormD(normD: string): { spectral: boolean; sub: "instance" | "batch" | "none" } {
  const m = /^(spectral)?(instance|batch|syncbatch|none)?$/.exec(normD);
  if (!m) throw new Error(`norm_D must look like [spectral]{instance|batch|syncbatch|none}, got '${normD}'`);
  const sub = m[2] === undefined || m[2] === "none" ? "none" : m[2] === "instance" ? "instance" : "batch";
  return { spectral: m[1] === "spectral", sub };
}

class NLayerD {
  readonly models: SubModel[] = [];

  constructor(store: ParamStore, prefix: string, o: Required<MultiscaleDiscriminatorOptions>) {
    const { spectral, sub } = parseNormD(o.normD);
    const k = 4;
    const padding = 2;
    let nf = o.ndf;
    this.models.push({ conv: new Conv2d(store, `${prefix}.model0.0`, o.inputNc, nf, k, { stride: 2, padding }), act: true });
    for (let n = 1; n < o.nLayers; n++) {
      const prev = nf;
      nf = Math.min(nf * 2, 512);
      const stride = n === o.nLayers - 1 ? 1 : 2;
      const wrapped = sub !== "none";
      const convName = wrapped ? `${prefix}.model${n}.0.0` : `${prefix}.model${n}.0`;
      const opts = { stride, padding, bias: !wrapped };
      const conv = spectral ? new SpectralConv2d(store, convName, prev, nf, k, opts) : new Conv2d(store, convName, prev, nf, k, opts);
      const normName = `${prefix}.model${n}.0.1`;
      const norm =
        sub === "instance"
          ? new InstanceNorm2d(store, normName, nf, { affine: false })
          : sub === "batch"
            ? new BatchNorm2d(store, normName, nf, { affine: true })
            : undefined;
      this.models.push({ conv, norm, act: true });
    }
    this.models.push({ conv: new Conv2d(store, `${prefix}.model${o.nLayers}.0`, nf, 1, k, { stride: 1, padding }), act: false });
  }

  /** Every sub-model's output in order; the last is the prediction map [N, h, w, 1]. */
  apply(x: tf.Tensor4D, training: boolean): tf.Tensor4D[] {
    const out: tf.Tensor4D[] = [];
    let h = x;
    for (const m of this.models) {
      h = m.conv.apply(h);
      if (m.norm) h = m.norm.apply(h, training);
      if (m.act) h = tf.leakyRelu(h, 0.2);
      out.push(h);
    }
    return out;
  }
}

/**
 * F.avg_pool2d(x, 3, stride 2, padding 1, count_include_pad=False), written as a zero-padded valid pool divided
 * by the share of real pixels in each window: backends disagree on whether their own padded pools count the pad.
 */
export function downsampleAvg3x3(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const [, h, w] = x.shape;
    const pads: [number, number][] = [[0, 0], [1, 1], [1, 1], [0, 0]];
    const sum = tf.avgPool(tf.pad(x, pads), 3, 2, "valid");
    const share = tf.avgPool(tf.pad(tf.ones([1, h, w, 1]), pads) as tf.Tensor4D, 3, 2, "valid");
    return tf.div(sum, share) as tf.Tensor4D;
  });
}

export class MultiscaleDiscriminator extends ParamModule {
  readonly options: Required<MultiscaleDiscriminatorOptions>;
  private readonly ds: NLayerD[];

  private constructor(opts: MultiscaleDiscriminatorOptions, source: ParamSource, counter?: (n: string) => bigint) {
    super(new ParamStore(source, counter));
    this.options = { ndf: 64, numD: 2, nLayers: 4, normD: "spectralinstance", ...opts };
    if (this.options.nLayers < 1 || this.options.numD < 1) throw new Error("n_layers_D and num_D must be at least 1");
    try {
      this.ds = Array.from({ length: this.options.numD }, (_, i) => new NLayerD(this.store, `discriminator_${i}`, this.options));
    } catch (e) {
      this.store.dispose();
      throw e;
    }
  }

  /** Upstream `init_weights(init_type, init_variance)` (xavier, 0.02 by default); u/v normalised N(0, 1). */
  static randomInit(opts: MultiscaleDiscriminatorOptions, seed: number, initType = "xavier", gain = 0.02): MultiscaleDiscriminator {
    return new MultiscaleDiscriminator(opts, spadeInitSource(seed, initType, gain));
  }

  /** Strict load of an official `netD` state_dict (spectral layers as weight_orig/u/v). */
  static fromStateDict(opts: MultiscaleDiscriminatorOptions, sd: StateDict, file = "netD"): MultiscaleDiscriminator {
    return loadStrict(sd, file, (source, counter) => new MultiscaleDiscriminator(opts, source, counter));
  }

  /**
   * NHWC concat(semantics, image) → per scale, every sub-model's output (last = prediction). Pure ops, so it can
   * run under a gradient tape; u/v are constants here (call `powerIteration()` first to match torch's train mode).
   */
  forward(x: tf.Tensor4D, training = true): tf.Tensor4D[][] {
    if (x.rank !== 4 || x.shape[3] !== this.options.inputNc)
      throw new Error(`MultiscaleDiscriminator expects NHWC with ${this.options.inputNc} channels, got [${x.shape}]`);
    const result: tf.Tensor4D[][] = [];
    let input = x;
    for (let i = 0; i < this.ds.length; i++) {
      result.push(this.ds[i].apply(input, training));
      if (i < this.ds.length - 1) input = downsampleAvg3x3(input);
    }
    return result;
  }

  spectralConvs(): SpectralConv2d[] {
    return this.ds.flatMap((d) => d.models.map((m) => m.conv)).filter((c): c is SpectralConv2d => c instanceof SpectralConv2d);
  }

  /** One power-iteration step on every spectral conv (torch runs one per training-mode forward). */
  powerIteration(steps = 1): void {
    for (const c of this.spectralConvs()) c.powerIteration(steps);
  }
}
