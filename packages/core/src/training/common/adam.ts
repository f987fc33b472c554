/**
 * torch.optim.Adam (no weight decay, no amsgrad) over named tf.Variables, with its moments kept as plain
 * tensors so a checkpoint can carry them and a resumed run continues bit for bit. tf.train.adam keeps its
 * state behind names tied to the engine's variable names and rounds bias correction differently from torch.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { StateDict } from "../../checkpoints/tensor.ts";
import { concatFlat, splitInto } from "../../engine/split-flat.ts";

export interface AdamOptions {
  beta1: number;
  beta2: number;
  eps?: number;
}

export class Adam {
  /** Both moments of every parameter in one flat tensor each, parameters in `params` order. */
  private readonly m: tf.Variable;
  private readonly v: tf.Variable;
  /** Where each parameter's moments start in the flat tensors. */
  private readonly offsets = new Map<string, number>();
  private readonly total: number;
  readonly eps: number;

  constructor(
    /** Parameters by a stable name (the one used in saved state). */
    readonly params: Map<string, tf.Variable>,
    readonly opts: AdamOptions,
  ) {
    this.eps = opts.eps ?? 1e-8;
    let total = 0;
    for (const [name, p] of params) {
      this.offsets.set(name, total);
      total += p.size;
    }
    this.total = total;
    this.m = tf.variable(tf.zeros([total]), false);
    this.v = tf.variable(tf.zeros([total]), false);
  }

  /**
   * One update. `grads` is keyed by tf.Variable.name (what tf.variableGrads returns); `t` is the 1-based count
   * of updates including this one. Parameters without a gradient are left alone, as torch skips grad=None.
   *
   * All parameters are updated at once, concatenated: per parameter it was thirteen kernels, and with a
   * hundred small parameters (CycleGAN's demo) their dispatch cost more than the arithmetic. Elementwise
   * ops give every element the same value either way, so results are bit-identical to the per-parameter form.
   */
  apply(grads: tf.NamedTensorMap, lr: number, t: number): void {
    const { beta1, beta2 } = this.opts;
    const bc1 = 1 - beta1 ** t;
    const bc2 = 1 - beta2 ** t;
    const stepSize = lr / bc1;
    const sqrtBc2 = Math.sqrt(bc2);
    const params = [...this.params.values()];
    const missing = [...this.params].filter(([, p]) => !grads[p.name]);
    if (missing.length === params.length) return;
    tf.tidy(() => {
      const g = concatFlat(params.map((p) => grads[p.name] ?? tf.zeros([p.size])));
      const p0 = concatFlat(params);
      let m1 = tf.add(tf.mul(this.m, beta1), tf.mul(g, 1 - beta1));
      let v1 = tf.add(tf.mul(this.v, beta2), tf.mul(tf.square(g), 1 - beta2));
      const denom = tf.add(tf.div(tf.sqrt(v1), sqrtBc2), this.eps);
      let p1 = tf.sub(p0, tf.mul(tf.div(m1, denom), stepSize));
      if (missing.length > 0) {
        // Parameters without a gradient keep their values and moments.
        const keep = new Uint8Array(this.total);
        for (const [name, p] of missing) keep.fill(1, this.offsets.get(name)!, this.offsets.get(name)! + p.size);
        const old = tf.tensor1d(keep, "bool");
        m1 = tf.where(old, this.m, m1);
        v1 = tf.where(old, this.v, v1);
        p1 = tf.where(old, p0, p1);
      }
      this.m.assign(m1);
      this.v.assign(v1);
      const parts = splitInto(p1 as tf.Tensor1D, params.map((p) => p.shape));
      for (const [i, p] of params.entries()) p.assign(parts[i]);
    });
  }

  /** Moments as `<prefix><name>.m` / `.v`, in the variables' own (TF.js) layout. */
  saveState(prefix: string, out: StateDict = new Map()): StateDict {
    const flat = { m: this.m.dataSync() as Float32Array, v: this.v.dataSync() as Float32Array };
    for (const [name, p] of this.params) {
      const at = this.offsets.get(name)!;
      for (const leaf of ["m", "v"] as const) out.set(`${prefix}${name}.${leaf}`, { dtype: "F32", shape: [...p.shape], data: flat[leaf].slice(at, at + p.size) });
    }
    return out;
  }

  /** Strict: every moment must be present with the right shape. */
  loadState(sd: StateDict, prefix: string): void {
    const flat = { m: new Float32Array(this.total), v: new Float32Array(this.total) };
    for (const [name, p] of this.params) {
      for (const leaf of ["m", "v"] as const) {
        const key = `${prefix}${name}.${leaf}`;
        const raw = sd.get(key);
        if (!raw) throw new Error(`optimiser state is missing ${key}`);
        if (raw.shape.length !== p.shape.length || raw.shape.some((d, i) => d !== p.shape[i]))
          throw new Error(`${key}: shape [${raw.shape}] does not match the parameter [${p.shape}]`);
        flat[leaf].set(raw.data as Float32Array, this.offsets.get(name)!);
      }
    }
    this.m.assign(tf.tensor1d(flat.m, "float32"));
    this.v.assign(tf.tensor1d(flat.v, "float32"));
  }

  dispose(): void {
    this.m.dispose();
    this.v.dispose();
  }
}
