/**
 * NVlabs SPADE `SPADEGenerator` in TF.js.
 *
 * Layout: every public tensor is NHWC (semantics [N, H, W, semantic_nc], output [N, H, W, 3] in [-1, 1]);
 * checkpoints stay in the official NCHW/OIHW layout and are converted on load and in `stateDict()`.
 * Parameters are tf.Variables keyed by their official state_dict names (see ParamStore), so a trainer can hand
 * `trainableVariables()` to an optimiser and write the result back with `stateDict()`.
 *
 * Architecture (nf = ngf):
 *   fc: conv3x3(semantics resized to sh x sw) -> 16nf, or for use_vae linear(z) -> 16nf*sh*sw
 *   head_0 (16nf) | up | G_middle_0 (16nf) | [up, for 'more'/'most'] | G_middle_1 (16nf)
 *   | up, up_0 (16nf->8nf) | up, up_1 (->4nf) | up, up_2 (->2nf) | up, up_3 (->nf) | ['most': up, up_4 (->nf/2)]
 *   | leaky_relu 0.2 | conv_img (->3) | tanh
 * That is 5, 6 or 7 nearest x2 upsamplings, which is why sw = crop_size // 2**num_up.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { StateDict } from "../../checkpoints/tensor.ts";
import { Conv2d } from "../common/conv.ts";
import { ParamModule, ParamStore, loadStrict } from "../common/param-store.ts";
import { canonicalizeSpectral, isResolvedOnly, type SpectralConv2d } from "../common/spectral-norm.ts";
import { GraphOps } from "../ops/graph.ts";
import type { Ops } from "../ops/ops.ts";
import { parseSpadeConfig, type SpadeConfig } from "./config.ts";
import { spadeInitSource } from "./init.ts";
import { Linear, resnetBlockKeys, SegContext, SpadeResnetBlock, type BatchNormHook } from "./layers.ts";

/**
 * Official names of the generator's own layers and blocks, spelled only here (config inference and the parity
 * adapter read a checkpoint through `generatorKeys`).
 */
const FC = "fc";
const CONV_IMG = "conv_img";
const HEAD = "head_0";
const MIDDLE = ["G_middle_0", "G_middle_1"] as const;
const upName = (i: number) => `up_${i}`;
/** The fifth up block, which only num_upsampling_layers "most" builds. */
const EXTRA_UP = upName(4);

export const generatorKeys = {
  /** conv3x3 [16nf, semantic_nc, 3, 3], or with use_vae a Linear [16nf·sh·sw, z_dim]. */
  fcWeight: `${FC}.weight`,
  convImgWeight: `${CONV_IMG}.weight`,
  /** The first SPADEResnetBlock, whose convs and norms fix ngf, the SPADE kernel and the norm type. */
  head: HEAD,
  /** Whether a key belongs to a block only upsampling "most" builds. */
  isExtraUp: (key: string): boolean => key.startsWith(`${EXTRA_UP}.`),
  /** Whether a state dict's keys look like a SPADE generator's (a head or middle block, and conv_img). */
  matches: (keys: readonly string[]): boolean =>
    keys.some((k) => k.startsWith(`${HEAD}.`) || k.startsWith(`${MIDDLE[0]}.`)) && keys.some((k) => k.startsWith(`${CONV_IMG}.`)),
};

export interface BlockSpec {
  name: string;
  fin: number;
  fout: number;
}

/** The SPADEResnetBlocks in upstream registration order. */
export function generatorBlocks(config: SpadeConfig): BlockSpec[] {
  const nf = config.ngf;
  const blocks: BlockSpec[] = [
    { name: HEAD, fin: 16 * nf, fout: 16 * nf },
    { name: MIDDLE[0], fin: 16 * nf, fout: 16 * nf },
    { name: MIDDLE[1], fin: 16 * nf, fout: 16 * nf },
    { name: upName(0), fin: 16 * nf, fout: 8 * nf },
    { name: upName(1), fin: 8 * nf, fout: 4 * nf },
    { name: upName(2), fin: 4 * nf, fout: 2 * nf },
    { name: upName(3), fin: 2 * nf, fout: nf },
  ];
  if (config.num_upsampling_layers === "most") blocks.push({ name: EXTRA_UP, fin: nf, fout: Math.floor(nf / 2) });
  return blocks;
}

