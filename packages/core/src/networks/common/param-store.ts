/**
 * Parameters and buffers of one network, keyed by their official (PyTorch state_dict) names.
 *
 * Values live in tf.Variables in the layout TF.js kernels want (e.g. HWIO for convs), so forward passes use them
 * without a per-call transpose and an optimiser can train them in place. Each slot remembers the permutation from
 * the official layout, which is all that `stateDict()` needs to write the checkpoint back unchanged.
 */
import * as tf from "@tensorflow/tfjs-core";
import { CheckpointError, numel, toFloat32, type RawTensor, type StateDict } from "../../checkpoints/tensor.ts";
import * as eager from "../ops/eager.ts";
import type {
  BatchNormParams,
  BiasActOptions,
  ConvOptions,
  ConvTransposeOptions,
  ModulatedConvOptions,
  Ops,
  ParamLayout,
  ParamOptions,
  ParamRole,
  SpectralParams,
} from "../ops/ops.ts";
import { biasAct } from "./bias_act.ts";
import { conv2dResample } from "./conv2d_resample.ts";
import { resizeNearestLegacy, upsampleNearest2x, upsampleNearest2xBroadcast } from "./nearest-resize.ts";
import { upsample2d } from "./upfirdn2d.ts";

export type { ParamRole };

/** Official layout → TF layout: conv weights become HWIO (transposed convs HW-out-in), linear weights [in, out]. */
const PERM: Record<ParamLayout, number[] | undefined> = { OIHW: [2, 3, 1, 0], IOHW: [2, 3, 1, 0], OI: [1, 0], CHW: [1, 2, 0], plain: undefined };

/** Supplies the initial value of a slot, in the official layout and shape. */
export type ParamSource = (name: string, officialShape: readonly number[], role: ParamRole) => tf.Tensor;

interface Slot {
  officialShape: number[];
  /** Axis permutation official → TF layout; undefined when the layouts agree. */
  perm?: number[];
  variable: tf.Variable;
  role: ParamRole;
}

let storeSerial = 0;

/** The eager side of the op interface: parameters are tf.Variables, ops are TF.js kernels. */
export class ParamStore implements Ops<tf.Tensor4D, tf.Variable> {
  readonly mode = "eager";
  private readonly slots = new Map<string, Slot>();
  /** int64 buffers (BatchNorm num_batches_tracked): only carried so a checkpoint round-trips. */
  private readonly counters = new Map<string, bigint>();
  /** Registration order, which layers follow so that `stateDict()` lists keys as PyTorch does. */
  private readonly order: string[] = [];
  /** Variable names are global in the TF.js engine, so every store gets its own namespace. */
  private readonly ns = `ps${storeSerial++}`;
  private disposed = false;
  /** Things derived from the parameters (e.g. cached kernels) that die with them. */
  private readonly owned: { dispose(): void }[] = [];

  constructor(
    private readonly source: ParamSource,
    private readonly counterSource: (name: string) => bigint = () => 0n,
  ) {}

  param(name: string, officialShape: readonly number[], role: ParamRole, opts: ParamOptions = {}): tf.Variable {
    return this.add(name, officialShape, role, { perm: PERM[opts.layout ?? "plain"], trainable: opts.trainable });
  }

  counter(name: string): void {
    this.addCounter(name);
  }

  shape(x: tf.Tensor4D): readonly number[] {
    return x.shape;
  }

  conv2d(x: tf.Tensor4D, weight: tf.Variable, bias: tf.Variable | undefined, o: ConvOptions): tf.Tensor4D {
    return eager.conv2dSymmetric(x, weight as tf.Tensor4D, o.stride, o.padding, bias);
  }

  spectralConv2d(x: tf.Tensor4D, weight: SpectralParams<tf.Variable>, bias: tf.Variable | undefined, o: ConvOptions & { training?: boolean }): tf.Tensor4D {
    return tf.tidy(() => eager.conv2dSymmetric(x, eager.spectralWeight(weight, o.training), o.stride, o.padding, bias));
  }

  /** Rearranged transposed-conv kernels of this store's weights; they die with the store. */
  private subpixel?: eager.SubpixelCache;
  convTranspose2d(x: tf.Tensor4D, weight: tf.Variable, bias: tf.Variable | undefined, o: ConvTransposeOptions): tf.Tensor4D {
    if (!this.subpixel) {
      this.subpixel = new eager.SubpixelCache();
      this.own(this.subpixel);
    }
    return eager.convTranspose2d(x, weight, bias, o, this.subpixel);
  }

