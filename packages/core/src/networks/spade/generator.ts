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
import { resizeNearestLegacy, upsampleNearest2x } from "../common/nearest-resize.ts";
import { ParamModule, ParamStore, stateDictSource } from "../common/param-store.ts";
import { canonicalizeSpectral, type SpectralConv2d } from "../common/spectral-norm.ts";
import { parseSpadeConfig, type SpadeConfig } from "./config.ts";
import { spadeInitSource } from "./init.ts";
import { Linear, lrelu, SegContext, SpadeResnetBlock, type BatchNormHook } from "./layers.ts";

/** Nearest x2 as a broadcast of each pixel over a 2x2 block: differentiable on every backend. */
function upsampleNearest2xBroadcast(x: tf.Tensor4D): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  return tf.reshape(tf.mul(tf.reshape(x, [n, h, 1, w, 1, c]), tf.ones([1, 1, 2, 1, 2, 1])), [n, 2 * h, 2 * w, c]);
}

export interface BlockSpec {
  name: string;
  fin: number;
  fout: number;
}

/** The SPADEResnetBlocks in upstream registration order. */
export function generatorBlocks(config: SpadeConfig): BlockSpec[] {
  const nf = config.ngf;
  const blocks: BlockSpec[] = [
    { name: "head_0", fin: 16 * nf, fout: 16 * nf },
    { name: "G_middle_0", fin: 16 * nf, fout: 16 * nf },
    { name: "G_middle_1", fin: 16 * nf, fout: 16 * nf },
    { name: "up_0", fin: 16 * nf, fout: 8 * nf },
    { name: "up_1", fin: 8 * nf, fout: 4 * nf },
    { name: "up_2", fin: 4 * nf, fout: 2 * nf },
    { name: "up_3", fin: 2 * nf, fout: nf },
  ];
  if (config.num_upsampling_layers === "most") blocks.push({ name: "up_4", fin: nf, fout: Math.floor(nf / 2) });
  return blocks;
}

/** Names (`<block>.conv_k`) of the convs that carry spectral norm under this config. */
export function generatorSpectralLayers(config: SpadeConfig): string[] {
  if (!config.spade.spectral) return [];
  return generatorBlocks(config).flatMap((b) => [`${b.name}.conv_0`, `${b.name}.conv_1`, ...(b.fin !== b.fout ? [`${b.name}.conv_s`] : [])]);
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

export class SpadeGenerator extends ParamModule {
  readonly fc: Conv2d | Linear;
  readonly blocks: SpadeResnetBlock[];
  readonly conv_img: Conv2d;
  private readonly finalNc: number;

  private constructor(
    readonly config: SpadeConfig,
    store: ParamStore,
  ) {
    super(store);
    const c = config;
    const nf = c.ngf;
    this.fc = c.use_vae
      ? new Linear(store, "fc", c.z_dim, 16 * nf * c.sh * c.sw)
      : new Conv2d(store, "fc", c.semantic_nc, 16 * nf, 3, { padding: 1 });
    this.blocks = generatorBlocks(c).map((b) => new SpadeResnetBlock(store, b.name, b.fin, b.fout, c));
    this.finalNc = this.blocks[this.blocks.length - 1].conv_1.outChannels;
    this.conv_img = new Conv2d(store, "conv_img", this.finalNc, 3, 3, { padding: 1 });
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
    const src = stateDictSource(canonicalizeSpectral(sd, generatorSpectralLayers(c), file), file);
    const g = SpadeGenerator.build(c, new ParamStore(src.source, (n) => src.counter(n)));
    try {
      src.finish();
    } catch (e) {
      g.dispose();
      throw e;
    }
    return g;
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
    const seg = new SegContext(semantics, opts.training ?? false, opts.onBatchNorm);
    // Same values either way; tfjs-cpu's ResizeNearestNeighborGrad is wrong, so training takes the broadcast form.
    const up = opts.training ? upsampleNearest2xBroadcast : upsampleNearest2x;
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
          x = this.fc.apply(resizeNearestLegacy(semantics, c.sh, c.sw));
        }
        const [head, middle0, middle1, ...ups] = this.blocks;
        x = head.apply(x, seg);
        x = up(x);
        x = middle0.apply(x, seg);
        if (c.num_upsampling_layers !== "normal") x = up(x);
        x = middle1.apply(x, seg);
        for (const b of ups) x = b.apply(up(x), seg);
        return tf.tanh(this.conv_img.apply(lrelu(x)));
      });
    } finally {
      seg.dispose();
    }
  }
}
