/**
 * Mapping network z (+ class c) → w. Parameters: `mapping.embed.*`, `mapping.fc{i}.*`, `mapping.w_avg`.
 * Broadcasting w to num_ws and the truncation trick towards `w_avg` are a lerp on the result, done by the callers
 * (the TF.js generator, the ONNX engine on the host), so the graph needs no variant per psi and cutoff.
 */
import type { Activation } from "../common/bias_act.ts";
import { assertShape, type Ops } from "../ops/ops.ts";
import { FullyConnectedLayer } from "./layers.ts";

/** The mapping network's official prefix and parameter names, spelled only here. */
export const MAPPING = "mapping";
const W_AVG = "w_avg";
const EMBED = "embed";
const FC = "fc";
const fcName = (i: number) => `${FC}${i}`;
const FC_WEIGHT = new RegExp(`^${MAPPING}\\.${FC}(\\d+)\\.weight$`);

/** State-dict keys of the generator's mapping network, for callers that read or update them directly. */
export const mappingKeys = {
  /** The tracked average w: truncation's centre, updated by EMA in training. */
  wAvg: `${MAPPING}.${W_AVG}`,
  embedWeight: `${MAPPING}.${EMBED}.weight`,
  fcWeight: (i: number) => `${MAPPING}.${fcName(i)}.weight`,
  /** i of a `mapping.fc{i}.weight` key, or undefined for any other key. */
  fcIndex(key: string): number | undefined {
    const m = FC_WEIGHT.exec(key);
    return m ? Number(m[1]) : undefined;
  },
  /** Whether a key belongs to the mapping network. */
  owns: (key: string): boolean => key.startsWith(`${MAPPING}.`),
  /** Whether a parameter is the w_avg buffer of any mapping network (the generator's or the discriminator's). */
  isWAvg: (key: string): boolean => key === W_AVG || key.endsWith(`.${W_AVG}`),
};

export interface MappingOptions {
  z_dim: number;
  c_dim: number;
  w_dim: number;
  num_layers: number;
  embed_features: number | null;
  layer_features: number | null;
  activation: Activation;
  lr_multiplier: number;
  w_avg_beta: number | null;
}

export interface TruncationOptions {
  /** 1 = no truncation; 0 = every w is w_avg. */
  truncation_psi?: number;
  /** Truncate only the first `truncation_cutoff` ws (coarse styles); null = all. */
  truncation_cutoff?: number | null;
}

export class MappingNetwork<T, P> {
  /** The tracked average w (a buffer a trainer updates by EMA); absent when w_avg_beta is null. */
  readonly wAvg?: P;
  readonly embed?: FullyConnectedLayer<T, P>;
  readonly fcs: FullyConnectedLayer<T, P>[] = [];

  constructor(
    private readonly ops: Ops<T, P>,
    readonly prefix: string,
    readonly opts: MappingOptions,
  ) {
    const embedFeatures = opts.c_dim === 0 ? 0 : (opts.embed_features ?? opts.w_dim);
    const layerFeatures = opts.layer_features ?? opts.w_dim;
    const features = [opts.z_dim + embedFeatures, ...Array<number>(opts.num_layers - 1).fill(layerFeatures), opts.w_dim];
    if (opts.w_avg_beta != null) this.wAvg = ops.param(`${prefix}.${W_AVG}`, [opts.w_dim], "norm.running_mean", { trainable: false });
    if (opts.c_dim > 0) this.embed = new FullyConnectedLayer(ops, `${prefix}.${EMBED}`, opts.c_dim, embedFeatures);
    for (let i = 0; i < opts.num_layers; i++)
      this.fcs.push(
        new FullyConnectedLayer(ops, `${prefix}.${fcName(i)}`, features[i], features[i + 1], { activation: opts.activation, lrMultiplier: opts.lr_multiplier }),
      );
  }

  /** z [N, 1, 1, z_dim] (null when z_dim is 0), c [N, 1, 1, c_dim] (null when c_dim is 0) → w [N, 1, 1, w_dim]. */
  apply(z: T | null, c: T | null): T {
    const { ops } = this;
    const { z_dim, c_dim } = this.opts;
    const parts: T[] = [];
    if (z_dim > 0) {
      if (!z) throw new Error("mapping: z is required (z_dim > 0)");
      assertShape(ops, z, [null, 1, 1, z_dim], `${this.prefix} (z)`);
      parts.push(ops.normalize2ndMoment(z, 1e-8));
    }
    if (this.embed) {
      if (!c) throw new Error(`mapping: this generator is class-conditional (c_dim ${c_dim}); pass c`);
      // z and embed(c) are normalised separately so neither dominates the concatenation.
      parts.push(ops.normalize2ndMoment(this.embed.apply(c), 1e-8));
    }
    let x = parts.length === 1 ? parts[0] : ops.concat(parts);
    for (const fc of this.fcs) x = fc.apply(x);
    return x;
  }
}
