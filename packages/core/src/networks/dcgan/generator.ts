/**
 * The DCGAN generator, written once against the op interface (docs/design/networks.md): the config's module list
 * (fc_deconv, main or mlp layout, see config.ts) is built in state_dict order on a ParamStore (TF.js: serving and
 * training) or a GraphOps (the ONNX export). z enters as an NHWC [N, 1, 1, nz] map, so a Linear is a matrix
 * product over channels and BatchNorm1d is BatchNorm2d on a 1×1 map (same parameters, same statistics axes).
 */
import * as tf from "@tensorflow/tfjs-core";
import type { StateDict } from "../../checkpoints/tensor.ts";
import { ConvTranspose2d } from "../common/conv.ts";
import { Linear } from "../common/linear.ts";
import { BatchNorm2d } from "../common/norm.ts";
import { normalInitSource, type ParamSource, ParamModule, ParamStore, loadStrict } from "../common/param-store.ts";
import { GraphOps } from "../ops/graph.ts";
import type { Ops } from "../ops/ops.ts";
import { type DcganConfig, parseDcganConfig } from "./config.ts";

/** Called with each BatchNorm and its input on a training forward (a trainer updates the running statistics). */
export type OnBatchNorm<T, P> = (bn: BatchNorm2d<T, P>, x: T) => void;
type Step<T, P> = (x: T, training: boolean, onBatchNorm?: OnBatchNorm<T, P>) => T;

/** The one assembly of a DCGAN generator, for either backend: the config's modules in order. */
export class DcganNet<T, P> {
  private readonly steps: Step<T, P>[] = [];

  constructor(ops: Ops<T, P>, readonly cfg: DcganConfig) {
    for (const l of cfg.layers) {
      switch (l.op) {
        case "linear": {
          const m = new Linear(ops, l.key, l.in, l.out, { bias: l.bias });
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
          this.steps.push((x, training, onBatchNorm) => {
            if (training) onBatchNorm?.(m, x);
            return m.apply(x, training);
          });
          break;
        }
        case "reshape":
          this.steps.push((x) => ops.unflatten(x, ...l.shape));
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
          this.steps.push((x) => ops.sigmoid(x));
          break;
      }
    }
  }

  /** z as an NHWC [N, 1, 1, nz] map → NHWC [N, S, S, nc]. */
  apply(z: T, training: boolean, onBatchNorm?: OnBatchNorm<T, P>): T {
    return this.steps.reduce((x, step) => step(x, training, onBatchNorm), z);
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
    const cfg = parseDcganConfig(config);
    return loadStrict(sd, file, (source, counter) => new DcganGenerator(cfg, source, counter));
  }

  /** pytorch/examples' weights_init: conv and linear weights N(0, 0.02), BatchNorm weights N(1, 0.02), biases 0. */
  static randomInit(config: unknown, seed: number): DcganGenerator {
    return new DcganGenerator(parseDcganConfig(config), normalInitSource(seed, 0.02));
  }

  /** z [N, nz] → NHWC images [N, S, S, nc] in the generator's range (tanh: [-1, 1]); the caller owns the result. */
  forward(z: tf.Tensor2D, opts: { training?: boolean; onBatchNorm?: OnBatchNorm<tf.Tensor4D, tf.Variable> } = {}): tf.Tensor4D {
    if (z.rank !== 2 || z.shape[1] !== this.nz) throw new Error(`expected z of shape [N, ${this.nz}], got [${z.shape}]`);
    return tf.tidy(() => this.net.apply(tf.reshape(z, [z.shape[0], 1, 1, this.nz]), opts.training ?? false, opts.onBatchNorm));
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
