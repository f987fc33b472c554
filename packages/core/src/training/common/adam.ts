/**
 * torch.optim.Adam (no weight decay, no amsgrad) over named tf.Variables, with its moments kept as plain
 * tensors (JS arrays on wasm) so a checkpoint can carry them and a resumed run continues bit for bit. tf.train.adam keeps its
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
  /**
   * Both moments of every parameter in one flat tensor each, parameters in `params` order. On wasm they live in
   * JS memory instead, and the update runs in JS (see applyOnHost).
   */
  private readonly m?: tf.Variable;
  private readonly v?: tf.Variable;
  private readonly host?: { m: Float32Array; v: Float32Array };
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
    if (tf.getBackend() === "wasm") this.host = { m: new Float32Array(total), v: new Float32Array(total) };
    else {
      this.m = tf.variable(tf.zeros([total]), false);
      this.v = tf.variable(tf.zeros([total]), false);
    }
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
    if (this.host) {
      this.applyOnHost(this.host, grads, stepSize, sqrtBc2);
      return;
    }
    const [m, v] = [this.m!, this.v!];
    tf.tidy(() => {
      const g = concatFlat(params.map((p) => grads[p.name] ?? tf.zeros([p.size])));
      const p0 = concatFlat(params);
      let m1 = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
      let v1 = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
      const denom = tf.add(tf.div(tf.sqrt(v1), sqrtBc2), this.eps);
      let p1 = tf.sub(p0, tf.mul(tf.div(m1, denom), stepSize));
      if (missing.length > 0) {
        const keep = new Uint8Array(this.total);
        for (const [name, p] of missing) keep.fill(1, this.offsets.get(name)!, this.offsets.get(name)! + p.size);
        const old = tf.tensor1d(keep, "bool");
        m1 = tf.where(old, m, m1);
        v1 = tf.where(old, v, v1);
        p1 = tf.where(old, p0, p1);
      }
      m.assign(m1);
      v.assign(v1);
      const parts = splitInto(p1 as tf.Tensor1D, params.map((p) => p.shape));
      for (const [i, p] of params.entries()) p.assign(parts[i]);
    });
  }

  /**
   * The same update in JS on wasm, each operation rounded to float32 as the kernels round it (IEEE +, −, ×, ÷
   * and √ computed in float64 and rounded once give the float32 result), so the two forms agree bit for bit.
   * As tensors the update allocated a dozen temporaries the size of all parameters between the parameters' new
   * buffers, and wasm's heap, which never shrinks, fragmented: a SPADE demo run (1.5 M parameters in G) grew
   * ~1.5 MB a step until it ran out of memory at step 2687. Here the heap sees only each parameter's new buffer,
   * the size of the one it replaces.
   */
  private applyOnHost(host: { m: Float32Array; v: Float32Array }, grads: tf.NamedTensorMap, stepSize: number, sqrtBc2: number): void {
    const f = Math.fround;
    const [b1, c1, b2, c2] = [f(this.opts.beta1), f(1 - this.opts.beta1), f(this.opts.beta2), f(1 - this.opts.beta2)];
    const [root, eps, step] = [f(sqrtBc2), f(this.eps), f(stepSize)];
    const { m, v } = host;
    for (const [name, p] of this.params) {
      const grad = grads[p.name];
      if (!grad) continue;
      const g = grad.dataSync() as Float32Array;
      const p0 = p.dataSync() as Float32Array;
      const p1 = new Float32Array(p.size);
      const at = this.offsets.get(name)!;
      for (let i = 0; i < p1.length; i++) {
        const gi = g[i];
        const m1 = f(f(m[at + i] * b1) + f(gi * c1));
        const v1 = f(f(v[at + i] * b2) + f(f(gi * gi) * c2));
        m[at + i] = m1;
        v[at + i] = v1;
        const denom = f(f(f(Math.sqrt(v1)) / root) + eps);
        p1[i] = p0[i] - f(f(m1 / denom) * step);
      }
      const next = tf.tensor(p1, p.shape, "float32");
      p.assign(next);
      next.dispose();
    }
  }

  /** Moments as `<prefix><name>.m` / `.v`, in the variables' own (TF.js) layout. */
  saveState(prefix: string, out: StateDict = new Map()): StateDict {
    const flat = this.host ?? { m: this.m!.dataSync() as Float32Array, v: this.v!.dataSync() as Float32Array };
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
    if (this.host) {
      this.host.m.set(flat.m);
      this.host.v.set(flat.v);
      return;
    }
    this.m!.assign(tf.tensor1d(flat.m, "float32"));
    this.v!.assign(tf.tensor1d(flat.v, "float32"));
  }

  dispose(): void {
    this.m?.dispose();
    this.v?.dispose();
  }
}