  instanceNorm(x: tf.Tensor4D, eps: number, weight?: tf.Variable, bias?: tf.Variable): tf.Tensor4D {
    return eager.instanceNorm(x, eps, weight, bias);
  }

  batchNorm(x: tf.Tensor4D, p: BatchNormParams<tf.Variable>, training: boolean): tf.Tensor4D {
    return eager.batchNorm(x, p, training);
  }

  reflectPad(x: tf.Tensor4D, pad: number): tf.Tensor4D {
    return eager.reflectionPad2d(x, pad);
  }

  linear(x: tf.Tensor4D, weight: tf.Variable, bias: tf.Variable | undefined): tf.Tensor4D {
    const n = x.shape[0];
    // The "OI" weight is kept transposed, [in, out], ready for matMul.
    const y = tf.matMul(tf.reshape(x, [n, -1]), weight as tf.Tensor2D);
    return tf.reshape(bias ? tf.add(y, bias) : y, [n, 1, 1, weight.shape[1] as number]);
  }

  unflatten(x: tf.Tensor4D, c: number, h: number, w: number): tf.Tensor4D {
    return tf.transpose(tf.reshape(x, [x.shape[0], c, h, w]), [0, 2, 3, 1]);
  }

  relu(x: tf.Tensor4D): tf.Tensor4D {
    return tf.relu(x);
  }

  sigmoid(x: tf.Tensor4D): tf.Tensor4D {
    return tf.sigmoid(x);
  }

  leakyRelu(x: tf.Tensor4D, alpha: number): tf.Tensor4D {
    return tf.leakyRelu(x, alpha);
  }

  tanh(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tanh(x);
  }

  plus(a: tf.Tensor4D, b: tf.Tensor4D): tf.Tensor4D {
    return tf.add(a, b);
  }

  mul(a: tf.Tensor4D, b: tf.Tensor4D): tf.Tensor4D {
    return tf.mul(a, b);
  }

  addScalar(x: tf.Tensor4D, c: number): tf.Tensor4D {
    return tf.add(x, c);
  }

  resizeNearest(x: tf.Tensor4D, h: number, w: number): tf.Tensor4D {
    return resizeNearestLegacy(x, h, w);
  }

  /** Same values either way; tfjs-cpu's ResizeNearestNeighborGrad is wrong, so training takes the broadcast form. */
  upsampleNearest2x(x: tf.Tensor4D, training: boolean): tf.Tensor4D {
    return training ? upsampleNearest2xBroadcast(x) : upsampleNearest2x(x);
  }

  scope<R extends tf.Tensor4D>(fn: () => R): R {
    return tf.tidy(fn);
  }

  keep(x: tf.Tensor4D): tf.Tensor4D {
    return tf.keep(x);
  }

  release(x: tf.Tensor4D): void {
    x.dispose();
  }

  concat(xs: readonly tf.Tensor4D[]): tf.Tensor4D {
    return tf.concat([...xs], 3);
  }

  dropout(x: tf.Tensor4D, rate: number, training: boolean): tf.Tensor4D {
    return training ? (tf.dropout(x, rate) as tf.Tensor4D) : x;
  }

  fullyConnected(x: tf.Tensor4D, weight: tf.Variable, bias: tf.Variable | undefined, o: { weightGain: number; biasGain: number }): tf.Tensor4D {
    const n = x.shape[0];
    // The "plain" weight is [out, in]: matMul with transposeB.
    const w = o.weightGain === 1 ? weight : tf.mul(weight, o.weightGain);
    let y = tf.matMul(tf.reshape(x, [n, -1]) as tf.Tensor2D, w as tf.Tensor2D, false, true);
    if (bias) y = tf.add(y, o.biasGain === 1 ? bias : tf.mul(bias, o.biasGain));
    return tf.reshape(y, [n, 1, 1, weight.shape[0] as number]);
  }

  biasAct(x: tf.Tensor4D, bias: tf.Variable | undefined, o: BiasActOptions): tf.Tensor4D {
    return biasAct(x, bias ?? null, o);
  }

