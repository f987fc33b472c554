/**
 * Synthesis network: one block per resolution 4, 8, ..., img_resolution. Parameters: `synthesis.b{res}.*`.
 *
 * ws indexing (easy to get wrong): block i reads ws[idx .. idx + num_conv + num_torgb) and idx advances by
 * num_conv only, so a block's ToRGB shares its w with the next block's conv0. That is why num_ws = 2*log2(res)-2.
 */
import type { Activation } from "../common/bias_act.ts";
import type { Ops } from "../ops/ops.ts";
import { AFFINE, Conv2dLayer, type LayerRunOptions, RESAMPLE_FILTER, SynthesisLayer, ToRGBLayer } from "./layers.ts";

export type Architecture = "orig" | "skip" | "resnet";

/** The synthesis network's official prefix and child names, spelled only here. */
export const SYNTHESIS = "synthesis";
const CONST = "const";
/** A block's modulated layers in forward order: each has a style affine (what SeFa factorises). */
const MODULATED = ["conv0", "conv1", "torgb"] as const;
const [CONV0, CONV1, TORGB] = MODULATED;
const SKIP = "skip";
const BLOCK = "b";
const blockName = (res: number) => `${BLOCK}${res}`;
/** `synthesis.b{res}.` and, when the key is under one, the block's child (conv0, torgb, skip, ...). */
const BLOCK_KEY = new RegExp(`^${SYNTHESIS}\\.${BLOCK}(\\d+)\\.(?:(\\w+)\\.)?`);

/** State-dict keys of the synthesis network, for config inference and for callers that read weights directly. */
export const synthesisKeys = {
  block: (res: number) => `${SYNTHESIS}.${blockName(res)}`,
  /** The block's last conv weight [out, in, k, k]: its out channels are the block's channels_dict entry. */
  conv1Weight: (res: number) => `${SYNTHESIS}.${blockName(res)}.${CONV1}.weight`,
  /** The block's ToRGB weight [img_channels, in, 1, 1]; only the last block has one unless architecture is "skip". */
  torgbWeight: (res: number) => `${SYNTHESIS}.${blockName(res)}.${TORGB}.weight`,
  /** The block's own FIR filter buffer. */
  resampleFilter: (res: number) => `${SYNTHESIS}.${blockName(res)}.${RESAMPLE_FILTER}`,
  /** The resolution of the block a key belongs to, or undefined for keys outside the synthesis blocks. */
  blockResolution(key: string): number | undefined {
    const m = BLOCK_KEY.exec(key);
    return m ? Number(m[1]) : undefined;
  },
  /** Whether a key belongs to a resnet skip branch (only architecture "resnet" has them). */
  isSkip: (key: string): boolean => BLOCK_KEY.exec(key)?.[2] === SKIP,
  /** Whether a key belongs to the synthesis network. */
  owns: (key: string): boolean => key.startsWith(`${SYNTHESIS}.`),
  /** The layers that take noise at a block, in forward order (conv0 exists from 8x8 up). */
  noiseLayers: (res: number): string[] => (res > 4 ? [CONV0, CONV1] : [CONV1]).map((c) => `${SYNTHESIS}.${blockName(res)}.${c}`),
  /**
   * Every style affine weight among `keys` (`synthesis.b{res}.{conv0|conv1|torgb}.affine.weight`), in forward
   * order: by block resolution, then conv0, conv1, torgb.
   */
  styleAffineWeights(keys: Iterable<string>): string[] {
    const rank = new Map<string, number>();
    for (const k of keys) {
      const m = BLOCK_KEY.exec(k);
      const child = MODULATED.indexOf(m?.[2] as (typeof MODULATED)[number]);
      if (m && child >= 0 && k === `${m[0]}${AFFINE}.weight`) rank.set(k, Number(m[1]) * MODULATED.length + child);
    }
    return [...rank.keys()].sort((a, b) => rank.get(a)! - rank.get(b)!);
  },
};

export interface SynthesisOptions {
  w_dim: number;
  img_resolution: number;
  img_channels: number;
  architecture: Architecture;
  channels: Record<number, number>;
  conv_clamp: number | null;
  use_noise: boolean;
  resampleFilterShape: number[];
  kernel_size?: number;
  activation?: Activation;
}

export class SynthesisBlock<T, P> {
  readonly const?: P;
  readonly resampleFilter: P;
  readonly conv0?: SynthesisLayer<T, P>;
  readonly conv1: SynthesisLayer<T, P>;
  readonly torgb?: ToRGBLayer<T, P>;
  readonly skip?: Conv2dLayer<T, P>;
  readonly numConv: number;
  readonly numToRGB: number;

