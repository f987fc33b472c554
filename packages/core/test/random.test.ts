/**
 * Seeds must give the z that NVIDIA's generate.py gives: np.random.RandomState(seed).randn(1, z_dim).
 * Reference values come from numpy 2.4 (test/fixtures/seeds/randomstate.json and the literals below).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { exactLog } from "../src/random/exact-log.ts";
import { MT19937 } from "../src/random/mt19937.ts";
import { RandomState, seedToZ } from "../src/random/randomstate.ts";
import { seedsFile } from "../../../test/fixtures/index.ts";

const SEEDS = seedsFile;

/**
 * numpy calls the C library's log, which is not correctly rounded everywhere (glibc's is within 0.52 ulp).
 * For one draw in the fixture the true log lies 0.4994 ulp from one double and glibc returns the other;
 * we round correctly, so that pair of normals (seed 42, z[76..77]) differs by 1 ulp in float64. The float32
 * z that the generator consumes is identical for every case.
 */
const KNOWN_LIBM_ULP = new Set(["42:76", "42:77"]);

describe("MT19937 / RandomState", () => {
  it("seeds like numpy (init_genrand, not init_by_array)", () => {
    const mt = new MT19937(5489);
    expect([mt.nextUint32(), mt.nextUint32(), mt.nextUint32()]).toEqual([3499211612, 581869302, 3890346734]);
  });

  it("random_sample uses 53 bits from two draws", () => {
    const rs = new RandomState(7);
    expect([rs.randomSample(), rs.randomSample(), rs.randomSample(), rs.randomSample()]).toEqual([
      0.07630828937395717, 0.7799187922401146, 0.4384092314408935, 0.7234651778309412,
    ]);
  });

  it("keeps the second polar normal for the next call, across other draws", () => {
    const rs = new RandomState(3);
    rs.randn(1);
    expect(rs.randomSample()).toBe(0.2909047389129443);
    expect(rs.standardNormal()).toBe(0.43650985051198943);
  });

  it("rejects seeds numpy rejects", () => {
    expect(() => new RandomState(-1)).toThrow(RangeError);
    expect(() => new RandomState(2 ** 32)).toThrow(RangeError);
    expect(() => new RandomState(1.5)).toThrow(RangeError);
  });

  it("exactLog is correctly rounded where Math.log is not", () => {
    // True value -0.04849129386073946709338...; the nearer double is ...463628 (V8's Math.log returns ...470567).
    expect(exactLog(0.9526656333094028)).toBe(-0.048491293860739464);
    expect(exactLog(1)).toBe(0);
    expect(exactLog(2)).toBe(Math.LN2);
    expect(exactLog(5e-324)).toBe(-744.4400719213812);
  });
});

describe("numpy fixture seeds", () => {
  const cases = (JSON.parse(readFileSync(SEEDS, "utf8")) as { cases: { seed: number; z_dim: number; z: number[] }[] }).cases;

  it("randn matches numpy bit for bit in float64 (but for the documented libm ulp)", () => {
    const mismatches: string[] = [];
    let compared = 0;
    for (const c of cases) {
      const z = new RandomState(c.seed).randn(c.z_dim);
      expect(z).toBeInstanceOf(Float64Array);
      c.z.forEach((v, i) => {
        compared++;
        if (z[i] === v) return;
        mismatches.push(`${c.seed}:${i}`);
        // Exactly one ulp apart.
        expect(Math.abs(z[i] - v)).toBeLessThanOrEqual(2 ** (Math.floor(Math.log2(Math.abs(v))) - 52));
      });
    }
    expect(compared).toBe(5200);
    expect(new Set(mismatches)).toEqual(KNOWN_LIBM_ULP);
  });

  it("seedToZ matches torch.from_numpy(z).float() exactly for every case", () => {
    for (const c of cases) expect(seedToZ(c.seed, c.z_dim)).toEqual(Float32Array.from(c.z));
  });
});
