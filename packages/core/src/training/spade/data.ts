/**
 * Paired SPADE data: each image is resized (bilinear) to the generator's output size and its label map with
 * PyTorch's legacy nearest indexing, then turned into semantics exactly as serving does (`buildSemantics`; when
 * the model uses instance maps, the label map doubles as the instance map, so class boundaries become the edge
 * channel). Each step draws images and a horizontal flip from the step RNG, as upstream's random flip.
 */
import * as tf from "@tensorflow/tfjs-core";
import { legacyNearestIndices } from "../../networks/common/nearest-resize.ts";
import { buildSemantics, type SpadeConfig } from "../../networks/spade/index.ts";
import { imageTensor } from "../common/images.ts";
import type { StepRng } from "../common/step-rng.ts";
import type { TrainImage } from "../types.ts";

export function resizeLabelsNearest(labels: Int32Array, h: number, w: number, oh: number, ow: number): Int32Array {
  if (h === oh && w === ow) return labels;
  const ys = legacyNearestIndices(h, oh);
  const xs = legacyNearestIndices(w, ow);
  const out = new Int32Array(oh * ow);
  for (let y = 0; y < oh; y++) for (let x = 0; x < ow; x++) out[y * ow + x] = labels[ys[y] * w + xs[x]];
  return out;
}

export class PairedData {
  /** [N, oh, ow, semantic_nc] and [N, oh, ow, 3] in [-1, 1]. */
  private readonly semantics: tf.Tensor4D;
  private readonly images: tf.Tensor4D;
  readonly count: number;
  /** Fixed inputs for the sample grid. */
  readonly sampleSemantics: tf.Tensor4D;
  readonly sampleImages: tf.Tensor4D;
  readonly sampleLabels: Int32Array[];

  constructor(config: SpadeConfig, images: TrainImage[], labels: Int32Array[], sampleCount: number, readonly flip: boolean) {
    if (images.length === 0) throw new Error("spade training needs at least one image");
    if (labels.length !== images.length) throw new Error(`spade training got ${images.length} images but ${labels.length} label maps`);
    const [oh, ow] = config.output_hw;
    const resized = labels.map((l, i) => {
      const { width, height } = images[i];
      if (l.length !== width * height) throw new Error(`label map ${i} has ${l.length} values for a ${width}x${height} image`);
      return resizeLabelsNearest(l, height, width, oh, ow);
    });
    const semOf = (idx: number[]) => {
      const data = new Int32Array(idx.length * oh * ow);
      for (const [i, j] of idx.entries()) data.set(resized[j], i * oh * ow);
      const map = { data, shape: [idx.length, oh, ow] };
      const s = buildSemantics(config, map, config.no_instance ? undefined : map);
      return tf.tensor4d(s.data, s.shape);
    };
    const imgOf = (idx: number[]) => tf.tidy(() => tf.concat(idx.map((j) => imageTensor(images[j], oh, ow)), 0));
    const k = Math.min(sampleCount, images.length);
    const all = images.map((_, i) => i);
    // Hold the sample pairs out of training only when that leaves most of the data; tiny sets reuse them.
    const train = images.length > 2 * k ? all.slice(k) : all;
    this.count = train.length;
    this.semantics = semOf(train);
    this.images = imgOf(train);
    this.sampleSemantics = semOf(all.slice(0, k));
    this.sampleImages = imgOf(all.slice(0, k));
    this.sampleLabels = resized.slice(0, k);
  }

  batch(n: number, rng: StepRng): { semantics: tf.Tensor4D; images: tf.Tensor4D } {
    const pick = Array.from({ length: n }, () => ({ idx: rng.int(this.count), flip: this.flip && rng.next() > 0.5 }));
    const take = (t: tf.Tensor4D) =>
      tf.tidy(() => {
        const parts = pick.map(({ idx, flip }) => {
          const x = tf.slice(t, [idx, 0, 0, 0], [1, -1, -1, -1]);
          return flip ? tf.reverse(x, 2) : x;
        });
        return parts.length === 1 ? parts[0] : tf.concat(parts, 0);
      });
    return { semantics: take(this.semantics), images: take(this.images) };
  }

  dispose(): void {
    tf.dispose([this.semantics, this.images, this.sampleSemantics, this.sampleImages]);
  }
}
