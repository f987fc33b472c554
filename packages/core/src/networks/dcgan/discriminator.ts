/**
 * The DCGAN discriminator the articles and pytorch/examples train with, written once against the op interface:
 * `main` = Conv2d(nc, ndf, 4, 2, 1, bias=False) + LeakyReLU(0.2), then [Conv2d(4, 2, 1, bias=False) + BatchNorm2d
 * + LeakyReLU(0.2)] doubling the width until the map is 4×4 (7×7 for 28×28 images), then Conv2d(·, 1, k, 1, 0) to one
 * logit. The Sigmoid of the articles is left to the loss (BCE on logits is the same function without log(0)).
 * `norm: "none"` drops the BatchNorms (what WGAN-GP asks for).
 */
import * as tf from "@tensorflow/tfjs-core";
import type { StateDict } from "../../checkpoints/tensor.ts";
import { Conv2d } from "../common/conv.ts";
import { BatchNorm2d } from "../common/norm.ts";
import { normalInitSource, type ParamSource, ParamModule, ParamStore, loadStrict } from "../common/param-store.ts";
import type { Ops } from "../ops/ops.ts";
import { DCGAN_SEQUENTIALS } from "./config.ts";

export interface DcganDiscriminatorOptions {
  nc: number;
  imgSize: number;
  ndf: number;
  norm: "batch" | "none";
}

/** The stride-2 stages from imgSize down to the 4×4 (or odd-sized) map the last conv reads whole. */
export function discriminatorStages(imgSize: number): { stages: number; lastKernel: number } {
  let s = imgSize;
  let stages = 0;
  while (s > 4 && s % 2 === 0) {
    s /= 2;
    stages++;
  }
  if (stages === 0) throw new Error(`a DCGAN discriminator needs an even image size above 4, got ${imgSize}`);
  return { stages, lastKernel: s };
}

class DcganDNet<T, P> {
  private readonly convs: Conv2d<T, P>[] = [];
  private readonly norms: (BatchNorm2d<T, P> | null)[] = [];
  private readonly out: Conv2d<T, P>;

  constructor(
    private readonly ops: Ops<T, P>,
    o: DcganDiscriminatorOptions,
  ) {
    const { stages, lastKernel } = discriminatorStages(o.imgSize);
    let index = 0;
    let ch = o.nc;
    for (let i = 0; i < stages; i++) {
      const out = o.ndf * 2 ** i;
      this.convs.push(new Conv2d(ops, `${DCGAN_SEQUENTIALS.main}.${index++}`, ch, out, 4, { stride: 2, padding: 1, bias: false }));
      // The first stage has no BatchNorm (DCGAN paper, pytorch/examples).
      this.norms.push(i > 0 && o.norm === "batch" ? new BatchNorm2d(ops, `${DCGAN_SEQUENTIALS.main}.${index++}`, out) : null);
      index++; // LeakyReLU
      ch = out;
    }
    this.out = new Conv2d(ops, `${DCGAN_SEQUENTIALS.main}.${index}`, ch, 1, lastKernel, { stride: 1, padding: 0, bias: false });
  }

  /** NHWC images in [-1, 1] → [N, 1, 1, 1] logits. */
  apply(x: T, training: boolean): T {
    let h = x;
    for (const [i, conv] of this.convs.entries()) {
      h = conv.apply(h);
      const bn = this.norms[i];
      if (bn) h = bn.apply(h, training);
      h = this.ops.leakyRelu(h, 0.2);
    }
    return this.out.apply(h);
  }
}

export class DcganDiscriminator extends ParamModule {
  private readonly net: DcganDNet<tf.Tensor4D, tf.Variable>;

  private constructor(
    readonly options: DcganDiscriminatorOptions,
    source: ParamSource,
    counter?: (name: string) => bigint,
  ) {
    super(new ParamStore(source, counter));
    try {
      this.net = new DcganDNet(this.store, options);
    } catch (e) {
      this.store.dispose();
      throw e;
    }
  }

  /** pytorch/examples' weights_init: N(0, 0.02) convs, N(1, 0.02) BatchNorm weights. */
  static randomInit(o: DcganDiscriminatorOptions, seed: number): DcganDiscriminator {
    return new DcganDiscriminator(o, normalInitSource(seed, 0.02));
  }

  static fromStateDict(o: DcganDiscriminatorOptions, sd: StateDict, file?: string): DcganDiscriminator {
    return loadStrict(sd, file, (source, counter) => new DcganDiscriminator(o, source, counter));
  }

  /** [N] logits; `training` makes BatchNorm use batch statistics. */
  forward(x: tf.Tensor4D, training: boolean): tf.Tensor1D {
    return tf.tidy(() => tf.reshape(this.net.apply(x, training), [-1]) as tf.Tensor1D);
  }
}