  normalize2ndMoment(x: tf.Tensor4D, eps: number): tf.Tensor4D {
    return tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), 3, true), eps)));
  }

  splitChannels(x: tf.Tensor4D, parts: number): tf.Tensor4D[] {
    return tf.split(x, parts, 3);
  }

  /** "CHW" parameters are kept HWC, [H, W] ones as they are: either way a reshape. */
  paramMap(p: tf.Variable, c: number, h: number, w: number): tf.Tensor4D {
    return tf.reshape(p, [1, h, w, c]);
  }

  mulParam(x: tf.Tensor4D, p: tf.Variable): tf.Tensor4D {
    return tf.mul(x, p);
  }

  mulScalar(x: tf.Tensor4D, c: number): tf.Tensor4D {
    return tf.mul(x, c);
  }

  noise(like: tf.Tensor4D, h: number, w: number, seed: number): tf.Tensor4D {
    return tf.randomNormal([like.shape[0], h, w, 1], 0, 1, "float32", seed);
  }

  modulatedConv2d(x: tf.Tensor4D, weight: tf.Variable, styles: tf.Tensor4D, o: ModulatedConvOptions<tf.Variable>): tf.Tensor4D {
    const s = tf.reshape(styles, [styles.shape[0], styles.shape[3]]) as tf.Tensor2D;
    return eager.modulatedConv2d(x, weight as tf.Tensor4D, s, { ...o, f: o.filter as tf.Tensor2D | undefined });
  }

  resampleConv2d(x: tf.Tensor4D, weight: tf.Variable, filter: tf.Variable, o: { up: number; down: number; padding: number; weightGain: number }): tf.Tensor4D {
    const w = tf.mul(weight, o.weightGain) as tf.Tensor4D;
    return conv2dResample(x, w, { f: filter as tf.Tensor2D, up: o.up, down: o.down, padding: o.padding, flipWeight: o.up === 1 });
  }

  upsample2d(x: tf.Tensor4D, filter: tf.Variable): tf.Tensor4D {
    return upsample2d(x, filter as tf.Tensor2D);
  }

  add(name: string, officialShape: readonly number[], role: ParamRole, opts: { perm?: number[]; trainable?: boolean } = {}): tf.Variable {
    if (this.slots.has(name)) throw new Error(`duplicate parameter ${name}`);
    const variable = tf.tidy(() => {
      const value = this.source(name, officialShape, role);
      if (!shapeEquals(value.shape, officialShape))
        throw new Error(`${name}: expected shape [${officialShape}] but the source gave [${value.shape}]`);
      return tf.variable(opts.perm ? tf.transpose(value, opts.perm) : value, opts.trainable ?? true, `${this.ns}/${name}`);
    });
    this.slots.set(name, { officialShape: [...officialShape], perm: opts.perm, variable, role });
    this.order.push(name);
    return variable;
  }

  addCounter(name: string): void {
    if (this.counters.has(name)) throw new Error(`duplicate buffer ${name}`);
    this.counters.set(name, this.counterSource(name));
    this.order.push(name);
  }

  setCounter(name: string, value: bigint): void {
    if (!this.counters.has(name)) throw new Error(`unknown counter ${name}`);
    this.counters.set(name, value);
  }

  has(name: string): boolean {
    return this.slots.has(name) || this.counters.has(name);
  }

  names(): string[] {
    return [...this.order];
  }

  /** Trainable variables by official name (what an optimiser's varList wants). */
  trainableVariables(): Map<string, tf.Variable> {
    return new Map([...this.slots].filter(([, s]) => s.variable.trainable).map(([n, s]) => [n, s.variable]));
  }

  variable(name: string): tf.Variable {
    const s = this.slots.get(name);
    if (!s) throw new Error(`unknown parameter ${name}`);
    return s.variable;
  }

  /** Reads every variable back (synchronously) in the official layout; counters come back as I64 scalars. */
  stateDict(): StateDict {
    this.assertLive();
    const out: StateDict = new Map();
    for (const name of this.order) {
      const s = this.slots.get(name);
      if (!s) {
        out.set(name, { dtype: "I64", shape: [], data: BigInt64Array.of(this.counters.get(name)!) });
        continue;
      }
      const t = s.perm ? tf.transpose(s.variable, inversePerm(s.perm)) : s.variable;
      const data = Float32Array.from(t.dataSync() as Float32Array);
      if (t !== s.variable) t.dispose();
      out.set(name, { dtype: "F32", shape: [...s.officialShape], data });
    }
    return out;
  }

  /** Disposes `d` together with the store. */
  own(d: { dispose(): void }): void {
    this.owned.push(d);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const d of this.owned.splice(0)) d.dispose();
    for (const s of this.slots.values()) s.variable.dispose();
    this.slots.clear();
    this.counters.clear();
    this.order.length = 0;
  }

  private assertLive(): void {
    if (this.disposed) throw new Error("network has been disposed");
  }
}

const shapeEquals = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

