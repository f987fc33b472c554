/**
 * `torch.nn.utils.spectral_norm` (dim 0: Conv2d and Linear) for import, eval and training.
 *
 * A spectral-normed layer stores `weight_orig`, `weight_u` [out] and `weight_v` [in*kh*kw]. In eval PyTorch uses
 * `weight_orig / sigma` with `sigma = u · (W.reshape(out, -1) @ v)` from the *stored* u and v: no power iteration,
 * and not the true top singular value (checkpoints rarely have converged u, v, so an SVD gives other numbers).
 * In training PyTorch first runs one power-iteration step (updating u and v in place), then uses the same formula.
 *
 * Checkpoint shapes we accept for a spectral layer `P`:
 * - `P.weight_orig`, `P.weight_u`, `P.weight_v`: torch >= 1.0. Used as stored.
 * - `P.weight_orig`, `P.weight_u`, `P.weight` (no v): torch 0.4. Its eval used the `weight` buffer computed in the
 *   last training step, so sigma = mean(weight_orig / weight), as torch's own load hook derives it. We then pick
 *   v = normalize(Wᵀu) rescaled so that u·(W v) equals that sigma; eval output is unchanged and later power
 *   iterations start from a sensible v.
 * - `P.weight_orig`, `P.weight_u` only: no record of the eval weight survives, so we do what torch 0.4 did on its
 *   next forward: one power iteration from the stored u (v = normalize(Wᵀu), u = normalize(W v)).
 * - `P.weight` (optionally `P.sigma`, the `weights_resolved` layout): weight_orig = weight * sigma (sigma 1 when
 *   absent), and u, v from a few power iterations, with v rescaled so that u·(W v) = sigma exactly. The eval
 *   weight is therefore the stored one, and `stateDict()` can still write the official layout.
 */
import * as tf from "@tensorflow/tfjs-core";
import { CheckpointError, numel, toFloat32, type RawTensor, type StateDict } from "../../checkpoints/tensor.ts";
import { NORMALIZE_EPS, powerIteration } from "../../engine/spectral.ts";
import * as eager from "../ops/eager.ts";
import { join } from "./conv.ts";
import { assertShape, type Ops, type SpectralParams } from "../ops/ops.ts";

/**
 * The leaf names torch's spectral_norm gives a layer's parameter `weight` (plus `sigma`, the resolved layout's),
 * spelled only here: loaders, init and the parity overlay find spectral state through them.
 */
const ORIG = "weight_orig";
const U = "weight_u";
const V = "weight_v";
const SIGMA = "sigma";
const WEIGHT = "weight";

/** Whether a key is a spectral layer's stored power-iteration vector (u or v): a buffer, initialised normalised. */
export const isSpectralVectorKey = (key: string): boolean => key.endsWith(`.${U}`) || key.endsWith(`.${V}`);

/** Whether a state dict holds any spectral-normed weight in the official (weight_orig) layout. */
export const hasSpectralOrig = (sd: StateDict): boolean => [...sd.keys()].some((k) => k.endsWith(`.${ORIG}`));

/** The official (weight_orig) key of a spectral layer's weight, and the key of its plain or resolved weight. */
export const spectralWeightKeys = (layer: string): { orig: string; plain: string } => ({ orig: join(layer, ORIG), plain: join(layer, WEIGHT) });

// ---- host-side math on the official layout: W is row-major [out, cols] -------------------------------------

function matVec(w: Float32Array, rows: number, cols: number, v: ArrayLike<number>): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    const base = r * cols;
    for (let c = 0; c < cols; c++) s += w[base + c] * v[c];
    out[r] = s;
  }
  return out;
}

function matTVec(w: Float32Array, rows: number, cols: number, u: ArrayLike<number>): Float64Array {
  const out = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const ur = u[r];
    const base = r * cols;
    for (let c = 0; c < cols; c++) out[c] += w[base + c] * ur;
  }
  return out;
}

