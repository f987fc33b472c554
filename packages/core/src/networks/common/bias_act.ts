/**
 * Bias + activation + gain + clamp, fused in one helper as StyleGAN2's `bias_act` defines the order: add bias,
 * activate, multiply by gain (default: the activation's variance-preserving gain), then clamp. The clamp comes
 * last so `conv_clamp` bounds what the next layer sees regardless of gain. Channels are the last axis (NHWC or
 * [N, C]).
 */
import * as tf from "@tensorflow/tfjs-core";

/*
 * Fast kernels forward, twice-differentiable gradients backward. TF.js's own LeakyRelu and ClipByValue
 * gradients build boolean masks (Greater, GreaterEqual) that have no gradient, so a second derivative through
 * them (path-length regularisation, R1) throws. These gradients use `step`, whose own gradient is defined (0).
 */
const lreluCache = new Map<number, (x: tf.Tensor) => tf.Tensor>();
function leakyRelu(x: tf.Tensor, alpha: number): tf.Tensor {
  let op = lreluCache.get(alpha);
  if (!op) {
    op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const [t, save] = args as [tf.Tensor, tf.GradSaveFunc];
      save([t]);
      return {
        value: tf.leakyRelu(t, alpha),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, tf.add(tf.mul(tf.step(saved[0], 0), 1 - alpha), alpha)),
      };
    }) as (x: tf.Tensor) => tf.Tensor;
    lreluCache.set(alpha, op);
  }
  return op(x);
}

function clampSymmetric(x: tf.Tensor, c: number): tf.Tensor {
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [t, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([t]);
    return {
      value: tf.clipByValue(t, -c, c),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, tf.mul(tf.step(tf.add(saved[0], c), 0), tf.step(tf.sub(c, saved[0]), 0))),
    };
  }) as (x: tf.Tensor) => tf.Tensor;
  return op(x);
}

export const ACTIVATIONS = {
  linear: { gain: 1, fn: (x: tf.Tensor) => x },
  relu: { gain: Math.SQRT2, fn: (x: tf.Tensor) => tf.relu(x) },
  lrelu: { gain: Math.SQRT2, fn: (x: tf.Tensor) => leakyRelu(x, 0.2) },
  tanh: { gain: 1, fn: (x: tf.Tensor) => tf.tanh(x) },
  sigmoid: { gain: 1, fn: (x: tf.Tensor) => tf.sigmoid(x) },
  elu: { gain: 1, fn: (x: tf.Tensor) => tf.elu(x) },
  selu: { gain: 1, fn: (x: tf.Tensor) => tf.selu(x) },
  softplus: { gain: 1, fn: (x: tf.Tensor) => tf.softplus(x) },
  swish: { gain: Math.SQRT2, fn: (x: tf.Tensor) => tf.mul(x, tf.sigmoid(x)) },
} as const;

export type Activation = keyof typeof ACTIVATIONS;

export const ACTIVATION_NAMES = Object.keys(ACTIVATIONS) as [Activation, ...Activation[]];

export interface BiasActOptions {
  act?: Activation;
  /** Overall gain; defaults to the activation's own (sqrt(2) for lrelu). */
  gain?: number;
  /** Symmetric clamp applied after the gain; null/undefined/negative disables it. */
  clamp?: number | null;
}

export function biasAct<T extends tf.Tensor>(x: T, b: tf.Tensor | null, opts: BiasActOptions = {}): T {
  const act = ACTIVATIONS[opts.act ?? "linear"];
  const gain = opts.gain ?? act.gain;
  return tf.tidy(() => {
    let y: tf.Tensor = b ? tf.add(x, b) : x;
    y = act.fn(y);
    if (gain !== 1) y = tf.mul(y, gain);
    if (opts.clamp != null && opts.clamp >= 0) y = clampSymmetric(y, opts.clamp);
    return y as T;
  });
}
