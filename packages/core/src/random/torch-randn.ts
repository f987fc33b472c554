/**
 * `torch.manual_seed(s); torch.randn(n)` on CPU, bit for bit in float32, so that a seed on our API gives the z a
 * DCGAN notebook (`torch.manual_seed(s); z = torch.randn(1, 100)`) gave its generator.
 *
 * What PyTorch does (ATen CPUGeneratorImpl, core/DistributionsHelper.h, native/cpu/DistributionTemplates.h):
 * - `manual_seed(s)` seeds at::mt19937 with the classic init_genrand recurrence from the low 32 bits of s (the
 *   same seeding as numpy's legacy RandomState, hence the shared MT19937) and clears the cached normal.
 * - Fewer than 16 float values (`normal_kernel`'s serial path): `at::normal_distribution<double>` per value, a
 *   Box–Muller pair in float64 from two 53-bit uniforms; the sine half is cached in the generator for the next
 *   value (also across calls), and each value is cast to float32.
 * - 16 or more contiguous float values: first every value gets a 24-bit float uniform, then each block of 16 is
 *   turned into normals (slots j and j+8 pair up: radius from 1 - u[j], angle from u[j+8]). When n is not a
 *   multiple of 16 the last 16 slots get fresh uniforms and are transformed again, overwriting the tail of the
 *   previous block. On x86-64 with AVX2 (every PyTorch x86 build dispatches there, and AVX-512 runs the same
 *   code) the block transform is `normal_fill_16_AVX2`: Cephes float32 polynomials from avx_mathfun.h
 *   (log256_ps, sincos256_ps), compiled by GCC with -mfma, which fuses each multiply whose only use is an add
 *   into one fused multiply-add. `fma32` reproduces those fusions; without them about 1 value in 100 is off by an
 *   ulp. (A build without AVX2, e.g. ATEN_CPU_CAPABILITY=default or aarch64, uses the C library's logf/cosf/sinf
 *   instead and differs from this in the last bit of about 1 value in 200.)
 */
import { MT19937 } from "./mt19937.ts";

const f = Math.fround;

// One 4-byte scratch cell to move between a float32 and its bits, as the AVX code does with casts.
const cell = new DataView(new ArrayBuffer(4));
function bitsOf(x: number): number {
  cell.setFloat32(0, x);
  return cell.getUint32(0);
}
function fromBits(b: number): number {
  cell.setUint32(0, b >>> 0);
  return cell.getFloat32(0);
}

/** The float32 after x in the direction of `toward` (x a float32, not NaN, x !== toward). */
function nextFloat32(x: number, toward: number): number {
  if (x === 0) return toward > 0 ? fromBits(1) : fromBits(0x80000001);
  const b = bitsOf(x);
  return fromBits(x < toward === x > 0 ? b + 1 : b - 1);
}

/**
 * fmaf(a, b, c) for float32 a, b, c: one rounding of the exact a·b + c. a·b is exact in float64 (48 bits); the sum
 * rounded to float64 and then to float32 can only go wrong when it lands exactly on a float32 midpoint with a
 * nonzero rounding error, and the error's sign then says which way the exact value lies.
 */
export function fma32(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const bb = s - p;
  const err = p - (s - bb) + (c - bb);
  const r = f(s);
  if (err === 0 || r === s || !Number.isFinite(s)) return r;
  const other = nextFloat32(r, s);
  if ((r + other) / 2 !== s) return r;
  return err > 0 ? Math.max(r, other) : Math.min(r, other);
}

// avx_mathfun.h's constants, rounded to float32 as its _PS256_CONST tables are.
const LOG_P = [
  7.0376836292e-2, -1.151461031e-1, 1.167699874e-1, -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1, 2.0000714765e-1,
  -2.4999993993e-1, 3.3333331174e-1,
].map(f);
const SQRTHF = f(Math.SQRT1_2);
const LOG_Q1 = f(-2.1219444e-4);
const LOG_Q2 = f(0.693359375);
const MIN_NORM_POS = fromBits(0x00800000);
const MINUS_DP = [-0.78515625, -2.4187564849853516e-4, -3.774894977445941e-8].map(f);
const SINCOF = [-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1].map(f);
const COSCOF = [2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2].map(f);
const FOPI = f(1.27323954473516); // 4 / pi
const TWO_PI = f(2 * Math.PI); // _mm256_set1_ps(2.0f * c10::pi<double>)

/** log256_ps for one lane (its argument here is always in (0, 1]). */
function log256(xIn: number): number {
  if (xIn <= 0) return Number.NaN;
  let x = Math.max(xIn, MIN_NORM_POS);
  const xb = bitsOf(x);
  let e = f((xb >>> 23) - 0x7f);
  e = f(e + 1);
  x = fromBits((xb & ~0x7f800000) | bitsOf(0.5));
  const below = x < SQRTHF;
  const tmp = below ? x : 0;
  x = f(x - 1);
  e = f(e - (below ? 1 : 0));
  x = f(x + tmp);
  const z = f(x * x);
  let y = LOG_P[0];
  for (let i = 1; i < LOG_P.length; i++) y = fma32(y, x, LOG_P[i]);
  y = f(y * x);
  // y*z + e*q1: GCC fuses the first multiply (y*z) with the add; e*q1 stays a separate product.
  y = fma32(y, z, f(e * LOG_Q1));
  y = f(y - f(z * 0.5)); // z*0.5 is exact, so fused or not gives the same
  x = f(x + y);
  return fma32(e, LOG_Q2, x);
}

