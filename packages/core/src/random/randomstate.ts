/**
 * numpy's legacy `np.random.RandomState(seed)`: what NVIDIA's generate.py uses to turn a seed into z
 * (`RandomState(seed).randn(1, z_dim)`). Reproducing it bit for bit lets a seed on our API give the same image as
 * the official script.
 */
import { exactLog } from "./exact-log.ts";
import { MT19937 } from "./mt19937.ts";

export class RandomState {
  private readonly mt: MT19937;
  /** legacy_gauss draws normals in pairs and keeps the second for the next call. */
  private gauss: number | undefined;

  constructor(seed: number) {
    this.mt = new MT19937(seed);
  }

  /** Uniform [0, 1) with 53 random bits, from two 32-bit draws (numpy's legacy_double). */
  randomSample(): number {
    const a = this.mt.nextUint32() >>> 5;
    const b = this.mt.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** Standard normal via the polar Box-Muller method, as numpy's legacy_gauss. */
  standardNormal(): number {
    if (this.gauss !== undefined) {
      const g = this.gauss;
      this.gauss = undefined;
      return g;
    }
    let x1: number, x2: number, r2: number;
    do {
      x1 = 2 * this.randomSample() - 1;
      x2 = 2 * this.randomSample() - 1;
      r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1 || r2 === 0);
    const f = Math.sqrt((-2 * exactLog(r2)) / r2);
    this.gauss = f * x1;
    return f * x2;
  }

  /** `randn(n)`: n standard normals in draw order (a row-major `randn(1, n)` has the same values). */
  randn(n: number): Float64Array {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = this.standardNormal();
    return out;
  }
}

/** z for a seed as generate.py builds it: float64 from numpy, then cast to float32 as torch does. */
export function seedToZ(seed: number, zDim: number): Float32Array {
  return Float32Array.from(new RandomState(seed).randn(zDim));
}
