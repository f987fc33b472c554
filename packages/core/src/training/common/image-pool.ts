/**
 * junyanz `ImagePool`: a buffer of previously generated images so D sees a history of G's outputs (Shrivastava
 * et al.). While the pool is not full every image goes in and is returned as is; once full, each image is, with
 * probability 1/2, swapped for a random stored one (which is returned instead), else returned as is.
 *
 * Images live on the host, so the pool round-trips through a checkpoint exactly.
 */
import type { StateDict } from "../../checkpoints/tensor.ts";
import type { StepRng } from "./step-rng.ts";

export class ImagePool {
  private readonly images: Float32Array[] = [];

  constructor(
    readonly size: number,
    /** HWC of one image. */
    readonly shape: readonly [number, number, number],
  ) {}

  get count(): number {
    return this.images.length;
  }

  /** `batch` is N images of `shape`, concatenated; returns the batch D should see. */
  query(batch: Float32Array, rng: StepRng): Float32Array {
    if (this.size <= 0) return batch;
    const per = this.shape[0] * this.shape[1] * this.shape[2];
    const n = batch.length / per;
    const out = new Float32Array(batch.length);
    for (let i = 0; i < n; i++) {
      const img = batch.slice(i * per, (i + 1) * per);
      if (this.images.length < this.size) {
        this.images.push(img);
        out.set(img, i * per);
      } else if (rng.next() > 0.5) {
        const j = rng.int(this.size);
        out.set(this.images[j], i * per);
        this.images[j] = img;
      } else {
        out.set(img, i * per);
      }
    }
    return out;
  }

  /** `<prefix>images` [count, H, W, C] (omitted while empty) and `<prefix>count`. */
  saveState(prefix: string, out: StateDict = new Map()): StateDict {
    out.set(`${prefix}count`, { dtype: "I64", shape: [], data: BigInt64Array.of(BigInt(this.images.length)) });
    if (this.images.length) {
      const per = this.shape[0] * this.shape[1] * this.shape[2];
      const data = new Float32Array(this.images.length * per);
      for (const [i, im] of this.images.entries()) data.set(im, i * per);
      out.set(`${prefix}images`, { dtype: "F32", shape: [this.images.length, ...this.shape], data });
    }
    return out;
  }

  loadState(sd: StateDict, prefix: string): void {
    const countT = sd.get(`${prefix}count`);
    if (!countT) throw new Error(`trainer state is missing ${prefix}count`);
    const count = Number(countT.data[0]);
    const per = this.shape[0] * this.shape[1] * this.shape[2];
    this.images.length = 0;
    if (count === 0) return;
    const t = sd.get(`${prefix}images`);
    if (!t || t.data.length !== count * per) throw new Error(`${prefix}images must hold ${count} images of [${this.shape}]`);
    const data = t.data as Float32Array;
    for (let i = 0; i < count; i++) this.images.push(Float32Array.from(data.subarray(i * per, (i + 1) * per)));
  }
}
