/**
 * Counter-based randomness for resumable training: every draw in step k comes from a generator keyed by
 * (seed, step, stream), so a trainer restored at step k draws exactly what an uninterrupted one would, with no
 * generator state to checkpoint. Streams keep independent uses (batch indices, crops, pool swaps) from shifting
 * each other when one of them draws a different number of values.
 */

/** murmur3's 32-bit finaliser: a bijective avalanche mix. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** A 32-bit key for (seed, step, stream); also usable as the seed of a seeded tf.random* op. */
export function stepSeed(seed: number, step: number, stream: string): number {
  // Seeds and steps may exceed 32 bits; fold the high part in rather than dropping it.
  const hi = (x: number) => Math.floor(x / 4294967296) >>> 0;
  let h = fmix32((seed >>> 0) ^ 0x9e3779b9);
  h = fmix32(h ^ hi(seed) ^ 0x7f4a7c15);
  h = fmix32(h ^ (step >>> 0));
  h = fmix32(h ^ hi(step) ^ 0x94d049bb);
  return fmix32(h ^ hashString(stream));
}

export interface StepRng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
}

/** sfc32 seeded from (seed, step, stream): small, fast, and passes PractRand far beyond what a step draws. */
export function stepRng(seed: number, step: number, stream: string): StepRng {
  const k = stepSeed(seed, step, stream);
  let a = fmix32(k ^ 0x243f6a88);
  let b = fmix32(k ^ 0x85a308d3);
  let c = fmix32(k ^ 0x13198a2e);
  let d = 1;
  const u32 = () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t;
  };
  // Discard the first outputs so related keys decorrelate fully.
  for (let i = 0; i < 12; i++) u32();
  const next = () => u32() / 4294967296;
  return { next, int: (n) => Math.min(n - 1, Math.floor(next() * n)) };
}
