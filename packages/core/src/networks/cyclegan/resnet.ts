/**
 * pix2pix/CycleGAN ResnetGenerator on NHWC tensors. Parameter names follow the upstream `nn.Sequential` indices
 * (`model.<i>`, resnet blocks `model.<i>.conv_block.<j>`), where parameter-free layers (pads, activations,
 * dropout) still take up an index.
 */
import * as tf from "@tensorflow/tfjs-core";
import { Conv2d, ConvTranspose2d } from "../common/conv.ts";
import type { NormLayer } from "../common/norm.ts";
import { reflectionPad2d } from "../common/pad.ts";
import type { ParamStore } from "../common/param-store.ts";
import { convUsesBias, type CycleGANConfig } from "./config.ts";
import { dropout, makeNorm } from "./layers.ts";

/** Sequential layout: [pad, conv, norm, relu, (dropout), pad, conv, norm]; dropout shifts the second half by one. */
class ResnetBlock {
  readonly conv1: Conv2d;
  readonly norm1: NormLayer;
  readonly conv2: Conv2d;
  readonly norm2: NormLayer;

  constructor(
    store: ParamStore,
    readonly name: string,
    dim: number,
    cfg: CycleGANConfig,
    instanceNorms: string[],
  ) {
    const bias = convUsesBias(cfg);
    const at = (j: number) => `${name}.conv_block.${j}`;
    const second = cfg.use_dropout ? 5 : 4;
    this.conv1 = new Conv2d(store, at(1), dim, dim, 3, { bias });
    this.norm1 = makeNorm(store, at(2), dim, cfg.norm, instanceNorms);
    this.conv2 = new Conv2d(store, at(second + 1), dim, dim, 3, { bias });
    this.norm2 = makeNorm(store, at(second + 2), dim, cfg.norm, instanceNorms);
  }

  apply(x: tf.Tensor4D, training: boolean, useDropout: boolean): tf.Tensor4D {
    let h = tf.relu(this.norm1.apply(this.conv1.apply(reflectionPad2d(x, 1)), training));
    if (useDropout) h = dropout(h, training);
    h = this.norm2.apply(this.conv2.apply(reflectionPad2d(h, 1)), training);
    return tf.add(x, h);
  }
}

export class ResnetGenerator {
  private readonly stem: Conv2d;
  private readonly stemNorm: NormLayer;
  private readonly down: { conv: Conv2d; norm: NormLayer }[] = [];
  private readonly blocks: ResnetBlock[] = [];
  private readonly up: { conv: ConvTranspose2d; norm: NormLayer }[] = [];
  private readonly head: Conv2d;

  constructor(
    store: ParamStore,
    private readonly cfg: CycleGANConfig,
    inputNc: number,
    outputNc: number,
    nBlocks: number,
    /** Receives the names of InstanceNorm layers (whose stale running stats a loader must skip). */
    instanceNorms: string[],
  ) {
    const { ngf, norm } = cfg;
    const bias = convUsesBias(cfg);
    const nDown = 2;
    let i = 0;
    const next = () => `model.${i++}`;
    i++; // ReflectionPad2d(3)
    this.stem = new Conv2d(store, next(), inputNc, ngf, 7, { bias });
    this.stemNorm = makeNorm(store, next(), ngf, norm, instanceNorms);
    i++; // ReLU
    for (let d = 0; d < nDown; d++) {
      const c = ngf * 2 ** d;
      const conv = new Conv2d(store, next(), c, c * 2, 3, { stride: 2, padding: 1, bias });
      this.down.push({ conv, norm: makeNorm(store, next(), c * 2, norm, instanceNorms) });
      i++; // ReLU
    }
    const dim = ngf * 2 ** nDown;
    for (let b = 0; b < nBlocks; b++) this.blocks.push(new ResnetBlock(store, next(), dim, cfg, instanceNorms));
    for (let u = 0; u < nDown; u++) {
      const c = ngf * 2 ** (nDown - u);
      const conv = new ConvTranspose2d(store, next(), c, c / 2, 3, { stride: 2, padding: 1, outputPadding: 1, bias });
      this.up.push({ conv, norm: makeNorm(store, next(), c / 2, norm, instanceNorms) });
      i++; // ReLU
    }
    i++; // ReflectionPad2d(3)
    this.head = new Conv2d(store, next(), ngf, outputNc, 7, { bias: true });
  }

  apply(x: tf.Tensor4D, training: boolean): tf.Tensor4D {
    let h = tf.relu(this.stemNorm.apply(this.stem.apply(reflectionPad2d(x, 3)), training));
    for (const { conv, norm } of this.down) h = tf.relu(norm.apply(conv.apply(h), training));
    for (const block of this.blocks) h = block.apply(h, training, this.cfg.use_dropout);
    for (const { conv, norm } of this.up) h = tf.relu(norm.apply(conv.apply(h), training));
    return tf.tanh(this.head.apply(reflectionPad2d(h, 3)));
  }
}