function normalize(x: Float64Array): Float64Array {
  let n = 0;
  for (const a of x) n += a * a;
  const d = Math.max(Math.sqrt(n), NORMALIZE_EPS);
  return x.map((a) => a / d);
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

/** sigma = u · (W.reshape(out, -1) @ v), W in the official layout (out channels first). */
export function spectralSigma(weightOrig: RawTensor, u: RawTensor, v: RawTensor): number {
  const rows = weightOrig.shape[0];
  const cols = numel(weightOrig.shape) / rows;
  if (u.data.length !== rows || v.data.length !== cols)
    throw new Error(`spectral norm: u [${u.shape}] / v [${v.shape}] do not fit weight_orig [${weightOrig.shape}]`);
  return dot(toFloat32(u), matVec(toFloat32(weightOrig), rows, cols, toFloat32(v)));
}

/** The canonical (torch >= 1.0) state of one spectral-normed weight, official layout. */
export interface SpectralState {
  weightOrig: RawTensor;
  u: RawTensor;
  v: RawTensor;
  /** Which checkpoint layout it came from (see the module comment). */
  origin: "uv" | "legacy-weight" | "legacy-power-iteration" | "resolved";
}

const f32 = (shape: number[], data: ArrayLike<number>): RawTensor => ({ dtype: "F32", shape, data: Float32Array.from(data) });

/** Reads the spectral-norm state of `prefix` (e.g. `up_0.conv_0`, param `weight`) from any accepted layout. */
export function readSpectralState(sd: StateDict, prefix: string, file = "state_dict"): SpectralState | undefined {
  const orig = sd.get(join(prefix, ORIG));
  const u = sd.get(join(prefix, U));
  const v = sd.get(join(prefix, V));
  const plain = sd.get(join(prefix, WEIGHT));
  const fail = (problem: string): never => {
    throw new CheckpointError(file, `${prefix}: ${problem}`);
  };
  if (orig) {
    const rows = orig.shape[0];
    const cols = numel(orig.shape) / rows;
    const w = toFloat32(orig);
    if (!u) return fail("has weight_orig but no weight_u (spectral-norm state is incomplete)");
    if (u.data.length !== rows) fail(`weight_u has ${u.data.length} values, weight_orig has ${rows} rows`);
    if (v) {
      if (v.data.length !== cols) fail(`weight_v has ${v.data.length} values, weight_orig has ${cols} columns`);
      return { weightOrig: orig, u, v, origin: "uv" };
    }
    const uData = toFloat32(u);
    if (plain) {
      if (plain.data.length !== w.length) fail(`weight [${plain.shape}] does not match weight_orig [${orig.shape}]`);
      const wEval = toFloat32(plain);
      let sum = 0;
      let count = 0;
      for (let i = 0; i < w.length; i++)
        if (wEval[i] !== 0) {
          sum += w[i] / wEval[i];
          count++;
        }
      const sigma = count ? sum / count : 1;
      return { weightOrig: orig, u, v: f32([cols], rescaledV(w, rows, cols, uData, normalize(matTVec(w, rows, cols, uData)), sigma)), origin: "legacy-weight" };
    }
    const vNew = normalize(matTVec(w, rows, cols, uData));
    const uNew = normalize(matVec(w, rows, cols, vNew));
    return { weightOrig: orig, u: f32([rows], uNew), v: f32([cols], vNew), origin: "legacy-power-iteration" };
  }
  if (!plain) return undefined;
  const sigmaT = sd.get(join(prefix, SIGMA));
  const sigma = sigmaT ? Number(toFloat32(sigmaT)[0]) : 1;
  const rows = plain.shape[0];
  const cols = numel(plain.shape) / rows;
  const w = toFloat32(plain).map((a) => a * sigma);
  let uVec: Float64Array = normalize(matVec(w, rows, cols, new Float64Array(cols).fill(1)));
  let vVec: Float64Array = new Float64Array(cols);
  // A deterministic start; a handful of steps is enough because the rescale below makes eval exact anyway.
  for (let it = 0; it < 8; it++) {
    vVec = normalize(matTVec(w, rows, cols, uVec));
    uVec = normalize(matVec(w, rows, cols, vVec));
  }
  return { weightOrig: f32([...plain.shape], w), u: f32([rows], uVec), v: f32([cols], rescaledV(w, rows, cols, uVec, vVec, sigma)), origin: "resolved" };
}

/** v scaled so that u · (W v) equals `sigma` (torch's `_solve_v_and_rescale` does the same final step). */
function rescaledV(w: Float32Array, rows: number, cols: number, u: ArrayLike<number>, v: Float64Array, sigma: number): Float64Array {
  const current = dot(u, matVec(w, rows, cols, v));
  if (!Number.isFinite(current) || Math.abs(current) < 1e-30) return v;
  return v.map((a) => (a * sigma) / current);
}

/** Prefixes (`<layer>`) of every spectral-normed weight in an official state dict. */
export function spectralLayerNames(sd: StateDict): string[] {
  return [...sd.keys()].filter((k) => k.endsWith(`.${ORIG}`)).map((k) => k.slice(0, -`.${ORIG}`.length));
}

/**
 * Replaces each spectral-normed layer by its eval weight: `<layer>.weight = weight_orig / sigma` plus
 * `<layer>.sigma` (0-d), dropping weight_orig/u/v; every other entry is copied. This is the layout of the
 * fixtures' `weights_resolved.safetensors`, and what a plain (non-spectral) importer could load.
 */
export function resolveSpectralNorm(sd: StateDict, layers: string[] = spectralLayerNames(sd)): StateDict {
  const out: StateDict = new Map();
  const drop = new Set<string>();
  const resolved = new Map<string, { weight: RawTensor; sigma: RawTensor }>();
  for (const p of layers) {
    const st = readSpectralState(sd, p);
    if (!st) throw new Error(`resolveSpectralNorm: no spectral-norm state for ${p}`);
    const sigma = spectralSigma(st.weightOrig, st.u, st.v);
    const w = toFloat32(st.weightOrig);
    resolved.set(p, {
      weight: { dtype: "F32", shape: [...st.weightOrig.shape], data: w.map((a) => a / sigma) },
      sigma: { dtype: "F32", shape: [], data: Float32Array.of(sigma) },
    });
    for (const leaf of [ORIG, U, V, WEIGHT, SIGMA]) drop.add(join(p, leaf));
  }
  for (const [k, t] of sd) if (!drop.has(k)) out.set(k, t);
  for (const [p, r] of resolved) {
    out.set(join(p, WEIGHT), r.weight);
    out.set(join(p, SIGMA), r.sigma);
  }
  return out;
}

/**
 * A copy of `sd` where each listed spectral layer is in the canonical weight_orig/u/v form, whatever layout the
 * checkpoint used, so a strict loader sees one set of names. Layers absent from `sd` are left for the loader to
 * report as missing.
 */
export function canonicalizeSpectral(sd: StateDict, layers: string[], file = "state_dict"): StateDict {
  const out: StateDict = new Map(sd);
  for (const p of layers) {
    const st = readSpectralState(sd, p, file);
    if (!st) continue;
    for (const leaf of [WEIGHT, SIGMA]) out.delete(join(p, leaf));
    out.set(join(p, ORIG), st.weightOrig);
    out.set(join(p, U), st.u);
    out.set(join(p, V), st.v);
  }
  return out;
}

/**
 * `base` with every spectral layer that `resolved` covers replaced by its resolved `.weight`/`.sigma` (its
 * weight_orig/u/v entries are dropped, so a loader must use the resolved values); other entries of `resolved`
 * are set as they are.
 */
export function overlayResolved(base: StateDict, resolved: StateDict): StateDict {
  const out: StateDict = new Map(base);
  const leaf = new RegExp(`^(.*)\\.(?:${WEIGHT}|${SIGMA})$`);
  for (const [k, t] of resolved) {
    const m = leaf.exec(k);
    if (m && base.has(join(m[1], ORIG))) for (const l of [ORIG, U, V]) out.delete(join(m[1], l));
    out.set(k, t);
  }
  return out;
}

/** Whether `sd` holds `layer` only in the resolved layout (`.sigma` beside the weight, no weight_orig). */
export const isResolvedOnly = (sd: StateDict, layer: string): boolean => sd.has(join(layer, SIGMA)) && !sd.has(join(layer, ORIG));

// ---- the layer -------------------------------------------------------------------------------------------

export interface SpectralConv2dOptions {
  stride?: number;
  /** Zero padding on every side, as PyTorch's integer `padding`. */
  padding?: number;
  bias?: boolean;
}

/**
 * spectral_norm(nn.Conv2d). `weight_orig` is a trainable parameter (HWIO on the eager side); `weight_u`/`weight_v`
 * are non-trainable buffers in the official layout, updated only by `powerIteration()`. `apply` always derives
 * the weight from the current values (a small matVec next to the conv), so an optimiser step never leaves a
 * stale cached weight behind; the graph side folds it into a constant.
 */
export class SpectralConv2d<T = tf.Tensor4D, P = tf.Variable> {
  readonly weightOrig: P;
  readonly u: P;
  readonly v: P;
  readonly bias?: P;
  readonly stride: number;
  readonly padding: number;

  constructor(
    private readonly ops: Ops<T, P>,
    readonly name: string,
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    opts: SpectralConv2dOptions = {},
  ) {
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    const k = kernelSize;
    this.weightOrig = ops.param(join(name, ORIG), [outChannels, inChannels, k, k], "conv.weight", { layout: "OIHW" });
    // ParamRole has no spectral-norm roles; the vectors belong to the conv weight and are never trained by an optimiser.
    this.u = ops.param(join(name, U), [outChannels], "conv.weight", { trainable: false });
    this.v = ops.param(join(name, V), [inChannels * k * k], "conv.weight", { trainable: false });
    if (opts.bias ?? true) this.bias = ops.param(join(name, "bias"), [outChannels], "conv.bias");
  }

  /** `training`: a training forward (see Ops.spectralConv2d); gradients are recorded either way. */
  apply(x: T, training = false): T {
    assertShape(this.ops, x, [null, null, null, this.inChannels], this.name);
    return this.ops.spectralConv2d(x, { orig: this.weightOrig, u: this.u, v: this.v }, this.bias, { stride: this.stride, padding: this.padding, training });
  }

  /** The eager variables (training-time methods below exist only there). */
  private eager(): SpectralParams<tf.Variable> {
    if (this.ops.mode !== "eager") throw new Error(`${this.name}: power iteration and sigma() are eager (training) operations`);
    return { orig: this.weightOrig, u: this.u, v: this.v } as unknown as SpectralParams<tf.Variable>;
  }

  sigma(): tf.Scalar {
    return tf.tidy(() => eager.spectralSigma(this.eager()));
  }

  /** One training-mode power-iteration step (torch runs it before each training forward); updates u and v. */
  powerIteration(steps = 1): void {
    const p = this.eager();
    const [u, v] = powerIteration(p.orig, p.u as tf.Tensor1D, p.v as tf.Tensor1D, steps);
    p.u.assign(u);
    p.v.assign(v);
    tf.dispose([u, v]);
  }
}
