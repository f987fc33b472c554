/**
 * pix2pix/CycleGAN PatchGAN discriminator (`NLayerDiscriminator`, netD 'basic' = n_layers 3) on NHWC tensors,
 * with the official `model.<i>` Sequential indices:
 *   conv k4 s2 p1 (bias) · LeakyReLU 0.2 · [conv k4 s2 p1 · norm · LeakyReLU] x (n_layers - 1)
 *   · conv k4 s1 p1 · norm · LeakyReLU · conv k4 s1 p1 → 1 channel (bias)
 * Widths ndf * min(2^n, 8). Inner convs have a bias only under InstanceNorm (upstream's use_bias rule). With
 * n_layers 3 each output pixel sees a 70x70 input patch.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { StateDict } from "../../checkpoints/tensor.ts";
import { Conv2d } from "../common/conv.ts";
import type { NormLayer } from "../common/norm.ts";
import { normalInitSource, ParamModule, ParamStore, loadStrict, type ParamSource } from "../common/param-store.ts";
import type { CycleGANConfig } from "./config.ts";
import { MODEL, makeNorm, staleInstanceNormKey } from "./layers.ts";

export interface PatchGANOptions {
  inputNc: number;
  ndf?: number;
  nLayers?: number;
  norm?: CycleGANConfig["norm"];
}

interface Stage {
  conv: Conv2d;
  norm?: NormLayer;
  act: boolean;
}

export class NLayerDiscriminator extends ParamModule {
  readonly inputNc: number;
  readonly ndf: number;
  readonly nLayers: number;
  readonly norm: CycleGANConfig["norm"];
  private readonly stages: Stage[] = [];

  private constructor(opts: PatchGANOptions, source: ParamSource, counter: ((n: string) => bigint) | undefined, instanceNorms: string[]) {
    super(new ParamStore(source, counter));
    this.inputNc = opts.inputNc;
    this.ndf = opts.ndf ?? 64;
    this.nLayers = opts.nLayers ?? 3;
    this.norm = opts.norm ?? "instance";
    if (this.nLayers < 1) throw new Error(`n_layers must be at least 1, got ${this.nLayers}`);
    try {
      this.build(instanceNorms);
    } catch (e) {
      this.store.dispose();
      throw e;
    }
  }

  private build(instanceNorms: string[]): void {
    const bias = this.norm === "instance";
    const k4 = (stride: number) => ({ stride, padding: 1 });
    let i = 0;
    const next = () => `${MODEL}.${i++}`;
    this.stages.push({ conv: new Conv2d(this.store, next(), this.inputNc, this.ndf, 4, { ...k4(2), bias: true }), act: true });
    i++; // LeakyReLU
    let mult = 1;
    for (let n = 1; n <= this.nLayers; n++) {
      const prev = mult;
      mult = Math.min(2 ** n, 8);
      const stride = n < this.nLayers ? 2 : 1;
      const conv = new Conv2d(this.store, next(), this.ndf * prev, this.ndf * mult, 4, { ...k4(stride), bias });
      const norm = makeNorm(this.store, next(), this.ndf * mult, this.norm, instanceNorms);
      i++; // LeakyReLU
      this.stages.push({ conv, norm, act: true });
    }
    this.stages.push({ conv: new Conv2d(this.store, next(), this.ndf * mult, 1, 4, { ...k4(1), bias: true }), act: false });
  }

  /** Upstream `init_weights('normal', 0.02)`. */
  static randomInit(opts: PatchGANOptions, seed: number, gain = 0.02): NLayerDiscriminator {
    return new NLayerDiscriminator(opts, normalInitSource(seed, gain), undefined, []);
  }

  /** Strict load of an official `netD` state_dict (`latest_net_D_A.pth`). */
  static fromStateDict(opts: PatchGANOptions, sd: StateDict, file = "netD"): NLayerDiscriminator {
    const names: string[] = [];
    return loadStrict(sd, file, (source, counter) => new NLayerDiscriminator(opts, source, counter, names), () => staleInstanceNormKey(names));
  }

  /** NHWC image → NHWC patch logits [N, h', w', 1]; `training` selects batch statistics for BatchNorm. */
  forward(x: tf.Tensor4D, training = true): tf.Tensor4D {
    if (x.rank !== 4 || x.shape[3] !== this.inputNc) throw new Error(`PatchGAN expects NHWC with ${this.inputNc} channels, got [${x.shape}]`);
    return tf.tidy(() => {
      let h = x;
      for (const s of this.stages) {
        h = s.conv.apply(h);
        if (s.norm) h = s.norm.apply(h, training);
        if (s.act) h = tf.leakyRelu(h, 0.2);
      }
      return h;
    });
  }

  /** Output side for an input side (each k4 p1 conv: stride 2 → floor(n/2), stride 1 → n - 1). */
  outputSize(n: number): number {
    for (let l = 0; l < this.nLayers; l++) n = Math.floor((n + 2 - 4) / 2) + 1;
    return n - 2;
  }
}
