/**
 * A small Fashion-MNIST convnet whose penultimate layer is the feature space of our *domain* FID and of
 * precision/recall. It is not Inception: numbers from it are only comparable with other numbers from the
 * same weights (models/_eval/fashion-classifier.safetensors), never with published FIDs.
 *
 * Input: [N, 32, 32, 1] grayscale in [0, 1] (Fashion-MNIST padded 28→32, exactly what the StyleGAN2 demo
 * produces after RGB → gray). Three stride-2 3×3 convs with ReLU (stride 2 rather than pooling: cheap to backprop on wasm), a 128-unit ReLU layer
 * (the features) and a 10-way linear head. tfjs-core ops only, so it runs on every backend.
 */
import * as tf from "@tensorflow/tfjs-core";
import { readSafetensors, writeSafetensors } from "../checkpoints/safetensors.ts";
import type { StateDict } from "../checkpoints/tensor.ts";

export const CLASSIFIER_INPUT = 32;
export const FEATURE_DIM = 128;
/** Fashion-MNIST's classes, in its label order: the classifier's outputs. */
export const CLASSIFIER_CLASSES = 10;

/** name → shape (HWIO for convs, [in, out] for dense) */
const LAYERS: [string, number[]][] = [
  ["conv1.weight", [3, 3, 1, 32]],
  ["conv1.bias", [32]],
  ["conv2.weight", [3, 3, 32, 64]],
  ["conv2.bias", [64]],
  ["conv3.weight", [3, 3, 64, 64]],
  ["conv3.bias", [64]],
  ["fc.weight", [1024, FEATURE_DIM]],
  ["fc.bias", [FEATURE_DIM]],
  ["head.weight", [FEATURE_DIM, CLASSIFIER_CLASSES]],
  ["head.bias", [CLASSIFIER_CLASSES]],
];

/** tf.Variable names are global to the engine; every loaded copy needs its own. */
let instances = 0;

export class FashionClassifier {
  private constructor(readonly params: Map<string, tf.Variable>) {}

  /** He-normal init, seeded. */
  static randomInit(seed: number): FashionClassifier {
    const params = new Map<string, tf.Variable>();
    const id = instances++;
    LAYERS.forEach(([name, shape], i) => {
      const fanIn = shape.length === 4 ? shape[0] * shape[1] * shape[2] : shape[0];
      const init = name.endsWith(".bias") ? tf.zeros(shape) : tf.randomNormal(shape, 0, Math.sqrt(2 / fanIn), "float32", seed + i);
      params.set(name, tf.variable(init, true, `fashion_clf_${id}/${name}`));
      init.dispose();
    });
    return new FashionClassifier(params);
  }

  static fromSafetensors(bytes: Uint8Array, file = "fashion-classifier.safetensors"): FashionClassifier {
    const { tensors } = readSafetensors(bytes, file);
    const params = new Map<string, tf.Variable>();
    const id = instances++;
    for (const [name, shape] of LAYERS) {
      const t = tensors.get(name);
      if (!t || t.shape.join() !== shape.join()) throw new Error(`${file}: ${name} is missing or not [${shape}]`);
      params.set(name, tf.variable(tf.tensor(t.data as Float32Array, shape), false, `fashion_clf_${id}/${name}`));
    }
    return new FashionClassifier(params);
  }

  toSafetensors(metadata: Record<string, string> = {}): Uint8Array {
    const sd: StateDict = new Map();
    for (const [name, v] of this.params) sd.set(name, { dtype: "F32", shape: v.shape, data: v.dataSync() as Float32Array });
    return writeSafetensors(sd, { metadata });
  }

  private p(name: string) {
    return this.params.get(name)!;
  }

  /** x: [N, 32, 32, 1] in [0, 1] → penultimate features [N, 128] (after ReLU). */
  features(x: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => {
      let h: tf.Tensor4D = tf.sub(x, 0.5) as tf.Tensor4D;
      for (const i of [1, 2, 3] as const) {
        h = tf.conv2d(h, this.p(`conv${i}.weight`) as tf.Tensor4D, 2, "same");
        h = tf.relu(tf.add(h, this.p(`conv${i}.bias`))) as tf.Tensor4D;
      }
      const flat = tf.reshape(h, [h.shape[0], 1024]);
      return tf.relu(tf.add(tf.matMul(flat, this.p("fc.weight") as tf.Tensor2D), this.p("fc.bias"))) as tf.Tensor2D;
    });
  }

  logits(x: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => tf.add(tf.matMul(this.features(x), this.p("head.weight") as tf.Tensor2D), this.p("head.bias")) as tf.Tensor2D);
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
  }
}