/** Names (`<block>.conv_k`) of the convs that carry spectral norm under this config. */
export function generatorSpectralLayers(config: SpadeConfig): string[] {
  if (!config.spade.spectral) return [];
  return generatorBlocks(config).flatMap((b) => resnetBlockKeys.convs(b.name, b.fin, b.fout));
}

/**
 * Whether `sd` holds only the resolved spectral convs (a `weights_resolved` file) rather than a whole generator;
 * such a file has to be overlaid on the full state dict first (`overlayResolved`).
 */
export function holdsOnlyResolvedSpectral(config: SpadeConfig, sd: StateDict): boolean {
  return !sd.has(generatorKeys.convImgWeight) && generatorSpectralLayers(config).some((p) => isResolvedOnly(sd, p));
}

export interface SpadeForwardOptions {
  /** use_vae only: latent [N, z_dim]. Without it z ~ N(0, 1) is drawn from `seed`. */
  z?: tf.Tensor2D;
  /** Seed for z when use_vae and no z is given (default 0). Not torch's RNG stream: same seed, same z here only. */
  seed?: number;
  /**
   * Training mode: param-free BatchNorms use batch statistics (running buffers are not updated). Spectral norm
   * uses the current u/v either way; call `powerIteration()` before a training forward to match torch.
   */
  training?: boolean;
  /**
   * Training only: called with each param-free BatchNorm and the batch it normalises, so a trainer can update the
   * running statistics as torch's train mode does (the layer itself leaves them alone).
   */
  onBatchNorm?: BatchNormHook;
}

/**
 * The one assembly of the generator, for either backend. With use_vae the fc is a Linear on z, which only the
 * eager side builds (the wrapper feeds `apply` its output).
 */
class SpadeNet<T, P> {
  readonly fc: Conv2d<T, P> | Linear;
  readonly blocks: SpadeResnetBlock<T, P>[];
  readonly conv_img: Conv2d<T, P>;

  constructor(
    private readonly ops: Ops<T, P>,
    readonly config: SpadeConfig,
  ) {
    const c = config;
    const nf = c.ngf;
    if (c.use_vae && ops.mode !== "eager") throw new Error("SPADE with use_vae (a style encoder and a latent input) has no graph form; serve it with the TF.js engine");
    this.fc = c.use_vae
      ? new Linear(ops as unknown as ParamStore, FC, c.z_dim, 16 * nf * c.sh * c.sw)
      : new Conv2d(ops, FC, c.semantic_nc, 16 * nf, 3, { padding: 1 });
    this.blocks = generatorBlocks(c).map((b) => new SpadeResnetBlock(ops, b.name, b.fin, b.fout, c));
    const finalNc = this.blocks[this.blocks.length - 1].outChannels;
    this.conv_img = new Conv2d(ops, CONV_IMG, finalNc, 3, 3, { padding: 1 });
  }

  /** The fc conv on the segmap at (sh, sw) (not use_vae). */
  stem(seg: SegContext<T>): T {
    return (this.fc as Conv2d<T, P>).apply(seg.at(this.config.sh, this.config.sw));
  }

  /** From the fc output [N, sh, sw, 16nf] to the image. */
  apply(x: T, seg: SegContext<T>): T {
    const o = this.ops;
    const up = (t: T) => o.upsampleNearest2x(t, seg.training);
    const [head, middle0, middle1, ...ups] = this.blocks;
    x = head.apply(x, seg);
    x = up(x);
    x = middle0.apply(x, seg);
    if (this.config.num_upsampling_layers !== "normal") x = up(x);
    x = middle1.apply(x, seg);
    for (const b of ups) x = b.apply(up(x), seg);
    return o.tanh(this.conv_img.apply(o.leakyRelu(x, 0.2)));
  }
}

export class SpadeGenerator extends ParamModule {
  readonly fc: Conv2d | Linear;
  readonly blocks: SpadeResnetBlock[];
  readonly conv_img: Conv2d;
  private readonly net: SpadeNet<tf.Tensor4D, tf.Variable>;

  private constructor(
    readonly config: SpadeConfig,
    store: ParamStore,
  ) {
    super(store);
    this.net = new SpadeNet(store, config);
    ({ fc: this.fc, blocks: this.blocks, conv_img: this.conv_img } = this.net);
  }

