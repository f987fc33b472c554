/**
 * One CycleGAN/pix2pix generator (either upstream class) with its parameters.
 *
 * Tensors are NHWC (batch, height, width, channels) float32 with values in [-1, 1], in and out; convert from the
 * official NCHW with `tf.transpose(x, [0, 2, 3, 1])`. Height and width must be multiples of `sizeMultiple` and at
 * least `minSize` (see `sizeConstraints`).
 */
import * as tf from "@tensorflow/tfjs-core";
import type { StateDict } from "../../checkpoints/tensor.ts";
import { normalInitSource, ParamModule, ParamStore, loadStrict, type ParamSource } from "../common/param-store.ts";
import { allPasses, GraphOps } from "../ops/graph.ts";
import type { GraphBuilder } from "../../onnx/graph.ts";
import { spaceToDepthConv } from "../../onnx/passes.ts";
import type { Ops } from "../ops/ops.ts";
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
  private readonly net: ResnetGenerator<tf.Tensor4D, tf.Variable> | UnetGenerator<tf.Tensor4D, tf.Variable>;

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
    const instanceNorms: string[] = [];
    const [inNc, outNc] = [channels?.in ?? cfg.input_nc, channels?.out ?? cfg.output_nc];
    return loadStrict(dict, file, (source, counter) => new CycleGANGenerator(cfg, inNc, outNc, source, counter, instanceNorms), () => staleInstanceNormKey(instanceNorms));
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

/** The one assembly of a generator, for either backend. */
function buildNet<T, P>(ops: Ops<T, P>, cfg: CycleGANConfig, inNc: number, outNc: number, instanceNorms: string[]) {
  switch (cfg.netG) {
    case "resnet_6blocks":
      return new ResnetGenerator(ops, cfg, inNc, outNc, 6, instanceNorms);
    case "resnet_9blocks":
      return new ResnetGenerator(ops, cfg, inNc, outNc, 9, instanceNorms);
    case "unet_128":
      return new UnetGenerator(ops, cfg, inNc, outNc, 7, instanceNorms);
    case "unet_256":
      return new UnetGenerator(ops, cfg, inNc, outNc, 8, instanceNorms);
  }
}

export interface CycleGANExportOptions {
  /** Channels in/out (G_B swaps the config's input_nc and output_nc); default G_A's. */
  channels?: { in: number; out: number };
  file?: string;
}

/**
 * The generator's eval forward as ONNX model bytes: input "x" NHWC [N, H, W, in] in [-1, 1] → output "y" NHWC
 * [N, H, W, out], dynamic N, H and W (multiples of the network's size multiple). The same state dict rules as
 * `fromStateDict` (strict, stale InstanceNorm stats ignored, DataParallel prefix stripped).
 */
export function exportCycleGAN(config: unknown, sd: StateDict, opts: CycleGANExportOptions = {}): Uint8Array {
  const cfg = parseCycleGANConfig(config);
  const inNc = opts.channels?.in ?? cfg.input_nc;
  const outNc = opts.channels?.out ?? cfg.output_nc;
  const ops = new GraphOps(`cyclegan_${cfg.netG}`, stripPrefix(sd, "module."), opts.file);
  const instanceNorms: string[] = [];
  const net = buildNet(ops, cfg, inNc, outNc, instanceNorms);
  const y = net.apply(ops.input("x", [null, null, null, inNc]), false);
  // The ResNet's last conv (tanh of it is the output) writes 3 channels at the input's size, a multiple of
  // sizeMultiple (4), so 2x2 blocks tile it: computed as space-to-depth it runs 12 output channels at a quarter
  // of the resolution (onnx/passes.ts, spaceToDepthConv).
  const head = net instanceof ResnetGenerator ? ops.g.producer(ops.g.producer(y.id)!.inputs[0]) : undefined;
  const passes = (g: GraphBuilder) => {
    allPasses(g);
    if (head) spaceToDepthConv(g, head, 2);
  };
  return ops.finish({ y }, JSON.stringify({ family: "cyclegan", netG: cfg.netG }), { ignore: staleInstanceNormKey(instanceNorms), passes });
}

function stripPrefix(sd: StateDict, prefix: string): StateDict {
  if (sd.size === 0 || ![...sd.keys()].every((k) => k.startsWith(prefix))) return sd;
  return new Map([...sd].map(([k, v]) => [k.slice(prefix.length), v]));
}
