/**
 * SPADE `ConvEncoder` (use_vae): a style image → (mu, logvar) → z = mu + exp(logvar / 2) * eps.
 *
 * Following upstream: the image (NHWC, [-1, 1]) is resized bilinearly (align_corners=False) to 256x256, then
 * stride-2 3x3 convs (padding 1) with ndf = opt.ngf (upstream reuses ngf; 64 by default) and widths ndf, 2, 4, 8,
 * 8, 8 x ndf, the sixth only when crop_size >= 256, each followed by leaky_relu 0.2; then fc_mu / fc_var over the
 * flattened ndf*8 x 4 x 4 map (flattened in NCHW order, as torch's view does).
 *
 * norm_E (default 'spectralinstance') wraps each conv: 'spectral' adds spectral norm; any other norm turns the
 * layer into nn.Sequential(conv without bias, norm), so the names are `layerK.0.weight_orig` and, for batch
 * norms (affine), `layerK.1.weight|bias|running_*`; with no norm the conv keeps its bias under `layerK.*`.
 *
 * Upstream's fc_mu expects 4x4, which only six convs give, so a crop_size < 256 encoder cannot work upstream
 * either: we reject it. The fc width is z_dim (upstream hard-codes 256, the default z_dim).
 */
import * as tf from "@tensorflow/tfjs-core";
import type { StateDict } from "../../checkpoints/tensor.ts";
import { Conv2d } from "../common/conv.ts";
import { BatchNorm2d, InstanceNorm2d, type NormLayer } from "../common/norm.ts";
import { ParamModule, ParamStore, loadStrict } from "../common/param-store.ts";
import { canonicalizeSpectral, SpectralConv2d } from "../common/spectral-norm.ts";
import { parseSpadeConfig, type SpadeConfig } from "./config.ts";
import { spadeInitSource } from "./init.ts";
import { Linear, type AnyConv } from "./layers.ts";

const ENCODER_INPUT = 256;
const S0 = 4;

interface EncoderLayer {
  conv: AnyConv;
  norm?: NormLayer;
}

function parseNormE(normE: string): { spectral: boolean; sub: "instance" | "batch" | "syncbatch" | "none" } {
  const spectral = normE.startsWith("spectral");
  const rest = spectral ? normE.slice("spectral".length) : normE;
  return { spectral, sub: (rest === "" ? "none" : rest) as "instance" | "batch" | "syncbatch" | "none" };
}

export function encoderLayerPrefixes(config: SpadeConfig): string[] {
  const { sub } = parseNormE(config.norm_E);
  const n = config.crop_size >= 256 ? 6 : 5;
  return Array.from({ length: n }, (_, i) => (sub === "none" ? `layer${i + 1}` : `layer${i + 1}.0`));
}

export class SpadeEncoder extends ParamModule {
  readonly layers: EncoderLayer[] = [];
  readonly fc_mu: Linear;
  readonly fc_var: Linear;

  private constructor(
    readonly config: SpadeConfig,
    store: ParamStore,
  ) {
    super(store);
    const ndf = config.ngf;
    const { spectral, sub } = parseNormE(config.norm_E);
    const widths = [3, ndf, 2 * ndf, 4 * ndf, 8 * ndf, 8 * ndf, 8 * ndf];
    encoderLayerPrefixes(config).forEach((name, i) => {
      const opts = { stride: 2, padding: 1, bias: sub === "none" };
      const conv = spectral ? new SpectralConv2d(store, name, widths[i], widths[i + 1], 3, opts) : new Conv2d(store, name, widths[i], widths[i + 1], 3, opts);
      const normName = `layer${i + 1}.1`;
      const norm =
        sub === "none"
          ? undefined
          : sub === "instance"
            ? new InstanceNorm2d(store, normName, widths[i + 1], { affine: false })
            : new BatchNorm2d(store, normName, widths[i + 1], { affine: true });
      this.layers.push({ conv, norm });
    });
    this.fc_mu = new Linear(store, "fc_mu", ndf * 8 * S0 * S0, config.z_dim);
    this.fc_var = new Linear(store, "fc_var", ndf * 8 * S0 * S0, config.z_dim);
  }

  private static build(config: unknown, source: (c: SpadeConfig) => ParamStore): SpadeEncoder {
    const c = parseSpadeConfig(config);
    if (c.crop_size < 256) throw new Error(`the SPADE ConvEncoder needs crop_size >= 256 (fc_mu is built for a 4x4 map), got ${c.crop_size}`);
    const store = source(c);
    try {
      return new SpadeEncoder(c, store);
    } catch (e) {
      store.dispose();
      throw e;
    }
  }

  /** Loads upstream's netE state dict (latest_net_E.pth), strictly. */
  static fromStateDict(config: unknown, sd: StateDict, file = "state_dict"): SpadeEncoder {
    const c = parseSpadeConfig(config);
    const dict = canonicalizeSpectral(sd, parseNormE(c.norm_E).spectral ? encoderLayerPrefixes(c) : [], file);
    return loadStrict(dict, file, (source, counter) => SpadeEncoder.build(c, () => new ParamStore(source, counter)));
  }

  static randomInit(config: unknown, seed: number): SpadeEncoder {
    const e = SpadeEncoder.build(config, (c) => new ParamStore(spadeInitSource(seed, c.init_type, c.init_variance)));
    for (const l of e.layers) if (l.conv instanceof SpectralConv2d) l.conv.powerIteration(5);
    return e;
  }

  /** Style image NHWC [N, H, W, 3] in [-1, 1] → { mu, logvar }, each [N, z_dim]. */
  encode(image: tf.Tensor4D, training = false): { mu: tf.Tensor2D; logvar: tf.Tensor2D } {
    if (image.rank !== 4 || image.shape[3] !== 3) throw new Error(`style image must be NHWC with 3 channels, got [${image.shape}]`);
    return tf.tidy(() => {
      let x: tf.Tensor4D = image;
      if (x.shape[1] !== ENCODER_INPUT || x.shape[2] !== ENCODER_INPUT)
        x = tf.image.resizeBilinear(x, [ENCODER_INPUT, ENCODER_INPUT], false, true);
      for (const l of this.layers) {
        x = l.conv.apply(x);
        if (l.norm) x = l.norm.apply(x, training);
        x = tf.leakyRelu(x, 0.2);
      }
      const n = x.shape[0];
      const flat = tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [n, -1]) as tf.Tensor2D;
      const mu = this.fc_mu.apply(flat);
      const logvar = this.fc_var.apply(flat);
      return { mu, logvar };
    });
  }

  /** z = mu + exp(0.5 * logvar) * eps with eps ~ N(0, 1) drawn from `seed` (deterministic, backend-independent). */
  static reparameterize(mu: tf.Tensor2D, logvar: tf.Tensor2D, seed: number): tf.Tensor2D {
    return tf.tidy(() => {
      const eps = tf.randomNormal(mu.shape, 0, 1, "float32", seed);
      return tf.add(mu, tf.mul(eps, tf.exp(tf.mul(logvar, 0.5)))) as tf.Tensor2D;
    });
  }

  /** encode + reparameterize: the z upstream feeds the generator for a style image. */
  styleZ(image: tf.Tensor4D, seed: number): tf.Tensor2D {
    const { mu, logvar } = this.encode(image);
    try {
      return SpadeEncoder.reparameterize(mu, logvar, seed);
    } finally {
      mu.dispose();
      logvar.dispose();
    }
  }
}
