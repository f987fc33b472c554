/**
 * Mapping network z (+ class c) → w, broadcast to one w per synthesis input (num_ws), with the truncation
 * trick towards the tracked average `w_avg`. Parameters: `mapping.fc{i}.*`, `mapping.embed.*`, `mapping.w_avg`.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Activation } from "../common/bias_act.ts";
import type { ParamStore } from "../common/param-store.ts";
import { FullyConnectedLayer, normalize2ndMoment } from "./layers.ts";

export interface MappingOptions {
  z_dim: number;
  c_dim: number;
  w_dim: number;
  num_ws: number;
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

export class MappingNetwork {
  readonly wAvg: tf.Variable | null;
  readonly embed: FullyConnectedLayer | null;
  readonly fcs: FullyConnectedLayer[] = [];

  constructor(
    store: ParamStore,
    readonly prefix: string,
    readonly opts: MappingOptions,
  ) {
    const embedFeatures = opts.c_dim === 0 ? 0 : (opts.embed_features ?? opts.w_dim);
    const layerFeatures = opts.layer_features ?? opts.w_dim;
    const features = [opts.z_dim + embedFeatures, ...Array<number>(opts.num_layers - 1).fill(layerFeatures), opts.w_dim];
    // w_avg is a buffer (an EMA a trainer updates with assign), so it is a non-trainable variable.
    this.wAvg = opts.w_avg_beta != null ? store.add(`${prefix}.w_avg`, [opts.w_dim], "norm.running_mean", { trainable: false }) : null;
    this.embed = opts.c_dim > 0 ? new FullyConnectedLayer(store, `${prefix}.embed`, opts.c_dim, embedFeatures) : null;
    for (let i = 0; i < opts.num_layers; i++)
      this.fcs.push(
        new FullyConnectedLayer(store, `${prefix}.fc${i}`, features[i], features[i + 1], {
          activation: opts.activation,
          lrMultiplier: opts.lr_multiplier,
        }),
      );
  }

  /** z: [N, z_dim]; c: [N, c_dim] (ignored when c_dim = 0). Returns ws [N, num_ws, w_dim]. */
  apply(z: tf.Tensor2D | null, c: tf.Tensor2D | null, trunc: TruncationOptions = {}): tf.Tensor3D {
    const { z_dim, c_dim, num_ws, w_dim } = this.opts;
    return tf.tidy(() => {
      const parts: tf.Tensor2D[] = [];
      if (z_dim > 0) {
        if (!z) throw new Error("mapping: z is required (z_dim > 0)");
        if (z.shape[1] !== z_dim) throw new Error(`mapping: z has ${z.shape[1]} features, z_dim is ${z_dim}`);
        parts.push(normalize2ndMoment(tf.cast(z, "float32")));
      }
      if (c_dim > 0) {
        if (!c) throw new Error(`mapping: this generator is class-conditional (c_dim ${c_dim}); pass c`);
        if (c.shape[1] !== c_dim) throw new Error(`mapping: c has ${c.shape[1]} features, c_dim is ${c_dim}`);
        // z and embed(c) are normalised separately so neither dominates the concatenation.
        parts.push(normalize2ndMoment(this.embed!.apply(tf.cast(c, "float32"))));
      }
      let x = parts.length === 1 ? parts[0] : (tf.concat(parts, 1) as tf.Tensor2D);
      for (const fc of this.fcs) x = fc.apply(x);
      const n = x.shape[0];
      const ws = tf.tile(tf.reshape(x, [n, 1, w_dim]), [1, num_ws, 1]) as tf.Tensor3D;

      const psi = trunc.truncation_psi ?? 1;
      if (psi === 1) return ws;
      if (!this.wAvg) throw new Error("mapping: truncation needs w_avg, but this network has none (w_avg_beta = null)");
      const cutoff = Math.max(0, Math.min(trunc.truncation_cutoff ?? num_ws, num_ws));
      const avg = tf.reshape(this.wAvg, [1, 1, w_dim]);
      const lerp = (v: tf.Tensor3D) =>
        // Same two-sided formula as torch.lerp, so psi near 1 keeps w's precision rather than w_avg's.
        psi < 0.5 ? tf.add(avg, tf.mul(tf.sub(v, avg), psi)) : tf.sub(v, tf.mul(tf.sub(v, avg), 1 - psi));
      if (cutoff === num_ws) return lerp(ws) as tf.Tensor3D;
      if (cutoff === 0) return ws;
      const head = tf.slice(ws, [0, 0, 0], [-1, cutoff, -1]) as tf.Tensor3D;
      const tail = tf.slice(ws, [0, cutoff, 0], [-1, -1, -1]);
      return tf.concat([lerp(head), tail], 1) as tf.Tensor3D;
    });
  }
}