  constructor(
    private readonly ops: Ops<T, P>,
    readonly prefix: string,
    readonly inChannels: number,
    readonly outChannels: number,
    readonly resolution: number,
    readonly isLast: boolean,
    readonly opts: SynthesisOptions,
    noiseIndex: number,
  ) {
    const res = resolution;
    const layer = {
      kernelSize: opts.kernel_size,
      useNoise: opts.use_noise,
      activation: opts.activation,
      resampleFilterShape: opts.resampleFilterShape,
      convClamp: opts.conv_clamp,
    };
    if (inChannels === 0) this.const = ops.param(`${prefix}.${CONST}`, [outChannels, res, res], "conv.weight", { layout: "CHW" });
    this.resampleFilter = ops.param(`${prefix}.${RESAMPLE_FILTER}`, opts.resampleFilterShape, "norm.running_mean", { trainable: false });
    let numConv = 0;
    if (inChannels !== 0) {
      this.conv0 = new SynthesisLayer(ops, `${prefix}.${CONV0}`, inChannels, outChannels, opts.w_dim, res, { ...layer, up: 2, noiseIndex: noiseIndex + numConv });
      numConv++;
    }
    this.conv1 = new SynthesisLayer(ops, `${prefix}.${CONV1}`, outChannels, outChannels, opts.w_dim, res, { ...layer, noiseIndex: noiseIndex + numConv });
    numConv++;
    this.numConv = numConv;
    let numToRGB = 0;
    if (isLast || opts.architecture === "skip") {
      this.torgb = new ToRGBLayer(ops, `${prefix}.${TORGB}`, outChannels, opts.img_channels, opts.w_dim, { convClamp: opts.conv_clamp });
      numToRGB++;
    }
    this.numToRGB = numToRGB;
    if (inChannels !== 0 && opts.architecture === "resnet")
      this.skip = new Conv2dLayer(ops, `${prefix}.${SKIP}`, inChannels, outChannels, 1, { bias: false, up: 2, resampleFilterShape: opts.resampleFilterShape });
  }

  /** ws: this block's numConv + numToRGB ws, each [N, 1, 1, w_dim]. x, img: NHWC, or null in the first block. */
  apply(x: T | null, img: T | null, ws: T[], run: LayerRunOptions): [T, T | null] {
    const { ops } = this;
    let i = 0;
    let h: T;
    if (this.const) {
      // [1, r, r, C]: the modulation broadcasts it to the batch.
      h = this.conv1.apply(ops.paramMap(this.const, this.outChannels, this.resolution, this.resolution), ws[i++], run);
    } else if (this.skip) {
      // sqrt(0.5) on both branches keeps the sum's variance equal to each branch's.
      const y = this.skip.apply(x!, Math.SQRT1_2);
      h = this.conv0!.apply(x!, ws[i++], run);
      h = this.conv1.apply(h, ws[i++], run, Math.SQRT1_2);
      h = ops.plus(y, h);
    } else {
      h = this.conv0!.apply(x!, ws[i++], run);
      h = this.conv1.apply(h, ws[i++], run);
    }
    let out = img ? ops.upsample2d(img, this.resampleFilter) : null;
    if (this.torgb) {
      const y = this.torgb.apply(h, ws[i++]);
      out = out ? ops.plus(out, y) : y;
    }
    return [h, out];
  }
}

export class SynthesisNetwork<T, P> {
  readonly blocks: SynthesisBlock<T, P>[] = [];
  readonly numWs: number;

  constructor(
    private readonly ops: Ops<T, P>,
    readonly prefix: string,
    readonly opts: SynthesisOptions,
  ) {
    const log2 = Math.round(Math.log2(opts.img_resolution));
    let numWs = 0;
    let noiseIndex = 0;
    for (let l = 2; l <= log2; l++) {
      const res = 2 ** l;
      const inC = res > 4 ? opts.channels[res / 2] : 0;
      const block = new SynthesisBlock(ops, `${prefix}.${blockName(res)}`, inC, opts.channels[res], res, res === opts.img_resolution, opts, noiseIndex);
      noiseIndex += block.numConv;
      numWs += block.numConv;
      if (block.isLast) numWs += block.numToRGB;
      this.blocks.push(block);
    }
    this.numWs = numWs;
  }

  /** ws as one vector [N, 1, 1, num_ws · w_dim] (row-major [N, num_ws, w_dim]) → img NHWC [N, H, W, img_channels]. */
  apply(ws: T, run: LayerRunOptions): T {
    const all = this.ops.splitChannels(ws, this.numWs);
    let x: T | null = null;
    let img: T | null = null;
    let idx = 0;
    for (const block of this.blocks) {
      const mine = all.slice(idx, idx + block.numConv + block.numToRGB);
      idx += block.numConv;
      [x, img] = block.apply(x, img, mine, run);
    }
    return img!;
  }
}