/** HWC uint8 RGB images of 32×32 → [N, 32, 32, 1] gray in [0, 1] (channel mean: our data is gray replicated). */
export function grayBatch(images: readonly { data: Uint8Array; width: number; height: number }[]): tf.Tensor4D {
  const n = images.length;
  const out = new Float32Array(n * CLASSIFIER_INPUT * CLASSIFIER_INPUT);
  images.forEach((img, k) => {
    if (img.width !== CLASSIFIER_INPUT || img.height !== CLASSIFIER_INPUT)
      throw new Error(`the Fashion-MNIST classifier takes ${CLASSIFIER_INPUT}×${CLASSIFIER_INPUT} images, got ${img.width}×${img.height}`);
    for (let i = 0; i < CLASSIFIER_INPUT * CLASSIFIER_INPUT; i++)
      out[k * CLASSIFIER_INPUT * CLASSIFIER_INPUT + i] = (img.data[i * 3] + img.data[i * 3 + 1] + img.data[i * 3 + 2]) / (3 * 255);
  });
  return tf.tensor4d(out, [n, CLASSIFIER_INPUT, CLASSIFIER_INPUT, 1]);
}

/** Features of many images, in batches; returns row-major [N, 128]. */
export function extractFeatures(clf: FashionClassifier, images: readonly { data: Uint8Array; width: number; height: number }[], batch = 256): Float32Array {
  const out = new Float32Array(images.length * FEATURE_DIM);
  for (let i = 0; i < images.length; i += batch) {
    const f = tf.tidy(() => clf.features(grayBatch(images.slice(i, i + batch))));
    out.set(f.dataSync() as Float32Array, i * FEATURE_DIM);
    f.dispose();
  }
  return out;
}

export interface ClassifierTrainOptions {
  epochs: number;
  batch: number;
  lr: number;
  seed: number;
  onEpoch?: (epoch: number, loss: number) => void;
}

/**
 * Trains with Adam and softmax cross-entropy. `x` is [N, 32·32] gray in [0, 1], `y` the labels. Batch order is
 * a seeded shuffle per epoch so a retrain gives the same weights on the same backend.
 */
export function trainClassifier(x: Float32Array, y: Uint8Array, opts: ClassifierTrainOptions): FashionClassifier {
  const clf = FashionClassifier.randomInit(opts.seed);
  const optimizer = tf.train.adam(opts.lr);
  const n = y.length;
  const px = CLASSIFIER_INPUT * CLASSIFIER_INPUT;
  let state = opts.seed >>> 0 || 1;
  const rand = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
  const vars = [...clf.params.values()];
  for (let e = 0; e < opts.epochs; e++) {
    const order = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    let lossSum = 0;
    let batches = 0;
    for (let s = 0; s + opts.batch <= n; s += opts.batch) {
      const bx = new Float32Array(opts.batch * px);
      const by = new Int32Array(opts.batch);
      for (let k = 0; k < opts.batch; k++) {
        bx.set(x.subarray(order[s + k] * px, (order[s + k] + 1) * px), k * px);
        by[k] = y[order[s + k]];
      }
      const loss = tf.tidy(() => {
        const xs = tf.tensor4d(bx, [opts.batch, CLASSIFIER_INPUT, CLASSIFIER_INPUT, 1]);
        const ys = tf.oneHot(tf.tensor1d(by, "int32"), 10);
        return optimizer.minimize(() => tf.losses.softmaxCrossEntropy(ys, clf.logits(xs)) as tf.Scalar, true, vars)!;
      });
      lossSum += loss.dataSync()[0];
      loss.dispose();
      batches++;
    }
    opts.onEpoch?.(e, lossSum / Math.max(1, batches));
  }
  optimizer.dispose();
  return clf;
}

export function accuracy(clf: FashionClassifier, x: Float32Array, y: Uint8Array, batch = 500): number {
  const px = CLASSIFIER_INPUT * CLASSIFIER_INPUT;
  let correct = 0;
  for (let s = 0; s < y.length; s += batch) {
    const m = Math.min(batch, y.length - s);
    const pred = tf.tidy(() => tf.argMax(clf.logits(tf.tensor4d(x.subarray(s * px, (s + m) * px), [m, CLASSIFIER_INPUT, CLASSIFIER_INPUT, 1])), 1));
    const p = pred.dataSync();
    pred.dispose();
    for (let k = 0; k < m; k++) if (p[k] === y[s + k]) correct++;
  }
  return correct / y.length;
}
