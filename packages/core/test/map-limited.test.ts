import { describe, expect, it } from "vitest";
import { mapLimited } from "../src/limits/map-limited.ts";

const tick = () => new Promise((r) => setTimeout(r, 1));

describe("mapLimited", () => {
  it("keeps input order and never runs more than `limit` calls at once", async () => {
    let inFlight = 0;
    let peak = 0;
    const out = await mapLimited([...Array(50).keys()], 4, async (x) => {
      peak = Math.max(peak, ++inFlight);
      await new Promise((r) => setTimeout(r, (x * 7) % 5));
      inFlight--;
      return x * 2;
    });
    expect(out).toEqual([...Array(50).keys()].map((x) => x * 2));
    expect(peak).toBe(4);
  });

  it("throws the first error only after the calls in flight have settled, and starts no new ones", async () => {
    const started: number[] = [];
    const settled: number[] = [];
    const run = mapLimited([...Array(20).keys()], 3, async (x) => {
      started.push(x);
      await tick();
      if (x === 1) throw new Error("boom 1");
      await tick();
      settled.push(x);
      return x;
    });
    await expect(run).rejects.toThrow("boom 1");
    // 1 fails before 0 or 2 finish, so no worker takes a fourth item, and 0 and 2 still run to the end.
    expect(started).toEqual([0, 1, 2]);
    expect(settled).toEqual([0, 2]);
  });

  it("handles an empty list", async () => {
    expect(await mapLimited([], 8, async () => 1)).toEqual([]);
  });
});