function inversePerm(perm: number[]): number[] {
  const inv = new Array<number>(perm.length);
  for (const [i, p] of perm.entries()) inv[p] = i;
  return inv;
}

/**
 * Source reading from a state dict, checking each shape, plus a `finish` that rejects keys no slot consumed
 * (a wrong config shows up as missing or unexpected names, the way PyTorch's strict load reports it).
 * `ignore` drops keys a network knowingly skips; `counters` receives int64 buffers.
 */
export function stateDictSource(sd: StateDict, file = "state_dict") {
  const used = new Set<string>();
  const fail = (problem: string): never => {
    throw new CheckpointError(file, problem);
  };
  const take = (name: string): RawTensor => {
    const t = sd.get(name);
    if (!t) fail(`missing key ${name}`);
    used.add(name);
    return t as RawTensor;
  };
  const source: ParamSource = (name, shape) => {
    const t = take(name);
    if (!shapeEquals(t.shape, shape)) fail(`${name}: shape [${t.shape}] does not match the config, which needs [${shape}]`);
    if (numel(t.shape) !== t.data.length) fail(`${name}: ${t.data.length} values for shape [${t.shape}]`);
    return tf.tensor(toFloat32(t), [...shape], "float32");
  };
  return {
    source,
    /** An int64 buffer if present (old checkpoints may lack num_batches_tracked). */
    counter(name: string): bigint {
      const t = sd.get(name);
      if (!t) return 0n;
      used.add(name);
      const v = t.data[0];
      return typeof v === "bigint" ? v : BigInt(Math.trunc(Number(v ?? 0)));
    },
    finish(ignore: (name: string) => boolean = () => false): void {
      const unexpected = [...sd.keys()].filter((k) => !used.has(k) && !ignore(k));
      if (unexpected.length)
        fail(`unexpected key(s) for this config: ${unexpected.slice(0, 5).join(", ")}${unexpected.length > 5 ? ` (+${unexpected.length - 5} more)` : ""}`);
    },
  };
}

/**
 * The one strict load of a network: builds it on a `stateDictSource` and rejects keys it did not consume. On a
 * leftover key the half-loaded network is disposed before the error propagates, so a bad checkpoint leaks no
 * tf.Variables. `ignore` is asked after `build`, for networks that learn what to skip while building (CycleGAN's
 * stale InstanceNorm statistics).
 */
export function loadStrict<M extends { dispose(): void }>(
  sd: StateDict,
  file: string | undefined,
  build: (source: ParamSource, counter: (name: string) => bigint) => M,
  ignore?: () => (name: string) => boolean,
): M {
  const src = stateDictSource(sd, file);
  const m = build(src.source, src.counter);
  try {
    src.finish(ignore?.());
  } catch (e) {
    m.dispose();
    throw e;
  }
  return m;
}

/**
 * Random initial values as in pix2pix/CycleGAN `init_weights(init_type='normal')`: conv weights N(0, gain), biases 0,
 * norm weights N(1, gain), running stats 0/1. Seeded per slot so the result does not depend on backend or order of
 * other allocations.
 */
export function normalInitSource(seed: number, gain = 0.02): ParamSource {
  let k = 0;
  return (_name, shape, role) => {
    const s = [...shape];
    const slotSeed = seed * 1_000_003 + 7919 * k++;
    switch (role) {
      case "conv.weight":
        return tf.randomNormal(s, 0, gain, "float32", slotSeed);
      case "norm.weight":
        return tf.randomNormal(s, 1, gain, "float32", slotSeed);
      case "norm.running_var":
        return tf.ones(s);
      default:
        return tf.zeros(s);
    }
  };
}

/**
 * A network whose parameters and buffers all live in one ParamStore. Every architecture exposes them the same
 * way, so optimisers, checkpoint writers and the serving engines treat generators and discriminators alike.
 */
export abstract class ParamModule {
  constructor(protected readonly store: ParamStore) {}

  /** Trainable parameters by official name (values in the TF layout: conv weights HWIO). */
  trainableVariables(): Map<string, tf.Variable> {
    return this.store.trainableVariables();
  }

  /** Any parameter or buffer by official name (e.g. "mapping.w_avg" for a trainer's EMA update). */
  variable(name: string): tf.Variable {
    return this.store.variable(name);
  }

  /** All parameters and buffers in the official names, layouts and order (loads strictly into upstream). */
  stateDict(): StateDict {
    return this.store.stateDict();
  }

  dispose(): void {
    this.store.dispose();
  }
}
