/**
 * `torch.manual_seed(seed); torch.randn(n)` must give PyTorch's float32 values bit for bit. References come from
 * the torch 2.13 wheel (scripts/torch-randn-fixture.py writes test/fixtures/seeds/torch-randn.{json,bin}).
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { fma32, TorchGenerator, torchSeedToZ } from "../src/random/torch-randn.ts";
import { torchRandnIndex } from "../../../test/fixtures/index.ts";

type Case = { seed: number; n: number; offset?: number; sha256?: string };
const index = JSON.parse(readFileSync(torchRandnIndex, "utf8")) as { bin: string; cases: Case[] };
const blob = readFileSync(path.join(path.dirname(torchRandnIndex), index.bin));
const data = new Float32Array(blob.buffer, blob.byteOffset, blob.byteLength / 4);

/** Bytes as torch writes them (little-endian float32). */
function bytesOf(v: Float32Array): Buffer {
  const out = Buffer.alloc(v.length * 4);
  for (let i = 0; i < v.length; i++) out.writeFloatLE(v[i], i * 4);
  return out;
}

describe("torch.randn reproduction", () => {
  it("covers seeds 0-99 at every length on both paths", () => {
    const lengths = [...new Set(index.cases.map((c) => c.n))].sort((a, b) => a - b);
    expect(lengths).toEqual([1, 2, 15, 16, 17, 100, 1000, 4097]);
    for (const n of lengths) expect(index.cases.filter((c) => c.n === n).map((c) => c.seed)).toEqual([...Array(100).keys()]);
  });

  it("matches every stored vector bit for bit", () => {
    const mismatches: string[] = [];
    for (const c of index.cases) {
      const ours = torchSeedToZ(c.seed, c.n);
      if (c.offset !== undefined) {
        const ref = data.subarray(c.offset, c.offset + c.n);
        const at = ours.findIndex((x, i) => !Object.is(x, ref[i]));
        if (at >= 0) mismatches.push(`seed ${c.seed} n ${c.n} [${at}]: ${ours[at]} vs ${ref[at]}`);
      } else {
        const hash = createHash("sha256").update(bytesOf(ours)).digest("hex");
        if (hash !== c.sha256) mismatches.push(`seed ${c.seed} n ${c.n}: sha256 differs`);
      }
    }
    expect(mismatches).toEqual([]);
  });

  it("keeps the cached second normal across calls, as torch's generator does", () => {
    const pair = index.cases.find((c) => c.seed === 7 && c.n === 2) as Case;
    const g = new TorchGenerator(7);
    const two = [...g.randn(1), ...g.randn(1)];
    expect(two).toEqual([...data.subarray(pair.offset as number, (pair.offset as number) + 2)]);
  });

  it("rejects seeds and lengths it cannot reproduce", () => {
    expect(() => new TorchGenerator(-1)).toThrow(RangeError);
    expect(() => new TorchGenerator(2 ** 32)).toThrow(RangeError);
    expect(() => new TorchGenerator(0).randn(1.5)).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------- fma32 against exact rational arithmetic

/** A finite float32 as mantissa · 2^exp with BigInt mantissa. */
function decompose(x: number): [bigint, number] {
  const b = new DataView(new ArrayBuffer(4));
  b.setFloat32(0, x);
  const bits = b.getUint32(0);
  const e = (bits >>> 23) & 0xff;
  const m = BigInt(bits & 0x7fffff) + (e ? 1n << 23n : 0n);
  return [bits >>> 31 ? -m : m, (e || 1) - 150];
}

/** Round m · 2^exp (exact) to float32, ties to even, normal range only (enough for these operands). */
function roundToFloat32(m: bigint, exp: number): number {
  if (m === 0n) return 0;
  const neg = m < 0n;
  let a = neg ? -m : m;
  let e = exp;
  const bitsLen = a.toString(2).length;
  if (bitsLen > 24) {
    const shift = BigInt(bitsLen - 24);
    const rem = a & ((1n << shift) - 1n);
    const half = 1n << (shift - 1n);
    a >>= shift;
    e += Number(shift);
    if (rem > half || (rem === half && (a & 1n) === 1n)) a += 1n;
  }
  const v = Number(a) * 2 ** e;
  return neg ? -v : v;
}

function exactFma(a: number, b: number, c: number): number {
  const [ma, ea] = decompose(a);
  const [mb, eb] = decompose(b);
  const [mc, ec] = decompose(c);
  const ep = ea + eb;
  const e = Math.min(ep, ec);
  return roundToFloat32((ma * mb << BigInt(ep - e)) + (mc << BigInt(ec - e)), e);
}

describe("fma32", () => {
  it("rounds once where a float64 sum lands on a float32 midpoint", () => {
    // a·b = 2^-24 - 2^-70, so a·b + c lies just below the midpoint 1 + 3·2^-24: the float64 sum is the midpoint
    // itself, which ties to even (1 + 2^-22), while the single rounding gives 1 + 2^-23.
    const a = 2 ** -24 * (1 + 2 ** -23);
    const b = 1 - 2 ** -23;
    const c = 1 + 2 ** -23;
    expect(Math.fround(a * b + c)).toBe(1 + 2 ** -22);
    expect(exactFma(a, b, c)).toBe(1 + 2 ** -23);
    expect(fma32(a, b, c)).toBe(exactFma(a, b, c));
  });

  it("agrees with exact arithmetic on random operands", () => {
    let state = 12345;
    const rand = () => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state / 2 ** 32;
    };
    const wrong: string[] = [];
    for (let i = 0; i < 5000; i++) {
      const a = Math.fround((rand() - 0.5) * 4);
      const b = Math.fround((rand() - 0.5) * 4);
      // c near -a·b makes cancellation and midpoints likely.
      const c = Math.fround(-a * b * (1 + (rand() - 0.5) * 2 ** -20));
      if (fma32(a, b, c) !== exactFma(a, b, c)) wrong.push(`${a} ${b} ${c}`);
    }
    expect(wrong).toEqual([]);
  });
});
