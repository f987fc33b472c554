/**
 * The DCGAN generator, written once against the op interface (docs/design/networks.md): the config's module list
 * (fc_deconv, main or mlp layout, see config.ts) is built in state_dict order on a ParamStore (TF.js: serving and
 * training) or a GraphOps (the ONNX export). z enters as an NHWC [N, 1, 1, nz] map, so a Linear is a matrix
 * product over channels and BatchNorm1d is BatchNorm2d on a 1×1 map (same parameters, same statistics axes).
 *
 * Two primitives the interface does not have yet, `linear` and `unflatten` (PyTorch's `.view(-1, C, H, W)` of a
 * vector), plus `sigmoid`, are written here for both backends (dispatching on `ops.mode`) until they move into
 * `Ops`; the parity test runs both against torch.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { StateDict } from "../../checkpoints/tensor.ts";
import { A } from "../../onnx/graph.ts";
import { ConvTranspose2d } from "../common/conv.ts";
import { BatchNorm2d } from "../common/norm.ts";
import { normalInitSource, type ParamSource, ParamModule, ParamStore, stateDictSource } from "../common/param-store.ts";
import { type GConst, GraphOps, type GValue } from "../ops/graph.ts";
import type { Ops } from "../ops/ops.ts";
import { type DcganConfig, parseDcganConfig } from "./config.ts";

/** x: [N, 1, 1, in] → [N, 1, 1, out], y = x Wᵀ + b with W in nn.Linear's [out, in]. */
function linear<T, P>(ops: Ops<T, P>, x: T, w: P, b: P | undefined, out: number): T {
  if (ops.mode === "eager") {
    const t = x as unknown as tf.Tensor4D;
    const n = t.shape[0];
    // ParamStore keeps an "OI" weight transposed, [in, out], ready for matMul.
    let y: tf.Tensor = tf.matMul(tf.reshape(t, [n, -1]), w as unknown as tf.Tensor2D);
    if (b) y = tf.add(y, b as unknown as tf.Tensor);
    return tf.reshape(y, [n, 1, 1, out]) as unknown as T;
  }
  const g = (ops as unknown as GraphOps).g;
  const v = x as unknown as GValue;
  const wc = w as unknown as GConst;
  const flat = g.op("Flatten", [v.id], { axis: A.i(1) });
  const inputs = [flat, g.f32(wc.name, wc.dims, wc.data)];
  if (b) {
    const bc = b as unknown as GConst;
    inputs.push(g.f32(bc.name, bc.dims, bc.data));
  }
  const y = g.op("Gemm", inputs, { transB: A.i(1) });
  const id = g.op("Reshape", [y, g.i64([0, out, 1, 1])]);
  return { id, shape: [v.shape[0], 1, 1, out] } as unknown as T;
}

/** `.view(-1, C, H, W)` of a [N, 1, 1, C·H·W] vector in PyTorch's (NCHW) element order → NHWC [N, H, W, C]. */
function unflatten<T, P>(ops: Ops<T, P>, x: T, [c, h, w]: readonly [number, number, number]): T {
  if (ops.mode === "eager") {
    const t = x as unknown as tf.Tensor4D;
    return tf.transpose(tf.reshape(t, [t.shape[0], c, h, w]), [0, 2, 3, 1]) as unknown as T;
  }
  const g = (ops as unknown as GraphOps).g;
  const v = x as unknown as GValue;
  // Graph values are NCHW already: the view is a plain reshape.
  return { id: g.op("Reshape", [v.id, g.i64([0, c, h, w])]), shape: [v.shape[0], h, w, c] } as unknown as T;
}

function sigmoid<T, P>(ops: Ops<T, P>, x: T): T {
  if (ops.mode === "eager") return tf.sigmoid(x as unknown as tf.Tensor) as unknown as T;
  const v = x as unknown as GValue;
  return { id: (ops as unknown as GraphOps).g.op("Sigmoid", [v.id]), shape: v.shape } as unknown as T;
}

/** nn.Linear, registered under its official names. */
class Linear<T, P> {
  readonly weight: P;
  readonly bias?: P;
  constructor(
    private readonly ops: Ops<T, P>,
    readonly name: string,
    readonly inFeatures: number,
    readonly outFeatures: number,
    bias: boolean,
  ) {
    this.weight = ops.param(`${name}.weight`, [outFeatures, inFeatures], "conv.weight", { layout: "OI" });
    if (bias) this.bias = ops.param(`${name}.bias`, [outFeatures], "conv.bias");
  }