  private static build(config: SpadeConfig, store: ParamStore): SpadeGenerator {
    try {
      return new SpadeGenerator(config, store);
    } catch (e) {
      store.dispose();
      throw e;
    }
  }

  /**
   * Loads an official state dict (strict: missing or unexpected keys throw CheckpointError). Spectral layers may
   * be in any layout `readSpectralState` accepts (torch >= 1.0, torch 0.4, or resolved `.weight` [+ `.sigma`]).
   */
  static fromStateDict(config: unknown, sd: StateDict, file = "state_dict"): SpadeGenerator {
    const c = parseSpadeConfig(config);
    const dict = canonicalizeSpectral(sd, generatorSpectralLayers(c), file);
    return loadStrict(dict, file, (source, counter) => SpadeGenerator.build(c, new ParamStore(source, counter)));
  }

  /**
   * Fresh weights from `seed` (see init.ts). Spectral u/v then get a few power iterations, as a torch model has
   * after its first training steps; with raw random u/v, eval-mode sigma can be near zero and blow activations up.
   */
  static randomInit(config: unknown, seed: number): SpadeGenerator {
    const c = parseSpadeConfig(config);
    const g = SpadeGenerator.build(c, new ParamStore(spadeInitSource(seed, c.init_type, c.init_variance)));
    g.powerIteration(5);
    return g;
  }

  spectralConvs(): SpectralConv2d[] {
    return this.blocks.flatMap((b) => b.spectralConvs());
  }

  /** Runs `steps` power-iteration steps on every spectral conv (torch does one per training forward). */
  powerIteration(steps = 1): void {
    for (const c of this.spectralConvs()) c.powerIteration(steps);
  }

  /** semantics NHWC [N, H, W, semantic_nc] (any H, W: each layer resizes it) → image NHWC [N, oh, ow, 3]. */
  forward(semantics: tf.Tensor4D, opts: SpadeForwardOptions = {}): tf.Tensor4D {
    const c = this.config;
    if (semantics.rank !== 4 || semantics.shape[3] !== c.semantic_nc)
      throw new Error(`SPADE expects NHWC semantics with ${c.semantic_nc} channels, got [${semantics.shape}]`);
    const n = semantics.shape[0];
    const seg = new SegContext(this.store, semantics, opts.training ?? false, opts.onBatchNorm);
    try {
      return tf.tidy(() => {
        let x: tf.Tensor4D;
        if (this.fc instanceof Linear) {
          const z = opts.z ?? tf.randomNormal([n, c.z_dim], 0, 1, "float32", opts.seed ?? 0);
          if (z.rank !== 2 || z.shape[0] !== n || z.shape[1] !== c.z_dim)
            throw new Error(`z must be [${n}, ${c.z_dim}], got [${z.shape}]`);
          // Upstream views the linear output as NCHW [N, 16nf, sh, sw].
          x = tf.transpose(tf.reshape(this.fc.apply(z), [n, 16 * c.ngf, c.sh, c.sw]), [0, 2, 3, 1]);
        } else {
          x = this.net.stem(seg);
        }
        return this.net.apply(x, seg);
      });
    } finally {
      seg.dispose();
    }
  }
}

/**
 * The generator's eval forward as ONNX model bytes: input "semantics" NHWC [N, H, W, semantic_nc] at the
 * config's output size (one-hot classes, then the instance-edge channel: what `buildSemantics` makes) → output
 * "y" NHWC [N, H, W, 3] in [-1, 1]. Spectral layers may be in any layout `fromStateDict` accepts; a style
 * encoder's `netE.` keys are ignored (use_vae has no graph form).
 */
export function exportSpade(config: unknown, sd: StateDict, file?: string): Uint8Array {
  const c = parseSpadeConfig(config);
  const dict = canonicalizeSpectral(new Map([...sd].filter(([k]) => !k.startsWith("netE."))), generatorSpectralLayers(c), file);
  const ops = new GraphOps("spade_generator", dict, file);
  const net = new SpadeNet(ops, c);
  const [H, W] = c.output_hw;
  const seg = new SegContext(ops, ops.input("semantics", [null, H, W, c.semantic_nc]), false);
  const y = net.apply(net.stem(seg), seg);
  return ops.finish({ y }, JSON.stringify({ family: "spade" }));
}
