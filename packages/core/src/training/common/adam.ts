/**
 * torch.optim.Adam (no weight decay, no amsgrad) over named tf.Variables, with its moments kept as plain
 * tensors so a checkpoint can carry them and a resumed run continues bit for bit. tf.train.adam keeps its
 * state behind names tied to the engine's variable names and rounds bias correction differently from torch.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { StateDict } from "../../checkpoints/tensor.ts";

export interface AdamOptions {
  beta1: number;
  beta2: number;
  eps?: number;
}

export class Adam {
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();
  readonly eps: number;

  constructor(
    /** Parameters by a stable name (the one used in saved state). */
    readonly params: Map<string, tf.Variable>,
    readonly opts: AdamOptions,
  ) {
    this.eps = opts.eps ?? 1e-8;
    for (const [name, p] of params) {
      this.m.set(name, tf.variable(tf.zerosLike(p), false));
      this.v.set(name, tf.variable(tf.zerosLike(p), false));
    }
  }

  /**
   * One update. `grads` is keyed by tf.Variable.name (what tf.variableGrads returns); `t` is the 1-based count
   * of updates including this one. Parameters without a gradient are left alone, as torch skips grad=None.
   */
  apply(grads: tf.NamedTensorMap, lr: number, t: number): void {
    const { beta1, beta2 } = this.opts;
    const bc1 = 1 - beta1 ** t;
    const bc2 = 1 - beta2 ** t;
    const stepSize = lr / bc1;
    const sqrtBc2 = Math.sqrt(bc2);
    tf.tidy(() => {
      for (const [name, p] of this.params) {
        const g = grads[p.name];
        if (!g) continue;
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        const m1 = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
        const v1 = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
        m.assign(m1);
        v.assign(v1);
        const denom = tf.add(tf.div(tf.sqrt(v1), sqrtBc2), this.eps);
        p.assign(tf.sub(p, tf.mul(tf.div(m1, denom), stepSize)));
      }
    });
  }

  /** Moments as `<prefix><name>.m` / `.v`, in the variables' own (TF.js) layout. */
  saveState(prefix: string, out: StateDict = new Map()): StateDict {
    for (const name of this.params.keys()) {
      for (const [leaf, map] of [["m", this.m], ["v", this.v]] as const) {
        const t = map.get(name)!;
        out.set(`${prefix}${name}.${leaf}`, { dtype: "F32", shape: [...t.shape], data: Float32Array.from(t.dataSync() as Float32Array) });
      }
    }
    return out;
  }

  /** Strict: every moment must be present with the right shape. */
  loadState(sd: StateDict, prefix: string): void {
    for (const name of this.params.keys()) {
      for (const [leaf, map] of [["m", this.m], ["v", this.v]] as const) {
        const key = `${prefix}${name}.${leaf}`;
        const raw = sd.get(key);
        const t = map.get(name)!;
        if (!raw) throw new Error(`optimiser state is missing ${key}`);
        if (raw.shape.length !== t.shape.length || raw.shape.some((d, i) => d !== t.shape[i]))
          throw new Error(`${key}: shape [${raw.shape}] does not match the parameter [${t.shape}]`);
        t.assign(tf.tensor(Float32Array.from(raw.data as Float32Array), t.shape, "float32"));
      }
    }
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}