  apply(x: T): T {
    const s = this.ops.shape(x);
    if (s[1] !== 1 || s[2] !== 1 || s[3] !== this.inFeatures) throw new Error(`${this.name}: expected [N, 1, 1, ${this.inFeatures}], got [${s}]`);
    return linear(this.ops, x, this.weight, this.bias, this.outFeatures);
  }
}

type Step<T> = (x: T, training: boolean) => T;

/** The one assembly of a DCGAN generator, for either backend: the config's modules in order. */
export class DcganNet<T, P> {
  private readonly steps: Step<T>[] = [];

  constructor(ops: Ops<T, P>, readonly cfg: DcganConfig) {
    for (const l of cfg.layers) {
      switch (l.op) {
        case "linear": {
          const m = new Linear(ops, l.key, l.in, l.out, l.bias);
          this.steps.push((x) => m.apply(x));
          break;
        }
        case "conv_transpose2d": {
          const m = new ConvTranspose2d(ops, l.key, l.in, l.out, l.kernel, { stride: l.stride, padding: l.padding, outputPadding: l.output_padding, bias: l.bias });
          this.steps.push((x) => m.apply(x));
          break;
        }
        case "batch_norm": {
          const m = new BatchNorm2d(ops, l.key, l.features, { eps: l.eps, affine: l.affine });
          this.steps.push((x, training) => m.apply(x, training));
          break;
        }
        case "reshape":
          this.steps.push((x) => unflatten(ops, x, l.shape));
          break;
        case "relu":
          this.steps.push((x) => ops.relu(x));
          break;
        case "leaky_relu":
          this.steps.push((x) => ops.leakyRelu(x, l.slope));
          break;
        case "tanh":
          this.steps.push((x) => ops.tanh(x));
          break;
        case "sigmoid":
          this.steps.push((x) => sigmoid(ops, x));
          break;
      }
    }
  }

  /** z as an NHWC [N, 1, 1, nz] map → NHWC [N, S, S, nc]. */
  apply(z: T, training: boolean): T {
    return this.steps.reduce((x, step) => step(x, training), z);
  }
}

export class DcganGenerator extends ParamModule {
  readonly nz: number;
  private readonly net: DcganNet<tf.Tensor4D, tf.Variable>;

  private constructor(
    readonly config: DcganConfig,
    source: ParamSource,
    counter?: (name: string) => bigint,
  ) {
    super(new ParamStore(source, counter));
    this.nz = config.z_shape[0];
    try {
      this.net = new DcganNet(this.store, config);
    } catch (e) {
      this.store.dispose();
      throw e;
    }
  }

  /** Loads an official state_dict strictly (missing, unexpected or misshapen keys throw CheckpointError). */
  static fromStateDict(config: unknown, sd: StateDict, file?: string): DcganGenerator {
    const src = stateDictSource(sd, file);
    const g = new DcganGenerator(parseDcganConfig(config), src.source, src.counter);
    try {
      src.finish();
    } catch (e) {
      g.dispose();
      throw e;
    }
    return g;
  }

  /** pytorch/examples' weights_init: conv and linear weights N(0, 0.02), BatchNorm weights N(1, 0.02), biases 0. */
  static randomInit(config: unknown, seed: number): DcganGenerator {
    return new DcganGenerator(parseDcganConfig(config), normalInitSource(seed, 0.02));
  }

  /** z [N, nz] → NHWC images [N, S, S, nc] in the generator's range (tanh: [-1, 1]); the caller owns the result. */
  forward(z: tf.Tensor2D, opts: { training?: boolean } = {}): tf.Tensor4D {
    if (z.rank !== 2 || z.shape[1] !== this.nz) throw new Error(`expected z of shape [N, ${this.nz}], got [${z.shape}]`);
    return tf.tidy(() => this.net.apply(tf.reshape(z, [z.shape[0], 1, 1, this.nz]), opts.training ?? false));
  }
}

/** The ONNX graph of a DCGAN generator: input `z` NHWC [N, 1, 1, nz], output `y` NHWC [N, S, S, nc]. */
export function exportDcgan(config: unknown, sd: StateDict, file?: string): Uint8Array {
  const cfg = parseDcganConfig(config);
  const ops = new GraphOps(`dcgan_${cfg.layout}`, sd, file);
  const net = new DcganNet(ops, cfg);
  const y = net.apply(ops.input("z", [null, 1, 1, cfg.z_shape[0]]), false);
  return ops.finish({ y }, JSON.stringify({ family: "dcgan", layout: cfg.layout }));
}
