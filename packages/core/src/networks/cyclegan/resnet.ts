/**
 * pix2pix/CycleGAN ResnetGenerator on NHWC tensors. Parameter names follow the upstream `nn.Sequential` indices
 * (`model.<i>`, resnet blocks `model.<i>.conv_block.<j>`), where parameter-free layers (pads, activations,
 * dropout) still take up an index.
 */
import { Conv2d, ConvTranspose2d } from "../common/conv.ts";
import type { NormLayer } from "../common/norm.ts";
import type { Ops } from "../ops/ops.ts";
import { convUsesBias, type CycleGANConfig } from "./config.ts";
import { MODEL, makeNorm } from "./layers.ts";

const CONV_BLOCK = "conv_block";
/** Upstream's n_downsampling. */
const N_DOWN = 2;
/** `model` index of the first resnet block: pad, conv, norm, relu, then (conv, norm, relu) per downsampling. */
const FIRST_BLOCK = 4 + 3 * N_DOWN;
const layer = (i: number) => `${MODEL}.${i}`;
const BLOCK_KEY = new RegExp(`^${MODEL}\\.(\\d+)\\.${CONV_BLOCK}\\.`);

/** Official names of ResnetGenerator's layers, for config inference. */
export const resnetKeys = {
  /** The 7x7 stem conv (after ReflectionPad2d(3)) and its norm. */
  stemConv: layer(1),
  stemNorm: layer(2),
  firstBlock: layer(FIRST_BLOCK),
  /** The final 7x7 conv: after the blocks come (up-conv, norm, relu) per upsampling, then pad. */
  headConv: (nBlocks: number) => layer(FIRST_BLOCK + nBlocks + 3 * N_DOWN + 1),
  /** The `model` index of the resnet block a key belongs to, or undefined. */
  blockIndex: (key: string): number | undefined => {
    const m = BLOCK_KEY.exec(key);
    return m ? Number(m[1]) : undefined;
  },
  /** Layer j of a block's conv_block Sequential (index 6 is a conv only when dropout shifts the second half). */
  blockLayer: (block: string, j: number) => `${block}.${CONV_BLOCK}.${j}`,
};

/** Sequential layout: [pad, conv, norm, relu, (dropout), pad, conv, norm]; dropout shifts the second half by one. */
class ResnetBlock<T, P> {
  readonly conv1: Conv2d<T, P>;
  readonly norm1: NormLayer<T>;
  readonly conv2: Conv2d<T, P>;
  readonly norm2: NormLayer<T>;

  constructor(
    private readonly ops: Ops<T, P>,
    readonly name: string,
    dim: number,
    cfg: CycleGANConfig,
    instanceNorms: string[],
  ) {
    const bias = convUsesBias(cfg);
    const at = (j: number) => resnetKeys.blockLayer(name, j);
    const second = cfg.use_dropout ? 5 : 4;
    this.conv1 = new Conv2d(ops, at(1), dim, dim, 3, { bias });
    this.norm1 = makeNorm(ops, at(2), dim, cfg.norm, instanceNorms);
    this.conv2 = new Conv2d(ops, at(second + 1), dim, dim, 3, { bias });
    this.norm2 = makeNorm(ops, at(second + 2), dim, cfg.norm, instanceNorms);
  }

  apply(x: T, training: boolean, useDropout: boolean): T {
    const o = this.ops;
    let h = o.relu(this.norm1.apply(this.conv1.apply(o.reflectPad(x, 1)), training));
    if (useDropout) h = o.dropout(h, 0.5, training);
    h = this.norm2.apply(this.conv2.apply(o.reflectPad(h, 1)), training);
    return o.plus(x, h);
  }
}

export class ResnetGenerator<T, P> {
  private readonly stem: Conv2d<T, P>;
  private readonly stemNorm: NormLayer<T>;
  private readonly down: { conv: Conv2d<T, P>; norm: NormLayer<T> }[] = [];
  private readonly blocks: ResnetBlock<T, P>[] = [];
  private readonly up: { conv: ConvTranspose2d<T, P>; norm: NormLayer<T> }[] = [];
  private readonly head: Conv2d<T, P>;

  constructor(
    private readonly ops: Ops<T, P>,
    private readonly cfg: CycleGANConfig,
    inputNc: number,
    outputNc: number,
    nBlocks: number,
    /** Receives the names of InstanceNorm layers (whose stale running stats a loader must skip). */
    instanceNorms: string[],
  ) {
    const { ngf, norm } = cfg;
    const bias = convUsesBias(cfg);
    const nDown = N_DOWN;
    let i = 0;
    const next = () => layer(i++);
    i++; // ReflectionPad2d(3)
    this.stem = new Conv2d(ops, next(), inputNc, ngf, 7, { bias });
    this.stemNorm = makeNorm(ops, next(), ngf, norm, instanceNorms);
    i++; // ReLU
    for (let d = 0; d < nDown; d++) {
      const c = ngf * 2 ** d;
      const conv = new Conv2d(ops, next(), c, c * 2, 3, { stride: 2, padding: 1, bias });
      this.down.push({ conv, norm: makeNorm(ops, next(), c * 2, norm, instanceNorms) });
      i++; // ReLU
    }
    const dim = ngf * 2 ** nDown;
    for (let b = 0; b < nBlocks; b++) this.blocks.push(new ResnetBlock(ops, next(), dim, cfg, instanceNorms));
    for (let u = 0; u < nDown; u++) {
      const c = ngf * 2 ** (nDown - u);
      const conv = new ConvTranspose2d(ops, next(), c, c / 2, 3, { stride: 2, padding: 1, outputPadding: 1, bias });
      this.up.push({ conv, norm: makeNorm(ops, next(), c / 2, norm, instanceNorms) });
      i++; // ReLU
    }
    i++; // ReflectionPad2d(3)
    this.head = new Conv2d(ops, next(), ngf, outputNc, 7, { bias: true });
  }

  apply(x: T, training: boolean): T {
    const o = this.ops;
    let h = o.relu(this.stemNorm.apply(this.stem.apply(o.reflectPad(x, 3)), training));
    for (const { conv, norm } of this.down) h = o.relu(norm.apply(conv.apply(h), training));
    for (const block of this.blocks) h = block.apply(h, training, this.cfg.use_dropout);
    for (const { conv, norm } of this.up) h = o.relu(norm.apply(conv.apply(h), training));
    return o.tanh(this.head.apply(o.reflectPad(h, 3)));
  }
}
