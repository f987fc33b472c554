/**
 * Standard normal draws from a counter-based `StepRng` (Box-Muller), so latent codes of step k are a pure function
 * of (seed, k, stream) like every other draw, rather than of how many values tf.random* handed out before.
 */
import type { StepRng } from "./step-rng.ts";

export function normals(rng: StepRng, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    // 1 - u keeps the log argument in (0, 1]; the pair shares one radius, as Box-Muller's transform defines.
    const r = Math.sqrt(-2 * Math.log(1 - rng.next()));
    const theta = 2 * Math.PI * rng.next();
    out[i] = r * Math.cos(theta);
    if (i + 1 < n) out[i + 1] = r * Math.sin(theta);
  }
  return out;
}
