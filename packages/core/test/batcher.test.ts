import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Batcher } from "../src/inference/batcher.ts";

/** A batcher whose passes are recorded and finish when the test says so. */
function recording(opts: { maxBatch?: number; maxDelayMs?: number; maxQueue?: number } = {}) {
  const passes: number[][] = [];
  const b = new Batcher<number, number>(
    async (items) => {
      passes.push(items);
      return items.map((x) => x * 10);
    },
    { maxBatch: opts.maxBatch ?? 8, maxDelayMs: opts.maxDelayMs ?? 1000, maxQueue: opts.maxQueue ?? 64 },
  );
  const submit = (x: number, size = 1) => b.submit(x, { size, timeoutMs: 60_000 });
  return { b, passes, submit };
}

describe("Batcher", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("runs a lone request at once, without waiting for the batch window", async () => {
    const { passes, submit } = recording({ maxDelayMs: 1000 });
    const r = submit(1);
    await vi.advanceTimersByTimeAsync(0);
    expect(passes).toEqual([[1]]);
    expect((await r).output).toBe(10);
  });

  it("after a pass of n, collects n requests into the next pass instead of running the first alone", async () => {
    const { passes, submit } = recording({ maxDelayMs: 1000 });
    const first = submit(1, 4);
    await vi.advanceTimersByTimeAsync(0);
    await first;
    expect(passes).toEqual([[1]]);
    const next = [submit(2), submit(3), submit(4)];
    await vi.advanceTimersByTimeAsync(500);
    expect(passes.length).toBe(1); // 3 of 4 slots: still waiting
    next.push(submit(5));
    await vi.advanceTimersByTimeAsync(0);
    expect(passes).toEqual([[1], [2, 3, 4, 5]]);
    await Promise.all(next);
  });

  it("runs a partial batch when the window closes", async () => {
    const { passes, submit } = recording({ maxDelayMs: 1000 });
    const first = submit(1, 4);
    await vi.advanceTimersByTimeAsync(0);
    await first;
    const two = [submit(2), submit(3)];
    await vi.advanceTimersByTimeAsync(999);
    expect(passes.length).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(passes).toEqual([[1], [2, 3]]);
    await Promise.all(two);
    // the last pass had 2 slots, so 2 waiting requests now start a pass at once
    const again = [submit(6), submit(7)];
    await vi.advanceTimersByTimeAsync(0);
    expect(passes).toEqual([[1], [2, 3], [6, 7]]);
    await Promise.all(again);
  });

  it("queues requests that arrive during a pass and runs them together after it, up to maxBatch", async () => {
    let release!: () => void;
    const passes: number[][] = [];
    const b = new Batcher<number, number>(
      async (items) => {
        passes.push(items);
        if (passes.length === 1) await new Promise<void>((r) => (release = r));
        return items;
      },
      { maxBatch: 3, maxDelayMs: 1000, maxQueue: 64 },
    );
    const all = [b.submit(0, { timeoutMs: 60_000 })];
    await vi.advanceTimersByTimeAsync(0);
    for (let i = 1; i <= 4; i++) all.push(b.submit(i, { timeoutMs: 60_000 }));
    await vi.advanceTimersByTimeAsync(5000);
    expect(passes).toEqual([[0]]); // one pass at a time
    release();
    await vi.advanceTimersByTimeAsync(0);
    expect(passes[1]).toEqual([1, 2, 3]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(passes[2]).toEqual([4]);
    expect((await Promise.all(all)).map((r) => r.output)).toEqual([0, 1, 2, 3, 4]);
  });

  it("with maxDelayMs 0 never holds a request back while the engine is free", async () => {
    const { passes, submit } = recording({ maxDelayMs: 0 });
    const first = submit(1, 4);
    await vi.advanceTimersByTimeAsync(0);
    await first;
    const lone = submit(2);
    await vi.advanceTimersByTimeAsync(0);
    expect(passes).toEqual([[1], [2]]);
    await lone;
  });
});
