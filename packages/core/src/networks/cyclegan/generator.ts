/**
 * One CycleGAN/pix2pix generator (either upstream class) with its parameters.
 *
 * Tensors are NHWC (batch, height, width, channels) float32 with values in [-1, 1], in and out; convert from the
 * official NCHW with `tf.transpose(x, [0, 2, 3, 1])`. Height and width must be multiples of `sizeMultiple` and at
 * least `minSize` (see `sizeConstraints`).
 */
import * as tf from "@tensorflow/tfjs-core";
import type { StateDict } from "../../checkpoints/tensor.ts";
import { normalInitSource, ParamModule, ParamStore, stateDictSource, type ParamSource } from "../common/param-store.ts";
import { parseCycleGANConfig, sizeConstraints, type CycleGANConfig } from "./config.ts";
import { staleInstanceNormKey } from "./layers.ts";
import { ResnetGenerator } from "./resnet.ts";
import { UnetGenerator } from "./unet.ts";

export interface ForwardOptions {
  /** Train mode: dropout (when configured) is active and BatchNorm uses batch statistics. Default false (eval). */
  training?: boolean;
}

export class CycleGANGenerator extends ParamModule {
  readonly sizeMultiple: number;
  readonly minSize: number;
  private readonly net: ResnetGenerator | UnetGenerator;

  private constructor(
    readonly config: CycleGANConfig,
    /** Channels this generator reads and writes (G_B swaps the config's input_nc and output_nc). */
    readonly inChannels: number,
    readonly outChannels: number,
    source: ParamSource,
    counterSource: ((name: string) => bigint) | undefined,
    instanceNorms: string[],
  ) {
    super(new ParamStore(source, counterSource));
    try {
      this.net = buildNet(this.store, config, inChannels, outChannels, instanceNorms);
    } catch (e) {
      this.store.dispose();
      throw e;
    }
    ({ sizeMultiple: this.sizeMultiple, minSize: this.minSize } = sizeConstraints(config.netG));
  }

  /**
   * Loads an official state_dict (strict: missing or unexpected keys and wrong shapes throw), except that
   * InstanceNorm running stats from 2018-era checkpoints are ignored and a DataParallel `module.` prefix is
   * stripped. `channels` defaults to the config's input_nc → output_nc (the G_A direction).
   */
  static fromStateDict(config: unknown, sd: StateDict, channels?: { in: number; out: number }, file?: string): CycleGANGenerator {
    const cfg = parseCycleGANConfig(config);
    const dict = stripPrefix(sd, "module.");
    const src = stateDictSource(dict, file);
    const instanceNorms: string[] = [];
    const g = new CycleGANGenerator(cfg, channels?.in ?? cfg.input_nc, channels?.out ?? cfg.output_nc, src.source, src.counter, instanceNorms);
    try {
      src.finish(staleInstanceNormKey(instanceNorms));
    } catch (e) {
      g.dispose();
      throw e;
    }
    return g;
  }

  /** Upstream's `init_weights('normal', init_gain)`: conv weights N(0, init_gain), biases 0, BN weights N(1, init_gain). */
  static randomInit(config: unknown, seed: number, channels?: { in: number; out: number }): CycleGANGenerator {
    const cfg = parseCycleGANConfig(config);
    return new CycleGANGenerator(cfg, channels?.in ?? cfg.input_nc, channels?.out ?? cfg.output_nc, normalInitSource(seed, cfg.init_gain), undefined, []);
  }

  /**
   * NHWC [-1, 1] in, NHWC [-1, 1] out, same spatial size. Pure TF ops (no reads back to JS), so it can run under
   * tf.tidy / tf.grad; the caller owns the result.
   */
  forward(x: tf.Tensor4D, opts: ForwardOptions = {}): tf.Tensor4D {
    this.checkInput(x);
    return tf.tidy(() => this.net.apply(x, opts.training ?? false));
  }

  checkInput(x: tf.Tensor): void {
    if (x.rank !== 4) throw new Error(`expected an NHWC rank-4 tensor, got shape [${x.shape}]`);
    const [, h, w, c] = x.shape;
    if (c !== this.inChannels) throw new Error(`expected ${this.inChannels} input channels (NHWC), got shape [${x.shape}]`);
    for (const [dim, v] of [["height", h], ["width", w]] as const)
      if (v % this.sizeMultiple !== 0 || v < this.minSize)
        throw new Error(`${this.config.netG}: ${dim} ${v} must be a multiple of ${this.sizeMultiple} and at least ${this.minSize}`);
  }
}

function buildNet(store: ParamStore, cfg: CycleGANConfig, inNc: number, outNc: number, instanceNorms: string[]) {
  switch (cfg.netG) {
    case "resnet_6blocks":
      return new ResnetGenerator(store, cfg, inNc, outNc, 6, instanceNorms);
    case "resnet_9blocks":
      return new ResnetGenerator(store, cfg, inNc, outNc, 9, instanceNorms);
    case "unet_128":
      return new UnetGenerator(store, cfg, inNc, outNc, 7, instanceNorms);
    case "unet_256":
      return new UnetGenerator(store, cfg, inNc, outNc, 8, instanceNorms);
  }
}

function stripPrefix(sd: StateDict, prefix: string): StateDict {
  if (sd.size === 0 || ![...sd.keys()].every((k) => k.startsWith(prefix))) return sd;
  return new Map([...sd].map(([k, v]) => [k.slice(prefix.length), v]));
}