/** sincos256_ps for one lane: [sin, cos]. */
function sincos256(xIn: number): [number, number] {
  let signSin = xIn < 0 || Object.is(xIn, -0);
  let x = Math.abs(xIn);
  // _mm256_cvttps_epi32 truncates toward zero (x >= 0 here), then j = (j + 1) & ~1.
  const j = ((Math.trunc(f(x * FOPI)) | 0) + 1) & ~1;
  const y = f(j);
  if (j & 4) signSin = !signSin;
  const sinPoly = (j & 2) === 0; // the sine polynomial gives sin; otherwise the roles swap
  const signCos = (~(j - 2) & 4) !== 0;
  for (const dp of MINUS_DP) x = fma32(y, dp, x);
  const z = f(x * x);
  let c = fma32(COSCOF[0], z, COSCOF[1]);
  c = fma32(c, z, COSCOF[2]);
  c = f(c * z);
  c = fma32(c, z, -f(z * 0.5)); // (c*z) - tmp with the multiply fused
  c = f(c + 1);
  let s = fma32(SINCOF[0], z, SINCOF[1]);
  s = fma32(s, z, SINCOF[2]);
  s = f(s * z);
  s = fma32(s, x, x);
  const sin = sinPoly ? s : c;
  const cos = sinPoly ? c : s;
  return [signSin ? -sin : sin, signCos ? -cos : cos];
}

/** normal_fill_16_AVX2 with mean 0 and std 1, in place on data[off .. off+16). */
function normalFill16(data: Float32Array, off: number): void {
  for (let j = 0; j < 8; j++) {
    const u1 = f(1 - data[off + j]);
    const u2 = data[off + j + 8];
    const radius = f(Math.sqrt(f(-2 * log256(u1))));
    const [sin, cos] = sincos256(f(TWO_PI * u2));
    data[off + j] = f(radius * cos);
    data[off + j + 8] = f(radius * sin);
  }
}

/** A CPU `torch.Generator` after `manual_seed(seed)`: the mt19937 stream plus the cached float64 normal. */
export class TorchGenerator {
  private readonly mt: MT19937;
  private nextDoubleNormal: number | undefined;

  /** `seed` in [0, 2**32): torch keeps only the low 32 bits of its 64-bit seed for mt19937. */
  constructor(seed: number) {
    this.mt = new MT19937(seed);
  }

  /** at::uniform_real_distribution<float>(0, 1): the low 24 bits of one draw, times 2^-24. */
  private uniformFloat(): number {
    return (this.mt.nextUint32() & 0xffffff) / 16777216;
  }

  /** at::uniform_real_distribution<double>(0, 1): the low 53 bits of (first draw << 32 | second draw), times 2^-53. */
  private uniformDouble(): number {
    const hi = this.mt.nextUint32() & 0x1fffff;
    const lo = this.mt.nextUint32();
    return (hi * 4294967296 + lo) / 9007199254740992;
  }

  /** at::normal_distribution<double>(0, 1), cached second value included. */
  normalDouble(): number {
    if (this.nextDoubleNormal !== undefined) {
      const v = this.nextDoubleNormal;
      this.nextDoubleNormal = undefined;
      return v;
    }
    const u1 = this.uniformDouble();
    const u2 = this.uniformDouble();
    const r = Math.sqrt(-2 * Math.log1p(-u2));
    const theta = 2 * Math.PI * u1;
    this.nextDoubleNormal = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** `torch.randn(n)` (or any contiguous float32 shape with n elements) from this generator's current state. */
  randn(n: number): Float32Array {
    if (!Number.isInteger(n) || n < 0) throw new RangeError("n must be a non-negative integer");
    const out = new Float32Array(n);
    if (n < 16) {
      for (let i = 0; i < n; i++) out[i] = this.normalDouble();
      return out;
    }
    for (let i = 0; i < n; i++) out[i] = this.uniformFloat();
    for (let i = 0; i + 16 <= n; i += 16) normalFill16(out, i);
    if (n % 16 !== 0) {
      const off = n - 16;
      for (let i = 0; i < 16; i++) out[off + i] = this.uniformFloat();
      normalFill16(out, off);
    }
    return out;
  }
}

/** z for a seed as a PyTorch script builds it: `torch.manual_seed(seed); torch.randn(1, zDim)`. */
export function torchSeedToZ(seed: number, zDim: number): Float32Array {
  return new TorchGenerator(seed).randn(zDim);
}
