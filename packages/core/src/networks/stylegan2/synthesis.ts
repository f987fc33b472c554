/**
 * Synthesis network: one block per resolution 4, 8, ..., img_resolution. Parameters: `synthesis.b{res}.*`.
 *
 * ws indexing (easy to get wrong): block i reads ws[idx .. idx + num_conv + num_torgb) and idx advances by
 * num_conv only, so a block's ToRGB shares its w with the next block's conv0. That is why num_ws = 2*log2(res)-2.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Activation } from "../common/bias_act.ts";
import type { ParamStore } from "../common/param-store.ts";
import { upsample2d } from "../common/upfirdn2d.ts";
import { CHW_TO_HWC, Conv2dLayer, SynthesisLayer, ToRGBLayer, type LayerRunOptions } from "./layers.ts";

export type Architecture = "orig" | "skip" | "resnet";

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

export class SynthesisBlock {
  readonly const: tf.Variable | null = null;
  readonly resampleFilter: tf.Variable;
  readonly conv0: SynthesisLayer | null = null;
  readonly conv1: SynthesisLayer;
  readonly torgb: ToRGBLayer | null = null;
  readonly skip: Conv2dLayer | null = null;
  readonly numConv: number;
  readonly numToRGB: number;

  constructor(
    store: ParamStore,
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
    if (inChannels === 0) this.const = store.add(`${prefix}.const`, [outChannels, res, res], "conv.weight", { perm: CHW_TO_HWC });
    this.resampleFilter = store.add(`${prefix}.resample_filter`, opts.resampleFilterShape, "norm.running_mean", { trainable: false });
    let numConv = 0;
    if (inChannels !== 0) {
      this.conv0 = new SynthesisLayer(store, `${prefix}.conv0`, inChannels, outChannels, opts.w_dim, res, { ...layer, up: 2, noiseIndex: noiseIndex + numConv });
      numConv++;
    }
    this.conv1 = new SynthesisLayer(store, `${prefix}.conv1`, outChannels, outChannels, opts.w_dim, res, { ...layer, noiseIndex: noiseIndex + numConv });
    numConv++;
    this.numConv = numConv;
    let numToRGB = 0;
    if (isLast || opts.architecture === "skip") {
      this.torgb = new ToRGBLayer(store, `${prefix}.torgb`, outChannels, opts.img_channels, opts.w_dim, { convClamp: opts.conv_clamp });
      numToRGB++;
    }
    this.numToRGB = numToRGB;
    if (inChannels !== 0 && opts.architecture === "resnet")
      this.skip = new Conv2dLayer(store, `${prefix}.skip`, inChannels, outChannels, 1, {
        bias: false,
        up: 2,
        resampleFilterShape: opts.resampleFilterShape,
      });
  }

  /** ws: this block's numConv + numToRGB ws, each [N, w_dim]. x, img: NHWC or null (first block). */
  apply(x: tf.Tensor4D | null, img: tf.Tensor4D | null, ws: tf.Tensor2D[], run: LayerRunOptions): [tf.Tensor4D, tf.Tensor4D | null] {
    const r = tf.tidy(() => {
      let i = 0;
      const n = ws[0].shape[0];
      let h: tf.Tensor4D;
      if (this.const) {
        const [r, , c] = this.const.shape;
        h = tf.tile(tf.reshape(this.const, [1, r, r, c]), [n, 1, 1, 1]);
        h = this.conv1.apply(h, ws[i++], run);
      } else if (this.skip) {
        // sqrt(0.5) on both branches keeps the sum's variance equal to each branch's.
        const y = this.skip.apply(x!, Math.SQRT1_2);
        h = this.conv0!.apply(x!, ws[i++], run);
        h = this.conv1.apply(h, ws[i++], run, Math.SQRT1_2);
        h = tf.add(y, h) as tf.Tensor4D;
      } else {
        h = this.conv0!.apply(x!, ws[i++], run);
        h = this.conv1.apply(h, ws[i++], run);
      }
      let out = img ? upsample2d(img, this.resampleFilter as tf.Tensor2D) : null;
      if (this.torgb) {
        const y = this.torgb.apply(h, ws[i++]);
        out = out ? (tf.add(out, y) as tf.Tensor4D) : y;
      }
      return out ? [h, out] : [h];
    });
    return [r[0] as tf.Tensor4D, (r[1] as tf.Tensor4D | undefined) ?? null];
  }
}

export class SynthesisNetwork {
  readonly blocks: SynthesisBlock[] = [];
  readonly numWs: number;

  constructor(
    store: ParamStore,
    readonly prefix: string,
    readonly opts: SynthesisOptions,
  ) {
    const log2 = Math.round(Math.log2(opts.img_resolution));
    let numWs = 0;
    let noiseIndex = 0;
    for (let l = 2; l <= log2; l++) {
      const res = 2 ** l;
      const inC = res > 4 ? opts.channels[res / 2] : 0;
      const block = new SynthesisBlock(store, `${prefix}.b${res}`, inC, opts.channels[res], res, res === opts.img_resolution, opts, noiseIndex);
      noiseIndex += block.numConv;
      numWs += block.numConv;
      if (block.isLast) numWs += block.numToRGB;
      this.blocks.push(block);
    }
    this.numWs = numWs;
  }

  /** ws: [N, num_ws, w_dim] → img [N, H, W, img_channels] (NHWC, unclamped, roughly [-1, 1]). */
  apply(ws: tf.Tensor3D, run: LayerRunOptions): tf.Tensor4D {
    if (ws.shape[1] !== this.numWs) throw new Error(`synthesis: ws has ${ws.shape[1]} entries, this network needs num_ws = ${this.numWs}`);
    if (ws.shape[2] !== this.opts.w_dim) throw new Error(`synthesis: ws has width ${ws.shape[2]}, w_dim is ${this.opts.w_dim}`);
    return tf.tidy(() => {
      const all = tf.unstack(tf.cast(ws, "float32"), 1) as tf.Tensor2D[];
      let x: tf.Tensor4D | null = null;
      let img: tf.Tensor4D | null = null;
      let idx = 0;
      for (const block of this.blocks) {
        const mine = all.slice(idx, idx + block.numConv + block.numToRGB);
        idx += block.numConv;
        [x, img] = block.apply(x, img, mine, run);
      }
      return img!;
    });
  }
}
